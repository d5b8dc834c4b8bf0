//! Losses with their backward: softmax cross-entropy with an ignore index (the MLM loss of
//! BERT pre-training, `torch.nn.functional.cross_entropy(..., ignore_index=-100)`), binary
//! cross-entropy on logits (`binary_cross_entropy_with_logits`) and squared error (`mse_loss`).
//!
//! Each forward writes one loss per row / element; the caller reduces them
//! (`mean_over_valid` / `mean`, the torch `reduction="mean"` default) and passes the gradient of
//! that reduction as `scale` to the backward: `d(mean)/d(loss_i) = 1 / count`.

use crate::ops::length_check::{expect_len, product};
use crate::{Error, Result};

/// The target value that marks a row without a label: PyTorch's default `ignore_index = -100`
/// as the bits of a `u32` (so a buffer of Hugging Face `i32` labels can be used unchanged).
pub const IGNORE_INDEX: u32 = -100i32 as u32;

/// The uniform block of `shaders/losses.wgsl` (`LossParams`), 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct LossParams {
    /// rows (cross-entropy) or elements (BCE, MSE, reductions)
    pub n: u32,
    /// classes per row (cross-entropy); unused elsewhere
    pub v: u32,
    pub ignore_index: u32,
    /// gradient of the reduced loss with respect to each per-row loss (backward only)
    pub scale: f32,
}

fn check_targets(op: &str, targets: &[u32], ignore_index: u32, v: usize) -> Result<()> {
    for (row, &t) in targets.iter().enumerate() {
        if t != ignore_index && t as usize >= v {
            return Err(Error::invalid(format!(
                "{op}: target {} of row {row} is outside 0..{v} and is not the ignore index {}",
                t as i32, ignore_index as i32
            )));
        }
    }
    Ok(())
}

/// Per row: `losses[n] = logsumexp(logits[n]) - logits[n, targets[n]]`, `0` for ignored rows.
/// Keeps `logsumexp` for the backward (NaN-free: computed as `max + ln(sum(exp(x - max)))`).
pub fn cross_entropy_forward_cpu(
    losses: &mut [f32],    // (N)
    logsumexp: &mut [f32], // (N)
    logits: &[f32],        // (N, V)
    targets: &[u32],       // (N) class index or ignore_index
    ignore_index: u32,
    n: usize,
    v: usize,
) -> Result<()> {
    let op = "cross_entropy_forward_cpu";
    expect_len(op, "losses", losses.len(), n)?;
    expect_len(op, "logsumexp", logsumexp.len(), n)?;
    expect_len(op, "logits", logits.len(), product(op, &[n, v])?)?;
    expect_len(op, "targets", targets.len(), n)?;
    if v == 0 && n > 0 {
        return Err(Error::invalid(format!("{op}: zero classes")));
    }
    check_targets(op, targets, ignore_index, v)?;
    for row in 0..n {
        let x = &logits[row * v..(row + 1) * v];
        let max = x.iter().fold(f32::NEG_INFINITY, |m, &a| m.max(a));
        let sum: f32 = x.iter().map(|&a| (a - max).exp()).sum();
        let lse = max + sum.ln();
        logsumexp[row] = lse;
        let t = targets[row];
        losses[row] = if t == ignore_index {
            0.0
        } else {
            lse - x[t as usize]
        };
    }
    Ok(())
}

/// `dlogits[n, j] += scale * (softmax(logits[n])_j - [j == targets[n]])`; ignored rows get nothing.
/// `scale` is the gradient of the reduced loss per row loss (`1 / count` for the mean).
pub fn cross_entropy_backward_cpu(
    dlogits: &mut [f32], // (N, V) accumulated
    logits: &[f32],      // (N, V)
    logsumexp: &[f32],   // (N) from the forward
    targets: &[u32],     // (N)
    ignore_index: u32,
    scale: f32,
    n: usize,
    v: usize,
) -> Result<()> {
    let op = "cross_entropy_backward_cpu";
    let nv = product(op, &[n, v])?;
    expect_len(op, "dlogits", dlogits.len(), nv)?;
    expect_len(op, "logits", logits.len(), nv)?;
    expect_len(op, "logsumexp", logsumexp.len(), n)?;
    expect_len(op, "targets", targets.len(), n)?;
    check_targets(op, targets, ignore_index, v)?;
    for row in 0..n {
        let t = targets[row];
        if t == ignore_index {
            continue;
        }
        let lse = logsumexp[row];
        for j in 0..v {
            let p = (logits[row * v + j] - lse).exp();
            let onehot = if j == t as usize { 1.0 } else { 0.0 };
            dlogits[row * v + j] += scale * (p - onehot);
        }
    }
    Ok(())
}

