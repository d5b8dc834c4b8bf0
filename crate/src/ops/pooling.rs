//! Sentence pooling of encoder hidden states, with backward:
//! - mean pooling over the tokens the attention mask keeps (sentence-transformers' `Pooling`
//!   with `pooling_mode_mean_tokens`: `sum(mask * h) / clamp(sum(mask), min=1e-9)`), so padding
//!   never dilutes the embedding and an all-padding row pools to zeros;
//! - CLS pooling: the hidden state of the first token (BERT's `[CLS]`).

use crate::ops::length_check::{as_u32, expect_len, product};
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The uniform block of `shaders/pooling.wgsl` (`PoolingParams`), 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct PoolingParams {
    pub b: u32,
    pub t: u32,
    pub c: u32,
    pub _pad: u32,
}

/// sentence-transformers' lower clamp on the token count.
const MIN_TOKEN_COUNT: f32 = 1e-9;

fn token_count(mask_row: &[u32]) -> f32 {
    (mask_row.iter().filter(|&&m| m != 0).count() as f32).max(MIN_TOKEN_COUNT)
}

/// A [CLS] position exists: T >= 1 unless the batch is empty.
fn has_cls_token(op: &str, b: usize, t: usize) -> Result<()> {
    if b > 0 && t == 0 {
        return Err(Error::invalid(format!(
            "{op}: sequences of length 0 have no [CLS] token"
        )));
    }
    Ok(())
}

fn check(
    op: &str,
    pooled: usize,
    hidden: usize,
    mask: Option<usize>,
    b: usize,
    t: usize,
    c: usize,
) -> Result<()> {
    expect_len(op, "pooled", pooled, product(op, &[b, c])?)?;
    expect_len(op, "hidden", hidden, product(op, &[b, t, c])?)?;
    if let Some(mask) = mask {
        expect_len(op, "attention_mask", mask, product(op, &[b, t])?)?;
    }
    Ok(())
}

/// `out[b] = sum_t mask[b,t] h[b,t] / max(sum_t mask[b,t], 1e-9)` (nonzero mask = keep).
pub fn mean_pooling_forward_cpu(
    out: &mut [f32],        // (B, C)
    hidden: &[f32],         // (B, T, C)
    attention_mask: &[u32], // (B, T) 1 = token, 0 = padding
    b: usize,
    t: usize,
    c: usize,
) -> Result<()> {
    check(
        "mean_pooling_forward_cpu",
        out.len(),
        hidden.len(),
        Some(attention_mask.len()),
        b,
        t,
        c,
    )?;
    for bi in 0..b {
        let mask = &attention_mask[bi * t..(bi + 1) * t];
        let count = token_count(mask);
        let o = &mut out[bi * c..(bi + 1) * c];
        o.fill(0.0);
        for (ti, &m) in mask.iter().enumerate() {
            if m != 0 {
                let h = &hidden[(bi * t + ti) * c..(bi * t + ti + 1) * c];
                o.iter_mut().zip(h).for_each(|(o, &h)| *o += h);
            }
        }
        o.iter_mut().for_each(|o| *o /= count);
    }
    Ok(())
}

/// `dhidden[b,t] += dout[b] * mask[b,t] / max(count_b, 1e-9)`.
pub fn mean_pooling_backward_cpu(
    dhidden: &mut [f32],    // (B, T, C) accumulated
    dout: &[f32],           // (B, C)
    attention_mask: &[u32], // (B, T)
    b: usize,
    t: usize,
    c: usize,
) -> Result<()> {
    check(
        "mean_pooling_backward_cpu",
        dout.len(),
        dhidden.len(),
        Some(attention_mask.len()),
        b,
        t,
        c,
    )?;
    for bi in 0..b {
        let mask = &attention_mask[bi * t..(bi + 1) * t];
        let count = token_count(mask);
        let g = &dout[bi * c..(bi + 1) * c];
        for (ti, &m) in mask.iter().enumerate() {
            if m != 0 {
                let d = &mut dhidden[(bi * t + ti) * c..(bi * t + ti + 1) * c];
                d.iter_mut().zip(g).for_each(|(d, &g)| *d += g / count);
            }
        }
    }
    Ok(())
}

/// `out[b] = h[b, 0]`, the `[CLS]` position.
pub fn cls_pooling_forward_cpu(
    out: &mut [f32], // (B, C)
    hidden: &[f32],  // (B, T, C), T >= 1 when B > 0
    b: usize,
    t: usize,
    c: usize,
) -> Result<()> {
    check(
        "cls_pooling_forward_cpu",
        out.len(),
        hidden.len(),
        None,
        b,
        t,
        c,
    )?;
    has_cls_token("cls_pooling_forward_cpu", b, t)?;
    for bi in 0..b {
        out[bi * c..(bi + 1) * c].copy_from_slice(&hidden[bi * t * c..bi * t * c + c]);
    }
    Ok(())
}

