//! The optimizer step and the gradient clipping that precedes it, as PyTorch does them:
//! - `AdamW` (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019), step for
//!   step as `torch.optim.AdamW` (single-tensor path): decay `p *= 1 - lr wd` first, then
//!   `m = lerp(m, g, 1 - b1)`, `v = b2 v + (1 - b2) g^2`,
//!   `p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
//! - global-norm clipping as `torch.nn.utils.clip_grad_norm_` (norm_type 2): the total norm is
//!   the 2-norm of all gradients together, and every gradient is multiplied by
//!   `min(max_norm / (total + 1e-6), 1)`.
//!
//! On the GPU the clip runs in three kernels without a read-back: partial sums of squares per
//! gradient tensor into one `partials` buffer, one workgroup that turns them into
//! `[total_norm, coefficient]`, and an in-place scale of each gradient by that coefficient.

use crate::ops::cpu_parallel::run_in_parallel;
use crate::ops::length_check::{as_u32, expect_len};
use crate::ops::matmul::cpu_threads;
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::wide_simd_fn;
use crate::{Error, Result};

/// Elements reduced by one workgroup of `sum_of_squares_partial` (256 invocations x 16).
pub const SQUARES_PER_WORKGROUP: usize = 4096;

/// `torch.nn.utils.clip_grad_norm_`'s guard against division by zero.
pub const CLIP_EPS: f32 = 1e-6;

/// AdamW hyper-parameters; `Default` is `torch.optim.AdamW`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// The uniform block of `adamw_step` (`AdamWParams`), 32 bytes: the per-step scalars, computed
/// once on the host in f64 as Python computes them, then rounded to f32.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdamWParams {
    pub n: u32,
    /// 1 - lr * weight_decay
    pub decay: f32,
    /// 1 - beta1 (the lerp weight)
    pub one_minus_beta1: f32,
    pub beta2: f32,
    /// 1 - beta2
    pub one_minus_beta2: f32,
    /// lr / (1 - beta1^t)
    pub step_size: f32,
    /// sqrt(1 - beta2^t)
    pub bias_correction2_sqrt: f32,
    pub eps: f32,
}

impl AdamWConfig {
    /// The scalars of step `step` (1 for the first step), for `n` parameters.
    pub fn params(&self, step: u64, n: usize) -> Result<AdamWParams> {
        if step == 0 {
            return Err(Error::invalid("adamw: steps count from 1"));
        }
        let valid = self.lr.is_finite()
            && self.eps.is_finite()
            && self.weight_decay.is_finite()
            && (0.0..1.0).contains(&self.beta1)
            && (0.0..1.0).contains(&self.beta2);
        if !valid {
            return Err(Error::invalid(format!(
                "adamw: bad hyper-parameters {self:?}"
            )));
        }
        let n = u32::try_from(n)
            .map_err(|_| Error::invalid(format!("adamw: {n} parameters in one tensor")))?;
        let t = step.min(i32::MAX as u64) as i32;
        let bias_correction1 = 1.0 - (self.beta1 as f64).powi(t);
        let bias_correction2 = 1.0 - (self.beta2 as f64).powi(t);
        Ok(AdamWParams {
            n,
            decay: (1.0 - self.lr as f64 * self.weight_decay as f64) as f32,
            one_minus_beta1: (1.0 - self.beta1 as f64) as f32,
            beta2: self.beta2,
            one_minus_beta2: (1.0 - self.beta2 as f64) as f32,
            step_size: (self.lr as f64 / bias_correction1) as f32,
            bias_correction2_sqrt: bias_correction2.sqrt() as f32,
            eps: self.eps,
        })
    }
}

/// One AdamW step on one parameter tensor, in place. `step` counts from 1.
pub fn adamw_step_cpu(
    params: &mut [f32], // (N) updated in place
    m: &mut [f32],      // (N) first moment, updated in place
    v: &mut [f32],      // (N) second moment, updated in place
    grads: &[f32],      // (N)
    config: &AdamWConfig,
    step: u64,
) -> Result<()> {
    let op = "adamw_step_cpu";
    expect_len(op, "m", m.len(), params.len())?;
    expect_len(op, "v", v.len(), params.len())?;
    expect_len(op, "grads", grads.len(), params.len())?;
    let k = config.params(step, params.len())?;
    // Parts over the threads (each element's update is independent of the others).
    let n = params.len();
    let threads = if n < (1 << 16) { 1 } else { cpu_threads() };
    let part = n.div_ceil(threads).max(1);
    let parts: Vec<_> = params
        .chunks_mut(part)
        .zip(m.chunks_mut(part))
        .zip(v.chunks_mut(part))
        .zip(grads.chunks(part))
        .collect();
    if parts.len() == 1 {
        let (((p, m), v), g) = parts.into_iter().next().expect("one part");
        adamw_part(p, m, v, g, &k);
    } else {
        run_in_parallel(parts, |(((p, m), v), g)| adamw_part(p, m, v, g, &k));
    }
    Ok(())
}

