//! Next-sentence prediction: does text `b` follow text `a`? BERT's pre-training task, read
//! with the checkpoint's own head (`BertForPreTraining` / `BertForNextSentencePrediction`):
//!
//! ```text
//! [CLS] a [SEP] b [SEP] ─ encoder ─ hidden (B, T, C) ─ pooler: tanh(dense(h[:, 0])) (B, C)
//!                       ─ seq_relationship ─ logits (B, 2) ─ softmax ─ [p_is_next, p_not_next]
//! ```
//!
//! Index 0 is "b continues a", index 1 "b is a random sentence" (transformers'
//! `BertForNextSentencePrediction` labels). A pair longer than the model is cut with
//! `longest_first` under `LongTexts::Truncate` and refused otherwise (see `windows.rs`).

use crate::models::RunMode;
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::classify::softmax;
use super::pipeline::Pipeline;
use super::text_pairs::TaskText;

/// The prediction for one pair.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct NextSentence {
    /// The probability that the second text follows the first (`scores[0]`).
    pub is_next: f32,
    /// `[p_is_next, p_not_next]`, the softmax of the logits.
    pub scores: Vec<f32>,
    /// `[is_next, not_next]` logits of the head.
    pub logits: Vec<f32>,
}

impl Pipeline {
    /// Logits `(pairs, 2)` of the next-sentence head, `[is_next, not_next]` per pair.
    pub async fn next_sentence_logits<S: TaskText>(&self, pairs: &[S]) -> Result<Vec<f32>> {
        let head = self.model.next_sentence.as_ref().ok_or_else(|| {
            Error::invalid(format!(
                "the model ({}) has no next-sentence head: it needs cls.seq_relationship.weight \
                 and .bias and the pooler (bert.pooler.dense), as BertForPreTraining and \
                 BertForNextSentencePrediction checkpoints have{}",
                self.model.architecture(),
                match self.model.family {
                    crate::models::Family::DistilBert => {
                        "; DistilBERT was trained without next-sentence prediction"
                    }
                    crate::models::Family::Bert => "",
                }
            ))
        })?;
        let pooler = self.model.pooler.as_ref().ok_or_else(|| {
            Error::invalid("the next-sentence head reads the pooler, and the model has none")
        })?;
        if let Some(index) = pairs.iter().position(|p| p.pair().is_none()) {
            return Err(Error::invalid(format!(
                "next-sentence: item {index} is a single text, expected a pair (a, b)"
            )));
        }
        let windows = self.windows(pairs)?;
        let mut pending: Vec<(Vec<usize>, Tensor)> = Vec::new();
        self.encode_windows_in_batches(&windows, &RunMode::inference(), |batch| {
            let pooled = pooler.forward(&batch.output.hidden)?.pooled; // (B, C)
            pending.push((batch.windows.clone(), head.forward(&pooled)?)); // (B, 2)
            Ok(())
        })
        .await?;
        let mut logits = vec![0f32; windows.len() * 2];
        for (rows, values) in pending {
            let values = values.to_vec().await?; // (B, 2)
            for (i, &w) in rows.iter().enumerate() {
                // one window per pair: window w is pair windows[w].text
                let pair = windows[w].text;
                logits[pair * 2..pair * 2 + 2].copy_from_slice(&values[i * 2..i * 2 + 2]);
            }
        }
        Ok(logits)
    }

    /// For each pair `(a, b)`, the probability that `b` follows `a`.
    pub async fn next_sentence<S: TaskText>(&self, pairs: &[S]) -> Result<Vec<NextSentence>> {
        let logits = self.next_sentence_logits(pairs).await?;
        logits
            .chunks(2)
            .map(|row| {
                if row.iter().any(|x| !x.is_finite()) {
                    return Err(Error::invalid(
                        "next-sentence: the model produced non-finite logits",
                    ));
                }
                let scores = softmax(row);
                Ok(NextSentence {
                    is_next: scores[0],
                    scores,
                    logits: row.to_vec(),
                })
            })
            .collect()
    }
}
