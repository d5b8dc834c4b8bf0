//! Masked-LM fine-tuning (domain adaptation) of a model with its masked-LM head, with BERT's
//! corruption as transformers' `DataCollatorForLanguageModeling` applies it:
//!
//! ```text
//! text ─ [CLS] tokens [SEP], cut to max_length
//!   ─ each token other than [CLS]/[SEP] is chosen with probability p (0.15); of the chosen,
//!     80% become [MASK], 10% a random token of the vocabulary, 10% stay; the chosen keep their
//!     original id as the target, the others -100          (seeded: a new draw every epoch for
//!                                                           training, one fixed draw for the
//!                                                           held-out texts)
//! encoder (B, T, C) ─ the rows of the chosen tokens (N, C) = S (N, B*T) @ h (B*T, C)
//!   ─ MLM head (transform, LayerNorm, decoder) ─ logits (N, V) ─ cross-entropy, the mean over
//!     the micro-batch's chosen tokens (what torch computes on (B*T, V) with -100 ignored)
//!   ─ backward: head, dh = S^T @ drows, encoder (per freeze policy)
//! then clip_grad_norm ─ AdamW with the linear schedule (training_loop.rs)
//! ```
//!
//! Each epoch reports the mean loss over the chosen tokens and, on the held-out texts, the loss
//! and the perplexity exp(loss). The decoder tied to the word embeddings trains only under
//! `Freeze::All` (as the embeddings do); the head's transform, LayerNorm and bias always train.

use crate::device::Device;
use crate::models::{EncoderInput, Gradients, RunMode};
use crate::ops::losses::cross_entropy_with_gradient;
use crate::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use crate::tensor::Tensor;
use crate::tokenizer::{Truncation, TruncationStrategy};
use crate::train::{train_validation_split, SplitMix64};
use crate::{Error, Result};

use super::pipeline::Pipeline;
use super::problem::ProblemType;
use super::train_classifier::TrainOptions;
use super::train_options::DEFAULT_MLM_PROBABILITY;
use super::training_loop::{
    self, check_run_options, widen_what_trains, EpochRun, MicroBatch, OptimizerLoop, RunState,
    StepsProgress,
};
use super::training_memory::{
    check_head_buffer, check_training_fits, shape_values, values_of, BatchShape,
};
use crate::models::bert::heads::check_logits_fit;

/// One text corrupted for a masked-LM step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrupted {
    /// (T) the ids the model reads.
    pub ids: Vec<u32>,
    /// (T) the original id of each chosen token, -100 for the others.
    pub labels: Vec<i64>,
}

/// BERT's corruption of `ids` (special tokens marked in `special`) with `rng`: each ordinary
/// token chosen with `probability`; a chosen one becomes `mask_id` (80%), a random id below
/// `vocab` (10%) or stays (10%).
pub fn corrupt(
    ids: &[u32],
    special: &[u32],
    probability: f32,
    mask_id: u32,
    vocab: usize,
    rng: &mut SplitMix64,
) -> Corrupted {
    let uniform = |rng: &mut SplitMix64| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let mut out = Corrupted {
        ids: ids.to_vec(),
        labels: vec![-100; ids.len()],
    };
    for t in 0..ids.len() {
        if special[t] != 0 || uniform(rng) >= probability as f64 {
            continue;
        }
        out.labels[t] = ids[t] as i64;
        let roll = uniform(rng);
        if roll < 0.8 {
            out.ids[t] = mask_id;
        } else if roll < 0.9 {
            out.ids[t] = rng.below(vocab) as u32;
        }
    }
    out
}

