//! Softmax over the last dimension with an optional additive mask, and its backward.
//! Kernel: `shaders/softmax.wgsl`.
//!
//! The mask is (M, L) with R = M * rows_per_mask rows of input: consecutive blocks of
//! `rows_per_mask` rows share one mask row. For attention scores (B, NH, T, T) and BERT's
//! padding mask (B, T) that is rows_per_mask = NH * T. The mask is added, so it holds 0 for
//! kept positions and a large negative value (HF: `torch.finfo(float32).min`) for padding.

use crate::ops::cpu_parallel::for_each_row_part;
use crate::ops::lanes;
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::wide_simd_fn;
use crate::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct SoftmaxParams {
    rows: u32,
    cols: u32,
    has_mask: u32,
    rows_per_mask: u32,
}

fn rows_cols(x: &Tensor, op: &str) -> Result<(usize, usize)> {
    match x.shape().split_last() {
        Some((&cols, leading)) => Ok((leading.iter().product(), cols)),
        None => Err(Error::shape(
            format!("{op}: {}", x.name()),
            "at least 1 dimension",
            x.shape(),
        )),
    }
}

/// y (R, L) = softmax(x (R, L) + mask (M, L) broadcast over blocks of R / M rows).
/// x, y: (.., L); mask: (M, L) with M dividing R (or M = R / rows_per_mask for any layout).
pub fn softmax_forward(y: &mut Tensor, x: &Tensor, mask: Option<&Tensor>) -> Result<()> {
    let (rows, cols) = rows_cols(x, "softmax_forward")?;
    y.expect_shape("softmax_forward", x.shape())?;
    let rows_per_mask = match mask {
        None => 1,
        Some(mask) => {
            let (mask_rows, mask_cols) = rows_cols(mask, "softmax_forward mask")?;
            let divides = if mask_rows == 0 {
                rows == 0
            } else {
                rows % mask_rows == 0
            };
            if mask_cols != cols || !divides {
                return Err(Error::shape(
                    format!(
                        "softmax_forward: mask {} for input {:?}",
                        mask.name(),
                        x.shape()
                    ),
                    format!("(M, {cols}) with M dividing {rows}"),
                    mask.shape(),
                ));
            }
            rows.checked_div(mask_rows).unwrap_or(1)
        }
    };
    match y.gpu_context().cloned() {
        None => {
            let mask = match mask {
                Some(m) => Some(m.cpu()?),
                None => None,
            };
            softmax_forward_cpu(y.cpu_mut()?, x.cpu()?, mask, cols, rows_per_mask);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::SOFTMAX.kernel("softmax_forward"),
            &[x.gpu()?, mask.map_or(Ok(ctx.placeholder()), |m| m.gpu())?],
            &[y.gpu()?],
            &SoftmaxParams {
                rows: rows as u32,
                cols: cols as u32,
                has_mask: mask.is_some() as u32,
                rows_per_mask: rows_per_mask.max(1) as u32,
            },
            ctx.linear_groups(rows, 1),
        ),
    }
}

/// y (R, L) = softmax over each row of x (R, L) + mask[r / rows_per_mask] (L).
pub fn softmax_forward_cpu(
    y: &mut [f32],
    x: &[f32],
    mask: Option<&[f32]>,
    cols: usize,
    rows_per_mask: usize,
) {
    if cols == 0 {
        return;
    }
    for_each_row_part(y, cols, |first_row, y| {
        softmax_rows(y, x, mask, cols, rows_per_mask, first_row)
    });
}

