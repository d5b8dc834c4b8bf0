//! The highway layer of ELMo's character encoder (Srivastava, Greff, Schmidhuber, "Highway
//! Networks", 2015), in AllenNLP's convention (`allennlp/modules/highway.py`, `Highway.forward`):
//! one linear layer `proj = x W^T + b` with `W: (2D, D)` gives both halves,
//! `f = relu(proj[:D])` (the nonlinear part) and `g = sigmoid(proj[D:])` (the gate), and
//! `y = g * x + (1 - g) * f`. ELMo always uses relu here (`_ElmoCharacterEncoder._load_highway`
//! builds `Highway(n_filters, n_highway, activation=relu)`).
//!
//! The TensorFlow weights store the opposite gate, `y = (1 - t) x + t f` with
//! `t = sigmoid(x W_carry + b_carry)`; AllenNLP negates `W_carry` and `b_carry` when loading
//! (`elmo.py`, `_load_highway`: "-1.0 since AllenNLP is g * x + (1 - g) * f(x) but tf is
//! (1 - g) * x + g * f(x)"), which [`highway_weights_from_tensorflow`] reproduces.

use crate::ops::length_check::{as_u32, expect_len, product};
use crate::ops::matmul::{matmul_cpu, MatmulDims};
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The uniform block of `shaders/highway.wgsl` (`HighwayParams`), 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct HighwayParams {
    /// rows (tokens)
    pub n: u32,
    /// width D (the number of char-CNN filters in ELMo)
    pub d: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// AllenNLP's `(weight (2D, D), bias (2D))` from the TF file's `CNN_high_k` tensors:
/// `weight = [W_transform^T; -W_carry^T]`, `bias = [b_transform; -b_carry]`.
pub fn highway_weights_from_tensorflow(
    w_transform: &[f32], // (D, D) TF layout (in, out)
    b_transform: &[f32], // (D)
    w_carry: &[f32],     // (D, D) TF layout (in, out)
    b_carry: &[f32],     // (D)
    d: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let op = "highway_weights_from_tensorflow";
    let dd = product(op, &[d, d])?;
    expect_len(op, "W_transform", w_transform.len(), dd)?;
    expect_len(op, "W_carry", w_carry.len(), dd)?;
    expect_len(op, "b_transform", b_transform.len(), d)?;
    expect_len(op, "b_carry", b_carry.len(), d)?;
    let mut weight = vec![0.0f32; 2 * dd];
    for out in 0..d {
        for inp in 0..d {
            weight[out * d + inp] = w_transform[inp * d + out];
            weight[(d + out) * d + inp] = -w_carry[inp * d + out];
        }
    }
    let bias = b_transform
        .iter()
        .copied()
        .chain(b_carry.iter().map(|&b| -b))
        .collect();
    Ok((weight, bias))
}

fn check(
    op: &str,
    x: usize,
    y: usize,
    proj: usize,
    weight: usize,
    n: usize,
    d: usize,
) -> Result<()> {
    let nd = product(op, &[n, d])?;
    expect_len(op, "inp", x, nd)?;
    expect_len(op, "out", y, nd)?;
    expect_len(op, "proj", proj, 2 * nd)?;
    expect_len(op, "weight", weight, product(op, &[2 * d, d])?)
}

/// `y = g x + (1 - g) relu(proj[:D])`, `g = sigmoid(proj[D:])`, `proj = x W^T + b`;
/// keeps `proj` for the backward.
pub fn highway_forward_cpu(
    out: &mut [f32],  // (N, D)
    proj: &mut [f32], // (N, 2D) pre-activations, kept for the backward
    inp: &[f32],      // (N, D)
    weight: &[f32],   // (2D, D) AllenNLP layout (Linear(D, 2D).weight)
    bias: &[f32],     // (2D)
    n: usize,
    d: usize,
) -> Result<()> {
    let op = "highway_forward_cpu";
    check(op, inp.len(), out.len(), proj.len(), weight.len(), n, d)?;
    expect_len(op, "bias", bias.len(), 2 * d)?;
    // proj (N, 2D) = inp (N, D) @ weight^T + bias, with the blocked CPU GEMM of `ops::matmul`
    matmul_cpu(
        proj,
        inp,
        weight,
        Some(bias),
        &MatmulDims {
            batch: 1,
            m: n,
            n: 2 * d,
            k: d,
            a_stride: 0,
            b_stride: 0,
            trans_a: false,
            trans_b: true,
            alpha: 1.0,
            accumulate: false,
        },
    );
    for row in 0..n {
        let x = &inp[row * d..(row + 1) * d];
        let p = &proj[row * 2 * d..(row + 1) * 2 * d];
        for k in 0..d {
            let g = sigmoid(p[d + k]);
            out[row * d + k] = g * x[k] + (1.0 - g) * p[k].max(0.0);
        }
    }
    Ok(())
}

/// Gradient of the pre-activations: `dproj[:D] = dy (1 - g) [proj > 0]`,
/// `dproj[D:] = dy (x - f) g (1 - g)`; written, not accumulated (a per-call scratch).
fn highway_dproj(dproj: &mut [f32], dy: &[f32], x: &[f32], proj: &[f32], d: usize) {
    for k in 0..d {
        let g = sigmoid(proj[d + k]);
        let f = proj[k].max(0.0);
        dproj[k] = if proj[k] > 0.0 {
            dy[k] * (1.0 - g)
        } else {
            0.0
        };
        dproj[d + k] = dy[k] * (x[k] - f) * g * (1.0 - g);
    }
}

/// `dinp += dy g + dproj W`, `dweight += dproj^T x`, `dbias += sum_rows dproj`.
#[allow(clippy::too_many_arguments)]
pub fn highway_backward_cpu(
    dinp: &mut [f32],    // (N, D) accumulated
    dweight: &mut [f32], // (2D, D) accumulated
    dbias: &mut [f32],   // (2D) accumulated
    dout: &[f32],        // (N, D)
    inp: &[f32],         // (N, D)
    proj: &[f32],        // (N, 2D) from the forward
    weight: &[f32],      // (2D, D)
    n: usize,
    d: usize,
) -> Result<()> {
    let op = "highway_backward_cpu";
    check(op, inp.len(), dout.len(), proj.len(), weight.len(), n, d)?;
    expect_len(op, "dinp", dinp.len(), n * d)?;
    expect_len(op, "dweight", dweight.len(), 2 * d * d)?;
    expect_len(op, "dbias", dbias.len(), 2 * d)?;
    let mut dproj = vec![0.0f32; 2 * d];
    for row in 0..n {
        let r = row * d..(row + 1) * d;
        let (x, dy) = (&inp[r.clone()], &dout[r.clone()]);
        let p = &proj[row * 2 * d..(row + 1) * 2 * d];
        highway_dproj(&mut dproj, dy, x, p, d);
        let dx = &mut dinp[r];
        for k in 0..d {
            dx[k] += dy[k] * sigmoid(p[d + k]);
        }
        for j in 0..2 * d {
            let g = dproj[j];
            dbias[j] += g;
            let w = &weight[j * d..(j + 1) * d];
            let dw = &mut dweight[j * d..(j + 1) * d];
            for k in 0..d {
                dx[k] += g * w[k];
                dw[k] += g * x[k];
            }
        }
    }
    Ok(())
}

// ---- on a device (CPU or GPU) -------------------------------------------------------------

fn rows(op: &str, x: &Tensor) -> Result<(usize, usize)> {
    match x.shape() {
        &[n, d] => Ok((n, d)),
        other => Err(Error::shape(format!("{op}: {}", x.name()), "(N, D)", other)),
    }
}

fn params(op: &str, n: usize, d: usize) -> Result<HighwayParams> {
    Ok(HighwayParams {
        n: as_u32(op, n)?,
        d: as_u32(op, d)?,
        _pad0: 0,
        _pad1: 0,
    })
}

/// out (N, D), proj (N, 2D) from inp (N, D), weight (2D, D), bias (2D).
pub fn highway_forward(
    out: &mut Tensor,
    proj: &mut Tensor,
    inp: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
) -> Result<()> {
    let op = "highway_forward";
    let (n, d) = rows(op, inp)?;
    out.expect_shape(op, &[n, d])?;
    proj.expect_shape(op, &[n, 2 * d])?;
    weight.expect_shape(op, &[2 * d, d])?;
    bias.expect_shape(op, &[2 * d])?;
    match out.gpu_context().cloned() {
        None => highway_forward_cpu(
            out.cpu_mut()?,
            proj.cpu_mut()?,
            inp.cpu()?,
            weight.cpu()?,
            bias.cpu()?,
            n,
            d,
        ),
        Some(ctx) => ctx.dispatch(
            &shaders::HIGHWAY.kernel(op),
            &[inp.gpu()?, weight.gpu()?, bias.gpu()?],
            &[out.gpu()?, proj.gpu()?],
            &params(op, n, d)?,
            ctx.linear_groups(n * d, 256),
        ),
    }
}

/// dinp (N, D), dweight (2D, D), dbias (2D) accumulated from dout (N, D).
#[allow(clippy::too_many_arguments)]
pub fn highway_backward(
    dinp: &mut Tensor,
    dweight: &mut Tensor,
    dbias: &mut Tensor,
    dout: &Tensor,
    inp: &Tensor,
    proj: &Tensor,
    weight: &Tensor,
) -> Result<()> {
    let op = "highway_backward";
    let (n, d) = rows(op, inp)?;
    dinp.expect_shape(op, &[n, d])?;
    dout.expect_shape(op, &[n, d])?;
    proj.expect_shape(op, &[n, 2 * d])?;
    weight.expect_shape(op, &[2 * d, d])?;
    dweight.expect_shape(op, &[2 * d, d])?;
    dbias.expect_shape(op, &[2 * d])?;
    match dinp.gpu_context().cloned() {
        None => highway_backward_cpu(
            dinp.cpu_mut()?,
            dweight.cpu_mut()?,
            dbias.cpu_mut()?,
            dout.cpu()?,
            inp.cpu()?,
            proj.cpu()?,
            weight.cpu()?,
            n,
            d,
        ),
        Some(ctx) => {
            let p = params(op, n, d)?;
            let dproj = Tensor::<f32>::uninit(&dinp.device(), &[n, 2 * d], "highway.dproj")?;
            ctx.dispatch(
                &shaders::HIGHWAY.kernel("highway_backward_proj"),
                &[dout.gpu()?, inp.gpu()?, proj.gpu()?],
                &[dproj.gpu()?],
                &p,
                ctx.linear_groups(n * d, 256),
            )?;
            ctx.dispatch(
                &shaders::HIGHWAY.kernel("highway_backward_input"),
                &[dout.gpu()?, proj.gpu()?, dproj.gpu()?, weight.gpu()?],
                &[dinp.gpu()?],
                &p,
                ctx.linear_groups(n * d, 256),
            )?;
            ctx.dispatch(
                &shaders::HIGHWAY.kernel("highway_backward_weight"),
                &[inp.gpu()?, dproj.gpu()?],
                &[dweight.gpu()?, dbias.gpu()?],
                &p,
                ctx.linear_groups(2 * d * d, 256),
            )
        }
    }
}
