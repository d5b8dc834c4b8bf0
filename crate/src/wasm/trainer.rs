//! wasm exports of training: [`WasmTrainer`], one run of a sequence classifier, a token
//! classifier or the masked-LM head, made by `WasmModel.trainer` / `token_trainer` /
//! `mlm_trainer` (model.rs); JavaScript drives its epochs and steps. Also how the training
//! options cross the boundary (into `TrainOptions`) and the records the epoch reports cross as.

use std::cell::RefCell;
use std::rc::Rc;

use super::promise;
use js_sys::{Float32Array, Promise};
use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::model::*;
use super::to_js_error;
use crate::tasks::{
    ClassifierTraining, EpochProgress, Example, MaskedLmEpochProgress, MaskedLmReport,
    MaskedLmTraining, StepsProgress, TokenClassifierTraining, TokenEpochProgress, TokenTrainReport,
    TrainOptions, TrainReport, WordExample,
};
use crate::train::entities::{EntityScore, EntityScores};

#[derive(Deserialize)]
pub(super) struct RawExample {
    pub(super) text: String,
    #[serde(default)]
    pub(super) pair: Option<String>,
    pub(super) label: serde_json::Value,
}

/// The training options of a JS options object (see `TrainOptions::from_json`): every option
/// is read and checked there, once.
pub(super) fn train_options(options: &JsValue) -> Result<TrainOptions, JsError> {
    let value: serde_json::Value = from_js(options, "options")?;
    TrainOptions::from_json(value).map_err(to_js_error)
}

pub(super) enum TrainerState {
    PendingSequence {
        examples: Vec<Example>,
        options: TrainOptions,
        /// head-only: the features computed elsewhere (`set_features`), else computed here
        features: Option<Vec<f32>>,
    },
    PendingTokens {
        examples: Vec<WordExample>,
        options: TrainOptions,
    },
    PendingMaskedLm {
        texts: Vec<String>,
        options: TrainOptions,
    },
    Sequence(Box<ClassifierTraining>),
    Tokens(Box<TokenClassifierTraining>),
    MaskedLm(Box<MaskedLmTraining>),
    Finished,
}

/// A training run: JavaScript calls `run_epoch()` (or `run_steps(n)`) until it has the epochs it wants.
#[wasm_bindgen]
pub struct WasmTrainer {
    pub(super) pipeline: SharedPipeline,
    pub(super) state: Rc<RefCell<TrainerState>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JsEpoch {
    pub(super) epoch: usize,
    pub(super) loss: f32,
    pub(super) accuracy: Option<f32>,
    pub(super) validation_accuracy: Option<f32>,
    pub(super) validation_mae: Option<f32>,
    pub(super) validation_pearson: Option<f32>,
    /// What the run costs, as the engine allocated it (the run's report).
    pub(super) costs: JsTrainingCosts,
}

/// The parameter values a run trains and the bytes it holds for that: AdamW's state
/// (`optimizer_state_bytes`: its two moments per trained value) and, head-only, the cached
/// encoder features.
#[derive(serde::Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct JsTrainingCosts {
    pub(super) trained_parameters: usize,
    pub(super) optimizer_state_bytes: u64,
    pub(super) feature_cache_bytes: u64,
}

impl From<&TrainReport> for JsTrainingCosts {
    fn from(r: &TrainReport) -> Self {
        JsTrainingCosts {
            trained_parameters: r.trained_parameters,
            optimizer_state_bytes: r.optimizer_state_bytes,
            feature_cache_bytes: r.feature_cache_bytes,
        }
    }
}

impl From<&TokenTrainReport> for JsTrainingCosts {
    fn from(r: &TokenTrainReport) -> Self {
        JsTrainingCosts {
            trained_parameters: r.trained_parameters,
            optimizer_state_bytes: r.optimizer_state_bytes,
            feature_cache_bytes: r.feature_cache_bytes,
        }
    }
}