/// What one epoch of masked-LM training reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MaskedLmEpochProgress {
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's chosen tokens.
    pub loss: f32,
    /// Mean cross-entropy over the held-out texts' chosen tokens (one fixed draw).
    pub validation_loss: Option<f32>,
    /// exp(validation_loss).
    pub validation_perplexity: Option<f32>,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MaskedLmReport {
    pub train_texts: usize,
    pub validation_texts: usize,
    /// Held-out loss and perplexity before the first step (the model as loaded).
    pub initial_validation_loss: Option<f32>,
    pub initial_validation_perplexity: Option<f32>,
    pub freeze: String,
    pub epochs: Vec<MaskedLmEpochProgress>,
    pub trained_parameters: usize,
    pub optimizer_state_bytes: u64,
}

/// A masked-LM training run in progress.
pub struct MaskedLmTraining {
    /// the options, optimizer, training rows and the epoch under way
    run: RunState<LossSums>,
    probability: f32,
    mask_id: u32,
    /// (texts) the ids and special-token masks, cut to the max length
    texts: Vec<(Vec<u32>, Vec<u32>)>,
    validation: Vec<usize>,
    /// the held-out texts corrupted once
    validation_corrupted: Vec<Corrupted>,
    report: MaskedLmReport,
}

/// The sums of an epoch under way: the loss over its chosen tokens, their number.
#[derive(Clone, Copy, Default)]
pub(crate) struct LossSums {
    loss: f64,
    seen: usize,
}

/// S (N, R): row n picks row `picked[n]` of R rows.
fn selection(device: &Device, picked: &[usize], rows: usize) -> Result<Tensor> {
    let mut s = vec![0f32; picked.len() * rows];
    for (n, &r) in picked.iter().enumerate() {
        s[n * rows + r] = 1.0;
    }
    Tensor::from_vec(device, &[picked.len(), rows], s, "mlm.selection")
}

impl MaskedLmTraining {
    /// Prepares a run: checks the texts and the model's MLM head, tokenizes, splits, and draws
    /// the held-out corruption. `options.mlm_probability`: the share of tokens chosen
    /// (default BERT's 0.15).
    pub async fn new(
        pipeline: &mut Pipeline,
        texts: &[String],
        options: TrainOptions,
    ) -> Result<MaskedLmTraining> {
        const WHAT: &str = "train_masked_lm";
        if texts.is_empty() {
            return Err(Error::invalid(format!("{WHAT}: no texts")));
        }
        if let Some(e) = texts.iter().position(|t| t.trim().is_empty()) {
            return Err(Error::invalid(format!("{WHAT}: text {e} is empty")));
        }
        check_run_options(&options, &pipeline.model, WHAT)?;
        if options.classifier_input.is_some()
            || options.long_texts.is_some()
            || options.problem != ProblemType::SingleLabel
        {
            return Err(Error::invalid(format!(
                "{WHAT}: pooling, windows / truncate and the task are options of a classifier"
            )));
        }
        // in (0, 1): checked with the other options (check_run_options)
        let probability = options.mlm_probability.unwrap_or(DEFAULT_MLM_PROBABILITY);
        if pipeline.model.masked_lm.is_none() {
            return Err(Error::invalid(format!(
                "{WHAT}: the model has no masked-LM head (load a *ForMaskedLM or *ForPreTraining checkpoint)"
            )));
        }
        let mask_id = pipeline
            .tokenizer
            .token_to_id("[MASK]")
            .ok_or_else(|| Error::invalid(format!("{WHAT}: the vocabulary has no [MASK] token")))?;
        let truncation = Truncation {
            max_length: pipeline.read.max_length,
            stride: 0,
            strategy: TruncationStrategy::LongestFirst,
        };
        let mut encoded = Vec::with_capacity(texts.len());
        for text in texts {
            let e = pipeline
                .tokenizer
                .encode_with_truncation(text, Some(&truncation))?;
            encoded.push((e.ids, e.special_tokens_mask));
        }
        let split = train_validation_split(texts.len(), options.validation_fraction, options.seed)?;
        let vocab = pipeline.model.vocab_size();
        let mut rng = SplitMix64::new(options.seed ^ 0x6d6c_6d5f_7661_6c69);
        let validation_corrupted = split
            .validation
            .iter()
            .map(|&i| {
                let (ids, special) = &encoded[i];
                corrupt(ids, special, probability, mask_id, vocab, &mut rng)
            })
            .collect();
        let report = MaskedLmReport {
            train_texts: split.train.len(),
            validation_texts: split.validation.len(),
            initial_validation_loss: None,
            initial_validation_perplexity: None,
            freeze: options.freeze.to_string(),
            epochs: Vec::new(),
            trained_parameters: 0,
            optimizer_state_bytes: 0,
        };
        let freeze = options.freeze;
        let mut run = MaskedLmTraining {
            run: RunState::new(options, split.train)?,
            probability,
            mask_id,
            texts: encoded,
            validation: split.validation,
            validation_corrupted,
            report,
        };
        let batch = run.batch_shape(pipeline)?;
        check_training_fits(WHAT, &mut pipeline.model, freeze, batch)?;
        widen_what_trains(&mut pipeline.model, &run.run.options).await?;
        let initial = run.validation_loss(pipeline).await?;
        run.report.initial_validation_loss = initial;
        run.report.initial_validation_perplexity = initial.map(f32::exp);
        Ok(run)
    }

