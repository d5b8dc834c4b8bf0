//! The options of a fine-tuning run of the tasks (`train_classifier`, `train_token_classifier`,
//! `train_masked_lm`): one type for every way in. JavaScript's options object is read into it
//! by serde ([`TrainOptions::from_json`]: camelCase names, the defaults for what is left out, an
//! unknown name an error listing the valid ones); the CLI fills the same fields from its
//! arguments; both then call [`TrainOptions::validate`], the one place the ranges are checked.
//! The defaults are the optimizer's (AdamW, linear schedule, clipping, as the Hugging Face
//! Trainer sets them up), the run's (epochs, batches, split, seed) and what the classifier reads.
//!
//! | JS name (CLI flag) | field | default | allowed |
//! | --- | --- | --- | --- |
//! | `freeze` (`--freeze`) | `freeze` | `"head"` | `head`, `top:K` (1 <= K <= layers), `all` |
//! | `epochs` | `epochs` | 3 | >= 1 |
//! | `learningRate` | `learning_rate` | 1e-3 | finite, >= 0 |
//! | `batchSize` | `batch_size` | 32 | >= 1 |
//! | `accumulation` | `accumulation_steps` | 1 | >= 1 |
//! | `validation` | `validation_fraction` | 0.1 | [0, 1) |
//! | `seed` | `seed` | 42 | any integer >= 0 |
//! | `weightDecay` | `weight_decay` | 0.01 | finite, >= 0 |
//! | `warmupRatio` | `warmup_ratio` | 0 | [0, 1] |
//! | `maxGradNorm` | `max_grad_norm` | 1 | > 0, or null (CLI `none`): no clipping |
//! | `pooling` | `classifier_input` | the model's | `cls`, `mean` (sequence classifiers) |
//! | `truncate` | `long_texts` | false | a boolean (sequence classifiers) |
//! | `task` | `problem` | classification | `classification`, `regression`, `multi_label` |
//! | `mlmProbability` | `mlm_probability` | 0.15 | (0, 1) (masked-LM runs) |

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::models::Freeze;
use crate::{Error, Result};

use super::classifier::ClassifierInput;
use super::problem::ProblemType;
use super::windows::LongTexts;

/// The masking probability of masked-LM training when `mlm_probability` is `None` (BERT's).
pub const DEFAULT_MLM_PROBABILITY: f32 = 0.15;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TrainOptions {
    #[serde(deserialize_with = "parsed_name")]
    pub freeze: Freeze,
    pub epochs: usize,
    /// Peak learning rate of the linear schedule.
    pub learning_rate: f32,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    #[serde(rename = "accumulation")]
    pub accumulation_steps: usize,
    /// Share of the examples held out for validation (0 = none).
    #[serde(rename = "validation")]
    pub validation_fraction: f32,
    /// Seeds the split, the batch order, the new head and dropout.
    pub seed: u64,
    /// AdamW weight decay (not on biases and LayerNorm parameters).
    pub weight_decay: f32,
    /// Share of the optimizer steps spent warming the learning rate up.
    pub warmup_ratio: f32,
    /// Global-norm gradient clipping (`None`: off; from JS `null`, while a left-out
    /// `maxGradNorm` keeps the default). The HF Trainer's default is 1.
    pub max_grad_norm: Option<f32>,
    /// Features the classifier reads; `None`: mean-pooled for sentence-embedding models
    /// (sentence-transformers' `modules.json` present), the [CLS] token otherwise.
    #[serde(rename = "pooling", deserialize_with = "optional_parsed_name")]
    pub classifier_input: Option<ClassifierInput>,
    /// How examples longer than the window are read; `None`: as the pipeline reads them
    /// (`Pipeline::read.long_texts`, the windows `classify` averages), so the model trains on
    /// what it is later asked. `Some(LongTexts::Truncate)`: the first window only (from JS
    /// `truncate: true`).
    #[serde(rename = "truncate", deserialize_with = "truncate_flag")]
    pub long_texts: Option<LongTexts>,
    /// Single-label classification, regression or multi-label classification.
    #[serde(rename = "task", deserialize_with = "parsed_name")]
    pub problem: ProblemType,
    /// Masked-LM runs only: the share of tokens chosen for prediction; `None`:
    /// [`DEFAULT_MLM_PROBABILITY`]. The other runs refuse it.
    pub mlm_probability: Option<f32>,
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
            long_texts: None,
            problem: ProblemType::SingleLabel,
            mlm_probability: None,
        }
    }
}

