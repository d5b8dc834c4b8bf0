//! What every fine-tuning run of the tasks shares, whatever its head and loss
//! (`train_classifier.rs` for sequences, `train_tokens.rs` for tokens, `train_masked_lm.rs`
//! for masked-LM):
//!
//! - the checks of the options that do not depend on the head ([`check_run_options`]);
//! - [`OptimizerLoop`]: AdamW (the HF Trainer's decay groups) with the linear schedule over
//!   the run's steps, gradient accumulation (which micro-batches make a step), the dropout seed
//!   of each micro-batch, and one step: `clip_grad_norm` then AdamW at the schedule's rate;
//! - the epoch loop, written once (`run_steps`, crate-private): a run keeps its options,
//!   optimizer, training rows and the epoch under way in a `RunState` and says through the
//!   `EpochRun` trait what one micro-batch does (its forward, backward and sums) and what ends
//!   an epoch (its validation and report). The NaN guard is `train::check_finite_loss` on each
//!   micro-batch's mean loss.
//!
//! Per epoch: `epoch_batches` of the run's training examples, grouped by
//! [`OptimizerLoop::epoch_steps`]; each micro-batch's gradients (loss scaled by
//! [`OptimizerLoop::loss_scale`]) added into one `Gradients`, then [`OptimizerLoop::step`].
//! [`EpochSteps`] is an epoch under way, for runs that take an epoch's steps a few at a time
//! (the browser's engine, so that JavaScript can report progress and stop between them).

use std::ops::Range;

