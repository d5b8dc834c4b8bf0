//! Multi-head self-attention over separate query / key / value projections, as HF
//! `BertSelfAttention` and DistilBERT's `MultiHeadSelfAttention` compute it (eval and train):
//!
//! ```text
//! q, k, v  (B, T, C) -> heads (B, NH, T, hs)         C = NH * hs
//! scores = q k^T / sqrt(hs)                          (B, NH, T, T)
//! att    = softmax(scores + mask)                    mask (B, T): 0 keep, f32::MIN padding
//! att_d  = dropout(att)                              (train only: attention_probs_dropout)
//! ctx    = merge(att_d v)                            (B, T, C)
//! ```
//!
//! The padding mask: BERT adds `(1 - mask) * finfo(f32).min` to the scores, DistilBERT
//! `masked_fill`s them with `finfo(f32).min`. Both give exactly zero probability on padding
//! (exp underflows), so one additive mask serves both.
//!
//! Composed of the head permutations of `ops::attention` and the matmul, softmax and dropout
//! ops (the fused-qkv `ops::attention` has no attention dropout and wants concatenated weights;
//! keeping q/k/v apart keeps the checkpoint's parameters as they are).

use crate::ops::attention::{merge_heads_backward, merge_heads_forward, AttentionDims};
use crate::ops::dropout::{dropout_backward, dropout_forward, DropoutMask};
use crate::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use crate::ops::softmax::{softmax_backward, softmax_forward};
use crate::tensor::Tensor;
use crate::Result;

/// What the backward needs.
pub struct AttentionSaved {
    pub q: Tensor,   // (B, NH, T, hs)
    pub k: Tensor,   // (B, NH, T, hs)
    pub v: Tensor,   // (B, NH, T, hs)
    pub att: Tensor, // (B, NH, T, T) softmax probabilities before dropout
}

fn dims(x: &Tensor, n_head: usize) -> AttentionDims {
    let s = x.shape();
    AttentionDims {
        b: s[0],
        t: s[1],
        nh: n_head,
        hs: s[2] / n_head,
    }
}

fn scores_options(hs: usize) -> MatmulOptions {
    MatmulOptions {
        trans_b: true,
        alpha: 1.0 / (hs as f32).sqrt(),
        ..Default::default()
    }
}

/// (B, T, C) -> (B, NH, T, hs)
fn to_heads(x: &Tensor, d: &AttentionDims, name: &str) -> Result<Tensor> {
    let mut h = Tensor::uninit(&x.device(), &[d.b, d.nh, d.t, d.hs], name)?;
    merge_heads_backward(&mut h, x, d)?; // the permutation (B, T, NH, hs) -> (B, NH, T, hs)
    Ok(h)
}

/// (B, NH, T, hs) -> (B, T, C)
fn from_heads(h: &Tensor, d: &AttentionDims, name: &str) -> Result<Tensor> {
    let mut x = Tensor::uninit(&h.device(), &[d.b, d.t, d.nh * d.hs], name)?;
    merge_heads_forward(&mut x, h, d)?;
    Ok(x)
}

/// ctx (B, T, C) = attention of q, k, v (B, T, C) with the additive `mask` (B, T).
/// `dropout`: the attention-probability dropout of this layer (None in eval).
pub fn self_attention_forward(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    n_head: usize,
    dropout: Option<DropoutMask>,
) -> Result<(Tensor, AttentionSaved)> {
    let d = dims(q, n_head);
    let device = q.device();
    let saved_q = to_heads(q, &d, "attention.q")?; // (B, NH, T, hs)
    let saved_k = to_heads(k, &d, "attention.k")?; // (B, NH, T, hs)
    let saved_v = to_heads(v, &d, "attention.v")?; // (B, NH, T, hs)
    let scores_shape = [d.b, d.nh, d.t, d.t];
    let mut scores = Tensor::uninit(&device, &scores_shape, "attention.scores")?; // (B, NH, T, T)
    matmul_forward(&mut scores, &saved_q, &saved_k, None, scores_options(d.hs))?;
    let mut att = Tensor::uninit(&device, &scores_shape, "attention.probs")?; // (B, NH, T, T)
    softmax_forward(&mut att, &scores, Some(mask))?;
    let mut y = Tensor::uninit(&device, &[d.b, d.nh, d.t, d.hs], "attention.y")?; // (B, NH, T, hs)
    match dropout {
        None => matmul_forward(&mut y, &att, &saved_v, None, MatmulOptions::default())?,
        Some(mask) => {
            let mut att_d = Tensor::uninit(&device, &scores_shape, "attention.probs_dropped")?;
            dropout_forward(&mut att_d, &att, mask)?;
            matmul_forward(&mut y, &att_d, &saved_v, None, MatmulOptions::default())?;
        }
    }
    let ctx = from_heads(&y, &d, "attention.context")?; // (B, T, C)
    let saved = AttentionSaved {
        q: saved_q,
        k: saved_k,
        v: saved_v,
        att,
    };
    Ok((ctx, saved))
}

/// dq, dk, dv (B, T, C), new tensors, from dctx (B, T, C) and the saved forward.
pub fn self_attention_backward(
    dctx: &Tensor,
    saved: &AttentionSaved,
    n_head: usize,
    dropout: Option<DropoutMask>,
) -> Result<[Tensor; 3]> {
    let d = dims(dctx, n_head);
    let device = dctx.device();
    let heads = [d.b, d.nh, d.t, d.hs];
    let scores_shape = [d.b, d.nh, d.t, d.t];
    let dy = to_heads(dctx, &d, "attention.dy")?; // (B, NH, T, hs)
                                                  // y = att_d v: datt_d = dy v^T, dv = att_d^T dy
    let mut datt = Tensor::zeros(&device, &scores_shape, "attention.datt")?; // (B, NH, T, T)
    let mut dv = Tensor::zeros(&device, &heads, "attention.dv")?; // (B, NH, T, hs)
    let av = MatmulOptions::default();
    match dropout {
        None => matmul_backward(
            Some(&mut datt),
            Some(&mut dv),
            None,
            &dy,
            &saved.att,
            &saved.v,
            av,
        )?,
        Some(mask) => {
            // regenerate att_d (the same Threefry mask), then undo the dropout on datt
            let mut att_d = Tensor::uninit(&device, &scores_shape, "attention.probs_dropped")?;
            dropout_forward(&mut att_d, &saved.att, mask)?;
            let mut datt_d = Tensor::zeros(&device, &scores_shape, "attention.datt_dropped")?;
            matmul_backward(
                Some(&mut datt_d),
                Some(&mut dv),
                None,
                &dy,
                &att_d,
                &saved.v,
                av,
            )?;
            dropout_backward(&mut datt, &datt_d, mask)?;
        }
    }
    // att = softmax(scores + mask)
    let mut dscores = Tensor::zeros(&device, &scores_shape, "attention.dscores")?;
    softmax_backward(&mut dscores, &saved.att, &datt)?;
    // scores = q k^T / sqrt(hs)
    let mut dq = Tensor::zeros(&device, &heads, "attention.dq")?;
    let mut dk = Tensor::zeros(&device, &heads, "attention.dk")?;
    matmul_backward(
        Some(&mut dq),
        Some(&mut dk),
        None,
        &dscores,
        &saved.q,
        &saved.k,
        scores_options(d.hs),
    )?;
    Ok([
        from_heads(&dq, &d, "attention.dq_flat")?,
        from_heads(&dk, &d, "attention.dk_flat")?,
        from_heads(&dv, &d, "attention.dv_flat")?,
    ])
}
