//! Fill-mask: for every `[MASK]` of a text, the model's most likely tokens there, as
//! transformers' `fill-mask` pipeline gives them (softmax over the vocabulary of the masked-LM
//! logits at that position, the top k by score). A text longer than the model is read in the
//! overlapping windows of the read options, each `[MASK]` predicted from the one window where
//! it has the most context on both sides (see [`token_sources`]; a masked word needs its own
//! context, not an average of windows). With windows off (`Refuse` or `Truncate`) a long text
//! is refused with its length: cutting it could drop a mask. A pair of texts is one window
//! (`[CLS] a [SEP] b [SEP]`, never cut: refused with its lengths when too long); its masks come
//! in encoding order, the first text's first.

use crate::models::{EncoderInput, RunMode};
use crate::sort;
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::classify::softmax;
use super::pipeline::Pipeline;
use super::text_pairs::TaskText;
use super::windows::{encode_item, token_sources, LongTexts};
use crate::models::bert::heads::check_logits_fit;

/// One candidate for one mask.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MaskPrediction {
    pub token: String,
    pub id: u32,
    /// Softmax probability of the token at the mask.
    pub score: f32,
}

/// The `top_k` best (id, score) of a row of probabilities, best first (ties: lower id first).
pub fn top_k(probabilities: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    let k = k.min(order.len());
    // higher score first; the sort helpers break ties by the lower index (id)
    let by_score = |a: usize, b: usize| probabilities[b].total_cmp(&probabilities[a]);
    sort::select_smallest(&mut order, k, &by_score);
    order.truncate(k);
    sort::sort_indices(&mut order, &by_score);
    order
        .into_iter()
        .map(|id| (id as u32, probabilities[id]))
        .collect()
}

impl Pipeline {
    /// For each `[MASK]` of `item` (a text, or a pair: the masks of the first text, then
    /// those of the second), in order, its `top_k` predictions.
    pub async fn fill_mask<S: TaskText + ?Sized>(
        &self,
        item: &S,
        top_k_count: usize,
    ) -> Result<Vec<Vec<MaskPrediction>>> {
        if top_k_count == 0 {
            return Err(Error::invalid("top_k must be at least 1"));
        }
        let head = self.model.masked_lm.as_ref().ok_or_else(|| {
            Error::invalid("the model has no masked-LM head (load a *ForMaskedLM / *ForPreTraining checkpoint)")
        })?;
        let mask_id = self
            .tokenizer
            .token_to_id("[MASK]")
            .ok_or_else(|| Error::invalid("the tokenizer's vocabulary has no [MASK] token"))?;
        let long_texts = match self.read.long_texts {
            LongTexts::Windows { stride } => LongTexts::Windows { stride },
            LongTexts::Truncate | LongTexts::Refuse => LongTexts::Refuse,
        };
        if item.pair().is_some() {
            self.check_pair(0)?;
        }
        let mut windows = Vec::new();
        encode_item(
            &self.tokenizer,
            0,
            item,
            self.read.max_length,
            long_texts,
            &mut windows,
        )?;
        let stride = match long_texts {
            LongTexts::Windows { stride } => stride,
            _ => 0,
        };
        // every [MASK] of the text, in order, in the window that reads it
        let masks: Vec<_> = token_sources(&windows, 0, stride)?
            .into_iter()
            .filter(|s| windows[s.window].encoding.ids[s.position] == mask_id)
            .collect();
        if masks.is_empty() {
            return Err(Error::invalid(format!(
                "fill-mask: the text has no [MASK] token: {:?}{}",
                item.text(),
                item.pair()
                    .map_or(String::new(), |b| format!(" / pair {b:?}"))
            )));
        }
        // only the windows some mask is read from are run
        let mut needed: Vec<usize> = masks.iter().map(|s| s.window).collect();
        sort::sort_dedup(&mut needed);
        let device = self.device().clone();
        // (N, V) logits over one GPU binding: refused before the encoder runs
        check_logits_fit(&device, &[masks.len(), self.model.vocab_size()])?;
        let c = self.hidden_size();
        // (needed window) -> its hidden states (T_w, C), each window run alone (no padding)
        let mut hidden_of: Vec<Vec<f32>> = Vec::with_capacity(needed.len());
        for &w in &needed {
            let encoding = std::slice::from_ref(&windows[w].encoding);
            let input = EncoderInput::from_encodings(&device, encoding)?;
            let out = self.model.encode(&input, &RunMode::inference())?;
            hidden_of.push(out.hidden.to_vec().await?); // (1, T_w, C)
        }
        let rows: Vec<f32> = masks
            .iter()
            .flat_map(|s| {
                let w = needed.iter().position(|&n| n == s.window).unwrap_or(0);
                hidden_of[w][s.position * c..(s.position + 1) * c]
                    .iter()
                    .copied()
            })
            .collect();
        let rows = Tensor::from_vec(&device, &[masks.len(), c], rows, "mask_rows")?; // (N, C)
        let (logits, _) = head.forward(&rows, &self.model.embeddings.word)?; // (N, V)
        let logits = logits.to_vec().await?;
        let v = logits.len() / masks.len();
        let mut out = Vec::with_capacity(masks.len());
        for row in logits.chunks(v) {
            if row.iter().any(|x| !x.is_finite()) {
                return Err(Error::invalid(
                    "fill-mask: the model produced non-finite logits",
                ));
            }
            let probabilities = softmax(row);
            let predictions = top_k(&probabilities, top_k_count)
                .into_iter()
                .map(|(id, score)| MaskPrediction {
                    token: self
                        .tokenizer
                        .id_to_token(id)
                        .unwrap_or("[UNK]")
                        .to_string(),
                    id,
                    score,
                })
                .collect();
            out.push(predictions);
        }
        Ok(out)
    }
}
