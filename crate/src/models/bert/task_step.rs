//! One forward and backward through the encoder and one task head, with the task's loss, as
//! transformers' `BertFor*` / `DistilBertFor*` compute it (`reduction = "mean"`):
//!
//! | task                     | logits      | targets                          | loss                  |
//! |--------------------------|-------------|----------------------------------|-----------------------|
//! | MaskedLm                 | (B, T, V)   | classes (B*T), -100 = ignored    | cross-entropy         |
//! | NextSentence             | (B, 2)      | classes (B)                      | cross-entropy         |
//! | PreTraining              | both        | both                             | sum of the two        |
//! | SequenceClassification   | (B, L)      | classes (B) / values (B*L)       | CE / BCE / MSE (L=1)  |
//! | TokenClassification      | (B, T, L)   | classes (B*T), -100 = ignored    | cross-entropy         |
//!
//! Like transformers' `problem_type` inference: class targets give cross-entropy, value
//! targets give MSE when there is one label (regression) and binary cross-entropy on logits
//! otherwise (multi-label). Every loss is reduced on the device (no read-back) by a
//! matmul with a ones vector: loss (1) = scale * sum(per-row losses).

use crate::ops::losses::{
    bce_with_logits_backward, bce_with_logits_forward, cross_entropy_with_gradient, mse_backward,
    mse_forward, IGNORE_INDEX,
};
use crate::ops::matmul::{matmul_forward, MatmulOptions};
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::encoder_input::{EncoderInput, Freeze, RunMode};
use super::heads::{
    sequence_chain_backward, sequence_chain_forward, MaskedLmSaved, Pooler, PoolerSaved,
    SequenceChainSaved, SequenceClassifier, TokenClassifierSaved,
};
use super::{BertModel, EncoderOutput};
use crate::models::gradients::Gradients;

/// Which head a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    MaskedLm,
    NextSentence,
    PreTraining,
    SequenceClassification,
    TokenClassification,
}

/// The labels of a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// A class per row (B) or per token (B*T); -100 = ignored (MLM, NER padding).
    Classes(Vec<i64>),
    /// Float targets: regression (B) with one label, multi-label 0/1 (B*L) otherwise.
    Values(Vec<f32>),
    /// BertForPreTraining: MLM labels (B*T) and next-sentence labels (B).
    PreTraining {
        masked_lm: Vec<i64>,
        next_sentence: Vec<i64>,
    },
}

/// The forward of a task step and what its backward needs.
pub struct TaskOutput {
    pub task: Task,
    pub encoder: EncoderOutput,
    /// The task's logits (see the module table); for PreTraining the MLM logits.
    pub logits: Tensor,
    /// PreTraining: the NSP logits (B, 2).
    pub next_sentence_logits: Option<Tensor>,
    /// Next-sentence prediction: the pooler's state.
    pooler: Option<PoolerSaved>,
    masked_lm: Option<MaskedLmSaved>,
    /// Sequence classification: the chain's state (with the pooler's, for BERT).
    sequence: Option<SequenceChainSaved>,
    token: Option<TokenClassifierSaved>,
}

impl std::fmt::Debug for TaskOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TaskOutput {{ task: {:?}, logits: {:?}, encoder: {:?} }}",
            self.task, self.logits, self.encoder
        )
    }
}

impl TaskOutput {
    /// BERT's pooled output (B, C) when the task used the pooler.
    pub fn pooled(&self) -> Option<&Tensor> {
        let sequence_pooler = self.sequence.as_ref().and_then(|s| s.pooler.as_ref());
        self.pooler.as_ref().or(sequence_pooler).map(|p| &p.pooled)
    }
}

impl BertModel {
    /// The pooler a sequence classifier reads through: BERT's (which it must have), none for
    /// DistilBERT (its head has its own pre_classifier).
    fn chain_pooler(&self, head: &SequenceClassifier) -> Result<Option<&Pooler>> {
        match head {
            SequenceClassifier::Bert { .. } => {
                Ok(Some(self.pooler.as_ref().ok_or_else(|| missing("pooler"))?))
            }
            SequenceClassifier::DistilBert { .. } => Ok(None),
        }
    }
}

