//! Multi-head scaled dot-product attention over a padding mask (Vaswani et al. 2017), as HF
//! `BertSelfAttention` and DistilBERT's `MultiHeadSelfAttention` compute it (no causal mask),
//! in eval and in training (attention-probability dropout). The one attention op of webnlu:
//! the encoder layer (`models/bert/encoder_layer.rs`) calls it after its query/key/value
//! projections, and the kernel check and `webnlu bench ops` test and time this same code.
//!
//! ```text
//! inputs  q, k, v  (B, T, C)       the three projections, C = NH * hs
//!         mask     (B, T)          additive: 0 = attend, very negative (f32::MIN) = padding
//! qh, kh, vh = split_heads(q, k, v)     (B, NH, T, hs)   saved
//! scores     = qh kh^T / sqrt(hs)       (B, NH, T, T)    scratch
//! att        = softmax(scores + mask)   (B, NH, T, T)    saved (before dropout)
//! att_d      = dropout(att)             (B, NH, T, T)    training only; regenerated in backward
//! y          = att_d vh                 (B, NH, T, hs)   scratch
//! out        = merge_heads(y)           (B, T, C)
//! ```
//!
//! The mask: BERT adds `(1 - mask) * finfo(f32).min` to the scores, DistilBERT `masked_fill`s
//! them with `finfo(f32).min`; both give exactly zero probability on padding (exp underflows),
//! so one additive mask serves both.
//!
//! **What the forward saves for the backward, and why** ([`AttentionSaved`]):
//! - `q`, `k`, `v`, on the GPU in the head-major layout (B, NH, T, hs), on the CPU as the
//!   forward got them (B, T, C), read by stride: the products' gradients need the
//!   other operand (`dqh = dscores kh`, `dkh = dscores^T qh`, `datt_d = dy vh^T`). Keeping them
//!   permuted saves redoing the permutation; they cost as much memory as the inputs.
//! - `att`, the probabilities before dropout (B, NH, T, T): the softmax backward needs its
//!   output (`dscores = att * (datt - sum(att * datt))`), and `att_d = dropout(att)` is the
//!   left operand of the value product.
//! - Not saved: `scores` (the softmax backward needs only `att`), `y` (the merge is a
//!   permutation: its backward needs nothing), and the dropout mask and `att_d`: the mask is
//!   counter-based (Threefry, `ops/dropout.rs`), so the backward redraws it from the same
//!   [`DropoutMask`] (seed, stream) bit for bit and recomputes `att_d` instead of storing a
//!   second (B, NH, T, T) tensor.
//!
//! The backward runs the forward's lines in reverse:
//! ```text
//! dy            = split of dout                     (B, NH, T, hs)   merge_heads backward
//! datt_d, dvh   = dy vh^T, att_d^T dy               (B, NH, T, T), (B, NH, T, hs)
//! datt          = dropout'(datt_d)                  (same mask; identity without dropout)
//! dscores       = softmax'(att, datt)               (B, NH, T, T)    the mask has no gradient
//! dqh, dkh      = dscores kh / sqrt(hs), dscores^T qh / sqrt(hs)
//! dq, dk, dv   += merge of dqh, dkh, dvh            (B, T, C)        accumulated, like every op
//! ```
//!
//! On the GPU: composed of the matmul, softmax and dropout ops plus the head permutations of
//! `shaders/attention.wgsl` (no fused kernel: at BERT's T <= 512 the (T, T) scores fit memory,
//! and the tiled matmul is the expensive part). On the CPU: the same lines fused per (batch
//! row, head) in `ops/attention_cpu.rs`, reading q, k, v and writing the output by stride (no
//! permutation copies, no (B, NH, T, T) scores or gradient tensors), with the same results bit
//! for bit. There the forward saves q, k, v as given, (B, T, C), instead of head-major copies:
//! [`attention_forward_keeping`] moves them into [`AttentionSaved`], [`attention_forward`]
//! copies them. The permutations keep their CPU versions here (any op runs on both devices).
//! The number of heads is the one the [`AttentionSaved`] buffers were made for.

use crate::device::{Device, GpuBuffer, GpuContext};
use crate::ops::attention_cpu::{attention_backward_cpu, attention_forward_cpu};
use crate::ops::cpu_parallel::for_each_row_part;
use crate::ops::dropout::{dropout_backward, dropout_forward, DropoutMask};
use crate::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use crate::ops::shaders;
use crate::ops::softmax::{softmax_backward, softmax_forward};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The uniform block of `shaders/attention.wgsl` (`Params`).
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct AttentionParams {
    b: u32,
    t: u32,
    nh: u32,
    hs: u32,
}

