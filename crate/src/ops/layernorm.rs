//! LayerNorm over the last dimension (Ba, Kiros & Hinton 2016), matching `torch.nn.LayerNorm`
//! (biased variance, eps inside the square root). Forward keeps mean and rstd for backward
//! (llm.c `layernorm_forward` / `layernorm_backward`). Kernel: `shaders/layernorm.wgsl`.

use crate::ops::cpu_parallel::{for_each_row_part, for_each_row_part_with};
use crate::ops::lanes;
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::wide_simd_fn;
use crate::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LayerNormParams {
    rows: u32, // N
    c: u32,    // C
    eps: f32,
    _pad: u32,
}

/// (rows, C) of an input (.., C): everything before the last dimension is rows.
fn rows_and_c(x: &Tensor) -> Result<(usize, usize)> {
    match x.shape().split_last() {
        Some((&c, leading)) if c > 0 => Ok((leading.iter().product(), c)),
        _ => Err(Error::shape(
            format!("layernorm: {}", x.name()),
            "(.., C) with C > 0",
            x.shape(),
        )),
    }
}

/// out (N, C) = (x - mean) * rstd * weight + bias, saving mean (N) and rstd (N).
/// x: (.., C) with N = product of the leading dimensions; weight, bias: (C).
pub fn layernorm_forward(
    out: &mut Tensor,
    mean: &mut Tensor,
    rstd: &mut Tensor,
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f32,
) -> Result<()> {
    let (rows, c) = rows_and_c(x)?;
    out.expect_shape("layernorm_forward", x.shape())?;
    mean.expect_shape("layernorm_forward", &[rows])?;
    rstd.expect_shape("layernorm_forward", &[rows])?;
    weight.expect_shape("layernorm_forward", &[c])?;
    bias.expect_shape("layernorm_forward", &[c])?;
    match out.gpu_context().cloned() {
        None => {
            let (x, w, b) = (x.cpu()?, weight.cpu()?, bias.cpu()?);
            layernorm_forward_cpu(
                out.cpu_mut()?,
                mean.cpu_mut()?,
                rstd.cpu_mut()?,
                x,
                w,
                b,
                c,
                eps,
            );
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::LAYERNORM.kernel("layernorm_forward"),
            &[x.gpu()?, weight.gpu()?, bias.gpu()?],
            &[out.gpu()?, mean.gpu()?, rstd.gpu()?],
            &LayerNormParams {
                rows: rows as u32,
                c: c as u32,
                eps,
                _pad: 0,
            },
            ctx.linear_groups(rows, 1),
        ),
    }
}

/// out (N, C), mean (N), rstd (N) from x (N, C), weight (C), bias (C). Two passes over each
/// row (mean, then the variance of the centred values) as the GPU kernel does; sums in f32.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward_cpu(
    out: &mut [f32],
    mean: &mut [f32],
    rstd: &mut [f32],
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    c: usize,
    eps: f32,
) {
    if c == 0 {
        return;
    }
    let rows = x.len() / c;
    let mut stats = vec![[0.0f32; 2]; rows]; // (mean, rstd) per row
    let input = ForwardInput {
        x,
        weight,
        bias,
        c,
        eps,
    };
    for_each_row_part_with(out, c, &mut stats, 1, |first_row, out, stats| {
        layernorm_rows(out, stats, &input, first_row)
    });
    for (r, &[m, s]) in stats.iter().enumerate() {
        mean[r] = m;
        rstd[r] = s;
    }
}

/// What the forward reads for every row.
#[derive(Clone, Copy)]
struct ForwardInput<'a> {
    x: &'a [f32],      // (N, C)
    weight: &'a [f32], // (C)
    bias: &'a [f32],   // (C)
    c: usize,
    eps: f32,
}

wide_simd_fn! {
    /// The rows of `out` from row `first_row` on, and their (mean, rstd) in `stats`.
    fn layernorm_rows(
        out: &mut [f32],
        stats: &mut [[f32; 2]],
        input: &ForwardInput<'_>,
        first_row: usize,
    ) {
        let ForwardInput { x, weight, bias, c, eps } = *input;
        for (r, (or, stat)) in out.chunks_mut(c).zip(stats.iter_mut()).enumerate() {
            let xr = &x[(first_row + r) * c..][..c];
            let m = lanes::sum(xr) / c as f32;
            let var = lanes::sum_squared_deviation(xr, m) / c as f32;
            let s = 1.0 / (var + eps).sqrt();
            for (((o, &v), &w), &b) in or.iter_mut().zip(xr).zip(weight).zip(bias) {
                *o = (v - m) * s * w + b;
            }
            *stat = [m, s];
        }
    }
}

