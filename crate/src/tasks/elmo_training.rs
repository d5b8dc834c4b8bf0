//! The task of training a sentence classifier on ELMo features ([`ElmoClassifier`], whose
//! forward and backward are the model's, `models/elmo/classifier.rs`): what `webnlu elmo-train`
//! runs and what the browser's `elmo.trainClassifier` runs, so the two give the same epochs for
//! the same sentences, split and seed. Built on `crate::train` as BERT's fine-tuning is: AdamW
//! with the Hugging Face Trainer's decay groups ([`ElmoOptimizer`]: no weight decay on biases),
//! the accuracy of `train::metrics`, the NaN guard `check_finite_loss` after every step, and
//! [`StepsProgress`] for an epoch taken a few steps at a time ([`ElmoClassifierRun::run_steps`],
//! what the browser does to report progress and stop within an epoch), and the seeded shuffle
//! of `train::split` for the split and each epoch's order. The learning rate is constant (no
//! schedule). The options are [`ElmoTrainOptions`] (`elmo_train_options.rs`, the one type JS and
//! the CLI fill); the split is by counts ([`shuffle_and_split`]: the CLI's `--train N --test M`)
//! or by share ([`ElmoTrainOptions::split`]: JS's `validation`).
//!
//! ```text
//! labelled sentences ─ shuffle(seed) ─ first N train, next M held out   (shuffle_and_split)
//! start:  pooled layers (K, B, 2P) of every training batch under the initial biLM, once
//!         ─ FeatureScaling fitted on them; head / mix: the held-out batches too
//! epoch e: head / mix:  shuffle the cached batches (seed + e) ─ one AdamW step each
//!          end to end:  shuffle the training sentences (seed + e) ─ batches ─ biLM forward
//!                       with trace ─ step through head, mix and biLM
//!          then the held-out loss and accuracy (end to end: under the updated biLM)
//! step:   gradients of the batch's mean loss (model) ─ AdamW on the head, [the mix], [the biLM]
//! ```

use crate::device::Device;
use crate::models::elmo::classifier::{
    BatchResult, ElmoClassifier, ElmoHeadGrads, ElmoTraining, FeatureScaling,
};
use crate::models::elmo::weights::ElmoWeights;
use crate::models::elmo::ElmoBiLm;
use crate::ops::optimizer::AdamWConfig;
use crate::tasks::elmo_examples::RatedSentence;
use crate::tasks::elmo_training_memory::{ElmoBatchShape, ElmoTrainingMemory};
use crate::tasks::training_loop::StepsProgress;
use crate::tensor::Tensor;
use crate::train::{check_finite_loss, AdamW, ParameterUpdate, SplitMix64};
use crate::{Error, Result};

pub use super::elmo_train_options::ElmoTrainOptions;

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

/// `examples` shuffled with `seed` (`SplitMix64::shuffle`, as `train::train_validation_split`
/// shuffles: with `train + held_out` = all of them, the held-out ones are the ones it holds out
/// with that fraction); the first `train` of them train, the next `held_out` are held out (the
/// rest are left out). An error if there are fewer than `train + held_out`.
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
    SplitMix64::new(seed).shuffle(&mut examples);
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

/// AdamW over an ELMo classifier's parameters (`train::AdamW`, the Trainer's decay groups by
/// parameter name): the head's weight and bias, the mix (scalars and gamma) unless only the head
/// trains, and end to end every biLM parameter (named `elmo.` + AllenNLP's name). One optimizer
/// step per batch, at a constant learning rate.
pub struct ElmoOptimizer {
    adamw: AdamW,
    learning_rate: f32,
}

impl ElmoOptimizer {
    /// AdamW at `learning_rate`, the other settings `AdamWConfig::default()`.
    pub fn new(learning_rate: f32) -> ElmoOptimizer {
        ElmoOptimizer {
            adamw: AdamW::new(AdamWConfig {
                lr: learning_rate,
                ..AdamWConfig::default()
            }),
            learning_rate,
        }
    }

    /// Optimizer steps taken so far.
    pub fn steps(&self) -> u64 {
        self.adamw.steps()
    }