fn missing(head: &str) -> Error {
    Error::invalid(format!(
        "the model has no {head} head (load a checkpoint that has one or add it)"
    ))
}

/// The cross-entropy targets as u32 (ignored = IGNORE_INDEX), checked against `classes`.
fn class_targets(labels: &[i64], rows: usize, classes: usize, what: &str) -> Result<Vec<u32>> {
    if labels.len() != rows {
        return Err(Error::shape(format!("{what} labels"), rows, labels.len()));
    }
    labels
        .iter()
        .enumerate()
        .map(|(i, &l)| match l {
            -100 => Ok(IGNORE_INDEX),
            l if l >= 0 && (l as usize) < classes => Ok(l as u32),
            l => Err(Error::invalid(format!(
                "{what} label {l} at {i} is outside 0..{classes} (or -100 to ignore)"
            ))),
        })
        .collect()
}

/// loss (1, 1) (+)= scale * sum(values), on the values' device (a (1, N) x (N, 1) matmul).
fn scaled_sum(loss: &mut Tensor, values: &mut Tensor, scale: f32, accumulate: bool) -> Result<()> {
    let device = values.device();
    let shape = values.shape().to_vec();
    let n = values.numel();
    let ones = Tensor::from_vec(&device, &[n, 1], vec![1.0; n], "ones")?; // (N, 1)
    values.reshape(&[1, n])?;
    let result = matmul_forward(
        loss,
        values,
        &ones,
        None,
        MatmulOptions {
            alpha: scale,
            accumulate,
            ..Default::default()
        },
    );
    values.reshape(&shape)?;
    result
}

/// Cross-entropy of logits (N, V) against targets: adds the mean loss into `loss` (1, 1) and
/// returns dlogits (N, V).
fn cross_entropy(
    loss: &mut Tensor,
    logits: &Tensor,
    labels: &[i64],
    what: &str,
    accumulate: bool,
) -> Result<Tensor> {
    let device = logits.device();
    let (n, v) = (logits.shape()[0], logits.shape()[1]);
    let targets = class_targets(labels, n, v, what)?;
    let count = targets.iter().filter(|&&t| t != IGNORE_INDEX).count();
    // torch: the mean over the non-ignored rows (NaN when there are none; here 0)
    let scale = if count == 0 { 0.0 } else { 1.0 / count as f32 };
    let targets = Tensor::from_vec(&device, &[n], targets, "labels")?; // (N)
    let (mut losses, dlogits) = cross_entropy_with_gradient(logits, &targets, scale)?; // (N), (N, V)
    scaled_sum(loss, &mut losses, scale, accumulate)?;
    Ok(dlogits)
}

/// MSE (one label) or BCE-with-logits (several) of logits (B, L) against values (B*L).
fn value_loss(loss: &mut Tensor, logits: &Tensor, values: &[f32]) -> Result<Tensor> {
    let device = logits.device();
    if values.len() != logits.numel() {
        return Err(Error::shape("value targets", logits.shape(), values.len()));
    }
    let targets = Tensor::from_vec(&device, logits.shape(), values.to_vec(), "targets")?;
    let mut losses = Tensor::uninit(&device, logits.shape(), "losses")?;
    let mut dlogits = Tensor::zeros(&device, logits.shape(), "d_logits")?;
    let scale = 1.0 / values.len().max(1) as f32;
    if logits.shape()[1] == 1 {
        mse_forward(&mut losses, logits, &targets)?;
        mse_backward(&mut dlogits, logits, &targets, scale)?;
    } else {
        bce_with_logits_forward(&mut losses, logits, &targets)?;
        bce_with_logits_backward(&mut dlogits, logits, &targets, scale)?;
    }
    scaled_sum(loss, &mut losses, scale, false)?;
    Ok(dlogits)
}

/// A (B, T, X) tensor seen as (B*T, X) for the duration of `f`.
fn with_rows<R>(t: &mut Tensor, f: impl FnOnce(&mut Tensor) -> Result<R>) -> Result<R> {
    let shape = t.shape().to_vec();
    let last = *shape.last().unwrap_or(&1);
    t.reshape(&[t.numel() / last.max(1), last])?;
    let result = f(t);
    t.reshape(&shape)?;
    result
}