/// The sizes of one attention call: batch, sequence length, heads, head size (C = nh * hs).
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
    /// (B, NH, T, hs)
    fn heads_shape(&self) -> [usize; 4] {
        [self.b, self.nh, self.t, self.hs]
    }
    /// (B, NH, T, T)
    fn scores_shape(&self) -> [usize; 4] {
        [self.b, self.nh, self.t, self.t]
    }
    /// (B, T, C)
    fn tokens_shape(&self) -> [usize; 3] {
        [self.b, self.t, self.nh * self.hs]
    }
    /// The elements of one (B, NH, T, hs) tensor.
    fn head_elements(&self) -> usize {
        self.b * self.nh * self.t * self.hs
    }
    /// scores = q k^T / sqrt(hs), over the B*NH (T, hs) matrices.
    fn scores_product(&self) -> MatmulOptions {
        MatmulOptions {
            trans_b: true,
            alpha: 1.0 / (self.hs as f32).sqrt(),
            ..Default::default()
        }
    }
}

/// What the forward keeps for the backward (see the module doc for why each).
pub struct AttentionSaved {
    projections: SavedProjections,
    pub att: Tensor, // (B, NH, T, T) softmax probabilities before dropout
    dims: AttentionDims,
}

/// q, k, v as the backward reads them.
enum SavedProjections {
    /// GPU: with the heads apart, (B, NH, T, hs) each; filled by the forward.
    Heads([Tensor; 3]),
    /// CPU: the forward's inputs themselves, (B, T, C) each (read by stride); None before it.
    Tokens(Option<[Tensor; 3]>),
}

impl AttentionSaved {
    /// Buffers for (B, T, C) inputs with `n_head` heads on `device`.
    pub fn new(device: &Device, b: usize, t: usize, c: usize, n_head: usize) -> Result<Self> {
        if n_head == 0 || !c.is_multiple_of(n_head) {
            return Err(Error::invalid(format!(
                "attention: C = {c} is not divisible by {n_head} heads"
            )));
        }
        let hs = c / n_head;
        let projections = match device {
            Device::Cpu => SavedProjections::Tokens(None),
            Device::Gpu(_) => SavedProjections::Heads([
                Tensor::uninit(device, &[b, n_head, t, hs], "attention.q")?,
                Tensor::uninit(device, &[b, n_head, t, hs], "attention.k")?,
                Tensor::uninit(device, &[b, n_head, t, hs], "attention.v")?,
            ]),
        };
        Ok(AttentionSaved {
            projections,
            att: Tensor::uninit(device, &[b, n_head, t, t], "attention.probs")?,
            dims: AttentionDims {
                b,
                t,
                nh: n_head,
                hs,
            },
        })
    }

    /// The sizes these buffers were made for.
    fn dims(&self) -> AttentionDims {
        self.dims
    }
}

/// Checks that every tensor is (B, T, C) of the saved buffers' sizes.
fn expect_tokens(op: &str, d: &AttentionDims, tensors: &[&Tensor]) -> Result<()> {
    for x in tensors {
        x.expect_shape(op, &d.tokens_shape())?;
    }
    Ok(())
}

// ---- forward and backward ----------------------------------------------------------------

/// out (B, T, C) = attention of q, k, v (B, T, C) with the additive `mask` (B, T) added to the
/// scores; `dropout`: the attention-probability dropout (None in eval). Fills `saved` (made
/// by [`AttentionSaved::new`] for these sizes and the number of heads) for the backward; on
/// the CPU that copies q, k, v ([`attention_forward_keeping`] takes them instead).
pub fn attention_forward(
    out: &mut Tensor,
    saved: &mut AttentionSaved,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    dropout: Option<DropoutMask>,
) -> Result<()> {
    if out.is_gpu() {
        return attention_forward_gpu(out, saved, [q, k, v], mask, dropout);
    }
    let d = saved.dims();
    expect_tokens("attention_forward", &d, &[q, k, v])?;
    let copy = |x: &Tensor| -> Result<Tensor> {
        let mut kept = Tensor::uninit(&out.device(), x.shape(), x.name())?;
        kept.cpu_mut()?.copy_from_slice(x.cpu()?);
        Ok(kept)
    };
    let projections = [copy(q)?, copy(k)?, copy(v)?];
    attention_forward_keeping(out, saved, projections, mask, dropout)
}