wide_simd_fn! {
    /// The AdamW update of one part of the parameters (see [`adamw_step_cpu`]).
    fn adamw_part(params: &mut [f32], m: &mut [f32], v: &mut [f32], grads: &[f32], k: &AdamWParams) {
        for (((p, m), v), &g) in params.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(grads) {
            *p *= k.decay;
            *m += k.one_minus_beta1 * (g - *m);
            *v = *v * k.beta2 + k.one_minus_beta2 * g * g;
            let denom = v.sqrt() / k.bias_correction2_sqrt + k.eps;
            *p -= k.step_size * *m / denom;
        }
    }
}

/// The 2-norm of all gradients taken together (squares accumulated in f64, 8 lanes).
pub fn global_grad_norm_cpu(grads: &[&[f32]]) -> f32 {
    grads
        .iter()
        .map(|g| sum_of_squares_f64(g))
        .sum::<f64>()
        .sqrt() as f32
}

/// sum of x^2 in f64, in 8 independent lanes (so that it vectorizes).
fn sum_of_squares_f64(x: &[f32]) -> f64 {
    let mut total = [0.0f64];
    sum_of_squares_into(x, &mut total);
    total[0]
}

wide_simd_fn! {
    /// total[0] = sum of x^2 in f64, 8 lanes then across them.
    fn sum_of_squares_into(x: &[f32], total: &mut [f64; 1]) {
        let mut acc = [0.0f64; 8];
        let mut chunks = x.chunks_exact(8);
        for chunk in &mut chunks {
            for l in 0..8 {
                acc[l] += chunk[l] as f64 * chunk[l] as f64;
            }
        }
        for (l, &v) in chunks.remainder().iter().enumerate() {
            acc[l] += v as f64 * v as f64;
        }
        total[0] = acc.iter().sum();
    }
}

/// The multiplier `clip_grad_norm_` applies: `min(max_norm / (total_norm + 1e-6), 1)`.
pub fn clip_coefficient(total_norm: f32, max_norm: f32) -> f32 {
    (max_norm / (total_norm + CLIP_EPS)).min(1.0)
}

/// `torch.nn.utils.clip_grad_norm_(grads, max_norm)`: scales every gradient in place by the
/// clip coefficient and returns the total norm before clipping.
pub fn clip_grad_norm_cpu(grads: &mut [&mut [f32]], max_norm: f32) -> Result<f32> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::invalid(format!(
            "clip_grad_norm: max_norm {max_norm} must be >= 0"
        )));
    }
    let total = {
        let views: Vec<&[f32]> = grads.iter().map(|g| &**g).collect();
        global_grad_norm_cpu(&views)
    };
    let coefficient = clip_coefficient(total, max_norm);
    for g in grads.iter_mut() {
        g.iter_mut().for_each(|x| *x *= coefficient);
    }
    Ok(total)
}

/// The uniform block of the clipping kernels (`ClipParams`), 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct ClipParams {
    /// elements of this gradient (sum_of_squares_partial, scale_by_clip_coefficient) or
    /// number of partial sums (clip_coefficient)
    pub n: u32,
    /// where this gradient's partial sums start in the partials buffer
    pub partial_offset: u32,
    pub max_norm: f32,
    pub _pad: u32,
}

/// Number of partial sums `sum_of_squares_partial` writes for a gradient of `n` elements.
pub fn partial_sums_for(n: usize) -> usize {
    n.div_ceil(SQUARES_PER_WORKGROUP)
}

// ---- on a device (CPU or GPU) -------------------------------------------------------------