    pub fn report(&self) -> &MaskedLmReport {
        &self.report
    }

    /// The largest micro-batch of the run, for its memory estimate: `batch_size` texts padded
    /// to the longest, and the most chosen tokens n of any micro-batch of any epoch (exact: the
    /// batch order and the corruption are drawn from the run's seed; the held-out batches
    /// counted too). The head holds the selection (n, B*T), rows and their gradients (n, C),
    /// the logits, their gradient and the softmax (n, V). On a GPU the selection and the
    /// logits must each fit one storage binding: refused here otherwise.
    fn batch_shape(&self, pipeline: &Pipeline) -> Result<BatchShape> {
        let options = &self.run.options;
        let model = &pipeline.model;
        let vocab = model.vocab_size();
        let chosen = |c: &Corrupted| c.labels.iter().filter(|&&label| label >= 0).count();
        let tokens = self
            .texts
            .iter()
            .map(|(ids, _)| ids.len())
            .max()
            .unwrap_or(0);
        let mut sequences = 0;
        let mut positions = 0;
        for done in 0..options.epochs {
            let (epoch, batches) = OptimizerLoop::next_epoch(options, done, &self.run.train)?;
            for rows in batches {
                let n: usize = (rows.iter())
                    .map(|&i| chosen(&self.training_corruption(i, epoch, vocab)))
                    .sum();
                positions = positions.max(n);
                sequences = sequences.max(rows.len());
            }
        }
        for batch in self.validation_corrupted.chunks(options.batch_size.max(1)) {
            positions = positions.max(batch.iter().map(chosen).sum());
            sequences = sequences.max(batch.len());
        }
        let c = model.hidden_size();
        let device = pipeline.device();
        check_logits_fit(device, &[positions, vocab])?; // (n, V)
        check_head_buffer(device, "mlm.selection", &[positions, sequences * tokens])?; // (n, B*T)
        let head_parameters = model
            .masked_lm
            .as_ref()
            .map_or(0, |head| values_of(&head.parameters()));
        Ok(BatchShape {
            sequences,
            tokens,
            head_values: shape_values(&[positions, sequences * tokens + 6 * c + 3 * vocab]),
            head_parameters,
            cached_features: 0,
            // the held-out batches are of batch_size texts, counted in `sequences`
            validation_sequences: 0,
        })
    }

