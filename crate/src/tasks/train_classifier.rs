//! Fine-tuning a sequence classifier on labelled examples, in the three ways the course
//! teaches (`Freeze::Head` / `Top(k)` / `All`):
//!
//! ```text
//! examples ─ split (train / validation) ─ tokens (first window of max_length)
//! Head:    features of every example once (encoder in inference) ─ FeatureCache
//!          each step: features[batch] ─ head ─ cross-entropy ─ head backward
//! Top/All: each step: encoder (dropout, activations of the trained layers) ─ features ─ head
//!          ─ cross-entropy ─ head backward ─ dfeatures ─ dhidden ─ encoder backward
//! then:    clip_grad_norm ─ AdamW (decay groups of the HF Trainer) with the linear schedule
//! ```
//!
//! Micro-batches accumulate into one step's gradients (`accumulation_steps`). A NaN or infinite
//! loss stops the run with an error naming the epoch and step. [`ClassifierTraining`] runs one
//! epoch per call, so the browser can show progress and stop between epochs;
//! [`Pipeline::train_classifier`] runs them all with a callback.

use crate::models::{EncoderInput, Freeze, Gradients, RunMode};
use crate::ops::losses::{cross_entropy_backward, cross_entropy_forward, IGNORE_INDEX};
use crate::ops::optimizer::AdamWConfig;
use crate::tensor::Tensor;
use crate::tokenizer::Encoding;
use crate::train::{
    check_finite_loss, clip_gradients, correct_predictions, epoch_batches, train_validation_split,
    AdamW, FeatureCache, GradientAccumulation, LinearSchedule, ParameterUpdate,
};
use crate::{Error, Result};

use super::classifier::{head_backward, head_forward, ClassifierInput};
use super::examples::{label_classes, Example};
use super::pipeline::{mask_tensor, Pipeline};
use super::windows::{encode_windows, LongTexts};

#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub freeze: Freeze,
    pub epochs: usize,
    /// Peak learning rate of the linear schedule.
    pub learning_rate: f32,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub accumulation_steps: usize,
    /// Share of the examples held out for validation (0 = none).
    pub validation_fraction: f32,
    /// Seeds the split, the batch order, the new head and dropout.
    pub seed: u64,
    /// AdamW weight decay (not on biases and LayerNorm parameters).
    pub weight_decay: f32,
    /// Share of the optimizer steps spent warming the learning rate up.
    pub warmup_ratio: f32,
    /// Global-norm gradient clipping (`None`: off). The HF Trainer's default is 1.
    pub max_grad_norm: Option<f32>,
    /// Features the classifier reads; `None`: mean-pooled for sentence-embedding models
    /// (sentence-transformers' `modules.json` present), the [CLS] token otherwise.
    pub classifier_input: Option<ClassifierInput>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            freeze: Freeze::Head,
            epochs: 3,
            learning_rate: 1e-3,
            batch_size: 32,
            accumulation_steps: 1,
            validation_fraction: 0.1,
            seed: 42,
            weight_decay: 0.01,
            warmup_ratio: 0.0,
            max_grad_norm: Some(1.0),
            classifier_input: None,
        }
    }
}

/// What one epoch reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EpochProgress {
    /// 1 for the first epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's examples.
    pub loss: f32,
    /// Training accuracy during the epoch (dropout on, weights changing).
    pub accuracy: f32,
    /// Accuracy on the held-out examples after the epoch (None without validation).
    pub validation_accuracy: Option<f32>,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrainReport {
    pub labels: Vec<String>,
    pub train_examples: usize,
    pub validation_examples: usize,
    pub freeze: String,
    pub classifier_input: String,
    pub epochs: Vec<EpochProgress>,
    /// Parameter values that received gradients.
    pub trained_parameters: usize,
    /// Bytes of the AdamW moments.
    pub optimizer_state_bytes: u64,
    /// Bytes of the cached features (head-only training).
    pub feature_cache_bytes: u64,
}

/// A training run in progress: the data, the optimizer and where it is.
pub struct ClassifierTraining {
    options: TrainOptions,
    labels: Vec<String>,
    classes: Vec<u32>,
    train: Vec<usize>,
    validation: Vec<usize>,
    /// (N) each example's first window (Top/All; empty for head-only)
    encodings: Vec<Encoding>,
    /// (N, C) each example's features (head-only)
    cache: Option<FeatureCache>,
    optimizer: AdamW,
    schedule: LinearSchedule,
    accumulation: GradientAccumulation,
    epochs_done: usize,
    report: TrainReport,
}