/// dx (N, C) += d/dx, dweight (C) += sum_rows norm * dout, dbias (C) += sum_rows dout.
/// dout, x: (.., C); mean, rstd: (N) from the forward; weight: (C).
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dx: Option<&mut Tensor>,
    dweight: Option<&mut Tensor>,
    dbias: Option<&mut Tensor>,
    dout: &Tensor,
    x: &Tensor,
    weight: &Tensor,
    mean: &Tensor,
    rstd: &Tensor,
) -> Result<()> {
    let (rows, c) = rows_and_c(x)?;
    dout.expect_shape("layernorm_backward", x.shape())?;
    weight.expect_shape("layernorm_backward", &[c])?;
    mean.expect_shape("layernorm_backward", &[rows])?;
    rstd.expect_shape("layernorm_backward", &[rows])?;
    let params = LayerNormParams {
        rows: rows as u32,
        c: c as u32,
        eps: 0.0,
        _pad: 0,
    };
    if let Some(dx) = dx {
        dx.expect_shape("layernorm_backward", x.shape())?;
        match dx.gpu_context().cloned() {
            None => layernorm_backward_dx_cpu(
                dx.cpu_mut()?,
                dout.cpu()?,
                x.cpu()?,
                weight.cpu()?,
                mean.cpu()?,
                rstd.cpu()?,
                c,
            ),
            Some(ctx) => ctx.dispatch(
                &shaders::LAYERNORM.kernel("layernorm_backward"),
                &[
                    dout.gpu()?,
                    x.gpu()?,
                    weight.gpu()?,
                    mean.gpu()?,
                    rstd.gpu()?,
                ],
                &[dx.gpu()?],
                &params,
                ctx.linear_groups(rows, 1),
            )?,
        }
    }
    match (dweight, dbias) {
        (None, None) => Ok(()),
        (Some(dweight), Some(dbias)) => {
            dweight.expect_shape("layernorm_backward", &[c])?;
            dbias.expect_shape("layernorm_backward", &[c])?;
            match dweight.gpu_context().cloned() {
                None => {
                    let (dout, x, mean, rstd) = (dout.cpu()?, x.cpu()?, mean.cpu()?, rstd.cpu()?);
                    layernorm_backward_params_cpu(
                        dweight.cpu_mut()?,
                        dbias.cpu_mut()?,
                        dout,
                        x,
                        mean,
                        rstd,
                        c,
                    );
                    Ok(())
                }
                Some(ctx) => ctx.dispatch(
                    &shaders::LAYERNORM.kernel("layernorm_param_backward"),
                    &[dout.gpu()?, x.gpu()?, mean.gpu()?, rstd.gpu()?],
                    &[dweight.gpu()?, dbias.gpu()?],
                    &params,
                    ctx.linear_groups(c, 256),
                ),
            }
        }
        _ => Err(Error::invalid(
            "layernorm_backward: pass both dweight and dbias, or neither",
        )),
    }
}

/// dx (N, C) += (dnorm - mean(dnorm) - norm * mean(dnorm * norm)) * rstd, dnorm = weight * dout
pub fn layernorm_backward_dx_cpu(
    dx: &mut [f32],
    dout: &[f32],
    x: &[f32],
    weight: &[f32],
    mean: &[f32],
    rstd: &[f32],
    c: usize,
) {
    if c == 0 {
        return;
    }
    let input = BackwardInput {
        dout,
        x,
        weight,
        mean,
        rstd,
        c,
    };
    for_each_row_part(dx, c, |first_row, dx| {
        layernorm_backward_dx_rows(dx, &input, first_row)
    });
}

/// What the backward of dx reads for every row: dout and the forward's input and statistics.
#[derive(Clone, Copy)]
struct BackwardInput<'a> {
    dout: &'a [f32],   // (N, C)
    x: &'a [f32],      // (N, C)
    weight: &'a [f32], // (C)
    mean: &'a [f32],   // (N)
    rstd: &'a [f32],   // (N)
    c: usize,
}

wide_simd_fn! {
    /// The rows of `dx` from row `first_row` on (see [`layernorm_backward_dx_cpu`]).
    fn layernorm_backward_dx_rows(dx: &mut [f32], input: &BackwardInput<'_>, first_row: usize) {
        let BackwardInput { dout, x, weight, mean, rstd, c } = *input;
        let mut dnorm = vec![0.0f32; c]; // (C) weight * dout of the row
        let mut norm = vec![0.0f32; c]; // (C) the normalised input of the row
        for (r, dxr) in dx.chunks_mut(c).enumerate() {
            let r = first_row + r;
            let (xr, gr) = (&x[r * c..][..c], &dout[r * c..][..c]);
            let (m, s) = (mean[r], rstd[r]);
            for i in 0..c {
                dnorm[i] = weight[i] * gr[i];
                norm[i] = (xr[i] - m) * s;
            }
            let mean_dnorm = lanes::sum(&dnorm) / c as f32;
            let mean_dnorm_norm = lanes::dot(&dnorm, &norm) / c as f32;
            for ((d, &dn), &nr) in dxr.iter_mut().zip(&dnorm).zip(&norm) {
                *d += (dn - mean_dnorm - nr * mean_dnorm_norm) * s;
            }
        }
    }
}

/// dweight (C) += sum_rows norm * dout; dbias (C) += sum_rows dout
pub fn layernorm_backward_params_cpu(
    dweight: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    x: &[f32],
    mean: &[f32],
    rstd: &[f32],
    c: usize,
) {
    if c == 0 {
        return;
    }
    for r in 0..x.len() / c {
        for i in 0..c {
            let g = dout[r * c + i];
            dweight[i] += (x[r * c + i] - mean[r]) * rstd[r] * g;
            dbias[i] += g;
        }
    }
}
