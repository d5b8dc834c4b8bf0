//! L2 normalization of rows and the cosine similarity of paired rows, with backward.
//! - `l2_normalize`: `y = x / max(||x||, 1e-12)` (`torch.nn.functional.normalize`, p = 2, eps = 1e-12).
//! - `cosine_similarity`: `a.b / (max(||a||, 1e-8) max(||b||, 1e-8))`
//!   (`torch.nn.functional.cosine_similarity`, eps = 1e-8, each norm clamped separately).
//!
//! A query-against-many similarity matrix is `l2_normalize` of both sides followed by a matmul.

use crate::ops::length_check::{as_u32, expect_len, product};
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// `torch.nn.functional.normalize`'s default eps.
pub const NORMALIZE_EPS: f32 = 1e-12;
/// `torch.nn.functional.cosine_similarity`'s default eps.
pub const COSINE_EPS: f32 = 1e-8;

/// The uniform block of `shaders/similarity.wgsl` (`SimilarityParams`), 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SimilarityParams {
    /// rows
    pub n: u32,
    /// columns (embedding width)
    pub c: u32,
    /// NORMALIZE_EPS or COSINE_EPS
    pub eps: f32,
    pub _pad: u32,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| x * y).sum()
}

/// `out[n] = x[n] / max(||x[n]||, 1e-12)`; keeps the unclamped norms for the backward.
pub fn l2_normalize_forward_cpu(
    out: &mut [f32],   // (N, C)
    norms: &mut [f32], // (N)
    inp: &[f32],       // (N, C)
    n: usize,
    c: usize,
) -> Result<()> {
    let op = "l2_normalize_forward_cpu";
    expect_len(op, "out", out.len(), product(op, &[n, c])?)?;
    expect_len(op, "norms", norms.len(), n)?;
    expect_len(op, "inp", inp.len(), n * c)?;
    for (row, norm_out) in norms.iter_mut().enumerate() {
        let x = &inp[row * c..(row + 1) * c];
        let norm = dot(x, x).sqrt();
        *norm_out = norm;
        let denom = norm.max(NORMALIZE_EPS);
        out[row * c..(row + 1) * c]
            .iter_mut()
            .zip(x)
            .for_each(|(y, &x)| *y = x / denom);
    }
    Ok(())
}

/// `dx += (dy - y (y.dy)) / ||x||` where the norm is above eps; `dx += dy / eps` below it
/// (there `y = x / eps` is linear in x).
pub fn l2_normalize_backward_cpu(
    dinp: &mut [f32], // (N, C) accumulated
    dout: &[f32],     // (N, C)
    out: &[f32],      // (N, C) y from the forward
    norms: &[f32],    // (N) from the forward
    n: usize,
    c: usize,
) -> Result<()> {
    let op = "l2_normalize_backward_cpu";
    let nc = product(op, &[n, c])?;
    expect_len(op, "dinp", dinp.len(), nc)?;
    expect_len(op, "dout", dout.len(), nc)?;
    expect_len(op, "out", out.len(), nc)?;
    expect_len(op, "norms", norms.len(), n)?;
    for (row, &norm) in norms.iter().enumerate() {
        let r = row * c..(row + 1) * c;
        let (y, dy) = (&out[r.clone()], &dout[r.clone()]);
        let dx = &mut dinp[r];
        if norm > NORMALIZE_EPS {
            let y_dot_dy = dot(y, dy);
            for j in 0..c {
                dx[j] += (dy[j] - y[j] * y_dot_dy) / norm;
            }
        } else {
            dx.iter_mut()
                .zip(dy)
                .for_each(|(d, &g)| *d += g / NORMALIZE_EPS);
        }
    }
    Ok(())
}

/// `out[n] = a[n].b[n] / (max(||a[n]||, 1e-8) max(||b[n]||, 1e-8))`.
pub fn cosine_similarity_forward_cpu(
    out: &mut [f32], // (N)
    a: &[f32],       // (N, C)
    b: &[f32],       // (N, C)
    n: usize,
    c: usize,
) -> Result<()> {
    let op = "cosine_similarity_forward_cpu";
    let nc = product(op, &[n, c])?;
    expect_len(op, "out", out.len(), n)?;
    expect_len(op, "a", a.len(), nc)?;
    expect_len(op, "b", b.len(), nc)?;
    for row in 0..n {
        let (x, y) = (&a[row * c..(row + 1) * c], &b[row * c..(row + 1) * c]);
        let na = dot(x, x).sqrt().max(COSINE_EPS);
        let nb = dot(y, y).sqrt().max(COSINE_EPS);
        out[row] = dot(x, y) / (na * nb);
    }
    Ok(())
}

