//! Fine-tuning a token classifier (named entities, parts of speech) on word-labelled examples,
//! as transformers' token-classification recipe (`run_ner.py`) does it:
//!
//! ```text
//! example (words, labels) ─ words joined by spaces, tokenized, cut to max_length (the first
//!     window; later words are left out of training and validation and counted in the report)
//!   ─ each word's FIRST WordPiece gets its label's class; its other pieces, [CLS], [SEP] and
//!     padding get -100 (ignored)                                        (what is_split_into_words
//!                                                                        + word_ids() align)
//! Head:    hidden states of every labelled token once (encoder in inference) ─ FeatureCache
//!          each step: rows of the batch's labelled tokens (N, C) ─ classifier(dropout) (N, L)
//! Top/All: each step: encoder on the batch (B, T) ─ hidden (B, T, C) ─ classifier(dropout)
//!          ─ logits (B*T, L), targets (B*T) with -100 on the ignored positions
//! both:    cross-entropy, the mean over the micro-batch's labelled tokens (torch's
//!          ignore_index=-100 mean) ─ dlogits ─ head backward [Top/All: ─ dhidden ─ encoder]
//! then:    clip_grad_norm ─ AdamW with the linear schedule (training_loop.rs, as for sequences)
//! ```
//!
//! Each epoch reports the mean loss over its labelled tokens, the training accuracy of the
//! words, and on the held-out examples (dropout off) the word accuracy and seqeval's
//! entity-level precision / recall / F1 per type and overall (`train::entities`). The labels
//! are the examples' distinct labels, sorted. After training, `classify_tokens` reads with the
//! new head (every WordPiece labelled; a word's label is its first piece's).

use crate::models::{EncoderInput, EncoderOutput, Freeze, Gradients, RunMode};
use crate::ops::losses::{cross_entropy_with_gradient, IGNORE_INDEX};
use crate::tensor::Tensor;
use crate::tokenizer::{Encoding, Tokenizer, Truncation, TruncationStrategy};
use crate::train::entities::{EntityCounts, EntityScores};
use crate::train::{argmax, train_validation_split, FeatureCache, Split};
use crate::{Error, Result};

use super::pipeline::Pipeline;
use super::problem::ProblemType;
use super::train_classifier::TrainOptions;
use super::training_loop::{
    self, check_run_options, widen_what_trains, EpochRun, MicroBatch, OptimizerLoop, RunState,
    StepsProgress,
};
use super::training_memory::{check_training_fits, shape_values, values_of, BatchShape};
use super::word_examples::{check_word_examples, word_label_classes, WordExample};

use std::ops::Range;

/// One example as the model reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct AlignedWords {
    /// `[CLS] words [SEP]`, cut to the max length, unpadded.
    pub encoding: Encoding,
    /// Per token: the class of its word when it is the word's first WordPiece, else -100.
    pub targets: Vec<i64>,
    /// (N_e) the token position of each labelled word's first WordPiece, in word order.
    pub first_tokens: Vec<usize>,
    /// (N_e) the word of each of `first_tokens`.
    pub words: Vec<usize>,
}

/// The words of an example tokenized and their classes put on each word's first WordPiece.
/// The words are joined by single spaces, which the BERT pre-tokenizer splits on again, so the
/// WordPieces are those of transformers' `is_split_into_words=True`; each token belongs to the
/// word whose characters it covers. Words beyond `max_length` tokens get no token.
pub fn align_word_labels(
    tokenizer: &Tokenizer,
    words: &[String],
    classes: &[u32],
    max_length: usize,
) -> Result<AlignedWords> {
    if words.len() != classes.len() {
        return Err(Error::shape("word classes", words.len(), classes.len()));
    }
    // code-point range of each word in the joined text
    let mut starts = Vec::with_capacity(words.len());
    let mut text = String::new();
    let mut position = 0;
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            text.push(' ');
            position += 1;
        }
        starts.push(position);
        text.push_str(word);
        position += word.chars().count();
    }
    let truncation = Truncation {
        max_length,
        stride: 0,
        strategy: TruncationStrategy::LongestFirst,
    };
    let mut encoding = tokenizer.encode_with_truncation(&text, Some(&truncation))?;
    encoding.overflowing.clear();
    let mut targets = vec![-100i64; encoding.len()];
    let (mut first_tokens, mut labelled) = (Vec::new(), Vec::new());
    let mut seen = vec![false; words.len()];
    let tokens = encoding.special_tokens_mask.iter().zip(&encoding.offsets);
    for (t, (&special, &(start, _))) in tokens.enumerate() {
        if special != 0 {
            continue;
        }
        // the last word starting at or before the token's first character
        let word = starts.partition_point(|&s| s <= start).saturating_sub(1);
        if !seen[word] {
            seen[word] = true;
            targets[t] = classes[word] as i64;
            first_tokens.push(t);
            labelled.push(word);
        }
    }
    Ok(AlignedWords {
        encoding,
        targets,
        first_tokens,
        words: labelled,
    })
}

