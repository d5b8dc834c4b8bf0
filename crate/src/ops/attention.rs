//! Multi-head scaled dot-product attention over a padding mask (Vaswani et al. 2017), as in
//! HF `BertSelfAttention` (no causal mask):
//!
//! ```text
//! q, k, v = split(qkv)                         (B, NH, T, hs) each, from (B, T, 3C)
//! att     = softmax(q k^T / sqrt(hs) + mask)   (B, NH, T, T), mask (B, T) additive
//! out     = merge(att v)                       (B, T, C)
//! ```
//!
//! Composed of the matmul and softmax kernels plus the head permutations of
//! `shaders/attention.wgsl` (no fused kernel yet: at BERT's T <= 512 the (T, T) scores fit
//! memory, and the tiled matmul is the expensive part). The same code runs on both devices:
//! the permutations have CPU versions here, the products and softmax dispatch by device.
//!
//! The query/key/value projections are one fused matmul before this op, with the weights
//! concatenated as [q; k; v] along the output dimension, so `qkv` is (B, T, 3C).

use crate::device::{Device, Kernel};
use crate::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use crate::ops::shaders;
use crate::ops::softmax::{softmax_backward, softmax_forward};
use crate::tensor::Tensor;
use crate::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AttentionParams {
    b: u32,
    t: u32,
    nh: u32,
    hs: u32,
}

/// The sizes of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionDims {
    pub b: usize,
    pub t: usize,
    pub nh: usize,
    pub hs: usize,
}

impl AttentionDims {
    fn params(&self) -> AttentionParams {
        AttentionParams {
            b: self.b as u32,
            t: self.t as u32,
            nh: self.nh as u32,
            hs: self.hs as u32,
        }
    }
    fn head_shape(&self) -> [usize; 4] {
        [self.b, self.nh, self.t, self.hs]
    }
}

/// What the forward keeps for the backward (and the probabilities, for inspection).
pub struct AttentionSaved {
    pub q: Tensor,   // (B, NH, T, hs)
    pub k: Tensor,   // (B, NH, T, hs)
    pub v: Tensor,   // (B, NH, T, hs)
    pub att: Tensor, // (B, NH, T, T) softmax probabilities
}

impl AttentionSaved {
    /// Buffers for a (B, T, C) input with `n_head` heads on `device`.
    pub fn new(device: &Device, b: usize, t: usize, c: usize, n_head: usize) -> Result<Self> {
        let hs = head_size(c, n_head)?;
        Ok(AttentionSaved {
            q: Tensor::uninit(device, &[b, n_head, t, hs], "attention.q")?,
            k: Tensor::uninit(device, &[b, n_head, t, hs], "attention.k")?,
            v: Tensor::uninit(device, &[b, n_head, t, hs], "attention.v")?,
            att: Tensor::uninit(device, &[b, n_head, t, t], "attention.probs")?,
        })
    }
}

fn head_size(c: usize, n_head: usize) -> Result<usize> {
    if n_head == 0 || !c.is_multiple_of(n_head) {
        return Err(Error::invalid(format!(
            "attention: C = {c} is not divisible by {n_head} heads"
        )));
    }
    Ok(c / n_head)
}

fn kernel(entry: &'static str) -> Kernel {
    Kernel {
        shader: &shaders::ATTENTION,
        entry,
    }
}

/// out (B, T, C) = attention over qkv (B, T, 3C) with `mask` (B, T) added to the scores
/// (0 = attend, very negative = padding); saves q, k, v, att for the backward.
pub fn attention_forward(
    out: &mut Tensor,
    saved: &mut AttentionSaved,
    qkv: &Tensor,
    mask: Option<&Tensor>,
    n_head: usize,
) -> Result<()> {
    let s = qkv.shape();
    if s.len() != 3 || s[2] % 3 != 0 {
        return Err(Error::shape(
            format!("attention_forward: {}", qkv.name()),
            "(B, T, 3C)",
            s,
        ));
    }
    let (b, t, c) = (s[0], s[1], s[2] / 3);
    let d = AttentionDims {
        b,
        t,
        nh: n_head,
        hs: head_size(c, n_head)?,
    };
    out.expect_shape("attention_forward", &[b, t, c])?;
    for h in [&saved.q, &saved.k, &saved.v] {
        h.expect_shape("attention_forward", &d.head_shape())?;
    }
    saved
        .att
        .expect_shape("attention_forward", &[b, n_head, t, t])?;
    if let Some(mask) = mask {
        mask.expect_shape("attention_forward mask", &[b, t])?;
    }
    let device = out.device();
    split_heads_forward(&mut saved.q, &mut saved.k, &mut saved.v, qkv, &d)?;
    // scores (B*NH, T, T) = q k^T / sqrt(hs)
    // (matmul treats the leading (B, NH) as one batch of B*NH matrices)
    let mut scores = Tensor::uninit(&device, &[b, n_head, t, t], "attention.scores")?;
    let scale = 1.0 / (d.hs as f32).sqrt();
    let qk = MatmulOptions {
        trans_b: true,
        alpha: scale,
        ..Default::default()
    };
    matmul_forward(&mut scores, &saved.q, &saved.k, None, qk)?;
    softmax_forward(&mut saved.att, &scores, mask)?;
    // y (B, NH, T, hs) = att v
    let mut y = Tensor::uninit(&device, &d.head_shape(), "attention.y")?;
    matmul_forward(&mut y, &saved.att, &saved.v, None, MatmulOptions::default())?;
    merge_heads_forward(out, &y, &d)
}

