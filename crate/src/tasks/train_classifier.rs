//! Fine-tuning a sequence classifier on labelled examples, in the three ways the course
//! teaches (`Freeze::Head` / `Top(k)` / `All`):
//!
//! ```text
//! examples ─ split (train / validation) ─ windows of max_length (as classify reads them:
//!            n_e overlapping windows for example e; one when it fits or `Truncate`)
//! Head:    features of every WINDOW once (encoder in inference) ─ FeatureCache (W_all, C)
//!          each step: features[windows of the batch's examples] (W, C) ─ head ─ logits (W, L)
//! Top/All: each step: encoder on the windows of the batch's examples (dropout, activations
//!          of the trained layers) ─ features (W, C) ─ head ─ logits (W, L)
//! both:    ─ mean over each example's windows (E, L) ─ the problem's loss ─ dlogits (E, L)
//!          (cross-entropy; MSE for regression, L = 1; BCE with logits for multi-label:
//!          problem.rs)
//!          ─ each window gets dlogits_e / n_e (W, L) ─ head backward
//!          [Top/All: ─ dfeatures ─ dhidden ─ encoder backward]
//! then:    clip_grad_norm ─ AdamW (decay groups of the HF Trainer) with the linear schedule
//! ```
//!
//! An example with a second text (a pair) is one window, `[CLS] a [SEP] b [SEP]`, as `classify`
//! reads a pair (cut with `longest_first` under `Truncate`, else refused when too long).
//! `batch_size` counts examples: a batch of long texts runs more windows than examples.
//! Validation averages the windows the same way, so its accuracy is what `classify` says
//! (exact-match accuracy for multi-label; the mean absolute error and Pearson's correlation
//! for regression, which has no accuracy).
//! Micro-batches accumulate into one step's gradients (`accumulation_steps`). A NaN or infinite
//! loss stops the run with an error naming the epoch and step. [`ClassifierTraining`] runs one
//! epoch per call, so the browser can show progress and stop between epochs;
//! [`Pipeline::train_classifier`] runs them all with a callback.

use crate::models::{EncoderInput, Family, Freeze, Gradients, RunMode};
use crate::ops::losses::{
    bce_with_logits_backward, bce_with_logits_forward, cross_entropy_with_gradient, mse_backward,
    mse_forward,
};
use crate::tensor::Tensor;
use crate::tokenizer::Encoding;
use crate::train::{correct_predictions, train_validation_split, FeatureCache};
use crate::{Error, Result};

use super::classifier::{head_backward, head_forward, ClassifierInput};
use super::examples::Example;
use super::pipeline::{mask_tensor, Pipeline};
use super::problem::{
    exact_matches, example_targets, regression_scores, ExampleTargets, ProblemType,
};
use super::text_pairs::TaskText;
use super::training_loop::{
    self, check_run_options, widen_what_trains, EpochRun, MicroBatch, OptimizerLoop, RunState,
    StepsProgress,
};
use super::training_memory::{
    check_training_fits, largest_sum, shape_values, values_of, BatchShape,
};
use super::windows::{batches_by_length, encode_windows, LongTexts, WindowAverage};

use std::ops::Range;

pub use super::train_options::TrainOptions;

/// What one epoch reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EpochProgress {
    /// 1 for the first epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's examples.
    pub loss: f32,
    /// Training accuracy during the epoch (dropout on, weights changing); exact-match for
    /// multi-label; None for regression.
    pub accuracy: Option<f32>,
    /// Accuracy on the held-out examples after the epoch (None without validation or for
    /// regression).
    pub validation_accuracy: Option<f32>,
    /// Regression: mean absolute error on the held-out examples.
    pub validation_mae: Option<f32>,
    /// Regression: Pearson's correlation of predictions and truths on the held-out examples
    /// (None when either has no variance).
    pub validation_pearson: Option<f32>,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TrainReport {
    pub labels: Vec<String>,
    pub train_examples: usize,
    pub validation_examples: usize,
    /// Windows the examples were read in (more than the examples when long ones are read in
    /// overlapping windows).
    pub windows: usize,
    pub freeze: String,
    pub classifier_input: String,
    /// transformers' `problem_type`.
    pub problem_type: String,
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
    /// the options, optimizer, training rows and the epoch under way
    run: RunState<EpochSums>,
    labels: Vec<String>,
    /// each example's class (E), or its values (E, L)
    targets: ExampleTargets,
    validation: Vec<usize>,
    /// (W_all) every window of every example, in example order (Top/All; empty for head-only)
    encodings: Vec<Encoding>,
    /// (N) example i's windows: rows `spans[i]` of `encodings` / the feature cache
    spans: Vec<Range<usize>>,
    /// (W_all, C) each window's features (head-only)
    cache: Option<FeatureCache>,
    report: TrainReport,
}

