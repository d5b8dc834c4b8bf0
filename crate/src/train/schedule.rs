//! Learning-rate schedule: linear warmup from 0 to the peak, then linear decay to 0, as
//! transformers' `get_linear_schedule_with_warmup` (`optimization.py`): the multiplier of the
//! peak at scheduler step `s` (0 for the first optimizer step) is `s / warmup` while
//! `s < warmup`, then `max(0, (total - s) / (total - warmup))`.

use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearSchedule {
    pub peak_lr: f32,
    /// Optimizer steps of warmup (0 = start at the peak).
    pub warmup_steps: u64,
    /// Optimizer steps of the whole run.
    pub total_steps: u64,
}

impl LinearSchedule {
    pub fn new(peak_lr: f32, warmup_steps: u64, total_steps: u64) -> Result<Self> {
        if !(peak_lr.is_finite() && peak_lr >= 0.0) {
            return Err(Error::invalid(format!(
                "learning rate must be a finite number >= 0, found {peak_lr}"
            )));
        }
        if warmup_steps > total_steps {
            return Err(Error::invalid(format!(
                "warmup of {warmup_steps} steps is longer than the run ({total_steps} steps)"
            )));
        }
        Ok(LinearSchedule {
            peak_lr,
            warmup_steps,
            total_steps,
        })
    }

    /// The learning rate of optimizer step `step` (counting from 0), computed in f64.
    pub fn lr(&self, step: u64) -> f32 {
        let multiplier = if step < self.warmup_steps {
            step as f64 / self.warmup_steps.max(1) as f64
        } else {
            let remaining = self.total_steps.saturating_sub(step) as f64;
            let decay_steps = (self.total_steps - self.warmup_steps).max(1) as f64;
            (remaining / decay_steps).max(0.0)
        };
        (self.peak_lr as f64 * multiplier) as f32
    }
}