/// dqkv (B, T, 3C) += gradient of [`attention_forward`] given dout (B, T, C) and its saved
/// tensors. The mask has no gradient.
pub fn attention_backward(
    dqkv: &mut Tensor,
    dout: &Tensor,
    saved: &AttentionSaved,
    n_head: usize,
) -> Result<()> {
    let s = dout.shape();
    if s.len() != 3 {
        return Err(Error::shape(
            format!("attention_backward: {}", dout.name()),
            "(B, T, C)",
            s,
        ));
    }
    let (b, t, c) = (s[0], s[1], s[2]);
    let d = AttentionDims {
        b,
        t,
        nh: n_head,
        hs: head_size(c, n_head)?,
    };
    dqkv.expect_shape("attention_backward", &[b, t, 3 * c])?;
    saved
        .att
        .expect_shape("attention_backward", &[b, n_head, t, t])?;
    let device = dqkv.device();
    let heads = d.head_shape();
    let scores_shape = [b, n_head, t, t];
    let mut dy = Tensor::uninit(&device, &heads, "attention.dy")?;
    merge_heads_backward(&mut dy, dout, &d)?;
    // y = att v: datt = dy v^T, dv = att^T dy
    let mut datt = Tensor::zeros(&device, &scores_shape, "attention.datt")?;
    let mut dv = Tensor::zeros(&device, &heads, "attention.dv")?;
    let av = MatmulOptions::default();
    matmul_backward(
        Some(&mut datt),
        Some(&mut dv),
        None,
        &dy,
        &saved.att,
        &saved.v,
        av,
    )?;
    // att = softmax(scores + mask)
    let mut dscores = Tensor::zeros(&device, &scores_shape, "attention.dscores")?;
    softmax_backward(&mut dscores, &saved.att, &datt)?;
    // scores = q k^T / sqrt(hs)
    let mut dq = Tensor::zeros(&device, &heads, "attention.dq")?;
    let mut dk = Tensor::zeros(&device, &heads, "attention.dk")?;
    let scale = 1.0 / (d.hs as f32).sqrt();
    let qk = MatmulOptions {
        trans_b: true,
        alpha: scale,
        ..Default::default()
    };
    matmul_backward(
        Some(&mut dq),
        Some(&mut dk),
        None,
        &dscores,
        &saved.q,
        &saved.k,
        qk,
    )?;
    split_heads_backward(dqkv, &dq, &dk, &dv, &d)
}

// ---- the head permutations: GPU dispatch and CPU version side by side -------------------

/// q, k, v (B, NH, T, hs) = split of qkv (B, T, 3, NH, hs).
pub fn split_heads_forward(
    q: &mut Tensor,
    k: &mut Tensor,
    v: &mut Tensor,
    qkv: &Tensor,
    d: &AttentionDims,
) -> Result<()> {
    let n = d.b * d.nh * d.t * d.hs;
    match q.gpu_context().cloned() {
        None => {
            split_heads_forward_cpu(q.cpu_mut()?, k.cpu_mut()?, v.cpu_mut()?, qkv.cpu()?, d);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &kernel("split_heads_forward"),
            &[qkv.gpu()?],
            &[q.gpu()?, k.gpu()?, v.gpu()?],
            &d.params(),
            ctx.linear_groups(n, 256),
        ),
    }
}