use crate::models::{BertModel, Freeze, Gradients, RunMode};
use crate::ops::optimizer::AdamWConfig;
use crate::train::{
    check_finite_loss, clip_and_step, epoch_batches, AdamW, GradientAccumulation, LinearSchedule,
};
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
/// `top:K` beyond the model's layers. `what` names the run in the message. (Layers held
/// compressed, in 16 bits or int8, that the run trains are widened to fp32 once the run is set:
/// [`widen_what_trains`].)
pub fn check_run_options(options: &TrainOptions, model: &BertModel, what: &str) -> Result<()> {
    let layers = model.num_layers();
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

/// Widens to f32 the compressed weight matrices (`dtype` fp16 / bf16 / int8 at load) of the
/// encoder layers that the run's freeze policy trains, and unpacks the packed-only ones (the
/// package's CPU path packs fp32 layers at load): they train with fp32 master weights and stay
/// f32; the frozen layers stay as loaded, head-only training unpacks nothing
/// ([`BertModel::widen_trained_layers`]). Called by each trainer once its input is checked,
/// before the model changes.
pub async fn widen_what_trains(model: &mut BertModel, options: &TrainOptions) -> Result<()> {
    model.widen_trained_layers(options.freeze).await?;
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

/// What every fine-tuning run keeps between its calls, whatever its head: its options, its
/// optimizer, the rows of its examples it trains on, the epochs done and the epoch under way
/// with the sums `S` it has added up so far.
pub(crate) struct RunState<S> {
    pub options: TrainOptions,
    pub optimizer: OptimizerLoop,
    pub train: Vec<usize>,
    pub epochs_done: usize,
    /// the epoch under way, between two calls of [`run_steps`]
    under_way: Option<(EpochSteps, S)>,
}

impl<S: Default> RunState<S> {
    /// A run of `options` over the training rows `train`, its optimizer set for them.
    pub fn new(options: TrainOptions, train: Vec<usize>) -> Result<RunState<S>> {
        let optimizer = OptimizerLoop::new(&options, train.len())?;
        Ok(RunState {
            options,
            optimizer,
            train,
            epochs_done: 0,
            under_way: None,
        })
    }

    /// The epoch the last call left under way, else the run's next epoch with nothing summed.
    fn resume(&mut self) -> Result<(EpochSteps, S)> {
        match self.under_way.take() {
            Some(under_way) => Ok(under_way),
            None => {
                let steps = EpochSteps::next(
                    &self.options,
                    &self.optimizer,
                    self.epochs_done,
                    &self.train,
                )?;
                Ok((steps, S::default()))
            }
        }
    }

    /// How micro-batch `micro` of the next optimizer step runs: training, with its dropout
    /// seed, under the run's freeze policy.
    pub fn training_mode(&self, micro: usize) -> RunMode {
        let seed = self.optimizer.dropout_seed(self.optimizer.steps(), micro);
        RunMode::training(seed, self.options.freeze)
    }
}

/// One micro-batch of an optimizer step, as [`run_steps`] hands it to a run.
pub(crate) struct MicroBatch<'a> {
    /// The model (and device) it trains.
    pub pipeline: &'a Pipeline,
    /// The step's gradients, this micro-batch's added in.
    pub grads: &'a mut Gradients,
    /// The epoch under way (1 for the first).
    pub epoch: usize,
    /// Rows of the run's examples.
    pub rows: &'a [usize],
    /// Training, with the micro-batch's dropout seed.
    pub mode: RunMode,
    /// How many micro-batches the step has (each one's loss counts `1 / micro_batches`).
    pub micro_batches: usize,
}

/// A fine-tuning run as [`run_steps`] drives it. The runs' own `run_epoch` / `run_steps` are
/// their API; this trait is how they share the loop (crate-private).
pub(crate) trait EpochRun {
    /// What an epoch adds up over its micro-batches (losses, right answers, terms seen).
    type Sums: Default;
    /// What an epoch reports.
    type Progress;
    /// The run's name in its messages.
    const WHAT: &'static str;

    /// The run's options, optimizer, training rows, epochs done and epoch under way.
    fn state(&mut self) -> &mut RunState<Self::Sums>;

    /// Forward and backward of `batch`: its gradients added into `grads`, its terms into
    /// `sums`; returns its mean loss (for the NaN guard).
    async fn train_micro_batch(&self, batch: MicroBatch<'_>, sums: &mut Self::Sums) -> Result<f32>;

    /// After each optimizer step: how many parameter values it updated.
    fn record_step(&mut self, trained_parameters: usize);

    /// The report of the epoch `epoch` once its last step is done: the validation, the
    /// epoch's report from its `sums`, the run's report brought up to date.
    async fn end_epoch(
        &mut self,
        pipeline: &Pipeline,
        epoch: usize,
        sums: Self::Sums,
    ) -> Result<Self::Progress>;
}

/// One epoch of `run`: every training example once, then what ends the epoch.
pub(crate) async fn run_epoch<R: EpochRun>(
    run: &mut R,
    pipeline: &mut Pipeline,
) -> Result<R::Progress> {
    run_steps(run, pipeline, usize::MAX)
        .await?
        .into_epoch(R::WHAT)
}

/// Up to `max_steps` (at least one) optimizer steps of the epoch under way (a new one when none
/// is), then, after its last step, what ends the epoch: the same computation as [`run_epoch`],
/// cut between steps. On an error the epoch under way is dropped (the next call starts that
/// epoch again).
pub(crate) async fn run_steps<R: EpochRun>(
    run: &mut R,
    pipeline: &mut Pipeline,
    max_steps: usize,
) -> Result<StepsProgress<R::Progress>> {
    let (mut epoch_steps, mut sums) = run.state().resume()?;
    let epoch = epoch_steps.epoch;
    for s in epoch_steps.next_steps(max_steps) {
        let step_batches = epoch_steps.steps[s].clone();
        let micro_batches = step_batches.len();
        let mut grads = Gradients::new();
        for micro in step_batches {
            let state = run.state();
            let step = state.optimizer.steps();
            let batch = MicroBatch {
                pipeline,
                grads: &mut grads,
                epoch,
                rows: &epoch_steps.batches[micro],
                mode: state.training_mode(micro),
                micro_batches,
            };
            let loss = run.train_micro_batch(batch, &mut sums).await?;
            check_finite_loss(loss, epoch, step + 1)?;
        }
        let trained_parameters = run.state().optimizer.step(pipeline, &mut grads)?;
        run.record_step(trained_parameters);
        epoch_steps.done = s + 1;
    }
    if !epoch_steps.finished() {
        let running = StepsProgress::Running {
            epoch,
            done: epoch_steps.done,
            total: epoch_steps.steps.len(),
        };
        run.state().under_way = Some((epoch_steps, sums));
        return Ok(running);
    }
    pipeline.device().flush()?;
    let progress = run.end_epoch(pipeline, epoch, sums).await?;
    run.state().epochs_done = epoch;
    Ok(StepsProgress::EpochDone(progress))
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