/// What one epoch of token-classification training reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TokenEpochProgress {
    /// 1 for the first epoch.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's labelled tokens (one per word).
    pub loss: f32,
    /// Words labelled right during the epoch (dropout on, weights changing).
    pub accuracy: f32,
    /// Words of the held-out examples labelled right after the epoch (None without validation).
    pub validation_accuracy: Option<f32>,
    /// Entity-level scores on the held-out examples (seqeval's default mode).
    pub validation_entities: Option<EntityScores>,
}

/// The whole run.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TokenTrainReport {
    pub labels: Vec<String>,
    pub train_examples: usize,
    pub validation_examples: usize,
    /// Words that have a token within the max length (the ones trained and scored).
    pub labelled_words: usize,
    /// Words left out: beyond the max length, or without any token.
    pub words_left_out: usize,
    pub freeze: String,
    pub epochs: Vec<TokenEpochProgress>,
    /// Parameter values that received gradients.
    pub trained_parameters: usize,
    /// Bytes of the AdamW moments.
    pub optimizer_state_bytes: u64,
    /// Bytes of the cached token features (head-only training).
    pub feature_cache_bytes: u64,
}

/// A token-classification training run in progress.
pub struct TokenClassifierTraining {
    /// the options, optimizer, training rows and the epoch under way
    run: RunState<TokenSums>,
    labels: Vec<String>,
    examples: Vec<AlignedWords>,
    validation: Vec<usize>,
    /// (N_all, C) the hidden state of every labelled token (head-only); example i's rows `spans[i]`
    cache: Option<FeatureCache>,
    spans: Vec<Range<usize>>,
    report: TokenTrainReport,
}

/// The sums of an epoch under way: loss over its labelled tokens, words labelled right, labelled
/// tokens seen.
#[derive(Clone, Copy, Default)]
pub(crate) struct TokenSums {
    loss: f64,
    correct: usize,
    seen: usize,
}

/// The forward of a batch and what its backward needs.
struct TokenForward {
    /// (R, L) logits of R rows: the labelled tokens (head-only) or every position (B*T)
    logits: Tensor,
    /// (R) each row's class, IGNORE_INDEX for the ignored positions
    targets: Vec<u32>,
    /// (N) the rows of the batch's labelled words, example by example, word by word
    labelled: Vec<usize>,
    /// what the head kept; the input it read; the encoder output when the encoder ran
    head: crate::models::bert::heads::TokenClassifierSaved,
    /// head-only: the cached features (N, C) the head read
    features: Option<Tensor>,
    encoder: Option<EncoderOutput>,
}