/// An option outside its range: the option's JS name (camelCase, as in an options object) and
/// what is wrong with its value. [`Self::message`] words it for JS; the CLI names its flag.
#[derive(Clone, Debug, PartialEq)]
pub struct OptionError {
    pub option: &'static str,
    /// E.g. "must be a positive integer (>= 1), found 0".
    pub problem: String,
}

impl OptionError {
    pub(crate) fn new(option: &'static str, problem: String) -> Self {
        OptionError { option, problem }
    }

    /// "batchSize must be a positive integer (>= 1), found 0".
    pub fn message(&self) -> String {
        format!("{} {}", self.option, self.problem)
    }
}

impl From<OptionError> for Error {
    fn from(e: OptionError) -> Error {
        Error::invalid(e.message())
    }
}

impl TrainOptions {
    /// Options from a JavaScript options object (camelCase names; absent or `null` = all
    /// defaults), validated. A misspelt name is an error naming it and listing the valid ones;
    /// a value of the wrong type an error naming the option, the value and the type expected.
    pub fn from_json(value: serde_json::Value) -> Result<TrainOptions> {
        read_validated(value, TrainOptions::validate)
    }

    /// Every range no run can go outside (those that need the model, `top:K` against its
    /// layers, are the run's). The first option out of range is the error.
    pub fn validate(&self) -> std::result::Result<(), OptionError> {
        let non_negative = |name: &'static str, value: f32| {
            if !(value.is_finite() && value >= 0.0) {
                return Err(OptionError::new(
                    name,
                    format!("must be a finite number >= 0, found {value}"),
                ));
            }
            Ok(())
        };
        if self.freeze == Freeze::Top(0) {
            return Err(OptionError::new(
                "freeze",
                "top:K must open at least one layer (K >= 1), found top:0".into(),
            ));
        }
        check_positive("epochs", self.epochs)?;
        non_negative("learningRate", self.learning_rate)?;
        check_positive("batchSize", self.batch_size)?;
        check_positive("accumulation", self.accumulation_steps)?;
        check_validation_fraction(self.validation_fraction)?;
        non_negative("weightDecay", self.weight_decay)?;
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return Err(OptionError::new(
                "warmupRatio",
                format!("must be in [0, 1], found {}", self.warmup_ratio),
            ));
        }
        if let Some(norm) = self.max_grad_norm {
            if !(norm.is_finite() && norm > 0.0) {
                return Err(OptionError::new(
                    "maxGradNorm",
                    format!(
                        "must be a positive number, or null (CLI: none) for no clipping, found {norm}"
                    ),
                ));
            }
        }
        if let Some(p) = self.mlm_probability {
            if !(p > 0.0 && p < 1.0) {
                return Err(OptionError::new(
                    "mlmProbability",
                    format!("must be in (0, 1), found {p}"),
                ));
            }
        }
        Ok(())
    }

    /// An error for a run other than masked-LM training given `mlm_probability`; `what`
    /// names the run.
    pub fn refuse_masked_lm_options(&self, what: &str) -> Result<()> {
        match self.mlm_probability {
            Some(p) => Err(Error::invalid(format!(
                "{what}: mlmProbability ({p}) is an option of masked-LM training"
            ))),
            None => Ok(()),
        }
    }
}

