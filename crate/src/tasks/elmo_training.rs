//! Training a sentence classifier on ELMo features ([`ElmoClassifier`]), one epoch per call:
//! what `webnlu elmo-train` runs and what the browser's `elmo.trainClassifier` runs, so the
//! two give the same epochs for the same sentences, split and seed.
//!
//! ```text
//! labelled sentences ─ shuffle(seed) ─ first N train, next M held out   (shuffle_and_split)
//! start:  pooled layers (K, B, 2P) of every training batch under the initial biLM, once
//!         ─ FeatureScaling fitted on them; head / mix: the held-out batches too
//! epoch e: head / mix:  shuffle the cached batches (seed + e) ─ one AdamW step each
//!          end to end:  shuffle the training sentences (seed + e) ─ batches ─ biLM forward
//!                       with trace ─ step through head, mix and biLM
//!          then the held-out loss and accuracy (end to end: under the updated biLM)
//! ```

use crate::models::elmo::classifier::{BatchResult, ElmoClassifier, ElmoTraining, FeatureScaling};
use crate::models::elmo::ElmoBiLm;
use crate::ops::optimizer::AdamWConfig;
use crate::tasks::elmo_examples::{shuffle, RatedSentence};
use crate::{Error, Result};

/// How a run trains.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ElmoTrainOptions {
    pub training: ElmoTraining,
    /// Sentences per step.
    pub batch_size: usize,
    /// AdamW's learning rate (the other AdamW settings are `AdamWConfig::default()`).
    pub learning_rate: f32,
    /// Seeds the head's initial weights and the order of every epoch.
    pub seed: u64,
}

impl Default for ElmoTrainOptions {
    fn default() -> Self {
        ElmoTrainOptions {
            training: ElmoTraining::Head,
            batch_size: 32,
            learning_rate: 3e-3,
            seed: 1,
        }
    }
}

/// What one epoch measured (camelCase keys when serialized, for JS).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElmoEpochReport {
    /// 1 for the first epoch.
    pub epoch: usize,
    /// Mean cross-entropy over the training sentences, each batch measured before its update.
    pub train_loss: f64,
    pub train_accuracy: f64,
    /// On the held-out sentences after the epoch (None without held-out sentences).
    pub test_loss: Option<f64>,
    pub test_accuracy: Option<f64>,
    /// The held-out share of the most frequent class (what always guessing it scores).
    pub test_chance: Option<f64>,
    /// softmax of the scalar mix's weights, one per biLM layer.
    pub mix_weights: Vec<f32>,
    pub mix_gamma: f32,
}

/// `examples` shuffled with `seed`; the first `train` of them train, the next `held_out` are
/// held out (the rest are left out). An error if there are fewer than `train + held_out`.
pub fn shuffle_and_split(
    mut examples: Vec<RatedSentence>,
    train: usize,
    held_out: usize,
    seed: u64,
) -> Result<(Vec<RatedSentence>, Vec<RatedSentence>)> {
    if examples.len() < train + held_out {
        return Err(Error::invalid(format!(
            "ELMo training: {} labelled sentences, fewer than {train} to train + {held_out} to hold out",
            examples.len()
        )));
    }
    shuffle(&mut examples, seed);
    examples.truncate(train + held_out);
    let held = examples.split_off(train);
    Ok((examples, held))
}

/// A batch's sentences as the biLM takes them.
fn words_of(batch: &[RatedSentence]) -> Vec<Vec<&str>> {
    batch
        .iter()
        .map(|e| e.tokens.iter().map(String::as_str).collect())
        .collect()
}

fn labels_of(batch: &[RatedSentence]) -> Vec<u32> {
    batch.iter().map(|e| e.label).collect()
}

/// One batch's pooled layers (K, B, 2P) and labels (B).
type PooledBatch = (Vec<f32>, Vec<u32>);

/// A training run in progress.
pub struct ElmoClassifierRun {
    pub classifier: ElmoClassifier,
    options: ElmoTrainOptions,
    train: Vec<RatedSentence>,
    held_out: Vec<RatedSentence>,
    /// head / mix: every training batch, pooled under the frozen biLM
    train_cache: Vec<PooledBatch>,
    /// head / mix: every held-out batch
    held_out_cache: Vec<PooledBatch>,
    chance: Option<f64>,
    epochs_done: usize,
}