impl From<&MaskedLmReport> for JsTrainingCosts {
    /// A masked-LM run caches no features.
    fn from(r: &MaskedLmReport) -> Self {
        JsTrainingCosts {
            trained_parameters: r.trained_parameters,
            optimizer_state_bytes: r.optimizer_state_bytes,
            feature_cache_bytes: 0,
        }
    }
}

/// A token-classification epoch: `JsEpoch`'s fields (accuracy of the words) and the held-out
/// entity-level scores.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JsTokenEpoch {
    pub(super) epoch: usize,
    pub(super) loss: f32,
    pub(super) accuracy: f32,
    pub(super) validation_accuracy: Option<f32>,
    pub(super) validation_entities: Option<JsEntityScores>,
    /// What the run costs, as the engine allocated it (the run's report).
    pub(super) costs: JsTrainingCosts,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JsEntityScores {
    pub(super) overall: EntityScore,
    pub(super) per_type: std::collections::BTreeMap<String, EntityScore>,
}

/// A masked-LM epoch: the training loss and the held-out loss and perplexity.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct JsMaskedLmEpoch {
    pub(super) epoch: usize,
    pub(super) loss: f32,
    pub(super) validation_loss: Option<f32>,
    pub(super) validation_perplexity: Option<f32>,
    /// What the run costs, as the engine allocated it (the run's report).
    pub(super) costs: JsTrainingCosts,
}

impl From<MaskedLmEpochProgress> for JsMaskedLmEpoch {
    fn from(p: MaskedLmEpochProgress) -> Self {
        JsMaskedLmEpoch {
            epoch: p.epoch,
            loss: p.loss,
            validation_loss: p.validation_loss,
            validation_perplexity: p.validation_perplexity,
            costs: JsTrainingCosts::default(),
        }
    }
}

impl From<TokenEpochProgress> for JsTokenEpoch {
    fn from(p: TokenEpochProgress) -> Self {
        JsTokenEpoch {
            epoch: p.epoch,
            loss: p.loss,
            accuracy: p.accuracy,
            validation_accuracy: p.validation_accuracy,
            validation_entities: p.validation_entities.map(|e: EntityScores| JsEntityScores {
                overall: e.overall,
                per_type: e.per_type,
            }),
            costs: JsTrainingCosts::default(),
        }
    }
}

impl From<EpochProgress> for JsEpoch {
    fn from(p: EpochProgress) -> Self {
        JsEpoch {
            epoch: p.epoch,
            loss: p.loss,
            accuracy: p.accuracy,
            validation_accuracy: p.validation_accuracy,
            validation_mae: p.validation_mae,
            validation_pearson: p.validation_pearson,
            costs: JsTrainingCosts::default(),
        }
    }
}

/// `{phase: "training", epoch, done, total}`: where an epoch under way is (`run_steps`).
pub(super) fn step_report<P>(progress: &StepsProgress<P>) -> Result<JsValue, JsValue> {
    match progress {
        StepsProgress::Running { epoch, done, total } => to_js(&serde_json::json!({
            "phase": "training", "epoch": epoch, "done": done, "total": total,
        })),
        StepsProgress::EpochDone(_) => Err(JsError::new("step_report: the epoch is done").into()),
    }
}

/// What a call of some steps resolves to: the step report while the epoch goes on, else the
/// epoch's report made by `epoch_report`.
fn steps_report<P, J: serde::Serialize>(
    result: crate::Result<StepsProgress<P>>,
    epoch_report: impl FnOnce(P) -> J,
) -> Result<JsValue, JsValue> {
    match result.map_err(js_error)? {
        StepsProgress::EpochDone(progress) => to_js(&epoch_report(progress)),
        running => step_report(&running),
    }
}

#[wasm_bindgen]
impl WasmTrainer {
    /// `Promise<{epoch, loss, accuracy, validationAccuracy}>` of the next epoch, with
    /// `validationEntities: {overall, perType}` for a token classifier (the first call also
    /// prepares the run: new classifier, tokens, cached features for head-only).
    pub fn run_epoch(&self) -> Promise {
        self.run_steps(usize::MAX)
    }