/// `dhidden[b, 0] += dout[b]`.
pub fn cls_pooling_backward_cpu(
    dhidden: &mut [f32], // (B, T, C) accumulated
    dout: &[f32],        // (B, C)
    b: usize,
    t: usize,
    c: usize,
) -> Result<()> {
    check(
        "cls_pooling_backward_cpu",
        dout.len(),
        dhidden.len(),
        None,
        b,
        t,
        c,
    )?;
    has_cls_token("cls_pooling_backward_cpu", b, t)?;
    for bi in 0..b {
        let d = &mut dhidden[bi * t * c..bi * t * c + c];
        d.iter_mut()
            .zip(&dout[bi * c..(bi + 1) * c])
            .for_each(|(d, &g)| *d += g);
    }
    Ok(())
}

// ---- on a device (CPU or GPU) -------------------------------------------------------------

/// (B, T, C) of `full` (hidden states or their gradient, (B, T, C)), with `pooled` checked to be
/// (B, C) and the attention mask, where the op takes one, (B, T).
fn shapes(
    op: &str,
    full: &Tensor,
    pooled: &Tensor,
    attention_mask: Option<&Tensor<u32>>,
) -> Result<(usize, usize, usize)> {
    let (b, t, c) = match full.shape() {
        &[b, t, c] => (b, t, c),
        other => {
            return Err(Error::shape(
                format!("{op}: {}", full.name()),
                "(B, T, C)",
                other,
            ))
        }
    };
    pooled.expect_shape(op, &[b, c])?;
    if let Some(mask) = attention_mask {
        mask.expect_shape(op, &[b, t])?;
    }
    Ok((b, t, c))
}

/// Runs one pooling op where `dst` lives: `cpu` (the CPU twin, given dst's and src's values) on
/// the CPU, else the entry point `op` of pooling.wgsl over src (then the mask) into dst, with
/// one invocation per element of a tensor of `invocations` elements.
fn run(
    op: &'static str,
    dst: &mut Tensor,
    src: &Tensor,
    attention_mask: Option<&Tensor<u32>>,
    (b, t, c): (usize, usize, usize),
    invocations: usize,
    cpu: impl FnOnce(&mut [f32], &[f32]) -> Result<()>,
) -> Result<()> {
    match dst.gpu_context().cloned() {
        None => cpu(dst.cpu_mut()?, src.cpu()?),
        Some(ctx) => {
            let mut inputs = vec![src.gpu()?];
            if let Some(mask) = attention_mask {
                inputs.push(mask.gpu()?);
            }
            let params = PoolingParams {
                b: as_u32(op, b)?,
                t: as_u32(op, t)?,
                c: as_u32(op, c)?,
                _pad: 0,
            };
            ctx.dispatch(
                &shaders::POOLING.kernel(op),
                &inputs,
                &[dst.gpu()?],
                &params,
                ctx.linear_groups(invocations, 256),
            )
        }
    }
}

/// out (B, C) = masked mean over T of hidden (B, T, C); attention_mask (B, T), 1 = token.
pub fn mean_pooling_forward(
    out: &mut Tensor,
    hidden: &Tensor,
    attention_mask: &Tensor<u32>,
) -> Result<()> {
    let op = "mean_pooling_forward";
    let (b, t, c) = shapes(op, hidden, out, Some(attention_mask))?;
    run(
        op,
        out,
        hidden,
        Some(attention_mask),
        (b, t, c),
        b * c,
        |out, hidden| mean_pooling_forward_cpu(out, hidden, attention_mask.cpu()?, b, t, c),
    )
}

/// dhidden (B, T, C) += dout (B, C) * mask / count.
pub fn mean_pooling_backward(
    dhidden: &mut Tensor,
    dout: &Tensor,
    attention_mask: &Tensor<u32>,
) -> Result<()> {
    let op = "mean_pooling_backward";
    let (b, t, c) = shapes(op, dhidden, dout, Some(attention_mask))?;
    let invocations = product(op, &[b, t, c])?;
    run(
        op,
        dhidden,
        dout,
        Some(attention_mask),
        (b, t, c),
        invocations,
        |dhidden, dout| mean_pooling_backward_cpu(dhidden, dout, attention_mask.cpu()?, b, t, c),
    )
}

/// out (B, C) = hidden[:, 0, :].
pub fn cls_pooling_forward(out: &mut Tensor, hidden: &Tensor) -> Result<()> {
    let op = "cls_pooling_forward";
    let (b, t, c) = shapes(op, hidden, out, None)?;
    has_cls_token(op, b, t)?;
    run(op, out, hidden, None, (b, t, c), b * c, |out, hidden| {
        cls_pooling_forward_cpu(out, hidden, b, t, c)
    })
}

/// dhidden[:, 0, :] += dout (B, C).
pub fn cls_pooling_backward(dhidden: &mut Tensor, dout: &Tensor) -> Result<()> {
    let op = "cls_pooling_backward";
    let (b, t, c) = shapes(op, dhidden, dout, None)?;
    has_cls_token(op, b, t)?;
    run(
        op,
        dhidden,
        dout,
        None,
        (b, t, c),
        b * c,
        |dhidden, dout| cls_pooling_backward_cpu(dhidden, dout, b, t, c),
    )
}