impl BertModel {
    /// Encoder + the task's head: logits (and what the backward needs when `mode.backward`).
    pub fn forward_task(
        &self,
        input: &EncoderInput,
        task: Task,
        mode: &RunMode,
    ) -> Result<TaskOutput> {
        let encoder = self.encode(input, mode)?;
        let h = &encoder.hidden; // (B, T, C)
        let (mut pooler, mut masked_lm, mut sequence, mut token) = (None, None, None, None);
        let mut next_sentence_logits = None;
        let word = &self.embeddings.word;
        let logits = match task {
            Task::MaskedLm | Task::PreTraining => {
                let head = self
                    .masked_lm
                    .as_ref()
                    .ok_or_else(|| missing("masked-LM"))?;
                let (logits, saved) = head.forward(h, word)?; // (B, T, V)
                masked_lm = Some(saved);
                if task == Task::PreTraining {
                    let (logits, p) = self.next_sentence_forward(h)?;
                    next_sentence_logits = Some(logits);
                    pooler = Some(p);
                }
                logits
            }
            Task::NextSentence => {
                let (logits, p) = self.next_sentence_forward(h)?;
                pooler = Some(p);
                logits
            }
            Task::SequenceClassification => {
                let head = self
                    .sequence_classifier
                    .as_ref()
                    .ok_or_else(|| missing("sequence-classification"))?;
                let (logits, saved) = sequence_chain_forward(
                    self.chain_pooler(head)?,
                    head,
                    h,
                    mode.train,
                    mode.seed,
                )?;
                sequence = Some(saved);
                logits // (B, L)
            }
            Task::TokenClassification => {
                let head = self
                    .token_classifier
                    .as_ref()
                    .ok_or_else(|| missing("token-classification"))?;
                let (logits, saved) = head.forward(h, mode.train, mode.seed)?; // (B, T, L)
                token = Some(saved);
                logits
            }
        };
        Ok(TaskOutput {
            task,
            encoder,
            logits,
            next_sentence_logits,
            pooler,
            masked_lm,
            sequence,
            token,
        })
    }