/// The sums of an epoch under way: loss over its examples, right answers (None for
/// regression), examples seen.
#[derive(Clone, Copy)]
pub(crate) struct EpochSums {
    loss: f64,
    correct: Option<usize>,
    seen: usize,
}

impl Default for EpochSums {
    fn default() -> Self {
        EpochSums {
            loss: 0.0,
            correct: Some(0),
            seen: 0,
        }
    }
}

/// What a run feeds the classifier: the option, else the mean-pooled tokens for a
/// sentence-embedding model (sentence-transformers), else the [CLS] token.
fn classifier_input_of(pipeline: &Pipeline, options: &TrainOptions) -> ClassifierInput {
    options
        .classifier_input
        .unwrap_or(if pipeline.sentence_embedding_model {
            ClassifierInput::MeanPooled
        } else {
            ClassifierInput::ClsToken
        })
}

/// How a run reads its examples: windows as `classify` reads them, unless the options say
/// otherwise; the stride checked against the max length.
fn long_texts_of(pipeline: &Pipeline, options: &TrainOptions) -> Result<LongTexts> {
    let max_length = pipeline.read.max_length;
    let long_texts = options.long_texts.unwrap_or(pipeline.read.long_texts);
    if let LongTexts::Windows { stride } = long_texts {
        if stride + 2 >= max_length {
            return Err(Error::invalid(format!(
                "train_classifier: stride {stride} must be smaller than the max length \
                 {max_length} minus the 2 special tokens"
            )));
        }
    }
    Ok(long_texts)
}

/// The name of the run in its messages.
const WHAT: &str = "train_classifier";

/// The largest micro-batch of a run on `encodings` (every window; example i's are
/// `spans[i]`), for its memory estimate: the `batch_size` training examples with the most
/// windows together, padded to the longest window (head-only: the feature batches of the
/// pipeline's batch size); the head's logits, their gradients and the features it reads.
fn classifier_batch_shape(
    pipeline: &Pipeline,
    options: &TrainOptions,
    encodings: &[Encoding],
    spans: &[Range<usize>],
    train: &[usize],
    validation: &[usize],
) -> BatchShape {
    let model = &pipeline.model;
    let c = model.hidden_size();
    let labels = match options.problem {
        ProblemType::Regression => 1,
        _ => model.config.labels().num_labels.max(1),
    };
    let tokens = encodings.iter().map(|e| e.ids.len()).max().unwrap_or(0);
    let windows_of = |rows: &[usize]| rows.iter().map(|&i| spans[i].len()).collect::<Vec<_>>();
    let step_windows = largest_sum(windows_of(train), options.batch_size);
    let head_only = options.freeze == Freeze::Head;
    let sequences = if head_only {
        pipeline.read.batch_size.max(1).min(encodings.len())
    } else {
        step_windows
    };
    // the features, the pooled or pre-classifier rows and their gradients (W, C); the window
    // logits, the example logits and their gradients (W, L)
    let head_values = shape_values(&[step_windows, 4 * c + 3 * labels]);
    let mut head_parameters = model
        .sequence_classifier
        .as_ref()
        .map_or(0, |head| values_of(&head.parameters()));
    let bert_cls =
        model.family == Family::Bert && pipeline.classifier_input == ClassifierInput::ClsToken;
    if let Some(pooler) = model.pooler.as_ref().filter(|_| bert_cls && !head_only) {
        let mut pooler_parameters = Vec::new();
        pooler.dense.push_parameters(&mut pooler_parameters);
        head_parameters += values_of(&pooler_parameters);
    }
    BatchShape {
        sequences,
        tokens,
        head_values,
        head_parameters,
        cached_features: if head_only {
            shape_values(&[encodings.len(), c])
        } else {
            0
        },
        // validation batches of max(batch_size, 32) examples (head-only: from the cache)
        validation_sequences: if head_only {
            0
        } else {
            largest_sum(windows_of(validation), options.batch_size.max(32))
        },
    }
}

