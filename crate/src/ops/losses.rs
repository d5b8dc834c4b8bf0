//! Losses with their backward: softmax cross-entropy with an ignore index (the MLM loss of
//! BERT pre-training, `torch.nn.functional.cross_entropy(..., ignore_index=-100)`), binary
//! cross-entropy on logits (`binary_cross_entropy_with_logits`) and squared error (`mse_loss`).
//!
//! Each forward writes one loss per row / element; the caller reduces them
//! (`mean_over_valid` / `mean`, the torch `reduction="mean"` default) and passes the gradient of
//! that reduction as `scale` to the backward: `d(mean)/d(loss_i) = 1 / count`.

use crate::ops::length_check::{as_u32, expect_len, product};
use crate::ops::shaders;
use crate::tensor::Tensor;
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
#[allow(clippy::too_many_arguments)]
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

// ---- on a device (CPU or GPU) -------------------------------------------------------------

fn loss_params(op: &str, n: usize, v: usize, ignore_index: u32, scale: f32) -> Result<LossParams> {
    Ok(LossParams {
        n: as_u32(op, n)?,
        v: as_u32(op, v)?,
        ignore_index,
        scale,
    })
}

/// (N, V) of a logits tensor.
fn rows_and_classes(op: &str, logits: &Tensor) -> Result<(usize, usize)> {
    match logits.shape() {
        &[n, v] => Ok((n, v)),
        other => Err(Error::shape(
            format!("{op}: {}", logits.name()),
            "(N, V)",
            other,
        )),
    }
}

/// losses (N), logsumexp (N) from logits (N, V) and targets (N). The GPU path does not check
/// the target range (that would need a read-back): validate targets on the host.
pub fn cross_entropy_forward(
    losses: &mut Tensor,
    logsumexp: &mut Tensor,
    logits: &Tensor,
    targets: &Tensor<u32>,
    ignore_index: u32,
) -> Result<()> {
    let op = "cross_entropy_forward";
    let (n, v) = rows_and_classes(op, logits)?;
    losses.expect_shape(op, &[n])?;
    logsumexp.expect_shape(op, &[n])?;
    targets.expect_shape(op, &[n])?;
    match losses.gpu_context().cloned() {
        None => cross_entropy_forward_cpu(
            losses.cpu_mut()?,
            logsumexp.cpu_mut()?,
            logits.cpu()?,
            targets.cpu()?,
            ignore_index,
            n,
            v,
        ),
        Some(ctx) => {
            if v == 0 && n > 0 {
                return Err(Error::invalid(format!("{op}: zero classes")));
            }
            ctx.dispatch(
                &shaders::LOSSES.kernel("cross_entropy_forward"),
                &[logits.gpu()?, targets.gpu()?],
                &[losses.gpu()?, logsumexp.gpu()?],
                &loss_params(op, n, v, ignore_index, 0.0)?,
                ctx.linear_groups(n, 1),
            )
        }
    }
}

/// dlogits (N, V) += scale * (softmax - onehot) for the non-ignored rows.
pub fn cross_entropy_backward(
    dlogits: &mut Tensor,
    logits: &Tensor,
    logsumexp: &Tensor,
    targets: &Tensor<u32>,
    ignore_index: u32,
    scale: f32,
) -> Result<()> {
    let op = "cross_entropy_backward";
    let (n, v) = rows_and_classes(op, logits)?;
    dlogits.expect_shape(op, &[n, v])?;
    logsumexp.expect_shape(op, &[n])?;
    targets.expect_shape(op, &[n])?;
    match dlogits.gpu_context().cloned() {
        None => cross_entropy_backward_cpu(
            dlogits.cpu_mut()?,
            logits.cpu()?,
            logsumexp.cpu()?,
            targets.cpu()?,
            ignore_index,
            scale,
            n,
            v,
        ),
        Some(ctx) => ctx.dispatch(
            &shaders::LOSSES.kernel("cross_entropy_backward"),
            &[logits.gpu()?, targets.gpu()?, logsumexp.gpu()?],
            &[dlogits.gpu()?],
            &loss_params(op, n, v, ignore_index, scale)?,
            ctx.linear_groups(product(op, &[n, v])?, 256),
        ),
    }
}