/// One AdamW step in place on the parameter's device. params, m, v, grads: the same shape
/// (held in the same row shards when over one storage binding: one step per shard).
pub fn adamw_step(
    params: &mut Tensor,
    m: &mut Tensor,
    v: &mut Tensor,
    grads: &Tensor,
    config: &AdamWConfig,
    step: u64,
) -> Result<()> {
    let op = "adamw_step";
    m.expect_shape(op, params.shape())?;
    v.expect_shape(op, params.shape())?;
    grads.expect_shape(op, params.shape())?;
    if params.shard_count() > 1 {
        let counts = [m.shard_count(), v.shard_count(), grads.shard_count()];
        if counts.iter().any(|&count| count != params.shard_count()) {
            return Err(Error::invalid(format!(
                "{op}: {} is in {} row shards, its moments and gradient in {counts:?}",
                params.name(),
                params.shard_count()
            )));
        }
        let shards = params
            .row_shards_mut()
            .into_iter()
            .zip(m.row_shards_mut())
            .zip(v.row_shards_mut())
            .zip(grads.row_shards());
        for ((((_, p), (_, m)), (_, v)), (_, g)) in shards {
            adamw_step(p, m, v, g, config, step)?;
        }
        return Ok(());
    }
    match params.gpu_context().cloned() {
        None => adamw_step_cpu(
            params.cpu_mut()?,
            m.cpu_mut()?,
            v.cpu_mut()?,
            grads.cpu()?,
            config,
            step,
        ),
        Some(ctx) => {
            let k = config.params(step, params.numel())?;
            ctx.dispatch(
                &shaders::OPTIMIZER.kernel(op),
                &[grads.gpu()?],
                &[params.gpu()?, m.gpu()?, v.gpu()?],
                &k,
                ctx.linear_groups(params.numel(), 256),
            )
        }
    }
}

/// `torch.nn.utils.clip_grad_norm_` on the gradients' device: every gradient is scaled in
/// place and `norm_out (2)` receives `[total norm before clipping, coefficient applied]`,
/// without a read-back on the GPU (read `norm_out` when the number is wanted).
pub fn clip_grad_norm(
    norm_out: &mut Tensor,
    grads: &mut [&mut Tensor],
    max_norm: f32,
) -> Result<()> {
    let op = "clip_grad_norm";
    norm_out.expect_shape(op, &[2])?;
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::invalid(format!(
            "{op}: max_norm {max_norm} must be >= 0"
        )));
    }
    // a gradient in row shards counts shard by shard (the norm sums over all of them)
    let mut shards: Vec<&mut Tensor> = grads
        .iter_mut()
        .flat_map(|g| g.row_shards_mut().into_iter().map(|(_, shard)| shard))
        .collect();
    let grads = &mut shards[..];
    match norm_out.gpu_context().cloned() {
        None => {
            let mut slices: Vec<&mut [f32]> = Vec::with_capacity(grads.len());
            for g in grads.iter_mut() {
                slices.push(g.cpu_mut()?);
            }
            let total = clip_grad_norm_cpu(&mut slices, max_norm)?;
            norm_out
                .cpu_mut()?
                .copy_from_slice(&[total, clip_coefficient(total, max_norm)]);
            Ok(())
        }
        Some(ctx) => {
            let count: usize = grads.iter().map(|g| partial_sums_for(g.numel())).sum();
            let device = norm_out.device();
            // at least one (zero) partial so the buffer is never empty
            let partials =
                Tensor::<f32>::zeros(&device, &[count.max(1)], "clip_grad_norm.partials")?;
            let mut offset = 0usize;
            for g in grads.iter() {
                let params = ClipParams {
                    n: as_u32(op, g.numel())?,
                    partial_offset: as_u32(op, offset)?,
                    max_norm,
                    _pad: 0,
                };
                let groups = partial_sums_for(g.numel());
                ctx.dispatch(
                    &shaders::OPTIMIZER.kernel("sum_of_squares_partial"),
                    &[g.gpu()?],
                    &[partials.gpu()?],
                    &params,
                    ctx.linear_groups(groups, 1),
                )?;
                offset += groups;
            }
            let params = ClipParams {
                n: as_u32(op, count)?,
                partial_offset: 0,
                max_norm,
                _pad: 0,
            };
            ctx.dispatch(
                &shaders::OPTIMIZER.kernel("clip_coefficient"),
                &[partials.gpu()?],
                &[norm_out.gpu()?],
                &params,
                [1, 1, 1],
            )?;
            for g in grads.iter_mut() {
                let params = ClipParams {
                    n: as_u32(op, g.numel())?,
                    partial_offset: 0,
                    max_norm,
                    _pad: 0,
                };
                ctx.dispatch(
                    &shaders::OPTIMIZER.kernel("scale_by_clip_coefficient"),
                    &[norm_out.gpu()?],
                    &[g.gpu()?],
                    &params,
                    ctx.linear_groups(g.numel(), 256),
                )?;
            }
            Ok(())
        }
    }
}
