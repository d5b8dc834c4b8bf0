//! The product of a linear layer with fp16 weights in f16 arithmetic, on a GPU with the
//! `shader-f16` feature: `shaders/matmul_f16.wgsl` reads the weight's words (`half_weight.rs`'s
//! GPU layout) as `vec2<f16>` pairs, rounds the activations to f16 as it stages them, and sums
//! 2-term f16 dot products in f32.
//!
//! Error bound, per output y(r, c) against the f32 product of the same (widened) weights:
//! `|y - y_f32| <= 3 u S + K 2^-24 S + 3 K 2^-25` with `u = 2^-11` (f16's unit roundoff),
//! `S = |alpha| sum_k |x(r, k) W(c, k)|` and K the depth: the rounding of x to f16, of each
//! product and of each 2-term sum (3 u relative to the terms), the f32 accumulation, and the
//! absolute error of values below f16's normal range (2^-14), whose roundings lose relative
//! precision (2^-25 each at most). Activations beyond 65504 become infinite: the path is opt-in.
//!
//! Chosen by `half_weight::matmul_forward_half` when `GpuInfo::f16_arithmetic` is set
//! (`GpuOptions::f16_arithmetic` on a device with `shader-f16`); bf16 weights always take the
//! f32 path (WGSL has no bf16 type).

use super::MatmulDims;
use crate::device::{GpuBuffer, GpuContext};
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::Result;

/// Uniform of `matmul_f16.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MatmulF16Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
    alpha: f32,
}

/// out (m, n) = alpha * a (m, k) @ W^T + bias (n), W (n, k) fp16 as `words` (n, ceil(k / 2)),
/// on a device opened with `shader-f16` (the caller checks). `d`: one product, `trans_b`.
pub(crate) fn dispatch_matmul_f16(
    ctx: &GpuContext,
    out: &Tensor,
    a: &Tensor,
    words: &GpuBuffer,
    bias: Option<&Tensor>,
    d: &MatmulDims,
) -> Result<()> {
    debug_assert!(d.batch == 1 && d.trans_b && !d.trans_a && !d.accumulate);
    let params = MatmulF16Params {
        m: d.m as u32,
        n: d.n as u32,
        k: d.k as u32,
        has_bias: bias.is_some() as u32,
        alpha: d.alpha,
    };
    let bias_buffer = match bias {
        Some(t) => t.gpu()?,
        None => ctx.placeholder(),
    };
    ctx.dispatch(
        &shaders::MATMUL_F16.kernel("matmul_f16_forward"),
        &[a.gpu()?, words, bias_buffer],
        &[out.gpu()?],
        &params,
        [d.n.div_ceil(64) as u32, d.m.div_ceil(64) as u32, 1],
    )
}