/// Forward and backward of softmax cross-entropy together, for a training step that needs
/// both: per-row losses (N) and dlogits (N, V) = `scale` x d(loss_i)/d(logits) (`scale` is the
/// gradient of the caller's reduction, e.g. 1 / count for the mean). Rows whose target is
/// `IGNORE_INDEX` get loss 0 and gradient 0. Nothing is read back.
pub fn cross_entropy_with_gradient(
    logits: &Tensor,       // (N, V)
    targets: &Tensor<u32>, // (N)
    scale: f32,
) -> Result<(Tensor, Tensor)> {
    let device = logits.device();
    let (n, v) = (logits.shape()[0], logits.shape()[1]);
    let mut losses = Tensor::uninit(&device, &[n], "losses")?; // (N)
    let mut logsumexp = Tensor::uninit(&device, &[n], "logsumexp")?; // (N)
    cross_entropy_forward(&mut losses, &mut logsumexp, logits, targets, IGNORE_INDEX)?;
    let mut dlogits = Tensor::zeros(&device, &[n, v], "d_logits")?; // (N, V)
    cross_entropy_backward(
        &mut dlogits,
        logits,
        &logsumexp,
        targets,
        IGNORE_INDEX,
        scale,
    )?;
    Ok((losses, dlogits))
}

/// out (2) = [mean loss over the non-ignored rows (0 if none), their count], without a
/// read-back on the GPU.
pub fn cross_entropy_mean(
    out: &mut Tensor,
    losses: &Tensor,
    targets: &Tensor<u32>,
    ignore_index: u32,
) -> Result<()> {
    let op = "cross_entropy_mean";
    out.expect_shape(op, &[2])?;
    let n = losses.numel();
    losses.expect_shape(op, &[n])?;
    targets.expect_shape(op, &[n])?;
    match out.gpu_context().cloned() {
        None => {
            let (mean, count) = mean_over_valid_cpu(losses.cpu()?, targets.cpu()?, ignore_index)?;
            out.cpu_mut()?.copy_from_slice(&[mean, count as f32]);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::LOSSES.kernel("cross_entropy_mean"),
            &[losses.gpu()?, targets.gpu()?],
            &[out.gpu()?],
            &loss_params(op, n, 0, ignore_index, 0.0)?,
            [1, 1, 1],
        ),
    }
}

/// out (1) = mean of `values` (any shape; 0 when empty).
pub fn loss_mean(out: &mut Tensor, values: &Tensor) -> Result<()> {
    let op = "loss_mean";
    out.expect_shape(op, &[1])?;
    match out.gpu_context().cloned() {
        None => {
            out.cpu_mut()?[0] = mean_cpu(values.cpu()?);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::LOSSES.kernel("loss_mean"),
            &[values.gpu()?],
            &[out.gpu()?],
            &loss_params(op, values.numel(), 0, 0, 0.0)?,
            [1, 1, 1],
        ),
    }
}

/// Elementwise losses on a device: `entry` names the WGSL kernel, `cpu` the CPU twin.
fn elementwise_loss(
    op: &'static str,
    out: &mut Tensor,
    x: &Tensor,
    y: &Tensor,
    scale: f32,
    cpu: impl FnOnce(&mut [f32], &[f32], &[f32]) -> Result<()>,
) -> Result<()> {
    out.expect_shape(op, x.shape())?;
    y.expect_shape(op, x.shape())?;
    match out.gpu_context().cloned() {
        None => cpu(out.cpu_mut()?, x.cpu()?, y.cpu()?),
        Some(ctx) => ctx.dispatch(
            &shaders::LOSSES.kernel(op),
            &[x.gpu()?, y.gpu()?],
            &[out.gpu()?],
            &loss_params(op, x.numel(), 0, 0, scale)?,
            ctx.linear_groups(x.numel(), 256),
        ),
    }
}

/// losses = BCE(sigmoid(logits), targets) elementwise; logits, targets, losses: the same shape.
pub fn bce_with_logits_forward(
    losses: &mut Tensor,
    logits: &Tensor,
    targets: &Tensor,
) -> Result<()> {
    elementwise_loss(
        "bce_with_logits_forward",
        losses,
        logits,
        targets,
        0.0,
        bce_with_logits_forward_cpu,
    )
}

/// dlogits += scale * (sigmoid(logits) - targets).
pub fn bce_with_logits_backward(
    dlogits: &mut Tensor,
    logits: &Tensor,
    targets: &Tensor,
    scale: f32,
) -> Result<()> {
    elementwise_loss(
        "bce_with_logits_backward",
        dlogits,
        logits,
        targets,
        scale,
        |d, x, y| bce_with_logits_backward_cpu(d, x, y, scale),
    )
}

/// losses = (predictions - targets)^2 elementwise.
pub fn mse_forward(losses: &mut Tensor, predictions: &Tensor, targets: &Tensor) -> Result<()> {
    elementwise_loss(
        "mse_forward",
        losses,
        predictions,
        targets,
        0.0,
        mse_forward_cpu,
    )
}

/// dpredictions += scale * 2 (predictions - targets).
pub fn mse_backward(
    dpredictions: &mut Tensor,
    predictions: &Tensor,
    targets: &Tensor,
    scale: f32,
) -> Result<()> {
    elementwise_loss(
        "mse_backward",
        dpredictions,
        predictions,
        targets,
        scale,
        |d, x, y| mse_backward_cpu(d, x, y, scale),
    )
}