/// With `s = a.b / (na nb)`: `da += dout (b / (na nb) - s a / na^2)` where `||a|| > eps`
/// (else the clamped norm is constant: `da += dout b / (na nb)`), and symmetrically for `db`.
pub fn cosine_similarity_backward_cpu(
    da: &mut [f32], // (N, C) accumulated
    db: &mut [f32], // (N, C) accumulated
    dout: &[f32],   // (N)
    a: &[f32],      // (N, C)
    b: &[f32],      // (N, C)
    n: usize,
    c: usize,
) -> Result<()> {
    let op = "cosine_similarity_backward_cpu";
    let nc = product(op, &[n, c])?;
    expect_len(op, "da", da.len(), nc)?;
    expect_len(op, "db", db.len(), nc)?;
    expect_len(op, "dout", dout.len(), n)?;
    expect_len(op, "a", a.len(), nc)?;
    expect_len(op, "b", b.len(), nc)?;
    for row in 0..n {
        let r = row * c..(row + 1) * c;
        let (x, y) = (&a[r.clone()], &b[r.clone()]);
        let (raw_na, raw_nb) = (dot(x, x).sqrt(), dot(y, y).sqrt());
        let (na, nb) = (raw_na.max(COSINE_EPS), raw_nb.max(COSINE_EPS));
        let s = dot(x, y) / (na * nb);
        let g = dout[row];
        // the norm term only where the clamp is inactive
        let ka = if raw_na > COSINE_EPS {
            s / (na * na)
        } else {
            0.0
        };
        let kb = if raw_nb > COSINE_EPS {
            s / (nb * nb)
        } else {
            0.0
        };
        for j in 0..c {
            da[row * c + j] += g * (y[j] / (na * nb) - ka * x[j]);
            db[row * c + j] += g * (x[j] / (na * nb) - kb * y[j]);
        }
    }
    Ok(())
}

// ---- on a device (CPU or GPU) -------------------------------------------------------------

fn rows(op: &str, x: &Tensor) -> Result<(usize, usize)> {
    match x.shape() {
        &[n, c] => Ok((n, c)),
        other => Err(Error::shape(format!("{op}: {}", x.name()), "(N, C)", other)),
    }
}

fn params(op: &str, n: usize, c: usize, eps: f32) -> Result<SimilarityParams> {
    Ok(SimilarityParams {
        n: as_u32(op, n)?,
        c: as_u32(op, c)?,
        eps,
        _pad: 0,
    })
}

/// out (N, C) = inp / max(||inp||, 1e-12) per row; norms (N) kept for the backward.
pub fn l2_normalize_forward(out: &mut Tensor, norms: &mut Tensor, inp: &Tensor) -> Result<()> {
    let op = "l2_normalize_forward";
    let (n, c) = rows(op, inp)?;
    out.expect_shape(op, &[n, c])?;
    norms.expect_shape(op, &[n])?;
    match out.gpu_context().cloned() {
        None => l2_normalize_forward_cpu(out.cpu_mut()?, norms.cpu_mut()?, inp.cpu()?, n, c),
        Some(ctx) => ctx.dispatch(
            &shaders::SIMILARITY.kernel(op),
            &[inp.gpu()?],
            &[out.gpu()?, norms.gpu()?],
            &params(op, n, c, NORMALIZE_EPS)?,
            ctx.linear_groups(n, 1),
        ),
    }
}

/// dinp (N, C) += the gradient through the normalization.
pub fn l2_normalize_backward(
    dinp: &mut Tensor,
    dout: &Tensor,
    out: &Tensor,
    norms: &Tensor,
) -> Result<()> {
    let op = "l2_normalize_backward";
    let (n, c) = rows(op, out)?;
    dinp.expect_shape(op, &[n, c])?;
    dout.expect_shape(op, &[n, c])?;
    norms.expect_shape(op, &[n])?;
    match dinp.gpu_context().cloned() {
        None => {
            l2_normalize_backward_cpu(dinp.cpu_mut()?, dout.cpu()?, out.cpu()?, norms.cpu()?, n, c)
        }
        Some(ctx) => ctx.dispatch(
            &shaders::SIMILARITY.kernel(op),
            &[dout.gpu()?, out.gpu()?, norms.gpu()?],
            &[dinp.gpu()?],
            &params(op, n, c, NORMALIZE_EPS)?,
            ctx.linear_groups(n, 1),
        ),
    }
}

/// out (N) = cosine similarity of the rows of a (N, C) and b (N, C).
pub fn cosine_similarity_forward(out: &mut Tensor, a: &Tensor, b: &Tensor) -> Result<()> {
    let op = "cosine_similarity_forward";
    let (n, c) = rows(op, a)?;
    b.expect_shape(op, &[n, c])?;
    out.expect_shape(op, &[n])?;
    match out.gpu_context().cloned() {
        None => cosine_similarity_forward_cpu(out.cpu_mut()?, a.cpu()?, b.cpu()?, n, c),
        Some(ctx) => ctx.dispatch(
            &shaders::SIMILARITY.kernel(op),
            &[a.gpu()?, b.gpu()?],
            &[out.gpu()?],
            &params(op, n, c, COSINE_EPS)?,
            ctx.linear_groups(n, 1),
        ),
    }
}

/// da, db (N, C) += the gradient of the similarities given dout (N).
pub fn cosine_similarity_backward(
    da: &mut Tensor,
    db: &mut Tensor,
    dout: &Tensor,
    a: &Tensor,
    b: &Tensor,
) -> Result<()> {
    let op = "cosine_similarity_backward";
    let (n, c) = rows(op, a)?;
    b.expect_shape(op, &[n, c])?;
    da.expect_shape(op, &[n, c])?;
    db.expect_shape(op, &[n, c])?;
    dout.expect_shape(op, &[n])?;
    match da.gpu_context().cloned() {
        None => cosine_similarity_backward_cpu(
            da.cpu_mut()?,
            db.cpu_mut()?,
            dout.cpu()?,
            a.cpu()?,
            b.cpu()?,
            n,
            c,
        ),
        Some(ctx) => ctx.dispatch(
            &shaders::SIMILARITY.kernel(op),
            &[a.gpu()?, b.gpu()?, dout.gpu()?],
            &[da.gpu()?, db.gpu()?],
            &params(op, n, c, COSINE_EPS)?,
            ctx.linear_groups(n, 1),
        ),
    }
}