    /// The loss (1) of the step's targets, and every trained parameter's gradient added into
    /// `grads` (the head's, the pooler's, and the encoder's down to `mode.freeze`).
    pub fn backward_task(
        &self,
        out: &mut TaskOutput,
        targets: &Targets,
        grads: &mut Gradients,
    ) -> Result<Tensor> {
        let device = self.device().clone();
        let mode = out.encoder.mode;
        if !mode.backward {
            return Err(Error::invalid(
                "backward_task: the forward ran for inference (RunMode.backward = false)",
            ));
        }
        let mut loss = Tensor::zeros(&device, &[1, 1], "loss")?; // (1, 1)
        let h = &out.encoder.hidden; // (B, T, C)
        let mut dhidden = if out.encoder.needs_gradient() {
            Some(Tensor::zeros(&device, h.shape(), "d_hidden")?) // (B, T, C)
        } else {
            None
        };
        match (out.task, targets) {
            (Task::MaskedLm, Targets::Classes(labels))
            | (
                Task::PreTraining,
                Targets::PreTraining {
                    masked_lm: labels, ..
                },
            ) => {
                let head = self
                    .masked_lm
                    .as_ref()
                    .ok_or_else(|| missing("masked-LM"))?;
                let saved = out.masked_lm.as_ref().ok_or_else(|| missing("masked-LM"))?;
                // an untied decoder is a head parameter; a tied one is the word embeddings,
                // which only `Freeze::All` trains
                let train_decoder = head.decoder.is_some() || mode.freeze.trains_embeddings();
                let mut dlogits = with_rows(&mut out.logits, |l| {
                    cross_entropy(&mut loss, l, labels, "masked-LM", false)
                })?;
                dlogits.reshape(out.logits.shape())?; // (B, T, V)
                head.backward(
                    dhidden.as_mut(),
                    &dlogits,
                    h,
                    saved,
                    &self.embeddings.word,
                    train_decoder,
                    grads,
                )?;
                if let Targets::PreTraining { next_sentence, .. } = targets {
                    let logits = out
                        .next_sentence_logits
                        .as_ref()
                        .ok_or_else(|| missing("next-sentence"))?;
                    let dnsp =
                        cross_entropy(&mut loss, logits, next_sentence, "next-sentence", true)?;
                    self.pooled_head_backward(out, &dnsp, dhidden.as_mut(), grads)?;
                }
            }
            (Task::NextSentence, Targets::Classes(labels)) => {
                let dnsp = cross_entropy(&mut loss, &out.logits, labels, "next-sentence", false)?;
                self.pooled_head_backward(out, &dnsp, dhidden.as_mut(), grads)?;
            }
            (Task::SequenceClassification, targets) => {
                let head = self
                    .sequence_classifier
                    .as_ref()
                    .ok_or_else(|| missing("sequence-classification"))?;
                let saved = out.sequence.as_ref().ok_or_else(|| missing("classifier"))?;
                let dlogits = match targets {
                    Targets::Classes(labels) => {
                        cross_entropy(&mut loss, &out.logits, labels, "classification", false)?
                    }
                    Targets::Values(values) => value_loss(&mut loss, &out.logits, values)?,
                    Targets::PreTraining { .. } => {
                        return Err(Error::invalid("pre-training targets for a classifier"))
                    }
                };
                sequence_chain_backward(
                    self.chain_pooler(head)?,
                    head,
                    dhidden.as_mut(),
                    &dlogits,
                    h,
                    saved,
                    mode.train,
                    mode.seed,
                    mode.freeze != Freeze::Head,
                    grads,
                )?;
            }
            (Task::TokenClassification, Targets::Classes(labels)) => {
                let head = self
                    .token_classifier
                    .as_ref()
                    .ok_or_else(|| missing("token-classification"))?;
                let saved = out
                    .token
                    .as_ref()
                    .ok_or_else(|| missing("token classifier"))?;
                let mut dlogits = with_rows(&mut out.logits, |l| {
                    cross_entropy(&mut loss, l, labels, "token", false)
                })?;
                dlogits.reshape(out.logits.shape())?; // (B, T, L)
                head.backward(
                    dhidden.as_mut(),
                    &dlogits,
                    h,
                    saved,
                    mode.train,
                    mode.seed,
                    grads,
                )?;
            }
            (task, targets) => {
                return Err(Error::invalid(format!(
                    "targets {} do not fit the task {task:?}",
                    match targets {
                        Targets::Classes(_) => "Classes",
                        Targets::Values(_) => "Values",
                        Targets::PreTraining { .. } => "PreTraining",
                    }
                )))
            }
        }
        if let Some(dhidden) = &dhidden {
            self.encode_backward(&out.encoder, dhidden, grads)?;
        }
        loss.reshape(&[1])?;
        Ok(loss)
    }

    /// NSP logits = seq_relationship(pooler(h)): gradients of both, dhidden at [CLS].
    /// Pooler + next-sentence head on the encoder output h (B, T, C): logits (B, 2) and what the
    /// pooler keeps for the backward.
    fn next_sentence_forward(&self, h: &Tensor) -> Result<(Tensor, PoolerSaved)> {
        let nsp = self
            .next_sentence
            .as_ref()
            .ok_or_else(|| missing("next-sentence"))?;
        let p = self
            .pooler
            .as_ref()
            .ok_or_else(|| missing("pooler"))?
            .forward(h)?;
        Ok((nsp.forward(&p.pooled)?, p))
    }

    fn pooled_head_backward(
        &self,
        out: &TaskOutput,
        dlogits: &Tensor,
        dhidden: Option<&mut Tensor>,
        grads: &mut Gradients,
    ) -> Result<()> {
        let nsp = self
            .next_sentence
            .as_ref()
            .ok_or_else(|| missing("next-sentence"))?;
        let pooler = self.pooler.as_ref().ok_or_else(|| missing("pooler"))?;
        let saved = out.pooler.as_ref().ok_or_else(|| missing("pooler"))?;
        let mut dpooled = Tensor::zeros(&dlogits.device(), saved.pooled.shape(), "d_pooled")?;
        nsp.backward(&mut dpooled, dlogits, &saved.pooled, grads)?;
        let train_pooler = out.encoder.mode.freeze != Freeze::Head;
        pooler.backward(dhidden, &dpooled, saved, train_pooler.then_some(grads))
    }
}