    /// Up to `max_steps` optimizer steps (at least one) of the epoch under way (any of the
    /// three runs): `Promise<{phase: "training", epoch, done, total}>` (steps of the epoch)
    /// while it goes on, the epoch's report (as `run_epoch`'s) after its last step. The same
    /// training as whole epochs.
    pub fn run_steps(&self, max_steps: usize) -> Promise {
        let cell = self.pipeline.clone();
        let state = self.state.clone();
        promise(async move {
            let mut lease = Lease::take(&cell)?;
            let current = std::mem::replace(&mut *state.borrow_mut(), TrainerState::Finished);
            let running = match current {
                TrainerState::PendingSequence {
                    examples,
                    options,
                    features,
                } => TrainerState::Sequence(Box::new(
                    ClassifierTraining::new_with_features(
                        lease.pipeline(),
                        &examples,
                        options,
                        features,
                    )
                    .await
                    .map_err(js_error)?,
                )),
                TrainerState::PendingMaskedLm { texts, options } => {
                    TrainerState::MaskedLm(Box::new(
                        MaskedLmTraining::new(lease.pipeline(), &texts, options)
                            .await
                            .map_err(js_error)?,
                    ))
                }
                TrainerState::PendingTokens { examples, options } => {
                    TrainerState::Tokens(Box::new(
                        TokenClassifierTraining::new(lease.pipeline(), &examples, options)
                            .await
                            .map_err(js_error)?,
                    ))
                }
                TrainerState::Finished => {
                    return Err(JsError::new("the training run is finished").into())
                }
                running => running,
            };
            // each arm: some steps, the run back in its place, then a step or epoch report
            match running {
                TrainerState::Sequence(mut run) => {
                    let result = run.run_steps(lease.pipeline(), max_steps).await;
                    let costs = JsTrainingCosts::from(run.report());
                    *state.borrow_mut() = TrainerState::Sequence(run);
                    steps_report(result, |p| JsEpoch {
                        costs,
                        ..JsEpoch::from(p)
                    })
                }
                TrainerState::Tokens(mut run) => {
                    let result = run.run_steps(lease.pipeline(), max_steps).await;
                    let costs = JsTrainingCosts::from(run.report());
                    *state.borrow_mut() = TrainerState::Tokens(run);
                    steps_report(result, |p| JsTokenEpoch {
                        costs,
                        ..JsTokenEpoch::from(p)
                    })
                }
                TrainerState::MaskedLm(mut run) => {
                    let result = run.run_steps(lease.pipeline(), max_steps).await;
                    let costs = JsTrainingCosts::from(run.report());
                    *state.borrow_mut() = TrainerState::MaskedLm(run);
                    steps_report(result, |p| JsMaskedLmEpoch {
                        costs,
                        ..JsMaskedLmEpoch::from(p)
                    })
                }
                _ => unreachable!("a run was prepared above"),
            }
        })
    }

    /// Head-only training: the features of every window (`WasmModel.head_features` of the
    /// examples' texts, possibly computed in parts by other copies of the model, joined in
    /// example order), used by the first `run_epoch` instead of encoding the examples here.
    pub fn set_features(&self, features: Float32Array) -> Result<(), JsError> {
        match &mut *self.state.borrow_mut() {
            TrainerState::PendingSequence { features: slot, .. } => {
                *slot = Some(features.to_vec());
                Ok(())
            }
            TrainerState::PendingTokens { .. } | TrainerState::PendingMaskedLm { .. } => Err(
                JsError::new("set_features: only head-only sequence classification takes features"),
            ),
            _ => Err(JsError::new(
                "set_features: the training run has already started",
            )),
        }
    }

    /// Ends the run (the model keeps what it learned); later `run_epoch` calls are refused.
    pub fn finish(&self) {
        *self.state.borrow_mut() = TrainerState::Finished;
    }
}
