//! Gradient accumulation: `micro_batches` backward passes add into the same gradients before
//! one optimizer step, so a step sees an effective batch of `micro_batches x batch_size`
//! without holding its activations at once. As in the Hugging Face Trainer, each micro-batch's
//! mean loss is divided by the number of micro-batches of its step, so the summed gradient is
//! the gradient of the mean loss of the step.

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GradientAccumulation {
    pub micro_batches: usize,
}

impl GradientAccumulation {
    pub fn new(micro_batches: usize) -> Result<Self> {
        if micro_batches == 0 {
            return Err(Error::invalid(
                "gradient accumulation needs at least 1 micro-batch per step",
            ));
        }
        Ok(GradientAccumulation { micro_batches })
    }

    /// The optimizer steps of an epoch of `batches` micro-batches: groups of consecutive
    /// micro-batch indices, the last group shorter when `batches` is not a multiple.
    pub fn steps(&self, batches: usize) -> Vec<std::ops::Range<usize>> {
        (0..batches)
            .step_by(self.micro_batches)
            .map(|start| start..(start + self.micro_batches).min(batches))
            .collect()
    }

    /// The gradient of the step's loss with respect to each example's loss, for a micro-batch
    /// of `rows` examples in a step of `micro_batches_in_step` micro-batches:
    /// `1 / (rows * micro_batches_in_step)`.
    pub fn loss_scale(rows: usize, micro_batches_in_step: usize) -> f32 {
        1.0 / (rows.max(1) * micro_batches_in_step.max(1)) as f32
    }
}