wide_simd_fn! {
    /// The rows of `y` from row `first_row` on: softmax of x's rows plus their mask rows.
    fn softmax_rows(
        y: &mut [f32],
        x: &[f32],
        mask: Option<&[f32]>,
        cols: usize,
        rows_per_mask: usize,
        first_row: usize,
    ) {
        for (r, yr) in y.chunks_mut(cols).enumerate() {
            let r = first_row + r;
            let xr = &x[r * cols..][..cols];
            match mask {
                Some(m) => {
                    let mask_row = &m[(r / rows_per_mask) * cols..][..cols];
                    for ((o, &v), &bias) in yr.iter_mut().zip(xr).zip(mask_row) {
                        *o = v + bias;
                    }
                }
                None => yr.copy_from_slice(xr),
            }
            let max = lanes::max(yr);
            for v in yr.iter_mut() {
                *v = lanes::exp(*v - max);
            }
            let inv = 1.0 / lanes::sum(yr);
            yr.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

wide_simd_fn! {
    /// Softmax of each row of `rows` (rows, cols) plus `mask` (cols) in place: the same
    /// operations in the same order as [`softmax_forward_cpu`], so the same bits (the fused CPU
    /// attention's per-head scores, `ops/attention_cpu.rs`).
    pub(crate) fn softmax_rows_in_place(rows: &mut [f32], mask: Option<&[f32]>, cols: usize) {
        for row in rows.chunks_mut(cols) {
            if let Some(mask) = mask {
                for (v, &bias) in row.iter_mut().zip(&mask[..cols]) {
                    *v += bias;
                }
            }
            let max = lanes::max(row);
            for v in row.iter_mut() {
                *v = lanes::exp(*v - max);
            }
            let inv = 1.0 / lanes::sum(row);
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

wide_simd_fn! {
    /// grad (R, L) = y * (grad - dot(grad, y)) row by row, in place: the softmax backward of
    /// [`softmax_backward_cpu`] into zeros, with the incoming gradient overwritten.
    pub(crate) fn softmax_backward_rows_in_place(grad: &mut [f32], y: &[f32], cols: usize) {
        for (gr, yr) in grad.chunks_mut(cols).zip(y.chunks(cols)) {
            let dot = lanes::dot(yr, gr);
            for (g, &p) in gr.iter_mut().zip(yr) {
                *g = p * (*g - dot);
            }
        }
    }
}

pub fn softmax_backward(dx: &mut Tensor, y: &Tensor, dy: &Tensor) -> Result<()> {
    let (rows, cols) = rows_cols(y, "softmax_backward")?;
    dy.expect_shape("softmax_backward", y.shape())?;
    dx.expect_shape("softmax_backward", y.shape())?;
    match dx.gpu_context().cloned() {
        None => {
            softmax_backward_cpu(dx.cpu_mut()?, y.cpu()?, dy.cpu()?, cols);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::SOFTMAX.kernel("softmax_backward"),
            &[y.gpu()?, dy.gpu()?],
            &[dx.gpu()?],
            &SoftmaxParams {
                rows: rows as u32,
                cols: cols as u32,
                has_mask: 0,
                rows_per_mask: 1,
            },
            ctx.linear_groups(rows, 1),
        ),
    }
}

/// dx (R, L) += y * (dy - dot(dy, y)) row by row.
pub fn softmax_backward_cpu(dx: &mut [f32], y: &[f32], dy: &[f32], cols: usize) {
    if cols == 0 {
        return;
    }
    for_each_row_part(dx, cols, |first_row, dx| {
        softmax_backward_rows(dx, y, dy, cols, first_row)
    });
}

wide_simd_fn! {
    /// The rows of `dx` from row `first_row` on: dx += y * (dy - dot(dy, y)).
    fn softmax_backward_rows(dx: &mut [f32], y: &[f32], dy: &[f32], cols: usize, first_row: usize) {
        for (r, dxr) in dx.chunks_mut(cols).enumerate() {
            let at = (first_row + r) * cols;
            let (yr, gr) = (&y[at..][..cols], &dy[at..][..cols]);
            let dot = lanes::dot(yr, gr);
            for ((d, &p), &g) in dxr.iter_mut().zip(yr).zip(gr) {
                *d += p * (g - dot);
            }
        }
    }
}