/// Head-only training's cached features for the examples `texts` under `options`: every
/// window's features `(W, C)` row-major, in window order (example by example). They depend on
/// nothing but each window's text and the encoder, so a copy of the same model elsewhere (a
/// worker of the browser's pool, given a contiguous part of the examples) computes the same
/// rows; [`ClassifierTraining::new_with_features`] takes them joined in example order.
pub async fn head_features<S: TaskText>(
    pipeline: &Pipeline,
    texts: &[S],
    options: &TrainOptions,
) -> Result<Vec<f32>> {
    let long_texts = long_texts_of(pipeline, options)?;
    pipeline.check_pairs(texts)?;
    let windows = encode_windows(
        &pipeline.tokenizer,
        texts,
        pipeline.read.max_length,
        long_texts,
    )?;
    let encodings: Vec<Encoding> = windows.into_iter().map(|w| w.encoding).collect();
    feature_rows(pipeline, &encodings, classifier_input_of(pipeline, options)).await
}

impl ClassifierTraining {
    /// Prepares a run: splits the examples, gives the model a new classifier for their labels,
    /// tokenizes, and for head-only training computes every example's features once.
    pub async fn new(
        pipeline: &mut Pipeline,
        examples: &[Example],
        options: TrainOptions,
    ) -> Result<ClassifierTraining> {
        Self::new_with_features(pipeline, examples, options, None).await
    }

