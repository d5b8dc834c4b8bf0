//! Token classification (named entities, parts of speech) with the model's token-classification
//! head: for every WordPiece token of each text ([CLS], [SEP] and padding left out) the most
//! likely label and its softmax probability. A text longer than the model is read in the
//! overlapping windows of the read options; each token takes its logits from the window where
//! it has the most context (see [`token_sources`]), so every token appears once, in order.
//! A pair of texts is read as one window; each token says which of the two texts it is from.

use crate::models::RunMode;
use crate::tensor::Tensor;
use crate::train::metrics::argmax;
use crate::{Error, Result};

use super::classify::softmax;
use super::pipeline::Pipeline;
use super::text_pairs::TaskText;
use super::windows::{token_sources, LongTexts};

/// The label of one token.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TokenLabel {
    pub token: String,
    /// Code-point offsets of the token in its text.
    pub start: usize,
    pub end: usize,
    /// The most likely label.
    pub label: String,
    /// Its softmax probability.
    pub score: f32,
    /// For a pair of texts: 0 for a token of the first text, 1 for one of the second (its
    /// offsets are in that text); absent for a single text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u32>,
}

impl Pipeline {
    /// The labels of every token of each text (of both texts of a pair, first text first).
    pub async fn classify_tokens<S: TaskText>(&self, texts: &[S]) -> Result<Vec<Vec<TokenLabel>>> {
        let head = self.model.token_classifier.as_ref().ok_or_else(|| {
            Error::invalid(
                "the model has no token-classification head (load a *ForTokenClassification checkpoint)",
            )
        })?;
        let names = self.labels();
        let windows = self.windows(texts)?;
        let mut pending: Vec<(Vec<usize>, usize, Tensor)> = Vec::new();
        self.encode_windows_in_batches(&windows, &RunMode::inference(), |batch| {
            let (logits, _) = head.forward(&batch.output.hidden, false, 0)?; // (B, T, L)
            pending.push((batch.windows.clone(), batch.input.seq, logits));
            Ok(())
        })
        .await?;
        // (window) -> its logits (T_w, L), T_w its own length
        let mut per_window: Vec<Vec<f32>> = vec![Vec::new(); windows.len()];
        let mut labels = 0;
        for (rows, seq, logits) in pending {
            let values = logits.to_vec().await?; // (B, T, L)
            labels = values.len() / (rows.len() * seq).max(1);
            for (i, &w) in rows.iter().enumerate() {
                let t = windows[w].encoding.len();
                per_window[w] = values[i * seq * labels..(i * seq + t) * labels].to_vec();
            }
        }
        let stride = match self.read.long_texts {
            LongTexts::Windows { stride } => stride,
            LongTexts::Truncate | LongTexts::Refuse => 0,
        };
        let mut out = Vec::with_capacity(texts.len());
        for (text, item) in texts.iter().enumerate() {
            let is_pair = item.pair().is_some();
            let mut tokens = Vec::new();
            for source in token_sources(&windows, text, stride)? {
                let encoding = &windows[source.window].encoding;
                let t = source.position;
                let row = &per_window[source.window][t * labels..(t + 1) * labels];
                if row.iter().any(|x| !x.is_finite()) {
                    return Err(Error::invalid(
                        "classify-tokens: the model produced non-finite logits",
                    ));
                }
                let scores = softmax(row);
                let best = argmax(&scores);
                let (start, end) = encoding.offsets[t];
                tokens.push(TokenLabel {
                    token: encoding.tokens[t].to_string(),
                    start,
                    end,
                    label: names
                        .get(best)
                        .cloned()
                        .unwrap_or_else(|| format!("LABEL_{best}")),
                    score: scores[best],
                    sequence: is_pair.then(|| encoding.type_ids[t]),
                });
            }
            out.push(tokens);
        }
        Ok(out)
    }
}
