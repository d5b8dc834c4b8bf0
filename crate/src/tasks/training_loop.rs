//! What every fine-tuning run of the tasks shares, whatever its head and loss
//! (`train_classifier.rs` for sequences, `train_tokens.rs` for tokens):
//!
//! - the checks of the options that do not depend on the head ([`check_run_options`]);
//! - [`OptimizerLoop`]: AdamW (the HF Trainer's decay groups) with the linear schedule over
//!   the run's steps, gradient accumulation (which micro-batches make a step), the dropout seed
//!   of each micro-batch, and one step: `clip_grad_norm` then AdamW at the schedule's rate;
//! - the NaN guard is `train::check_finite_loss`, called by each run on its micro-batch loss.
//!
//! A run prepares its data, then per epoch: `epoch_batches` of its training examples, grouped by
//! [`OptimizerLoop::epoch_steps`]; each micro-batch's gradients (loss scaled by
//! [`OptimizerLoop::loss_scale`]) added into one `Gradients`, then [`OptimizerLoop::step`].
//! [`EpochSteps`] is an epoch under way, for runs that take an epoch's steps a few at a time
//! (the browser's engine, so that JavaScript can report progress and stop between them).

use std::ops::Range;

use crate::models::{Freeze, Gradients};
use crate::ops::optimizer::AdamWConfig;
use crate::train::{clip_and_step, epoch_batches, AdamW, GradientAccumulation, LinearSchedule};
use crate::{Error, Result};

use super::pipeline::Pipeline;
use super::train_classifier::{EpochProgress, TrainOptions};

/// Where a run's `run_steps` left it; `P` is the run's epoch report (a sequence classifier's
/// [`EpochProgress`], a token classifier's, masked-LM's, ELMo's).
#[derive(Clone, Debug, PartialEq)]
pub enum StepsProgress<P = EpochProgress> {
    /// The epoch goes on: `done` of its `total` optimizer steps are done.
    Running {
        epoch: usize,
        done: usize,
        total: usize,
    },
    /// The epoch is done (its last steps, then the validation).
    EpochDone(P),
}

impl<P> StepsProgress<P> {
    /// The epoch's report of a call allowed every step of the epoch (`run_epoch`).
    pub fn into_epoch(self, what: &str) -> Result<P> {
        match self {
            StepsProgress::EpochDone(progress) => Ok(progress),
            StepsProgress::Running { done, total, .. } => Err(Error::invalid(format!(
                "{what}: the epoch stopped after {done} of its {total} steps"
            ))),
        }
    }
}

/// Errors for options no run can use: those out of range ([`TrainOptions::validate`]) and a
/// `top:K` beyond the model's layers. `what` names the run in the message.
pub fn check_run_options(options: &TrainOptions, layers: usize, what: &str) -> Result<()> {
    options
        .validate()
        .map_err(|e| Error::invalid(format!("{what}: {}", e.message())))?;
    if let Freeze::Top(k) = options.freeze {
        if k > layers {
            return Err(Error::invalid(format!(
                "freeze policy top:{k}: the model has {layers} layers (use 1..={layers})"
            )));
        }
    }
    Ok(())
}

/// An epoch under way: its number, its micro-batches (rows of the run's examples), the optimizer
/// steps over them (consecutive micro-batch indices each) and how many steps are done.
pub struct EpochSteps {
    pub epoch: usize,
    pub batches: Vec<Vec<usize>>,
    pub steps: Vec<Range<usize>>,
    pub done: usize,
}

impl EpochSteps {
    /// The next epoch of a run (see [`OptimizerLoop::next_epoch`]), no step done yet.
    pub fn next(
        options: &TrainOptions,
        optimizer: &OptimizerLoop,
        epochs_done: usize,
        train: &[usize],
    ) -> Result<EpochSteps> {
        let (epoch, batches) = OptimizerLoop::next_epoch(options, epochs_done, train)?;
        let steps = optimizer.epoch_steps(batches.len());
        Ok(EpochSteps {
            epoch,
            batches,
            steps,
            done: 0,
        })
    }