/// [`attention_forward`] that keeps q, k, v (B, T, C) for the backward: moved into `saved` on
/// the CPU (no copy), split into its head-major buffers (then dropped) on the GPU.
pub fn attention_forward_keeping(
    out: &mut Tensor,
    saved: &mut AttentionSaved,
    projections: [Tensor; 3],
    mask: Option<&Tensor>,
    dropout: Option<DropoutMask>,
) -> Result<()> {
    if out.is_gpu() {
        let [q, k, v] = &projections;
        return attention_forward_gpu(out, saved, [q, k, v], mask, dropout);
    }
    if let SavedProjections::Heads(_) = saved.projections {
        return Err(Error::invalid(
            "attention_forward: the saved buffers were made for the GPU, the op runs on the CPU",
        ));
    }
    let d = saved.dims();
    let [q, k, v] = &projections;
    check_forward_shapes(&d, saved, [out, q, k, v], mask)?;
    let params = match dropout {
        Some(dropout) => Some(dropout.params(d.b * d.nh * d.t * d.t)?),
        None => None,
    };
    let mask = match mask {
        Some(mask) => Some(mask.cpu()?),
        None => None,
    };
    attention_forward_cpu(
        out.cpu_mut()?,
        saved.att.cpu_mut()?,
        [q.cpu()?, k.cpu()?, v.cpu()?],
        mask,
        params.as_ref(),
        &d,
    );
    saved.projections = SavedProjections::Tokens(Some(projections));
    Ok(())
}

/// The forward's shapes: out, q, k, v (B, T, C), the saved scores (B, NH, T, T), the mask (B, T).
fn check_forward_shapes(
    d: &AttentionDims,
    saved: &AttentionSaved,
    tokens: [&Tensor; 4],
    mask: Option<&Tensor>,
) -> Result<()> {
    expect_tokens("attention_forward", d, &tokens)?;
    saved
        .att
        .expect_shape("attention_forward", &d.scores_shape())?;
    if let Some(mask) = mask {
        mask.expect_shape("attention_forward mask", &[d.b, d.t])?;
    }
    Ok(())
}

/// The GPU forward: the composed ops of the module doc.
fn attention_forward_gpu(
    out: &mut Tensor,
    saved: &mut AttentionSaved,
    [q, k, v]: [&Tensor; 3],
    mask: Option<&Tensor>,
    dropout: Option<DropoutMask>,
) -> Result<()> {
    let d = saved.dims();
    check_forward_shapes(&d, saved, [out, q, k, v], mask)?;
    let device = out.device();
    let SavedProjections::Heads([qh, kh, vh]) = &mut saved.projections else {
        return Err(Error::invalid(
            "attention_forward: the saved buffers were made for the CPU, the op runs on the GPU",
        ));
    };
    split_heads_forward(qh, kh, vh, q, k, v, &d)?;
    // scores (B, NH, T, T) = qh kh^T / sqrt(hs); matmul treats (B, NH) as one batch of B*NH
    let mut scores = Tensor::uninit(&device, &d.scores_shape(), "attention.scores")?;
    matmul_forward(&mut scores, qh, kh, None, d.scores_product())?;
    softmax_forward(&mut saved.att, &scores, mask)?;
    drop(scores);
    // y (B, NH, T, hs) = att_d vh
    let mut y = Tensor::uninit(&device, &d.heads_shape(), "attention.y")?;
    let plain = MatmulOptions::default();
    match dropout {
        None => matmul_forward(&mut y, &saved.att, vh, None, plain)?,
        Some(dropout) => {
            let mut att_d = Tensor::uninit(&device, &d.scores_shape(), "attention.probs_dropped")?; // (B, NH, T, T)
            dropout_forward(&mut att_d, &saved.att, dropout)?;
            matmul_forward(&mut y, &att_d, vh, None, plain)?;
        }
    }
    merge_heads_forward(out, &y, &d)
}

