//! Classification of texts with the model's sequence classifier (a fine-tuned checkpoint, or
//! one trained with `train_classifier`): the logits of each text's windows are averaged, then
//! turned into probabilities by a softmax. A pair of texts is read as one window
//! (`[CLS] a [SEP] b [SEP]`, cut with `longest_first` or refused when too long). A regression
//! head gives its raw output as the score; a multi-label head a sigmoid per label, and `labels`
//! lists those at 0.5 or more (`Pipeline::problem_type`).

use crate::models::RunMode;
use crate::train::metrics::argmax;
use crate::{Error, Result};

use super::classifier::head_forward;
use super::pipeline::{mask_tensor, Pipeline};
use super::problem::ProblemType;
use super::text_pairs::TaskText;
use super::windows::average_per_text;

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Classification {
    /// The most likely label.
    pub label: String,
    /// Its probability (the raw output for a one-label regression head).
    pub score: f32,
    /// Every label's probability, in label order.
    pub scores: Vec<f32>,
    /// Multi-label classification: every label whose probability is 0.5 or more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// Probabilities of one row of logits: softmax in f64 (shared by the tasks that report scores).
pub(super) fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exp: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.iter().map(|&e| (e / sum) as f32).collect()
}

impl Pipeline {
    /// The labels of the model's classifier (config id2label).
    pub fn labels(&self) -> Vec<String> {
        self.model.config.labels().id2label.clone()
    }

    /// Logits `(texts, labels)` of the classifier, windows averaged (a pair is one window).
    pub async fn classifier_logits<S: TaskText>(&self, texts: &[S]) -> Result<Vec<f32>> {
        let head = self.model.sequence_classifier.as_ref().ok_or_else(|| {
            Error::invalid(
                "the model has no sequence classifier: load a fine-tuned classifier or train one",
            )
        })?;
        let labels = head.num_labels();
        let windows = self.windows(texts)?;
        let device = self.device().clone();
        let mut pending = Vec::new();
        self.encode_windows_in_batches(&windows, &RunMode::inference(), |batch| {
            let mask = mask_tensor(&device, &batch.input)?;
            let features = self
                .classifier_input
                .features(&batch.output.hidden, &mask)?;
            let (logits, _) = head_forward(&self.model, self.classifier_input, features, false, 0)?;
            pending.push((batch.windows.clone(), logits));
            Ok(())
        })
        .await?;
        let mut per_window = vec![0f32; windows.len() * labels];
        for (rows, logits) in pending {
            let values = logits.to_vec().await?;
            for (i, &w) in rows.iter().enumerate() {
                per_window[w * labels..(w + 1) * labels]
                    .copy_from_slice(&values[i * labels..(i + 1) * labels]);
            }
        }
        average_per_text(&windows, &per_window, labels, texts.len())
    }

    /// The label and probabilities of each text or pair of texts.
    pub async fn classify<S: TaskText>(&self, texts: &[S]) -> Result<Vec<Classification>> {
        let logits = self.classifier_logits(texts).await?;
        let names = self.labels();
        let labels = names.len().max(1);
        logits
            .chunks(labels)
            .map(|row| {
                if row.iter().any(|x| !x.is_finite()) {
                    return Err(Error::invalid(
                        "classify: the model produced non-finite logits",
                    ));
                }
                let multi_label = self.problem_type == ProblemType::MultiLabel;
                let scores = if labels == 1 && !multi_label {
                    row.to_vec()
                } else if multi_label {
                    row.iter()
                        .map(|&x| (1.0 / (1.0 + (-x as f64).exp())) as f32)
                        .collect()
                } else {
                    softmax(row)
                };
                let name = |i: usize| {
                    names
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("LABEL_{i}"))
                };
                let best = argmax(&scores);
                Ok(Classification {
                    label: name(best),
                    score: scores[best],
                    labels: multi_label.then(|| {
                        (0..scores.len())
                            .filter(|&i| scores[i] >= 0.5)
                            .map(name)
                            .collect()
                    }),
                    scores,
                })
            })
            .collect()
    }
}