    /// One step on precomputed pooled layers (K, B, 2P) ([`ElmoTraining::Head`] or
    /// [`ElmoTraining::Mix`]; end to end needs the sentences:
    /// [`ElmoOptimizer::train_step_end_to_end`]). Returns the batch's measurement before the
    /// update.
    pub fn train_step(
        &mut self,
        classifier: &mut ElmoClassifier,
        pooled: &[f32],
        labels: &[u32],
    ) -> Result<BatchResult> {
        if classifier.training() == ElmoTraining::EndToEnd {
            return Err(Error::invalid(
                "ElmoClassifier: end-to-end training steps take sentences (train_step_end_to_end)",
            ));
        }
        let (result, grads, _) = classifier.gradients(pooled, labels, false)?;
        self.step(classifier, &grads, None)?;
        Ok(result)
    }

    /// One end-to-end step: the gradients of the head, the mix and the whole biLM
    /// ([`ElmoClassifier::end_to_end_gradients`]), then AdamW on all of them.
    pub async fn train_step_end_to_end(
        &mut self,
        classifier: &mut ElmoClassifier,
        bilm: &mut ElmoBiLm,
        sentences: &[Vec<&str>],
        labels: &[u32],
    ) -> Result<BatchResult> {
        let (result, grads, bilm_grads) = classifier
            .end_to_end_gradients(bilm, sentences, labels)
            .await?;
        self.step(classifier, &grads, Some((bilm, &bilm_grads)))?;
        Ok(result)
    }

    /// One AdamW step of the classifier's trained parameters with `grads`, and of the biLM's
    /// with `bilm`'s gradients when given.
    fn step(
        &mut self,
        classifier: &mut ElmoClassifier,
        grads: &ElmoHeadGrads,
        bilm: Option<(&mut ElmoBiLm, &ElmoWeights)>,
    ) -> Result<()> {
        let trains_mix = classifier.training() != ElmoTraining::Head;
        let mut mix = classifier.mix_parameters()?; // (K + 1)
        let mut mix_grad = grads.mix.scalars.clone();
        mix_grad.push(grads.mix.gamma);
        let mix_grad =
            Tensor::from_vec(&Device::Cpu, &[mix_grad.len()], mix_grad, "scalar_mix.grad")?; // (K + 1)
        let mut names = vec![
            "elmo_classifier.weight".to_string(),
            "elmo_classifier.bias".to_string(),
        ];
        let mut updates = vec![
            ParameterUpdate {
                value: &mut classifier.weight,
                grad: &grads.weight,
            },
            ParameterUpdate {
                value: &mut classifier.bias,
                grad: &grads.bias,
            },
        ];
        if trains_mix {
            names.push("scalar_mix".to_string());
            updates.push(ParameterUpdate {
                value: &mut mix,
                grad: &mix_grad,
            });
        }
        let mut bilm_weights = bilm.map(|(bilm, grads)| (bilm.weights_mut(), grads.named()));
        if let Some((weights, bilm_grads)) = bilm_weights.as_mut() {
            for ((name, value), (_, grad)) in weights.named_mut().into_iter().zip(bilm_grads.iter())
            {
                names.push(format!("elmo.{name}"));
                updates.push(ParameterUpdate { value, grad });
            }
        }
        self.adamw
            .step_named(self.learning_rate, &names, &mut updates)?;
        drop(updates);
        if trains_mix {
            classifier.set_mix_parameters(&mix)?;
        }
        Ok(())
    }
}

/// An epoch under way between two calls of [`ElmoClassifierRun::run_steps`]: its number, the
/// batches done and what they measured.
struct EpochUnderWay {
    epoch: usize,
    done: usize,
    seen: BatchResult,
}