/// dq, dk, dv (B, T, C) += gradients of [`attention_forward`] given dout (B, T, C), its saved
/// tensors and the same `dropout` as the forward. The mask has no gradient.
pub fn attention_backward(
    dq: &mut Tensor,
    dk: &mut Tensor,
    dv: &mut Tensor,
    dout: &Tensor,
    saved: &AttentionSaved,
    dropout: Option<DropoutMask>,
) -> Result<()> {
    let d = saved.dims();
    expect_tokens("attention_backward", &d, &[dq, dk, dv, dout])?;
    let [qh, kh, vh] = match &saved.projections {
        SavedProjections::Heads(heads) => heads,
        SavedProjections::Tokens(kept) => {
            let Some([q, k, v]) = kept else {
                return Err(Error::invalid(
                    "attention_backward: no forward filled the saved tensors",
                ));
            };
            let params = match dropout {
                Some(dropout) => Some(dropout.params(d.b * d.nh * d.t * d.t)?),
                None => None,
            };
            attention_backward_cpu(
                [dq.cpu_mut()?, dk.cpu_mut()?, dv.cpu_mut()?],
                dout.cpu()?,
                saved.att.cpu()?,
                [q.cpu()?, k.cpu()?, v.cpu()?],
                params.as_ref(),
                &d,
            );
            return Ok(());
        }
    };
    let device = dout.device();
    let mut dy = Tensor::uninit(&device, &d.heads_shape(), "attention.dy")?; // (B, NH, T, hs)
    merge_heads_backward(&mut dy, dout, &d)?;
    // y = att_d vh:  datt_d = dy vh^T, dvh = att_d^T dy
    let mut datt = Tensor::zeros(&device, &d.scores_shape(), "attention.datt")?; // (B, NH, T, T)
    let mut dvh = Tensor::zeros(&device, &d.heads_shape(), "attention.dvh")?; // (B, NH, T, hs)
    let plain = MatmulOptions::default();
    match dropout {
        None => matmul_backward(
            Some(&mut datt),
            Some(&mut dvh),
            None,
            &dy,
            &saved.att,
            vh,
            plain,
        )?,
        Some(dropout) => {
            // att_d again from the same Threefry mask, then datt = dropout'(datt_d)
            let mut att_d = Tensor::uninit(&device, &d.scores_shape(), "attention.probs_dropped")?; // (B, NH, T, T)
            dropout_forward(&mut att_d, &saved.att, dropout)?;
            let mut datt_d = Tensor::zeros(&device, &d.scores_shape(), "attention.datt_dropped")?; // (B, NH, T, T)
            matmul_backward(
                Some(&mut datt_d),
                Some(&mut dvh),
                None,
                &dy,
                &att_d,
                vh,
                plain,
            )?;
            dropout_backward(&mut datt, &datt_d, dropout)?;
        }
    }
    drop(dy);
    // att = softmax(scores + mask)
    let mut dscores = Tensor::zeros(&device, &d.scores_shape(), "attention.dscores")?; // (B, NH, T, T)
    softmax_backward(&mut dscores, &saved.att, &datt)?;
    drop(datt);
    // scores = qh kh^T / sqrt(hs)
    let mut dqh = Tensor::zeros(&device, &d.heads_shape(), "attention.dqh")?; // (B, NH, T, hs)
    let mut dkh = Tensor::zeros(&device, &d.heads_shape(), "attention.dkh")?; // (B, NH, T, hs)
    matmul_backward(
        Some(&mut dqh),
        Some(&mut dkh),
        None,
        &dscores,
        qh,
        kh,
        d.scores_product(),
    )?;
    split_heads_backward(dq, dk, dv, &dqh, &dkh, &dvh, &d)
}

// ---- the head permutations: GPU dispatch and CPU version side by side -------------------

/// One permutation kernel of `shaders/attention.wgsl`, an invocation per element of a
/// (B, NH, T, hs) tensor.
fn dispatch_heads(
    ctx: &GpuContext,
    entry: &'static str,
    inputs: &[&GpuBuffer],
    outputs: &[&GpuBuffer],
    d: &AttentionDims,
) -> Result<()> {
    let kernel = shaders::ATTENTION.kernel(entry);
    let groups = ctx.linear_groups(d.head_elements(), 256);
    ctx.dispatch(&kernel, inputs, outputs, &d.params(), groups)
}