    /// The corruption of training text `i` in `epoch` (seeded by the run's seed, the epoch and
    /// the text: the same draw in every run with that seed).
    pub fn training_corruption(&self, i: usize, epoch: usize, vocab: usize) -> Corrupted {
        let mut rng = SplitMix64::new(
            self.run.options.seed
                ^ (epoch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
                ^ (i as u64 + 1).wrapping_mul(0x8CB9_2BA7_2F3D_8DD7),
        );
        let (ids, special) = &self.texts[i];
        corrupt(
            ids,
            special,
            self.probability,
            self.mask_id,
            vocab,
            &mut rng,
        )
    }

    /// Forward and backward of a batch of corrupted texts: gradients of `1 / micro_batches` x
    /// the mean loss of its chosen tokens into `grads` (when `backward`); returns (sum of the
    /// chosen tokens' losses, their number).
    pub async fn step(
        &self,
        pipeline: &Pipeline,
        batch: &[Corrupted],
        mode: &RunMode,
        micro_batches: usize,
        grads: Option<&mut Gradients>,
    ) -> Result<(f64, usize)> {
        let device = pipeline.device();
        let model = &pipeline.model;
        let head = model
            .masked_lm
            .as_ref()
            .ok_or_else(|| Error::invalid("the model has no masked-LM head"))?;
        let ids: Vec<Vec<u32>> = batch.iter().map(|c| c.ids.clone()).collect();
        let type_ids: Vec<Vec<u32>> = batch.iter().map(|c| vec![0; c.ids.len()]).collect();
        let input = EncoderInput::from_ids(device, &ids, &type_ids)?; // (B, T)
        let (b, t) = (input.batch, input.seq);
        let (mut picked, mut targets) = (Vec::new(), Vec::new());
        for (row, c) in batch.iter().enumerate() {
            for (position, &label) in c.labels.iter().enumerate() {
                if label >= 0 {
                    picked.push(row * t + position);
                    targets.push(label as u32);
                }
            }
        }
        if picked.is_empty() {
            return Ok((0.0, 0));
        }
        let mut out = model.encode(&input, mode)?;
        let c = out.hidden.shape()[2];
        out.hidden.reshape(&[b * t, c])?; // (B*T, C) while the rows are picked
        let s = selection(device, &picked, b * t)?; // (N, B*T)
        let mut rows = Tensor::uninit(device, &[picked.len(), c], "mlm.rows")?; // (N, C)
        let picking = matmul_forward(&mut rows, &s, &out.hidden, None, MatmulOptions::default());
        out.hidden.reshape(&[b, t, c])?; // (B, T, C)
        picking?;
        let word = &model.embeddings.word;
        let (logits, saved) = head.forward(&rows, word)?; // (N, V)
        let n = picked.len();
        let scale = OptimizerLoop::loss_scale(n, micro_batches);
        let targets = Tensor::from_vec(device, &[n], targets, "mlm.labels")?; // (N)
        let (losses, dlogits) = cross_entropy_with_gradient(&logits, &targets, scale)?; // (N), (N, V)
        if let Some(grads) = grads {
            let train_decoder = head.decoder.is_some() || mode.freeze.trains_embeddings();
            let encoder_trains = out.needs_gradient();
            let mut drows = Tensor::zeros(device, &[n, c], "mlm.d_rows")?; // (N, C)
            head.backward(
                encoder_trains.then_some(&mut drows),
                &dlogits,
                &rows,
                &saved,
                word,
                train_decoder,
                grads,
            )?;
            if encoder_trains {
                let mut dhidden = Tensor::zeros(device, &[b * t, c], "mlm.d_hidden")?; // (B*T, C)
                out.hidden.reshape(&[b * t, c])?;
                let scattering = matmul_backward(
                    None,
                    Some(&mut dhidden),
                    None,
                    &drows,
                    &s,
                    &out.hidden,
                    MatmulOptions::default(),
                );
                out.hidden.reshape(&[b, t, c])?;
                scattering?;
                dhidden.reshape(&[b, t, c])?; // (B, T, C)
                model.encode_backward(&out, &dhidden, grads)?;
            }
        }
        let losses = losses.to_vec().await?;
        Ok((losses.iter().map(|&x| x as f64).sum(), n))
    }

    /// One epoch: every training text once (a new corruption), then the held-out loss.
    pub async fn run_epoch(&mut self, pipeline: &mut Pipeline) -> Result<MaskedLmEpochProgress> {
        training_loop::run_epoch(self, pipeline).await
    }

    /// Up to `max_steps` (at least one) optimizer steps of the epoch under way (a new one when
    /// none is), then, after its last step, the held-out loss: the same computation as
    /// [`MaskedLmTraining::run_epoch`], cut between steps. On an error the epoch under way is
    /// dropped (the next call starts that epoch again).
    pub async fn run_steps(
        &mut self,
        pipeline: &mut Pipeline,
        max_steps: usize,
    ) -> Result<StepsProgress<MaskedLmEpochProgress>> {
        training_loop::run_steps(self, pipeline, max_steps).await
    }

    /// The mean loss of the held-out texts' chosen tokens (dropout off); None without them.
    pub async fn validation_loss(&self, pipeline: &Pipeline) -> Result<Option<f32>> {
        if self.validation.is_empty() {
            return Ok(None);
        }
        let (mut sum, mut count) = (0f64, 0usize);
        for batch in self
            .validation_corrupted
            .chunks(self.run.options.batch_size.max(1))
        {
            let (s, n) = self
                .step(pipeline, batch, &RunMode::inference(), 1, None)
                .await?;
            sum += s;
            count += n;
        }
        Ok((count > 0).then(|| (sum / count as f64) as f32))
    }

    pub fn finish(self) -> MaskedLmReport {
        self.report
    }
}

impl EpochRun for MaskedLmTraining {
    type Sums = LossSums;
    type Progress = MaskedLmEpochProgress;
    const WHAT: &'static str = "train_masked_lm";