/// A training run in progress.
pub struct ElmoClassifierRun {
    pub classifier: ElmoClassifier,
    optimizer: ElmoOptimizer,
    options: ElmoTrainOptions,
    train: Vec<RatedSentence>,
    held_out: Vec<RatedSentence>,
    /// head / mix: every training batch, pooled under the frozen biLM
    train_cache: Vec<PooledBatch>,
    /// head / mix: every held-out batch
    held_out_cache: Vec<PooledBatch>,
    chance: Option<f64>,
    epochs_done: usize,
    under_way: Option<EpochUnderWay>,
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
        options.validate()?;
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
        let largest = (train
            .chunks(options.batch_size)
            .chain(held_out.chunks(options.batch_size)))
        .map(|batch| ElmoBatchShape {
            sentences: batch.len(),
            tokens: batch.iter().map(|e| e.tokens.len()).max().unwrap_or(0) + 2,
        })
        .max_by_key(|shape| (shape.sentences * shape.tokens, shape.sentences))
        .expect("at least one training sentence, checked above");
        ElmoTrainingMemory::estimate(
            bilm,
            classes,
            options.training,
            largest,
            train.len(),
            held_out.len(),
        )
        .check(bilm.device())?;
        let mut classifier = ElmoClassifier::new(bilm, classes, options.training, options.seed)?;
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
            optimizer: ElmoOptimizer::new(options.learning_rate),
            options,
            train,
            held_out,
            train_cache,
            held_out_cache,
            chance,
            epochs_done: 0,
            under_way: None,
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
    /// error naming the epoch and step.
    pub async fn run_epoch(&mut self, bilm: &mut ElmoBiLm) -> Result<ElmoEpochReport> {
        self.run_steps(bilm, usize::MAX)
            .await?
            .into_epoch("ELMo training")
    }

    /// Optimizer steps (one per batch) in an epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.train.len().div_ceil(self.options.batch_size)
    }

    /// Up to `max_steps` (at least one) optimizer steps of the epoch under way (a new one when
    /// none is), then, after its last step, the held-out measurement: the same computation as
    /// [`ElmoClassifierRun::run_epoch`], cut between steps. On an error the epoch under way is
    /// dropped (the steps it took stay in the classifier).
    pub async fn run_steps(
        &mut self,
        bilm: &mut ElmoBiLm,
        max_steps: usize,
    ) -> Result<StepsProgress<ElmoEpochReport>> {
        let mut under_way = match self.under_way.take() {
            Some(under_way) => under_way,
            None => self.start_epoch(),
        };
        let epoch = under_way.epoch;
        let total = self.steps_per_epoch();
        let end = under_way.done.saturating_add(max_steps.max(1)).min(total);
        let batch_size = self.options.batch_size;
        for b in under_way.done..end {
            let result = if self.options.training == ElmoTraining::EndToEnd {
                let batch =
                    &self.train[b * batch_size..((b + 1) * batch_size).min(self.train.len())];
                self.optimizer
                    .train_step_end_to_end(
                        &mut self.classifier,
                        bilm,
                        &words_of(batch),
                        &labels_of(batch),
                    )
                    .await?
            } else {
                let (pooled, labels) = &self.train_cache[b];
                self.optimizer
                    .train_step(&mut self.classifier, pooled, labels)?
            };
            check_finite_loss(result.mean_loss() as f32, epoch, self.optimizer.steps())?;
            under_way.seen.add(result);
            under_way.done = b + 1;
        }
        if under_way.done < total {
            let done = under_way.done;
            self.under_way = Some(under_way);
            return Ok(StepsProgress::Running { epoch, done, total });
        }
        let seen = under_way.seen;
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
        Ok(StepsProgress::EpochDone(ElmoEpochReport {
            epoch,
            train_loss: seen.mean_loss(),
            train_accuracy: seen.accuracy(),
            test_loss: has_held_out.then(|| held.mean_loss()),
            test_accuracy: has_held_out.then(|| held.accuracy()),
            test_chance: self.chance,
            mix_weights: self.classifier.mix.weights(),
            mix_gamma: self.classifier.mix.gamma,
        }))
    }

    /// The next epoch, no step taken: the training batches shuffled with the seed + epoch (end
    /// to end the sentences, which are then read in batches; else the cached batches).
    fn start_epoch(&mut self) -> EpochUnderWay {
        let epoch = self.epochs_done + 1;
        let order_seed = self.options.seed.wrapping_add(epoch as u64);
        if self.options.training == ElmoTraining::EndToEnd {
            SplitMix64::new(order_seed).shuffle(&mut self.train);
        } else {
            SplitMix64::new(order_seed).shuffle(&mut self.train_cache);
        }
        EpochUnderWay {
            epoch,
            done: 0,
            seen: BatchResult::default(),
        }
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