/// heads (B, NH, T, hs) = tokens (B, T, C) with the heads apart; over the threads by rows
/// of `heads`.
fn split_heads_cpu(heads: &mut [f32], tokens: &[f32], d: &AttentionDims) {
    let c = d.nh * d.hs;
    for_each_row_part(heads, d.hs, |first_row, part| {
        for (r, row) in part.chunks_mut(d.hs).enumerate() {
            // row = (b, h, t) of the (B, NH, T) rows
            let index = first_row + r;
            let (bh, t) = (index / d.t, index % d.t);
            let (b, h) = (bh / d.nh, bh % d.nh);
            row.copy_from_slice(&tokens[(b * d.t + t) * c + h * d.hs..][..d.hs]);
        }
    });
}

/// tokens (B, T, C) = heads (B, NH, T, hs) side by side, or `+=` with `accumulate` (a
/// gradient); over the threads by rows of `tokens`.
fn merge_heads_cpu(tokens: &mut [f32], heads: &[f32], d: &AttentionDims, accumulate: bool) {
    let c = d.nh * d.hs;
    for_each_row_part(tokens, c, |first_row, part| {
        for (r, row) in part.chunks_mut(c).enumerate() {
            let (b, t) = ((first_row + r) / d.t, (first_row + r) % d.t);
            for (h, chunk) in row.chunks_mut(d.hs).enumerate() {
                let head = &heads[((b * d.nh + h) * d.t + t) * d.hs..][..d.hs];
                if accumulate {
                    chunk.iter_mut().zip(head).for_each(|(x, &g)| *x += g);
                } else {
                    chunk.copy_from_slice(head);
                }
            }
        }
    });
}

/// qh, kh, vh (B, NH, T, hs) = q, k, v (B, T, C) with the heads apart.
pub fn split_heads_forward(
    qh: &mut Tensor,
    kh: &mut Tensor,
    vh: &mut Tensor,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    d: &AttentionDims,
) -> Result<()> {
    match qh.gpu_context().cloned() {
        None => {
            for (heads, tokens) in [(qh, q), (kh, k), (vh, v)] {
                split_heads_cpu(heads.cpu_mut()?, tokens.cpu()?, d);
            }
            Ok(())
        }
        Some(ctx) => dispatch_heads(
            &ctx,
            "split_heads_forward",
            &[q.gpu()?, k.gpu()?, v.gpu()?],
            &[qh.gpu()?, kh.gpu()?, vh.gpu()?],
            d,
        ),
    }
}

/// dq, dk, dv (B, T, C) += dqh, dkh, dvh (B, NH, T, hs) with the heads side by side.
pub fn split_heads_backward(
    dq: &mut Tensor,
    dk: &mut Tensor,
    dv: &mut Tensor,
    dqh: &Tensor,
    dkh: &Tensor,
    dvh: &Tensor,
    d: &AttentionDims,
) -> Result<()> {
    match dq.gpu_context().cloned() {
        None => {
            for (tokens, heads) in [(dq, dqh), (dk, dkh), (dv, dvh)] {
                merge_heads_cpu(tokens.cpu_mut()?, heads.cpu()?, d, true);
            }
            Ok(())
        }
        Some(ctx) => dispatch_heads(
            &ctx,
            "split_heads_backward",
            &[dqh.gpu()?, dkh.gpu()?, dvh.gpu()?],
            &[dq.gpu()?, dk.gpu()?, dv.gpu()?],
            d,
        ),
    }
}

/// out (B, T, C) = y (B, NH, T, hs) with the heads side by side.
pub fn merge_heads_forward(out: &mut Tensor, y: &Tensor, d: &AttentionDims) -> Result<()> {
    match out.gpu_context().cloned() {
        None => {
            merge_heads_cpu(out.cpu_mut()?, y.cpu()?, d, false);
            Ok(())
        }
        Some(ctx) => dispatch_heads(&ctx, "merge_heads_forward", &[y.gpu()?], &[out.gpu()?], d),
    }
}

/// dy (B, NH, T, hs) = dout (B, T, C) with the heads apart (overwrites: dy is scratch).
pub fn merge_heads_backward(dy: &mut Tensor, dout: &Tensor, d: &AttentionDims) -> Result<()> {
    match dy.gpu_context().cloned() {
        None => {
            split_heads_cpu(dy.cpu_mut()?, dout.cpu()?, d);
            Ok(())
        }
        Some(ctx) => dispatch_heads(
            &ctx,
            "merge_heads_backward",
            &[dout.gpu()?],
            &[dy.gpu()?],
            d,
        ),
    }
}