    /// [`ClassifierTraining::new`], for head-only training with the features of every window
    /// already computed (`(W, C)` from [`head_features`] of the examples' texts with these
    /// options, joined in example order) instead of computing them here.
    pub async fn new_with_features(
        pipeline: &mut Pipeline,
        examples: &[Example],
        options: TrainOptions,
        features: Option<Vec<f32>>,
    ) -> Result<ClassifierTraining> {
        if examples.is_empty() {
            return Err(Error::invalid("train_classifier: no examples"));
        }
        check_run_options(&options, &pipeline.model, WHAT)?;
        options.refuse_masked_lm_options(WHAT)?;
        if let Some(e) = examples.iter().position(|e| e.text.trim().is_empty()) {
            return Err(Error::invalid(format!(
                "train_classifier: example {e} has no text"
            )));
        }
        let (labels, targets) = example_targets(examples, options.problem)?;
        if features.is_some() && options.freeze != Freeze::Head {
            return Err(Error::invalid(format!(
                "train_classifier: precomputed features are for head-only training, not freeze {}",
                options.freeze
            )));
        }
        let split =
            train_validation_split(examples.len(), options.validation_fraction, options.seed)?;
        let input = classifier_input_of(pipeline, &options);
        pipeline.classifier_input = input;
        pipeline
            .model
            .add_sequence_classifier(&labels, options.seed)?;
        pipeline.problem_type = options.problem;

        let max_length = pipeline.read.max_length;
        let long_texts = long_texts_of(pipeline, &options)?;
        pipeline.check_pairs(examples)?;
        // a pair is read as classify reads it: one window (cut with longest_first or refused)
        let windows = encode_windows(&pipeline.tokenizer, examples, max_length, long_texts)?;
        // windows come in text order: example i's are one contiguous run
        let mut spans: Vec<Range<usize>> = vec![0..0; examples.len()];
        for (w, window) in windows.iter().enumerate() {
            let span = &mut spans[window.text];
            if span.start == span.end {
                *span = w..w;
            }
            span.end = w + 1;
        }
        let encodings: Vec<Encoding> = windows.into_iter().map(|w| w.encoding).collect();
        let window_count = encodings.len();
        let batch = classifier_batch_shape(
            pipeline,
            &options,
            &encodings,
            &spans,
            &split.train,
            &split.validation,
        );
        check_training_fits(WHAT, &mut pipeline.model, options.freeze, batch)?;
        widen_what_trains(&mut pipeline.model, &options).await?;
        let (cache, encodings) = if options.freeze == Freeze::Head {
            let c = pipeline.hidden_size();
            let rows = match features {
                Some(rows) if rows.len() == window_count * c => rows,
                Some(rows) => {
                    return Err(Error::invalid(format!(
                        "train_classifier: {} precomputed feature values, expected {window_count} \
                         windows x {c}",
                        rows.len()
                    )))
                }
                None => feature_rows(pipeline, &encodings, input).await?,
            };
            let mut cache = FeatureCache::new(c);
            cache.push_rows(&rows)?;
            (Some(cache), Vec::new())
        } else {
            (None, encodings)
        };

        let report = TrainReport {
            labels: labels.clone(),
            train_examples: split.train.len(),
            validation_examples: split.validation.len(),
            windows: window_count,
            freeze: options.freeze.to_string(),
            classifier_input: input.name().to_string(),
            problem_type: options.problem.name().to_string(),
            epochs: Vec::new(),
            trained_parameters: 0,
            optimizer_state_bytes: 0,
            feature_cache_bytes: cache.as_ref().map_or(0, FeatureCache::bytes),
        };
        Ok(ClassifierTraining {
            run: RunState::new(options, split.train)?,
            labels,
            targets,
            validation: split.validation,
            encodings,
            spans,
            cache,
            report,
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn epochs_done(&self) -> usize {
        self.run.epochs_done
    }

    pub fn report(&self) -> &TrainReport {
        &self.report
    }

    /// Logits (E, L) of the examples `rows` (each the mean of its windows' logits), with what
    /// the backward needs: the windows' logits (W, L), the averaging, the head's saved state,
    /// the encoder output (when the encoder ran) and the input mask.
    fn forward(&self, pipeline: &Pipeline, rows: &[usize], mode: &RunMode) -> Result<BatchForward> {
        let device = pipeline.device();
        let input = pipeline.classifier_input;
        // the rows of the batch's windows, and each example's run of them in the batch
        let mut windows = Vec::with_capacity(rows.len());
        let mut spans = Vec::with_capacity(rows.len());
        for &i in rows {
            let start = windows.len();
            windows.extend(self.spans[i].clone());
            spans.push(start..windows.len());
        }
        let (features, encoder) = match &self.cache {
            Some(cache) => (cache.gather(device, &windows, "features")?, None), // (W, C)
            None => {
                let encodings: Vec<Encoding> =
                    windows.iter().map(|&w| self.encodings[w].clone()).collect();
                let batch = EncoderInput::from_encodings(device, &encodings)?;
                let out = pipeline.model.encode(&batch, mode)?;
                let mask = mask_tensor(device, &batch)?; // (W, T)
                let features = input.features(&out.hidden, &mask)?; // (W, C)
                (features, Some((out, mask)))
            }
        };
        let (window_logits, head) =
            head_forward(&pipeline.model, input, features, mode.train, mode.seed)?; // (W, L)
                                                                                    // one window per example: the logits are the example's (no averaging to run)
        let average = if windows.len() > rows.len() {
            Some(WindowAverage::new(device, &spans)?)
        } else {
            None
        };
        let logits = match &average {
            Some(average) => Some(average.forward(&window_logits)?), // (E, L)
            None => None,
        };
        Ok(BatchForward {
            logits,
            window_logits,
            average,
            head,
            encoder,
        })
    }

    /// Forward and backward of the micro-batch `rows`: the gradients of `scale` x the sum of
    /// its losses go into `grads`; returns the per-example losses and the logits (E, L).
    async fn micro_batch(
        &self,
        pipeline: &Pipeline,
        rows: &[usize],
        mode: &RunMode,
        scale: f32,
        grads: &mut Gradients,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let forward = self.forward(pipeline, rows, mode)?;
        let (losses, dlogits) = self.loss(pipeline, rows, forward.logits(), scale)?; // (E, ..), (E, L)
        let dwindow_logits = match &forward.average {
            Some(average) => average.backward(&dlogits, &forward.window_logits)?, // (W, L)
            None => dlogits,
        };
        let model = &pipeline.model;
        let wants_input_gradient = forward
            .encoder
            .as_ref()
            .is_some_and(|(out, _)| out.needs_gradient());
        let dfeatures = head_backward(
            model,
            wants_input_gradient,
            self.run.options.freeze != Freeze::Head,
            &dwindow_logits,
            &forward.head,
            mode.train,
            mode.seed,
            grads,
        )?; // (W, C)
        if let (Some(dfeatures), Some((out, mask))) = (dfeatures, &forward.encoder) {
            let mut dhidden = Tensor::zeros(model.device(), out.hidden.shape(), "d_hidden")?;
            pipeline
                .classifier_input
                .features_backward(&mut dhidden, &dfeatures, mask)?;
            model.encode_backward(out, &dhidden, grads)?;
        }
        // Read back only now, once the whole backward is encoded: the first read submits the
        // forward and the backward together, and the GPU never idles while the host encodes.
        let losses = losses.to_vec().await?; // (E) or (E, L)
        let logits = forward.logits().to_vec().await?;
        // each example's loss: the mean over its values (MSE / BCE are means over E x L)
        let per_example = losses
            .chunks(losses.len() / rows.len().max(1))
            .map(|row| (row.iter().map(|&x| x as f64).sum::<f64>() / row.len() as f64) as f32)
            .collect();
        Ok((per_example, logits))
    }

    /// The rows `rows`' targets: classes (E) for single-label, values (E, L) otherwise.
    fn rows_targets(&self, rows: &[usize]) -> (Vec<u32>, Vec<f32>) {
        match &self.targets {
            ExampleTargets::Classes(classes) => {
                (rows.iter().map(|&i| classes[i]).collect(), vec![])
            }
            ExampleTargets::Values(values) => {
                let l = self.labels.len();
                let picked = rows
                    .iter()
                    .flat_map(|&i| values[i * l..(i + 1) * l].iter().copied())
                    .collect();
                (vec![], picked)
            }
        }
    }

    /// The per-element losses and dlogits (E, L) of logits (E, L): cross-entropy (losses (E)),
    /// else MSE (regression) or BCE with logits (multi-label), losses (E, L); `scale` is the
    /// gradient of the step's loss with respect to one example's loss.
    fn loss(
        &self,
        pipeline: &Pipeline,
        rows: &[usize],
        logits: &Tensor,
        scale: f32,
    ) -> Result<(Tensor, Tensor)> {
        let device = pipeline.device();
        let (classes, values) = self.rows_targets(rows);
        match self.run.options.problem {
            ProblemType::SingleLabel => {
                let targets = Tensor::from_vec(device, &[rows.len()], classes, "labels")?; // (E)
                cross_entropy_with_gradient(logits, &targets, scale)
            }
            problem => {
                let shape = logits.shape().to_vec(); // (E, L)
                let targets = Tensor::from_vec(device, &shape, values, "targets")?; // (E, L)
                let mut losses = Tensor::uninit(device, &shape, "losses")?;
                let mut dlogits = Tensor::zeros(device, &shape, "d_logits")?;
                // an example's loss is the mean of its L values
                let scale = scale / shape[1] as f32;
                if problem == ProblemType::Regression {
                    mse_forward(&mut losses, logits, &targets)?;
                    mse_backward(&mut dlogits, logits, &targets, scale)?;
                } else {
                    bce_with_logits_forward(&mut losses, logits, &targets)?;
                    bce_with_logits_backward(&mut dlogits, logits, &targets, scale)?;
                }
                Ok((losses, dlogits))
            }
        }
    }

    /// Examples of `rows` predicted right from their logits (E, L): the class, or the whole
    /// label set; None for regression.
    fn correct(&self, rows: &[usize], logits: &[f32]) -> Result<Option<usize>> {
        let (classes, values) = self.rows_targets(rows);
        let labels = self.labels.len();
        Ok(match self.run.options.problem {
            ProblemType::SingleLabel => Some(correct_predictions(logits, &classes, labels)?),
            ProblemType::MultiLabel => Some(exact_matches(logits, &values, labels)),
            ProblemType::Regression => None,
        })
    }

    /// The mean loss of the examples `rows` (indices into the examples given to `new`) and its
    /// gradients (unclipped), with the dropout of the next step's first micro-batch; nothing
    /// changes. For checking the training against a reference.
    pub async fn gradients(&self, pipeline: &Pipeline, rows: &[usize]) -> Result<(f32, Gradients)> {
        let given = self.spans.len();
        if let Some(&bad) = rows.iter().find(|&&i| i >= given) {
            return Err(Error::invalid(format!(
                "gradients: example {bad} requested, {given} given"
            )));
        }
        let mode = self.run.training_mode(0);
        let mut grads = Gradients::new();
        let scale = 1.0 / rows.len().max(1) as f32;
        let (losses, _) = self
            .micro_batch(pipeline, rows, &mode, scale, &mut grads)
            .await?;
        let mean = losses.iter().map(|&x| x as f64).sum::<f64>() / rows.len().max(1) as f64;
        Ok((mean as f32, grads))
    }

    /// One epoch: every training example once, then the validation accuracy.
    pub async fn run_epoch(&mut self, pipeline: &mut Pipeline) -> Result<EpochProgress> {
        training_loop::run_epoch(self, pipeline).await
    }

    /// Up to `max_steps` (at least one) optimizer steps of the epoch under way (a new one when
    /// none is), then, after its last step, the validation: the same computation as
    /// [`ClassifierTraining::run_epoch`], cut between steps. On an error the epoch under way is
    /// dropped (the next call starts that epoch again).
    pub async fn run_steps(
        &mut self,
        pipeline: &mut Pipeline,
        max_steps: usize,
    ) -> Result<StepsProgress> {
        training_loop::run_steps(self, pipeline, max_steps).await
    }

    /// Accuracy on the held-out examples (dropout off), None when there are none or for
    /// regression.
    pub async fn validation_accuracy(&self, pipeline: &Pipeline) -> Result<Option<f32>> {
        Ok(self.validate(pipeline).await?.accuracy)
    }

    /// The scores on the held-out examples (dropout off); all None when there are none.
    pub async fn validate(&self, pipeline: &Pipeline) -> Result<ValidationScores> {
        let mut scores = ValidationScores::default();
        if self.validation.is_empty() {
            return Ok(scores);
        }
        let mut correct = Some(0);
        let (mut predicted, mut truth) = (Vec::new(), Vec::new());
        for rows in self.validation.chunks(self.run.options.batch_size.max(32)) {
            let forward = self.forward(pipeline, rows, &RunMode::inference())?;
            let logits = forward.logits().to_vec().await?; // (E, L), windows averaged
            correct = correct
                .zip(self.correct(rows, &logits)?)
                .map(|(a, b)| a + b);
            if self.run.options.problem == ProblemType::Regression {
                predicted.extend_from_slice(&logits);
                truth.extend(self.rows_targets(rows).1);
            }
        }
        scores.accuracy = correct.map(|c| c as f32 / self.validation.len() as f32);
        if self.run.options.problem == ProblemType::Regression {
            let (mae, pearson) = regression_scores(&predicted, &truth);
            scores.mae = Some(mae);
            scores.pearson = pearson;
        }
        Ok(scores)
    }

    /// The report of the epochs run so far.
    pub fn finish(self) -> TrainReport {
        self.report
    }
}

impl EpochRun for ClassifierTraining {
    type Sums = EpochSums;
    type Progress = EpochProgress;
    const WHAT: &'static str = "train_classifier";

    fn state(&mut self) -> &mut RunState<EpochSums> {
        &mut self.run
    }

    async fn train_micro_batch(&self, batch: MicroBatch<'_>, sums: &mut EpochSums) -> Result<f32> {
        let (pipeline, grads) = (batch.pipeline, batch.grads);
        let rows = batch.rows;
        let scale = OptimizerLoop::loss_scale(rows.len(), batch.micro_batches);
        let (losses, logits) = self
            .micro_batch(pipeline, rows, &batch.mode, scale, grads)
            .await?;
        let batch_loss = losses.iter().map(|&x| x as f64).sum::<f64>() / rows.len() as f64;
        sums.loss += batch_loss * rows.len() as f64;
        sums.seen += rows.len();
        sums.correct = match (sums.correct, self.correct(rows, &logits)?) {
            (Some(sum), Some(right)) => Some(sum + right),
            _ => None,
        };
        Ok(batch_loss as f32)
    }

    fn record_step(&mut self, trained_parameters: usize) {
        self.report.trained_parameters = trained_parameters;
    }

    async fn end_epoch(
        &mut self,
        pipeline: &Pipeline,
        epoch: usize,
        sums: EpochSums,
    ) -> Result<EpochProgress> {
        let validation = self.validate(pipeline).await?;
        let seen = sums.seen.max(1);
        let progress = EpochProgress {
            epoch,
            loss: (sums.loss / seen as f64) as f32,
            accuracy: sums.correct.map(|c| c as f32 / seen as f32),
            validation_accuracy: validation.accuracy,
            validation_mae: validation.mae,
            validation_pearson: validation.pearson,
        };
        self.report.optimizer_state_bytes = self.run.optimizer.state_bytes();
        self.report.epochs.push(progress.clone());
        Ok(progress)
    }
}

/// What validation measures (see [`EpochProgress`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidationScores {
    pub accuracy: Option<f32>,
    pub mae: Option<f32>,
    pub pearson: Option<f32>,
}

struct BatchForward {
    /// (E, L) the examples' logits, when some example has several windows
    logits: Option<Tensor>,
    /// (W, L) the windows' logits (the examples' when each has one window)
    window_logits: Tensor,
    /// the averaging of the windows (when some example has several)
    average: Option<WindowAverage>,
    head: super::classifier::HeadSaved,
    /// the encoder's output and the (W, T) mask, when the encoder ran
    encoder: Option<(crate::models::EncoderOutput, Tensor<u32>)>,
}

impl BatchForward {
    /// (E, L) the examples' logits.
    fn logits(&self) -> &Tensor {
        self.logits.as_ref().unwrap_or(&self.window_logits)
    }
}

/// Every window's features `(W, C)` row-major, computed once with the encoder in inference mode.
async fn feature_rows(
    pipeline: &Pipeline,
    encodings: &[Encoding],
    input: ClassifierInput,
) -> Result<Vec<f32>> {
    let c = pipeline.hidden_size();
    let device = pipeline.device();
    let mut rows = vec![0f32; encodings.len() * c];
    let lengths: Vec<usize> = encodings.iter().map(Encoding::len).collect();
    for chunk in batches_by_length(&lengths, pipeline.read.batch_size)? {
        let batch: Vec<Encoding> = chunk.iter().map(|&i| encodings[i].clone()).collect();
        let batch = EncoderInput::from_encodings(device, &batch)?;
        let out = pipeline.model.encode(&batch, &RunMode::inference())?;
        let mask = mask_tensor(device, &batch)?;
        let features = input.features(&out.hidden, &mask)?.to_vec().await?; // (B, C)
        for (j, &i) in chunk.iter().enumerate() {
            rows[i * c..(i + 1) * c].copy_from_slice(&features[j * c..(j + 1) * c]);
        }
    }
    Ok(rows)
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