/// The largest micro-batch of a run on `aligned` (every example), for its memory estimate:
/// `batch_size` training examples padded to the longest (head-only: the feature batches of the
/// pipeline's batch size); the head's logits and their gradients for every token, the features
/// it reads and their gradients.
fn token_batch_shape(
    pipeline: &Pipeline,
    options: &TrainOptions,
    aligned: &[AlignedWords],
    split: &Split,
) -> BatchShape {
    let train = &split.train;
    let model = &pipeline.model;
    let c = model.hidden_size();
    let labels = model.config.labels().num_labels.max(1);
    let tokens = aligned
        .iter()
        .map(|a| a.encoding.ids.len())
        .max()
        .unwrap_or(0);
    let step = options.batch_size.min(train.len()).max(1);
    let head_only = options.freeze == Freeze::Head;
    let sequences = if head_only {
        pipeline.read.batch_size.max(1).min(aligned.len())
    } else {
        step
    };
    let head_parameters = model.token_classifier.as_ref().map_or(0, |head| {
        let mut p = Vec::new();
        head.classifier.push_parameters(&mut p);
        values_of(&p)
    });
    let labelled: usize = aligned.iter().map(|a| a.first_tokens.len()).sum();
    BatchShape {
        sequences,
        tokens,
        head_values: shape_values(&[step, tokens, 2 * c + 3 * labels]),
        head_parameters,
        cached_features: if head_only {
            shape_values(&[labelled, c])
        } else {
            0
        },
        // validation batches of max(batch_size, 32) examples (head-only: from the cache)
        validation_sequences: if head_only {
            0
        } else {
            split.validation.len().min(options.batch_size.max(32))
        },
    }
}

