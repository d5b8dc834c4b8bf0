//! The options of an ELMo classifier's training run (`tasks::elmo_training`): one type for
//! every way in, as [`TrainOptions`](super::TrainOptions) is BERT's. JavaScript's options object
//! of `elmo.trainClassifier` is read into it by serde ([`ElmoTrainOptions::from_json`]:
//! camelCase names, the defaults for what is left out, an unknown name an error listing the valid
//! ones); `webnlu elmo-train` fills the same fields from its flags; both then call
//! [`ElmoTrainOptions::validate`], the one place the ranges are checked.
//!
//! | JS name (CLI flag) | field | default | allowed |
//! | --- | --- | --- | --- |
//! | `training` (`--mix`, `--end-to-end`) | `training` | `"head"` | `head`, `mix`, `end-to-end` |
//! | `epochs` (`--epochs`) | `epochs` | 10 | >= 1 |
//! | `batchSize` (`--batch-size`) | `batch_size` | 32 | >= 1 |
//! | `learningRate` (`--lr`) | `learning_rate` | 3e-3 | finite, > 0 |
//! | `seed` (`--seed`) | `seed` | 1 | any integer >= 0 |
//! | `validation` (JS only) | `validation_fraction` | 0.1 | [0, 1) |
//!
//! The held-out sentences: JavaScript gives a share of its examples (`validation`,
//! [`ElmoTrainOptions::split`]); the CLI picks counts out of a large file instead (`--train N
//! --test M`, its own arguments: the first N of the seeded shuffle train, the next M are held
//! out, the rest are left out) and leaves `validation_fraction` at its default, unused.

use serde::Deserialize;

use crate::models::elmo::classifier::ElmoTraining;
use crate::Result;

use super::elmo_examples::RatedSentence;
use super::elmo_training::shuffle_and_split;
use super::train_options::{
    check_positive, check_validation_fraction, parsed_name, read_validated, OptionError,
};

/// How an ELMo classifier trains.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ElmoTrainOptions {
    /// Which parameters learn: the head, the head and the scalar mix, or also the biLM.
    #[serde(deserialize_with = "parsed_name")]
    pub training: ElmoTraining,
    /// Passes over the training sentences (the caller runs them: the CLI's loop, JS's run).
    pub epochs: usize,
    /// Sentences per step.
    pub batch_size: usize,
    /// AdamW's learning rate, constant (the other AdamW settings are `AdamWConfig::default()`).
    pub learning_rate: f32,
    /// Seeds the split, the head's initial weights and the order of every epoch.
    pub seed: u64,
    /// Share of the examples held out by [`ElmoTrainOptions::split`] (JS's `validation`; the
    /// CLI holds out `--test M` sentences instead).
    #[serde(rename = "validation")]
    pub validation_fraction: f64,
}

impl Default for ElmoTrainOptions {
    fn default() -> Self {
        ElmoTrainOptions {
            training: ElmoTraining::Head,
            epochs: 10,
            batch_size: 32,
            learning_rate: 3e-3,
            seed: 1,
            validation_fraction: 0.1,
        }
    }
}

impl ElmoTrainOptions {
    /// Options from a JavaScript options object (camelCase names; absent or `null` = all
    /// defaults), validated. A misspelt name is an error naming it and listing the valid ones;
    /// a value of the wrong type an error naming the option, the value and the type expected.
    pub fn from_json(value: serde_json::Value) -> Result<ElmoTrainOptions> {
        read_validated(value, ElmoTrainOptions::validate)
    }

    /// Every range a run needs. The first option out of range is the error.
    pub fn validate(&self) -> std::result::Result<(), OptionError> {
        check_positive("epochs", self.epochs)?;
        check_positive("batchSize", self.batch_size)?;
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(OptionError::new(
                "learningRate",
                format!("must be a finite number > 0, found {}", self.learning_rate),
            ));
        }
        check_validation_fraction(self.validation_fraction)?;
        Ok(())
    }

    /// `examples` shuffled with `seed`, the last `round(validation_fraction * n)` of them held
    /// out: (training sentences, held-out sentences), as [`shuffle_and_split`] with those
    /// counts (so `webnlu elmo-train --train N --test M` on the same n = N + M sentences holds
    /// out the same ones when M = round(validation * n)).
    pub fn split(
        &self,
        examples: Vec<RatedSentence>,
    ) -> Result<(Vec<RatedSentence>, Vec<RatedSentence>)> {
        let n = examples.len();
        let held_out = (self.validation_fraction * n as f64).round() as usize;
        shuffle_and_split(examples, n - held_out, held_out, self.seed)
    }
}