/// Mean of `losses` over the rows whose target is not `ignore_index`, and that count.
/// With no valid row the mean is `0` (torch gives NaN); the backward scale is then `0` too.
pub fn mean_over_valid_cpu(
    losses: &[f32],
    targets: &[u32],
    ignore_index: u32,
) -> Result<(f32, usize)> {
    expect_len(
        "mean_over_valid_cpu",
        "targets",
        targets.len(),
        losses.len(),
    )?;
    let (sum, count) = losses
        .iter()
        .zip(targets)
        .filter(|(_, &t)| t != ignore_index)
        .fold((0.0f64, 0usize), |(s, c), (&l, _)| (s + l as f64, c + 1));
    Ok((
        if count == 0 {
            0.0
        } else {
            (sum / count as f64) as f32
        },
        count,
    ))
}

/// Mean of all values (`0` for an empty slice).
pub fn mean_cpu(values: &[f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    (values.iter().map(|&x| x as f64).sum::<f64>() / values.len() as f64) as f32
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `losses[i] = max(x, 0) - x * y + ln(1 + exp(-|x|))`, the overflow-free form of
/// `-(y ln sigmoid(x) + (1 - y) ln(1 - sigmoid(x)))` that torch also evaluates.
pub fn bce_with_logits_forward_cpu(
    losses: &mut [f32], // (N)
    logits: &[f32],     // (N)
    targets: &[f32],    // (N) in [0, 1]
) -> Result<()> {
    let op = "bce_with_logits_forward_cpu";
    expect_len(op, "losses", losses.len(), logits.len())?;
    expect_len(op, "targets", targets.len(), logits.len())?;
    for ((l, &x), &y) in losses.iter_mut().zip(logits).zip(targets) {
        *l = x.max(0.0) - x * y + (-x.abs()).exp().ln_1p();
    }
    Ok(())
}

/// `dlogits[i] += scale * (sigmoid(x_i) - y_i)`.
pub fn bce_with_logits_backward_cpu(
    dlogits: &mut [f32], // (N) accumulated
    logits: &[f32],      // (N)
    targets: &[f32],     // (N)
    scale: f32,
) -> Result<()> {
    let op = "bce_with_logits_backward_cpu";
    expect_len(op, "dlogits", dlogits.len(), logits.len())?;
    expect_len(op, "targets", targets.len(), logits.len())?;
    for ((d, &x), &y) in dlogits.iter_mut().zip(logits).zip(targets) {
        *d += scale * (sigmoid(x) - y);
    }
    Ok(())
}

/// `losses[i] = (p_i - y_i)^2`.
pub fn mse_forward_cpu(
    losses: &mut [f32],  // (N)
    predictions: &[f32], // (N)
    targets: &[f32],     // (N)
) -> Result<()> {
    let op = "mse_forward_cpu";
    expect_len(op, "losses", losses.len(), predictions.len())?;
    expect_len(op, "targets", targets.len(), predictions.len())?;
    for ((l, &p), &y) in losses.iter_mut().zip(predictions).zip(targets) {
        *l = (p - y) * (p - y);
    }
    Ok(())
}

/// `dpredictions[i] += scale * 2 (p_i - y_i)`.
pub fn mse_backward_cpu(
    dpredictions: &mut [f32], // (N) accumulated
    predictions: &[f32],      // (N)
    targets: &[f32],          // (N)
    scale: f32,
) -> Result<()> {
    let op = "mse_backward_cpu";
    expect_len(op, "dpredictions", dpredictions.len(), predictions.len())?;
    expect_len(op, "targets", targets.len(), predictions.len())?;
    for ((d, &p), &y) in dpredictions.iter_mut().zip(predictions).zip(targets) {
        *d += scale * 2.0 * (p - y);
    }
    Ok(())
}