/// A count option (epochs, batch size, accumulation steps): at least 1.
pub(crate) fn check_positive(
    option: &'static str,
    value: usize,
) -> std::result::Result<(), OptionError> {
    if value == 0 {
        return Err(OptionError::new(
            option,
            "must be a positive integer (>= 1), found 0".into(),
        ));
    }
    Ok(())
}

/// `validation`: the share of the examples held out, in [0, 1).
/// (BERT's options hold it as f32, ELMo's as f64; the message shows the value as given.)
pub(crate) fn check_validation_fraction<F>(value: F) -> std::result::Result<(), OptionError>
where
    F: Into<f64> + Copy + std::fmt::Display,
{
    if !(0.0..1.0).contains(&value.into()) {
        return Err(OptionError::new(
            "validation",
            format!("must be the fraction of examples to hold out, in [0, 1), found {value}"),
        ));
    }
    Ok(())
}

/// [`read_options`], then `validate`: what each options type's `from_json` does.
pub(crate) fn read_validated<T: DeserializeOwned>(
    value: serde_json::Value,
    validate: impl Fn(&T) -> std::result::Result<(), OptionError>,
) -> Result<T> {
    let options = read_options(value)?;
    validate(&options)?;
    Ok(options)
}

/// An options type (`TrainOptions`, `ElmoTrainOptions`: serde, `deny_unknown_fields`, defaults)
/// from a JavaScript options object; absent or `null` = all defaults. Not validated. A misspelt
/// name is an error naming it and listing the valid ones; a value of the wrong type an error
/// naming the option, the value and the type expected.
pub(crate) fn read_options<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    let object = match value {
        serde_json::Value::Null => serde_json::Map::new(),
        serde_json::Value::Object(object) => object,
        other => {
            return Err(Error::invalid(format!(
                "the training options must be an object, found {other}"
            )))
        }
    };
    let value = serde_json::Value::Object(object);
    match T::deserialize(&value) {
        Ok(options) => Ok(options),
        Err(error) => Err(Error::invalid(name_the_option::<T>(&value, error))),
    }
}

/// serde_json's error for a value of the wrong type names no field: the option is found by
/// reading each one alone. An unknown name's error names it and lists the valid ones.
fn name_the_option<T: DeserializeOwned>(
    value: &serde_json::Value,
    error: serde_json::Error,
) -> String {
    let object = value.as_object().expect("read_options passes an object");
    for (name, option) in object {
        let mut alone = serde_json::Map::new(); // not collected: that sorts (a stable sort's copy)
        alone.insert(name.clone(), option.clone());
        let alone = serde_json::Value::Object(alone);
        if let Err(e) = T::deserialize(&alone) {
            if e.to_string().starts_with("unknown field") {
                return format!("unknown training option: {e}");
            }
            return format!("training option {name}: {e}");
        }
    }
    format!("training options: {error}")
}

/// A value read from its name (`"top:2"`, `"regression"`, `"end-to-end"`), with the type's own
/// error.
pub(crate) fn parsed_name<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr<Err = Error>,
{
    let name = String::deserialize(d)?;
    name.parse()
        .map_err(|e: Error| serde::de::Error::custom(bare(e)))
}

/// `parsed_name`, or `None` for `null`.
fn optional_parsed_name<'de, D, T>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr<Err = Error>,
{
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(name) => name
            .parse()
            .map(Some)
            .map_err(|e: Error| serde::de::Error::custom(bare(e))),
    }
}

/// `truncate: true` = the first window only; `false` or `null` = as the pipeline reads.
fn truncate_flag<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<LongTexts>, D::Error> {
    Ok(match Option::<bool>::deserialize(d)? {
        Some(true) => Some(LongTexts::Truncate),
        _ => None,
    })
}

/// An error's message without the kind's prefix ("invalid argument: ").
fn bare(error: Error) -> String {
    match error {
        Error::InvalidArgument(message) => message,
        other => other.to_string(),
    }
}
