//! What a training run reports: accuracy of logits against labels, and the guard that stops a
//! run whose loss is no longer a number.

use crate::{Error, Result};

/// Index of the largest value (the first on ties; NaN never wins).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] || row[best].is_nan() {
            best = i;
        }
    }
    best
}

/// Number of rows of `logits (N, K)` whose argmax equals the label.
pub fn correct_predictions(logits: &[f32], labels: &[u32], classes: usize) -> Result<usize> {
    if classes == 0 || logits.len() != labels.len() * classes {
        return Err(Error::shape(
            "accuracy: logits",
            format!("({}, {classes})", labels.len()),
            logits.len(),
        ));
    }
    Ok(logits
        .chunks(classes)
        .zip(labels)
        .filter(|(row, &label)| argmax(row) == label as usize)
        .count())
}

/// Fraction of rows predicted right; `None` when there are no rows.
pub fn accuracy(logits: &[f32], labels: &[u32], classes: usize) -> Result<Option<f32>> {
    let correct = correct_predictions(logits, labels, classes)?;
    Ok((!labels.is_empty()).then(|| correct as f32 / labels.len() as f32))
}

/// An error naming the epoch and step when the loss is NaN or infinite (a learning rate too
/// high, or bad inputs): training cannot recover from it, so the run stops.
pub fn check_finite_loss(loss: f32, epoch: usize, step: u64) -> Result<()> {
    if loss.is_finite() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "training diverged: the loss is {loss} at epoch {epoch}, optimizer step {step}; \
         lower the learning rate or check the inputs"
    )))
}