/// q, k, v (B, NH, T, hs) from qkv (B, T, 3 * NH * hs)
pub fn split_heads_forward_cpu(
    q: &mut [f32],
    k: &mut [f32],
    v: &mut [f32],
    qkv: &[f32],
    d: &AttentionDims,
) {
    let c = d.nh * d.hs;
    for b in 0..d.b {
        for t in 0..d.t {
            let row = &qkv[(b * d.t + t) * 3 * c..][..3 * c];
            for h in 0..d.nh {
                let dst = ((b * d.nh + h) * d.t + t) * d.hs;
                q[dst..dst + d.hs].copy_from_slice(&row[h * d.hs..][..d.hs]);
                k[dst..dst + d.hs].copy_from_slice(&row[c + h * d.hs..][..d.hs]);
                v[dst..dst + d.hs].copy_from_slice(&row[2 * c + h * d.hs..][..d.hs]);
            }
        }
    }
}

/// dqkv (B, T, 3 * NH * hs) += merge of dq, dk, dv (B, NH, T, hs).
pub fn split_heads_backward(
    dqkv: &mut Tensor,
    dq: &Tensor,
    dk: &Tensor,
    dv: &Tensor,
    d: &AttentionDims,
) -> Result<()> {
    let n = d.b * d.nh * d.t * d.hs;
    match dqkv.gpu_context().cloned() {
        None => {
            split_heads_backward_cpu(dqkv.cpu_mut()?, dq.cpu()?, dk.cpu()?, dv.cpu()?, d);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &kernel("split_heads_backward"),
            &[dq.gpu()?, dk.gpu()?, dv.gpu()?],
            &[dqkv.gpu()?],
            &d.params(),
            ctx.linear_groups(n, 256),
        ),
    }
}

/// dqkv (B, T, 3 * NH * hs) += dq, dk, dv (B, NH, T, hs) moved back
pub fn split_heads_backward_cpu(
    dqkv: &mut [f32],
    dq: &[f32],
    dk: &[f32],
    dv: &[f32],
    d: &AttentionDims,
) {
    let c = d.nh * d.hs;
    for b in 0..d.b {
        for t in 0..d.t {
            let row = &mut dqkv[(b * d.t + t) * 3 * c..][..3 * c];
            for h in 0..d.nh {
                let src = ((b * d.nh + h) * d.t + t) * d.hs;
                for i in 0..d.hs {
                    row[h * d.hs + i] += dq[src + i];
                    row[c + h * d.hs + i] += dk[src + i];
                    row[2 * c + h * d.hs + i] += dv[src + i];
                }
            }
        }
    }
}

/// out (B, T, NH * hs) = y (B, NH, T, hs) with the heads side by side.
pub fn merge_heads_forward(out: &mut Tensor, y: &Tensor, d: &AttentionDims) -> Result<()> {
    let n = d.b * d.nh * d.t * d.hs;
    match out.gpu_context().cloned() {
        None => {
            merge_heads_forward_cpu(out.cpu_mut()?, y.cpu()?, d);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &kernel("merge_heads_forward"),
            &[y.gpu()?],
            &[out.gpu()?],
            &d.params(),
            ctx.linear_groups(n, 256),
        ),
    }
}

/// out (B, T, NH * hs) from y (B, NH, T, hs)
pub fn merge_heads_forward_cpu(out: &mut [f32], y: &[f32], d: &AttentionDims) {
    let c = d.nh * d.hs;
    for b in 0..d.b {
        for t in 0..d.t {
            for h in 0..d.nh {
                let src = ((b * d.nh + h) * d.t + t) * d.hs;
                out[(b * d.t + t) * c + h * d.hs..][..d.hs].copy_from_slice(&y[src..src + d.hs]);
            }
        }
    }
}

/// dy (B, NH, T, hs) = dout (B, T, NH * hs) permuted (overwrites: dy is scratch).
pub fn merge_heads_backward(dy: &mut Tensor, dout: &Tensor, d: &AttentionDims) -> Result<()> {
    let n = d.b * d.nh * d.t * d.hs;
    match dy.gpu_context().cloned() {
        None => {
            merge_heads_backward_cpu(dy.cpu_mut()?, dout.cpu()?, d);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &kernel("merge_heads_backward"),
            &[dout.gpu()?],
            &[dy.gpu()?],
            &d.params(),
            ctx.linear_groups(n, 256),
        ),
    }
}

/// dy (B, NH, T, hs) = dout (B, T, NH * hs) permuted
pub fn merge_heads_backward_cpu(dy: &mut [f32], dout: &[f32], d: &AttentionDims) {
    let c = d.nh * d.hs;
    for b in 0..d.b {
        for t in 0..d.t {
            for h in 0..d.nh {
                let dst = ((b * d.nh + h) * d.t + t) * d.hs;
                dy[dst..dst + d.hs].copy_from_slice(&dout[(b * d.t + t) * c + h * d.hs..][..d.hs]);
            }
        }
    }
}