    /// The steps of the next call that may take `max_steps` of them (at least one).
    pub fn next_steps(&self, max_steps: usize) -> Range<usize> {
        self.done
            ..self
                .done
                .saturating_add(max_steps.max(1))
                .min(self.steps.len())
    }

    pub fn finished(&self) -> bool {
        self.done == self.steps.len()
    }
}

/// The optimizer of a run and where it is in its schedule.
pub struct OptimizerLoop {
    optimizer: AdamW,
    schedule: LinearSchedule,
    accumulation: GradientAccumulation,
    seed: u64,
    max_grad_norm: Option<f32>,
}

impl OptimizerLoop {
    /// The optimizer for `options.epochs` epochs of `train_examples` examples in batches of
    /// `options.batch_size`, `options.accumulation_steps` micro-batches per step.
    pub fn new(options: &TrainOptions, train_examples: usize) -> Result<OptimizerLoop> {
        let batches_per_epoch = train_examples.div_ceil(options.batch_size.max(1));
        let accumulation = GradientAccumulation::new(options.accumulation_steps)?;
        let steps_per_epoch = accumulation.steps(batches_per_epoch).len() as u64;
        let total_steps = steps_per_epoch * options.epochs as u64;
        let warmup = (total_steps as f64 * options.warmup_ratio as f64).ceil() as u64;
        let schedule = LinearSchedule::new(options.learning_rate, warmup, total_steps)?;
        let optimizer = AdamW::new(AdamWConfig {
            lr: options.learning_rate,
            weight_decay: options.weight_decay,
            ..AdamWConfig::default()
        });
        Ok(OptimizerLoop {
            optimizer,
            schedule,
            accumulation,
            seed: options.seed,
            max_grad_norm: options.max_grad_norm,
        })
    }

    /// Optimizer steps taken so far.
    pub fn steps(&self) -> u64 {
        self.optimizer.steps()
    }

    /// Bytes of the AdamW moments.
    pub fn state_bytes(&self) -> u64 {
        self.optimizer.state_bytes()
    }

    /// The optimizer steps of an epoch of `batches` micro-batches (consecutive indices each).
    /// The number of the next epoch (1 for the first) and its batches of `train` (rows of the
    /// run's examples, shuffled by epoch); an error once the run has done its epochs.
    pub fn next_epoch(
        options: &TrainOptions,
        epochs_done: usize,
        train: &[usize],
    ) -> Result<(usize, Vec<Vec<usize>>)> {
        if epochs_done >= options.epochs {
            return Err(Error::invalid(format!(
                "the run has done its {} epochs",
                options.epochs
            )));
        }
        let epoch = epochs_done + 1;
        let batches = epoch_batches(train, options.batch_size, options.seed, epoch)?;
        Ok((epoch, batches))
    }

    pub fn epoch_steps(&self, batches: usize) -> Vec<Range<usize>> {
        self.accumulation.steps(batches)
    }

    /// The gradient of a step's loss with respect to one loss term of a micro-batch of `terms`
    /// terms (examples, or labelled tokens) in a step of `micro_batches` micro-batches.
    pub fn loss_scale(terms: usize, micro_batches: usize) -> f32 {
        GradientAccumulation::loss_scale(terms, micro_batches)
    }

    /// The dropout seed of micro-batch `micro` of optimizer step `step`.
    pub fn dropout_seed(&self, step: u64, micro: usize) -> u64 {
        self.seed
            ^ (step + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (micro as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
    }

    /// The dropout seed of the next step's first micro-batch.
    pub fn next_dropout_seed(&self) -> u64 {
        self.dropout_seed(self.steps(), 0)
    }

    /// One step on the model's parameters with `grads` (clipped first): returns how many
    /// values were updated.
    pub fn step(&mut self, pipeline: &mut Pipeline, grads: &mut Gradients) -> Result<usize> {
        let lr = self.schedule.lr(self.optimizer.steps());
        let device = pipeline.device().clone();
        clip_and_step(
            &mut self.optimizer,
            &device,
            pipeline.model.parameters_mut(),
            grads,
            self.max_grad_norm,
            lr,
        )
    }
}