    fn state(&mut self) -> &mut RunState<LossSums> {
        &mut self.run
    }

    /// The batch's texts with this epoch's corruption.
    async fn train_micro_batch(&self, batch: MicroBatch<'_>, sums: &mut LossSums) -> Result<f32> {
        let (pipeline, grads) = (batch.pipeline, batch.grads);
        let vocab = pipeline.model.vocab_size();
        let corrupted: Vec<Corrupted> = batch
            .rows
            .iter()
            .map(|&i| self.training_corruption(i, batch.epoch, vocab))
            .collect();
        let (sum, count) = self
            .step(
                pipeline,
                &corrupted,
                &batch.mode,
                batch.micro_batches,
                Some(grads),
            )
            .await?;
        sums.loss += sum;
        sums.seen += count;
        Ok((sum / count.max(1) as f64) as f32)
    }

    fn record_step(&mut self, trained_parameters: usize) {
        self.report.trained_parameters = trained_parameters;
    }

    async fn end_epoch(
        &mut self,
        pipeline: &Pipeline,
        epoch: usize,
        sums: LossSums,
    ) -> Result<MaskedLmEpochProgress> {
        let validation_loss = self.validation_loss(pipeline).await?;
        let progress = MaskedLmEpochProgress {
            epoch,
            loss: (sums.loss / sums.seen.max(1) as f64) as f32,
            validation_loss,
            validation_perplexity: validation_loss.map(f32::exp),
        };
        self.report.optimizer_state_bytes = self.run.optimizer.state_bytes();
        self.report.epochs.push(progress.clone());
        Ok(progress)
    }
}

impl Pipeline {
    /// Masked-LM fine-tuning on `texts`; `on_progress` sees every epoch.
    pub async fn train_masked_lm(
        &mut self,
        texts: &[String],
        options: TrainOptions,
        mut on_progress: impl FnMut(&MaskedLmEpochProgress),
    ) -> Result<MaskedLmReport> {
        let epochs = options.epochs;
        let mut run = MaskedLmTraining::new(self, texts, options).await?;
        for _ in 0..epochs {
            let progress = run.run_epoch(self).await?;
            on_progress(&progress);
        }
        Ok(run.finish())
    }
}