/// Cross-entropy of logits (B, L) against classes: per-row losses (host) and dlogits (B, L)
/// scaled by `scale` (the gradient of the step's mean loss).
async fn cross_entropy(logits: &Tensor, classes: &[u32], scale: f32) -> Result<(Vec<f32>, Tensor)> {
    let device = logits.device();
    let (b, l) = (logits.shape()[0], logits.shape()[1]);
    let targets = Tensor::from_vec(&device, &[b], classes.to_vec(), "labels")?;
    let mut losses = Tensor::uninit(&device, &[b], "losses")?;
    let mut logsumexp = Tensor::uninit(&device, &[b], "logsumexp")?;
    cross_entropy_forward(&mut losses, &mut logsumexp, logits, &targets, IGNORE_INDEX)?;
    let mut dlogits = Tensor::zeros(&device, &[b, l], "d_logits")?;
    cross_entropy_backward(
        &mut dlogits,
        logits,
        &logsumexp,
        &targets,
        IGNORE_INDEX,
        scale,
    )?;
    Ok((losses.to_vec().await?, dlogits))
}

impl ClassifierTraining {
    /// Prepares a run: splits the examples, gives the model a new classifier for their labels,
    /// tokenizes, and for head-only training computes every example's features once.
    pub async fn new(
        pipeline: &mut Pipeline,
        examples: &[Example],
        options: TrainOptions,
    ) -> Result<ClassifierTraining> {
        if examples.is_empty() {
            return Err(Error::invalid("train_classifier: no examples"));
        }
        if options.epochs == 0 || options.batch_size == 0 {
            return Err(Error::invalid(
                "train_classifier: epochs and batch size must be at least 1",
            ));
        }
        if let Some(e) = examples.iter().position(|e| e.text.trim().is_empty()) {
            return Err(Error::invalid(format!(
                "train_classifier: example {e} has no text"
            )));
        }
        let (labels, classes) = label_classes(examples);
        if labels.len() < 2 {
            return Err(Error::invalid(format!(
                "train_classifier: the examples have {} label(s) {labels:?}; a classifier needs at least 2",
                labels.len()
            )));
        }
        let layers = pipeline.model.num_layers();
        if let Freeze::Top(k) = options.freeze {
            if k == 0 || k > layers {
                return Err(Error::invalid(format!(
                    "freeze policy top:{k}: the model has {layers} layers (use 1..={layers})"
                )));
            }
        }
        let split =
            train_validation_split(examples.len(), options.validation_fraction, options.seed)?;
        let input = options
            .classifier_input
            .unwrap_or(if pipeline.sentence_embedding_model {
                ClassifierInput::MeanPooled
            } else {
                ClassifierInput::ClsToken
            });
        pipeline.classifier_input = input;
        pipeline
            .model
            .add_sequence_classifier(&labels, options.seed)?;

        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        let windows = encode_windows(
            &pipeline.tokenizer,
            &texts,
            pipeline.read.max_length,
            LongTexts::Truncate,
        )?;
        let encodings: Vec<Encoding> = windows.into_iter().map(|w| w.encoding).collect();
        let (cache, encodings) = if options.freeze == Freeze::Head {
            (
                Some(feature_cache(pipeline, &encodings, input).await?),
                Vec::new(),
            )
        } else {
            (None, encodings)
        };

        let batches_per_epoch = split.train.len().div_ceil(options.batch_size);
        let accumulation = GradientAccumulation::new(options.accumulation_steps)?;
        let steps_per_epoch = accumulation.steps(batches_per_epoch).len() as u64;
        let total_steps = steps_per_epoch * options.epochs as u64;
        if !(0.0..=1.0).contains(&options.warmup_ratio) {
            return Err(Error::invalid(format!(
                "warmup ratio must be in [0, 1], found {}",
                options.warmup_ratio
            )));
        }
        let warmup = (total_steps as f64 * options.warmup_ratio as f64).ceil() as u64;
        let schedule = LinearSchedule::new(options.learning_rate, warmup, total_steps)?;
        let optimizer = AdamW::new(AdamWConfig {
            lr: options.learning_rate,
            weight_decay: options.weight_decay,
            ..AdamWConfig::default()
        });
        let report = TrainReport {
            labels: labels.clone(),
            train_examples: split.train.len(),
            validation_examples: split.validation.len(),
            freeze: options.freeze.to_string(),
            classifier_input: input.name().to_string(),
            epochs: Vec::new(),
            trained_parameters: 0,
            optimizer_state_bytes: 0,
            feature_cache_bytes: cache.as_ref().map_or(0, FeatureCache::bytes),
        };
        Ok(ClassifierTraining {
            options,
            labels,
            classes,
            train: split.train,
            validation: split.validation,
            encodings,
            cache,
            optimizer,
            schedule,
            accumulation,
            epochs_done: 0,
            report,
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    pub fn report(&self) -> &TrainReport {
        &self.report
    }

    /// Logits (B, L) of the examples `rows`, the head's saved state, the encoder output (when
    /// the encoder ran) and the input mask.
    fn forward(&self, pipeline: &Pipeline, rows: &[usize], mode: &RunMode) -> Result<BatchForward> {
        let device = pipeline.device();
        let input = pipeline.classifier_input;
        match &self.cache {
            Some(cache) => {
                let features = cache.gather(device, rows, "features")?; // (B, C)
                let (logits, head) =
                    head_forward(&pipeline.model, input, features, mode.train, mode.seed)?;
                Ok(BatchForward {
                    logits,
                    head,
                    encoder: None,
                })
            }
            None => {
                let encodings: Vec<Encoding> =
                    rows.iter().map(|&i| self.encodings[i].clone()).collect();
                let batch = EncoderInput::from_encodings(device, &encodings)?;
                let out = pipeline.model.encode(&batch, mode)?;
                let mask = mask_tensor(device, &batch)?; // (B, T)
                let features = input.features(&out.hidden, &mask)?; // (B, C)
                let (logits, head) =
                    head_forward(&pipeline.model, input, features, mode.train, mode.seed)?;
                Ok(BatchForward {
                    logits,
                    head,
                    encoder: Some((out, mask)),
                })
            }
        }
    }

    /// One epoch: every training example once, then the validation accuracy.
    pub async fn run_epoch(&mut self, pipeline: &mut Pipeline) -> Result<EpochProgress> {
        if self.epochs_done >= self.options.epochs {
            return Err(Error::invalid(format!(
                "the run has done its {} epochs",
                self.options.epochs
            )));
        }
        let epoch = self.epochs_done + 1;
        let batches = epoch_batches(
            &self.train,
            self.options.batch_size,
            self.options.seed,
            epoch,
        )?;
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let labels = self.labels.len();
        for step_batches in self.accumulation.steps(batches.len()) {
            let mut grads = Gradients::new();
            let micro_batches = step_batches.len();
            for micro in step_batches {
                let rows = &batches[micro];
                let step = self.optimizer.steps();
                let seed = self.options.seed
                    ^ (step + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ (micro as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
                let mode = RunMode::training(seed, self.options.freeze);
                let forward = self.forward(pipeline, rows, &mode)?;
                let classes: Vec<u32> = rows.iter().map(|&i| self.classes[i]).collect();
                let scale = GradientAccumulation::loss_scale(rows.len(), micro_batches);
                let (losses, dlogits) = cross_entropy(&forward.logits, &classes, scale).await?;
                let batch_loss = losses.iter().map(|&x| x as f64).sum::<f64>() / rows.len() as f64;
                check_finite_loss(batch_loss as f32, epoch, step + 1)?;
                loss_sum += batch_loss * rows.len() as f64;
                seen += rows.len();
                let logits = forward.logits.to_vec().await?;
                correct += correct_predictions(&logits, &classes, labels)?;
                let model = &pipeline.model;
                let wants_input_gradient = forward
                    .encoder
                    .as_ref()
                    .is_some_and(|(out, _)| out.needs_gradient());
                let dfeatures = head_backward(
                    model,
                    wants_input_gradient,
                    self.options.freeze != Freeze::Head,
                    &dlogits,
                    &forward.head,
                    mode.train,
                    mode.seed,
                    &mut grads,
                )?;
                if let (Some(dfeatures), Some((out, mask))) = (dfeatures, &forward.encoder) {
                    let mut dhidden =
                        Tensor::zeros(model.device(), out.hidden.shape(), "d_hidden")?;
                    pipeline
                        .classifier_input
                        .features_backward(&mut dhidden, &dfeatures, mask)?;
                    model.encode_backward(out, &dhidden, &mut grads)?;
                }
            }
            let device = pipeline.device().clone();
            let mut norm = Tensor::zeros(&device, &[2], "grad_norm")?;
            {
                let mut tensors: Vec<&mut Tensor> = grads.iter_mut().map(|(_, g)| g).collect();
                clip_gradients(&mut norm, &mut tensors, self.options.max_grad_norm)?;
            }
            let lr = self.schedule.lr(self.optimizer.steps());
            let mut updates: Vec<ParameterUpdate> = pipeline
                .model
                .parameters_mut()
                .into_iter()
                .filter_map(|value| {
                    let grad = grads.get(value.name())?;
                    Some(ParameterUpdate { value, grad })
                })
                .collect();
            self.report.trained_parameters = updates.iter().map(|u| u.value.numel()).sum();
            self.optimizer.step(lr, &mut updates)?;
        }
        pipeline.device().flush()?;
        let validation_accuracy = self.validation_accuracy(pipeline).await?;
        self.epochs_done = epoch;
        let progress = EpochProgress {
            epoch,
            loss: (loss_sum / seen.max(1) as f64) as f32,
            accuracy: correct as f32 / seen.max(1) as f32,
            validation_accuracy,
        };
        self.report.optimizer_state_bytes = self.optimizer.state_bytes();
        self.report.epochs.push(progress.clone());
        Ok(progress)
    }

    /// Accuracy on the held-out examples (dropout off), None when there are none.
    pub async fn validation_accuracy(&self, pipeline: &Pipeline) -> Result<Option<f32>> {
        if self.validation.is_empty() {
            return Ok(None);
        }
        let labels = self.labels.len();
        let mut correct = 0;
        for rows in self.validation.chunks(self.options.batch_size.max(32)) {
            let forward = self.forward(pipeline, rows, &RunMode::inference())?;
            let logits = forward.logits.to_vec().await?;
            let classes: Vec<u32> = rows.iter().map(|&i| self.classes[i]).collect();
            correct += correct_predictions(&logits, &classes, labels)?;
        }
        Ok(Some(correct as f32 / self.validation.len() as f32))
    }

    /// The report of the epochs run so far.
    pub fn finish(self) -> TrainReport {
        self.report
    }
}

struct BatchForward {
    logits: Tensor, // (B, L)
    head: super::classifier::HeadSaved,
    /// the encoder's output and the (B, T) mask, when the encoder ran
    encoder: Option<(crate::models::EncoderOutput, Tensor<u32>)>,
}

/// Every example's features, computed once with the encoder in inference mode.
async fn feature_cache(
    pipeline: &Pipeline,
    encodings: &[Encoding],
    input: ClassifierInput,
) -> Result<FeatureCache> {
    let c = pipeline.hidden_size();
    let device = pipeline.device();
    let mut rows = vec![0f32; encodings.len() * c];
    // shortest first: less padding
    let mut order: Vec<usize> = (0..encodings.len()).collect();
    order.sort_by_key(|&i| encodings[i].len());
    for chunk in order.chunks(pipeline.read.batch_size) {
        let batch: Vec<Encoding> = chunk.iter().map(|&i| encodings[i].clone()).collect();
        let batch = EncoderInput::from_encodings(device, &batch)?;
        let out = pipeline.model.encode(&batch, &RunMode::inference())?;
        let mask = mask_tensor(device, &batch)?;
        let features = input.features(&out.hidden, &mask)?.to_vec().await?; // (B, C)
        for (j, &i) in chunk.iter().enumerate() {
            rows[i * c..(i + 1) * c].copy_from_slice(&features[j * c..(j + 1) * c]);
        }
    }
    let mut cache = FeatureCache::new(c);
    cache.push_rows(&rows)?;
    Ok(cache)
}

impl Pipeline {
    /// Trains a new classifier for the examples' labels; `on_progress` sees every epoch.
    pub async fn train_classifier(
        &mut self,
        examples: &[Example],
        options: TrainOptions,
        mut on_progress: impl FnMut(&EpochProgress),
    ) -> Result<TrainReport> {
        let epochs = options.epochs;
        let mut run = ClassifierTraining::new(self, examples, options).await?;
        for _ in 0..epochs {
            let progress = run.run_epoch(self).await?;
            on_progress(&progress);
        }
        Ok(run.finish())
    }
}
