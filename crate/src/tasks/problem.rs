//! What a sequence classifier predicts, with transformers' names (`config.problem_type`):
//!
//! | problem                      | head outputs        | targets of an example          | loss                 | scores            |
//! |------------------------------|---------------------|--------------------------------|----------------------|-------------------|
//! | `single_label_classification`| L logits            | one class of L                 | cross-entropy        | softmax           |
//! | `regression`                 | 1 value             | a number                       | MSE                  | the value itself  |
//! | `multi_label_classification` | L logits            | any subset of the L labels     | BCE with logits      | sigmoid per label |
//!
//! An example's label is read accordingly: a class name, a number, or the names of its labels
//! separated by commas (none: an empty label). Validation reports accuracy for single-label
//! classification, exact-match accuracy (the predicted set, sigmoid >= 0.5, equals the true one)
//! for multi-label, and the mean absolute error and Pearson's correlation for regression.

use crate::io::ModelFiles;
use crate::{Error, Result};

use super::examples::{label_classes, Example};

/// The config.json key transformers reads to choose the loss.
pub const PROBLEM_TYPE_KEY: &str = "problem_type";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProblemType {
    #[default]
    SingleLabel,
    Regression,
    MultiLabel,
}

impl std::str::FromStr for ProblemType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "single_label_classification" | "single-label" | "classification" => {
                Ok(ProblemType::SingleLabel)
            }
            "regression" => Ok(ProblemType::Regression),
            "multi_label_classification" | "multi-label" | "multi_label" => {
                Ok(ProblemType::MultiLabel)
            }
            other => Err(Error::invalid(format!(
                "the task must be classification, regression or multi-label, found {other:?}"
            ))),
        }
    }
}

impl ProblemType {
    /// transformers' name (`config.problem_type`).
    pub fn name(self) -> &'static str {
        match self {
            ProblemType::SingleLabel => "single_label_classification",
            ProblemType::Regression => "regression",
            ProblemType::MultiLabel => "multi_label_classification",
        }
    }

    /// `problem_type` of config.json; without it, transformers' rule at inference: one label is
    /// a regression, more are single-label classification.
    pub fn from_config(files: &ModelFiles, labels: usize) -> Result<Self> {
        let stated = files
            .get("config.json")
            .map(serde_json::from_slice::<serde_json::Value>)
            .transpose()
            .map_err(|e| Error::format(format!("{}/config.json", files.source), e.to_string()))?
            .and_then(|v| {
                v.get(PROBLEM_TYPE_KEY)
                    .and_then(|p| p.as_str())
                    .map(String::from)
            });
        match stated {
            Some(name) => name.parse(),
            None if labels == 1 => Ok(ProblemType::Regression),
            None => Ok(ProblemType::SingleLabel),
        }
    }
}

/// What the examples ask the head to output.
#[derive(Clone, Debug, PartialEq)]
pub enum ExampleTargets {
    /// (E) the class of each example.
    Classes(Vec<u32>),
    /// (E, L) row-major: the value (regression, L = 1) or the 0/1 of each label (multi-label).
    Values(Vec<f32>),
}

/// The head's labels and each example's targets for `problem`; errors name the example.
pub fn example_targets(
    examples: &[Example],
    problem: ProblemType,
) -> Result<(Vec<String>, ExampleTargets)> {
    match problem {
        ProblemType::SingleLabel => {
            let (labels, classes) = label_classes(examples);
            if labels.len() < 2 {
                return Err(Error::invalid(format!(
                    "train_classifier: the examples have {} label(s) {labels:?}; a classifier needs at least 2",
                    labels.len()
                )));
            }
            Ok((labels, ExampleTargets::Classes(classes)))
        }
        ProblemType::Regression => {
            let values = examples
                .iter()
                .enumerate()
                .map(|(e, example)| match example.label.trim().parse::<f32>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    _ => Err(Error::invalid(format!(
                        "train_classifier (regression): the label of example {e} is {:?}, not a number",
                        example.label
                    ))),
                })
                .collect::<Result<Vec<f32>>>()?;
            Ok((vec!["LABEL_0".to_string()], ExampleTargets::Values(values)))
        }
        ProblemType::MultiLabel => {
            let sets: Vec<Vec<&str>> = examples.iter().map(|e| label_set(&e.label)).collect();
            let mut labels: Vec<String> = sets.iter().flatten().map(|l| l.to_string()).collect();
            crate::sort::sort_dedup(&mut labels);
            if labels.len() < 2 {
                return Err(Error::invalid(format!(
                    "train_classifier (multi-label): the examples have {} label(s) {labels:?}; \
                     give at least 2 (an example's labels separated by commas)",
                    labels.len()
                )));
            }
            let mut values = vec![0f32; examples.len() * labels.len()];
            for (e, set) in sets.iter().enumerate() {
                for label in set {
                    let l = labels
                        .binary_search_by(|x| x.as_str().cmp(label))
                        .expect("label is in the list");
                    values[e * labels.len() + l] = 1.0;
                }
            }
            Ok((labels, ExampleTargets::Values(values)))
        }
    }
}

/// The labels of a multi-label example: its label split at commas, trimmed, empty parts left out.
pub fn label_set(label: &str) -> Vec<&str> {
    label
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Mean absolute error and Pearson's correlation of predictions against truths (Pearson is
/// None when either side has no variance or there are fewer than 2 values).
pub fn regression_scores(predicted: &[f32], truth: &[f32]) -> (f32, Option<f32>) {
    let n = predicted.len().min(truth.len());
    if n == 0 {
        return (0.0, None);
    }
    let (p, t) = (&predicted[..n], &truth[..n]);
    let mae = p
        .iter()
        .zip(t)
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / n as f64;
    let mean = |x: &[f32]| x.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let (mp, mt) = (mean(p), mean(t));
    let (mut cov, mut vp, mut vt) = (0f64, 0f64, 0f64);
    for (&a, &b) in p.iter().zip(t) {
        let (da, db) = (a as f64 - mp, b as f64 - mt);
        cov += da * db;
        vp += da * da;
        vt += db * db;
    }
    let pearson = (n >= 2 && vp > 0.0 && vt > 0.0).then(|| (cov / (vp * vt).sqrt()) as f32);
    (mae as f32, pearson)
}

/// Examples of logits (E, L) whose predicted label set (logit > 0, i.e. sigmoid > 0.5) equals
/// the true one (targets 0/1, (E, L)).
pub fn exact_matches(logits: &[f32], targets: &[f32], labels: usize) -> usize {
    logits
        .chunks(labels)
        .zip(targets.chunks(labels))
        .filter(|(row, truth)| {
            row.iter()
                .zip(*truth)
                .all(|(&x, &t)| (x > 0.0) == (t > 0.5))
        })
        .count()
}