impl ElmoClassifierRun {
    /// A new head for `classes` classes on `bilm` (which must be stateless), the features of
    /// the training sentences computed and the scaling fitted on them.
    pub async fn start(
        bilm: &ElmoBiLm,
        classes: usize,
        train: Vec<RatedSentence>,
        held_out: Vec<RatedSentence>,
        options: ElmoTrainOptions,
    ) -> Result<ElmoClassifierRun> {
        if train.is_empty() {
            return Err(Error::invalid(
                "ELMo training: no sentences to train on (give at least one labelled sentence)",
            ));
        }
        if options.batch_size == 0 {
            return Err(Error::invalid(
                "ELMo training: batch size must be at least 1",
            ));
        }
        if !(options.learning_rate.is_finite() && options.learning_rate > 0.0) {
            return Err(Error::invalid(format!(
                "ELMo training: learning rate {} is not a positive number",
                options.learning_rate
            )));
        }
        if bilm.is_stateful() {
            return Err(Error::invalid(
                "ELMo training needs a stateless biLM: the features of a sentence must not depend on the ones before it",
            ));
        }
        if let Some(e) = train
            .iter()
            .chain(&held_out)
            .find(|e| e.label as usize >= classes)
        {
            return Err(Error::invalid(format!(
                "ELMo training: label {} is not one of the {classes} classes",
                e.label
            )));
        }
        let config = AdamWConfig {
            lr: options.learning_rate,
            ..AdamWConfig::default()
        };
        let mut classifier =
            ElmoClassifier::new(bilm, classes, options.training, config, options.seed)?;
        // (K, B, 2P) per training batch under the initial biLM: they fit the scaling, and with
        // a frozen biLM every epoch reuses them.
        let mut train_cache = Vec::new();
        for batch in train.chunks(options.batch_size) {
            let pooled = ElmoClassifier::pooled_layers(bilm, &words_of(batch)).await?;
            train_cache.push((pooled, labels_of(batch)));
        }
        let batches: Vec<&[f32]> = train_cache.iter().map(|(f, _)| f.as_slice()).collect();
        classifier.set_scaling(FeatureScaling::fit(
            &batches,
            bilm.num_layers(),
            bilm.output_dim(),
        )?)?;
        let mut held_out_cache = Vec::new();
        if options.training == ElmoTraining::EndToEnd {
            train_cache.clear(); // stale after the first step
        } else {
            for batch in held_out.chunks(options.batch_size) {
                let pooled = ElmoClassifier::pooled_layers(bilm, &words_of(batch)).await?;
                held_out_cache.push((pooled, labels_of(batch)));
            }
        }
        let chance = (!held_out.is_empty()).then(|| {
            let mut counts = vec![0usize; classes];
            held_out.iter().for_each(|e| counts[e.label as usize] += 1);
            *counts.iter().max().unwrap_or(&0) as f64 / held_out.len() as f64
        });
        Ok(ElmoClassifierRun {
            classifier,
            options,
            train,
            held_out,
            train_cache,
            held_out_cache,
            chance,
            epochs_done: 0,
        })
    }

    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }
    pub fn train_sentences(&self) -> usize {
        self.train.len()
    }
    pub fn held_out_sentences(&self) -> usize {
        self.held_out.len()
    }

    /// One epoch over the training sentences, then the held-out measurement. `bilm` is the
    /// one the run started on (end to end updates its weights). A NaN or infinite loss is an
    /// error naming the epoch.
    pub async fn run_epoch(&mut self, bilm: &mut ElmoBiLm) -> Result<ElmoEpochReport> {
        let epoch = self.epochs_done + 1;
        let order_seed = self.options.seed.wrapping_add(epoch as u64);
        let mut seen = BatchResult::default();
        if self.options.training == ElmoTraining::EndToEnd {
            shuffle(&mut self.train, order_seed);
            for batch in self.train.chunks(self.options.batch_size) {
                let step = self
                    .classifier
                    .train_step_end_to_end(bilm, &words_of(batch), &labels_of(batch))
                    .await?;
                seen.add(step);
            }
        } else {
            shuffle(&mut self.train_cache, order_seed);
            for (pooled, labels) in &self.train_cache {
                seen.add(self.classifier.train_step(pooled, labels)?);
            }
        }
        if !seen.mean_loss().is_finite() {
            return Err(Error::invalid(format!(
                "ELMo training: the loss became {} in epoch {epoch}; lower the learning rate",
                seen.mean_loss()
            )));
        }
        let mut held = BatchResult::default();
        if self.options.training == ElmoTraining::EndToEnd {
            for batch in self.held_out.chunks(self.options.batch_size) {
                let pooled = ElmoClassifier::pooled_layers(bilm, &words_of(batch)).await?;
                held.add(self.classifier.evaluate(&pooled, &labels_of(batch))?);
            }
        } else {
            for (pooled, labels) in &self.held_out_cache {
                held.add(self.classifier.evaluate(pooled, labels)?);
            }
        }
        self.epochs_done = epoch;
        let has_held_out = !self.held_out.is_empty();
        Ok(ElmoEpochReport {
            epoch,
            train_loss: seen.mean_loss(),
            train_accuracy: seen.accuracy(),
            test_loss: has_held_out.then(|| held.mean_loss()),
            test_accuracy: has_held_out.then(|| held.accuracy()),
            test_chance: self.chance,
            mix_weights: self.classifier.mix.weights(),
            mix_gamma: self.classifier.mix.gamma,
        })
    }

    /// Class probabilities (B, classes) of tokenized sentences under the current biLM and head.
    pub async fn predict(&self, bilm: &ElmoBiLm, sentences: &[Vec<&str>]) -> Result<Vec<f32>> {
        if sentences.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(sentences.len() * self.classifier.classes());
        for batch in sentences.chunks(self.options.batch_size) {
            let pooled = ElmoClassifier::pooled_layers(bilm, batch).await?;
            out.extend(self.classifier.probabilities(&pooled, batch.len())?);
        }
        Ok(out)
    }
}