impl TokenClassifierTraining {
    /// Prepares a run: checks the examples, splits them, gives the model a new token classifier
    /// for their labels, aligns the labels to WordPieces, and for head-only training computes
    /// the labelled tokens' hidden states once.
    pub async fn new(
        pipeline: &mut Pipeline,
        examples: &[WordExample],
        options: TrainOptions,
    ) -> Result<TokenClassifierTraining> {
        const WHAT: &str = "train_token_classifier";
        check_word_examples(examples, WHAT)?;
        check_run_options(&options, &pipeline.model, WHAT)?;
        options.refuse_masked_lm_options(WHAT)?;
        if options.classifier_input.is_some() {
            return Err(Error::invalid(format!(
                "{WHAT}: pooling does not apply to token classification (every token is labelled)"
            )));
        }
        if options.problem != ProblemType::SingleLabel {
            return Err(Error::invalid(format!(
                "{WHAT}: a token classifier labels each word with one class ({} is for sequences)",
                options.problem.name()
            )));
        }
        if options.long_texts.is_some() {
            return Err(Error::invalid(format!(
                "{WHAT}: examples are cut to the max length; windows / truncate do not apply"
            )));
        }
        let (labels, classes) = word_label_classes(examples);
        if labels.len() < 2 {
            return Err(Error::invalid(format!(
                "{WHAT}: the examples have {} label(s) {labels:?}; a classifier needs at least 2",
                labels.len()
            )));
        }
        let split =
            train_validation_split(examples.len(), options.validation_fraction, options.seed)?;
        let max_length = pipeline.read.max_length;
        let mut aligned = Vec::with_capacity(examples.len());
        for (e, (example, classes)) in examples.iter().zip(&classes).enumerate() {
            let words =
                align_word_labels(&pipeline.tokenizer, &example.words, classes, max_length)?;
            if words.first_tokens.is_empty() {
                return Err(Error::invalid(format!(
                    "{WHAT}: no word of example {e} has a token (words {:?})",
                    example.words
                )));
            }
            aligned.push(words);
        }
        pipeline.model.add_token_classifier(&labels, options.seed)?;
        let batch = token_batch_shape(pipeline, &options, &aligned, &split);
        check_training_fits(WHAT, &mut pipeline.model, options.freeze, batch)?;
        widen_what_trains(&mut pipeline.model, &options).await?;

        let mut spans = Vec::with_capacity(aligned.len());
        let mut rows = 0;
        for example in &aligned {
            spans.push(rows..rows + example.first_tokens.len());
            rows += example.first_tokens.len();
        }
        let cache = if options.freeze == Freeze::Head {
            let mut cache = FeatureCache::new(pipeline.hidden_size());
            cache.push_rows(&labelled_token_features(pipeline, &aligned).await?)?;
            Some(cache)
        } else {
            None
        };
        let total_words: usize = examples.iter().map(|e| e.words.len()).sum();
        let report = TokenTrainReport {
            labels: labels.clone(),
            train_examples: split.train.len(),
            validation_examples: split.validation.len(),
            labelled_words: rows,
            words_left_out: total_words - rows,
            freeze: options.freeze.to_string(),
            epochs: Vec::new(),
            trained_parameters: 0,
            optimizer_state_bytes: 0,
            feature_cache_bytes: cache.as_ref().map_or(0, FeatureCache::bytes),
        };
        Ok(TokenClassifierTraining {
            run: RunState::new(options, split.train)?,
            labels,
            examples: aligned,
            validation: split.validation,
            cache,
            spans,
            report,
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn epochs_done(&self) -> usize {
        self.run.epochs_done
    }

    pub fn report(&self) -> &TokenTrainReport {
        &self.report
    }

    /// The aligned examples (tokens, targets), in the order given to `new`.
    pub fn aligned(&self) -> &[AlignedWords] {
        &self.examples
    }

    /// Logits of the examples `rows` with the targets of their rows.
    fn forward(&self, pipeline: &Pipeline, rows: &[usize], mode: &RunMode) -> Result<TokenForward> {
        let device = pipeline.device();
        let head = pipeline.model.token_classifier.as_ref().ok_or_else(|| {
            Error::invalid("the model has no token-classification head (the run adds one)")
        })?;
        match &self.cache {
            Some(cache) => {
                let mut indices = Vec::new();
                let mut targets = Vec::new();
                for &i in rows {
                    indices.extend(self.spans[i].clone());
                    let example = &self.examples[i];
                    targets.extend(
                        example
                            .first_tokens
                            .iter()
                            .map(|&t| example.targets[t] as u32),
                    );
                }
                let input = cache.gather(device, &indices, "token_features")?; // (N, C)
                let (logits, saved) = head.forward(&input, mode.train, mode.seed)?; // (N, L)
                Ok(TokenForward {
                    logits,
                    labelled: (0..targets.len()).collect(),
                    targets,
                    head: saved,
                    features: Some(input),
                    encoder: None,
                })
            }
            None => {
                let encodings: Vec<Encoding> = rows
                    .iter()
                    .map(|&i| self.examples[i].encoding.clone())
                    .collect();
                let batch = EncoderInput::from_encodings(device, &encodings)?; // (B, T)
                let seq = batch.seq;
                let out = pipeline.model.encode(&batch, mode)?;
                let (mut logits, saved) = head.forward(&out.hidden, mode.train, mode.seed)?; // (B, T, L)
                let l = *logits.shape().last().expect("logits have a label axis");
                logits.reshape(&[rows.len() * seq, l])?; // (B*T, L)
                let mut targets = vec![IGNORE_INDEX; rows.len() * seq];
                let mut labelled = Vec::new();
                for (b, &i) in rows.iter().enumerate() {
                    let example = &self.examples[i];
                    for (t, &target) in example.targets.iter().enumerate() {
                        if target >= 0 {
                            targets[b * seq + t] = target as u32;
                        }
                    }
                    labelled.extend(example.first_tokens.iter().map(|&t| b * seq + t));
                }
                Ok(TokenForward {
                    logits,
                    targets,
                    labelled,
                    head: saved,
                    features: None,
                    encoder: Some(out),
                })
            }
        }
    }

    /// Forward and backward of the micro-batch `rows`: gradients of `1 / micro_batches` x the
    /// mean loss of its labelled tokens into `grads`; returns (sum of the labelled tokens'
    /// losses, their number, the predicted class of each labelled word in order).
    async fn micro_batch(
        &self,
        pipeline: &Pipeline,
        rows: &[usize],
        mode: &RunMode,
        micro_batches: usize,
        grads: &mut Gradients,
    ) -> Result<(f64, usize, Vec<u32>)> {
        let model = &pipeline.model;
        let device = pipeline.device();
        let mut forward = self.forward(pipeline, rows, mode)?;
        let count = forward.labelled.len();
        let scale = OptimizerLoop::loss_scale(count, micro_batches);
        let n = forward.targets.len();
        let targets = Tensor::from_vec(device, &[n], forward.targets.clone(), "labels")?; // (R)
        let (losses, mut dlogits) = cross_entropy_with_gradient(&forward.logits, &targets, scale)?; // (R), (R, L)
        let head = model
            .token_classifier
            .as_ref()
            .ok_or_else(|| Error::invalid("the model lost its token-classification head"))?;
        match (&forward.encoder, &forward.features) {
            (None, Some(features)) => head.backward(
                None,
                &dlogits,
                features,
                &forward.head,
                mode.train,
                mode.seed,
                grads,
            )?,
            (None, None) => unreachable!("a forward has features or an encoder output"),
            (Some(out), _) => {
                let (b, t) = (out.batch, out.seq);
                let l = dlogits.shape()[1];
                dlogits.reshape(&[b, t, l])?; // (B, T, L)
                forward.logits.reshape(&[b, t, l])?;
                let mut dhidden = Tensor::zeros(device, out.hidden.shape(), "d_hidden")?; // (B, T, C)
                head.backward(
                    Some(&mut dhidden),
                    &dlogits,
                    &out.hidden,
                    &forward.head,
                    mode.train,
                    mode.seed,
                    grads,
                )?;
                model.encode_backward(out, &dhidden, grads)?;
                forward.logits.reshape(&[b * t, l])?;
            }
        }
        // read back once the backward is encoded (one submission for both)
        let losses = losses.to_vec().await?;
        let logits = forward.logits.to_vec().await?; // (R, L)
        let sum: f64 = forward.labelled.iter().map(|&r| losses[r] as f64).sum();
        let predicted = predicted_classes(&logits, &forward.labelled, self.labels.len());
        Ok((sum, count, predicted))
    }

    /// The mean loss of the labelled tokens of the examples `rows` (indices into the examples
    /// given to `new`) and its gradients (unclipped), with the dropout of the next step's first
    /// micro-batch; nothing changes. For checking the training against a reference.
    pub async fn gradients(&self, pipeline: &Pipeline, rows: &[usize]) -> Result<(f32, Gradients)> {
        if let Some(&bad) = rows.iter().find(|&&i| i >= self.examples.len()) {
            return Err(Error::invalid(format!(
                "gradients: example {bad} requested, {} given",
                self.examples.len()
            )));
        }
        let mode = self.run.training_mode(0);
        let mut grads = Gradients::new();
        let (sum, count, _) = self
            .micro_batch(pipeline, rows, &mode, 1, &mut grads)
            .await?;
        Ok(((sum / count.max(1) as f64) as f32, grads))
    }

    /// One epoch: every training example once, then the validation scores.
    pub async fn run_epoch(&mut self, pipeline: &mut Pipeline) -> Result<TokenEpochProgress> {
        training_loop::run_epoch(self, pipeline).await
    }

    /// Up to `max_steps` (at least one) optimizer steps of the epoch under way (a new one when
    /// none is), then, after its last step, the validation: the same computation as
    /// [`TokenClassifierTraining::run_epoch`], cut between steps. On an error the epoch under
    /// way is dropped (the next call starts that epoch again).
    pub async fn run_steps(
        &mut self,
        pipeline: &mut Pipeline,
        max_steps: usize,
    ) -> Result<StepsProgress<TokenEpochProgress>> {
        training_loop::run_steps(self, pipeline, max_steps).await
    }

    /// The true class of every labelled word of the examples `rows`, in order.
    fn word_classes(&self, rows: &[usize]) -> Vec<u32> {
        rows.iter()
            .flat_map(|&i| {
                let e = &self.examples[i];
                e.first_tokens.iter().map(move |&t| e.targets[t] as u32)
            })
            .collect()
    }

    /// Word accuracy and entity scores of the held-out examples (dropout off), None without.
    pub async fn validate(&self, pipeline: &Pipeline) -> Result<Option<(f32, EntityScores)>> {
        if self.validation.is_empty() {
            return Ok(None);
        }
        let (mut correct, mut words) = (0, 0);
        let mut counts = EntityCounts::default();
        for rows in self.validation.chunks(self.run.options.batch_size.max(32)) {
            let forward = self.forward(pipeline, rows, &RunMode::inference())?;
            let logits = forward.logits.to_vec().await?; // (R, L)
            let predicted = predicted_classes(&logits, &forward.labelled, self.labels.len());
            let mut offset = 0;
            for &i in rows {
                let n = self.examples[i].first_tokens.len();
                let truth = self.word_classes(&[i]);
                let guess = &predicted[offset..offset + n];
                offset += n;
                correct += truth.iter().zip(guess).filter(|(t, g)| t == g).count();
                words += n;
                let name = |c: &u32| self.labels[*c as usize].as_str();
                let truth: Vec<&str> = truth.iter().map(name).collect();
                let guess: Vec<&str> = guess.iter().map(name).collect();
                counts.add(&truth, &guess);
            }
        }
        Ok(Some((
            correct as f32 / words.max(1) as f32,
            counts.scores(),
        )))
    }

    /// The report of the epochs run so far.
    pub fn finish(self) -> TokenTrainReport {
        self.report
    }
}

impl EpochRun for TokenClassifierTraining {
    type Sums = TokenSums;
    type Progress = TokenEpochProgress;
    const WHAT: &'static str = "train_token_classifier";

    fn state(&mut self) -> &mut RunState<TokenSums> {
        &mut self.run
    }

    async fn train_micro_batch(&self, batch: MicroBatch<'_>, sums: &mut TokenSums) -> Result<f32> {
        let (pipeline, grads) = (batch.pipeline, batch.grads);
        let (sum, count, predicted) = self
            .micro_batch(
                pipeline,
                batch.rows,
                &batch.mode,
                batch.micro_batches,
                grads,
            )
            .await?;
        sums.loss += sum;
        sums.seen += count;
        let truth = self.word_classes(batch.rows);
        sums.correct += predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
        Ok((sum / count.max(1) as f64) as f32)
    }

    fn record_step(&mut self, trained_parameters: usize) {
        self.report.trained_parameters = trained_parameters;
    }

    async fn end_epoch(
        &mut self,
        pipeline: &Pipeline,
        epoch: usize,
        sums: TokenSums,
    ) -> Result<TokenEpochProgress> {
        let (validation_accuracy, validation_entities) = match self.validate(pipeline).await? {
            Some((accuracy, entities)) => (Some(accuracy), Some(entities)),
            None => (None, None),
        };
        let progress = TokenEpochProgress {
            epoch,
            loss: (sums.loss / sums.seen.max(1) as f64) as f32,
            accuracy: sums.correct as f32 / sums.seen.max(1) as f32,
            validation_accuracy,
            validation_entities,
        };
        self.report.optimizer_state_bytes = self.run.optimizer.state_bytes();
        self.report.epochs.push(progress.clone());
        Ok(progress)
    }
}

/// The argmax class of each row `rows` of logits (R, L).
fn predicted_classes(logits: &[f32], rows: &[usize], labels: usize) -> Vec<u32> {
    rows.iter()
        .map(|&r| argmax(&logits[r * labels..(r + 1) * labels]) as u32)
        .collect()
}

/// The hidden state of every labelled token of every example `(N_all, C)` row-major, in
/// example then word order, computed once with the encoder in inference mode.
async fn labelled_token_features(
    pipeline: &Pipeline,
    examples: &[AlignedWords],
) -> Result<Vec<f32>> {
    let c = pipeline.hidden_size();
    let device = pipeline.device();
    let mut rows = Vec::new();
    for chunk in examples.chunks(pipeline.read.batch_size.max(1)) {
        let encodings: Vec<Encoding> = chunk.iter().map(|e| e.encoding.clone()).collect();
        let batch = EncoderInput::from_encodings(device, &encodings)?;
        let seq = batch.seq;
        let out = pipeline.model.encode(&batch, &RunMode::inference())?;
        let hidden = out.hidden.to_vec().await?; // (B, T, C)
        for (b, example) in chunk.iter().enumerate() {
            for &t in &example.first_tokens {
                let at = (b * seq + t) * c;
                rows.extend_from_slice(&hidden[at..at + c]);
            }
        }
    }
    Ok(rows)
}

impl Pipeline {
    /// Trains a new token classifier for the examples' labels; `on_progress` sees every epoch.
    pub async fn train_token_classifier(
        &mut self,
        examples: &[WordExample],
        options: TrainOptions,
        mut on_progress: impl FnMut(&TokenEpochProgress),
    ) -> Result<TokenTrainReport> {
        let epochs = options.epochs;
        let mut run = TokenClassifierTraining::new(self, examples, options).await?;
        for _ in 0..epochs {
            let progress = run.run_epoch(self).await?;
            on_progress(&progress);
        }
        Ok(run.finish())
    }
}
