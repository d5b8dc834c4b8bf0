//! The CPU attention, fused per (batch row, head): the same products, softmax and dropout as
//! the composed GPU path of [`super::attention`], without its head permutations and without a
//! (B, NH, T, T) scratch tensor. One job per (batch row b, head h):
//!
//! ```text
//! forward
//!   qh, kh, vh   = rows b*T.. of q, k, v (B, T, C), columns h*hs..   read by stride, not copied
//!   att[b, h]    = qh kh^T / sqrt(hs)          (T, T)   written into the saved probabilities
//!   att[b, h]    = softmax(att[b, h] + mask[b]) in place, while the block is in cache
//!   att_d        = dropout(att[b, h])          (T, T)   scratch, training only
//!   out[b, :, h] = att_d vh                    (T, hs)  written into out (B, T, C) by stride
//! backward (the saved probabilities, the saved q, k, v; nothing recomputed but att_d)
//!   g            = dy vh^T                     (T, T)   scratch; dy = rows of dout by stride
//!   dv[b, :, h] += att_d^T dy                  (T, hs)
//!   g            = softmax'(att[b, h], dropout'(g))     in place
//!   dq[b, :, h] += g kh / sqrt(hs),  dk[b, :, h] += g^T qh / sqrt(hs)
//! ```
//!
//! Every product is the CPU GEMM of `ops/matmul/cpu_gemm.rs` on strided views with the
//! operands, depth blocking, start values (zeros) and alpha of the composed path, every
//! elementwise step the same operations in the same order (`softmax_rows_in_place`,
//! `dropout_block_cpu`), and a head's gradient is summed in a (T, hs) scratch before it is added
//! to dq, dk, dv as the merge added it: the results are the composed path's bit for bit (the
//! test `attention_cpu_fused_equals_composed_ops` compares them exactly). What changes is the
//! memory traffic: no split of q, k, v into (B, NH, T, hs) copies and no merge of the context
//! back, the (T, T) block of one head stays in L2 from its product through the softmax to the
//! value product, and the backward needs (T, T) scratch per thread instead of four
//! (B, NH, T, T) tensors.
//!
//! The (batch row, head) pairs are split over the CPU threads in contiguous ranges (one range
//! per thread; each product then runs on its thread alone); a call with little work runs on the
//! calling thread.

use crate::ops::attention::AttentionDims;
use crate::ops::cpu_parallel::run_in_parallel;
use crate::ops::dropout::{dropout_block_cpu, dropout_block_in_place_cpu, DropoutParams};
use crate::ops::matmul::cpu_gemm::{
    cpu_threads, gemm_flops, gemm_one_thread, CInit, MatrixView, MIN_FLOPS_PER_THREAD,
};
use crate::ops::softmax::{softmax_backward_rows_in_place, softmax_rows_in_place};

/// A (B, T, C) tensor that the jobs write together, each only its own head's columns of its
/// own batch row.
#[derive(Clone, Copy)]
struct SharedTokens(*mut f32);
// SAFETY: the jobs write disjoint elements (see `add_head` and the forward's value product).
unsafe impl Send for SharedTokens {}
unsafe impl Sync for SharedTokens {}

impl SharedTokens {
    /// The element `offset` places in (a method, so that closures capture the whole struct).
    ///
    /// # Safety
    /// `offset` must be inside the tensor.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        self.0.add(offset)
    }
}

impl AttentionDims {
    /// Where head `h` of batch row `b` starts in a (B, T, C) tensor.
    fn head_offset(&self, b: usize, h: usize) -> usize {
        b * self.t * self.nh * self.hs + h * self.hs
    }

    /// Head `h` of batch row `b` of x (B, T, C) as a (T, hs) matrix.
    fn head_rows<'a>(&self, x: &'a [f32], b: usize, h: usize) -> MatrixView<'a> {
        MatrixView {
            data: &x[self.head_offset(b, h)..],
            row_stride: self.nh * self.hs,
            col_stride: 1,
        }
    }

    /// The transpose of [`Self::head_rows`]: (hs, T).
    fn head_columns<'a>(&self, x: &'a [f32], b: usize, h: usize) -> MatrixView<'a> {
        MatrixView {
            data: &x[self.head_offset(b, h)..],
            row_stride: 1,
            col_stride: self.nh * self.hs,
        }
    }
}

/// A (T, T) block row-major, or its transpose.
fn square(data: &[f32], t: usize, transposed: bool) -> MatrixView<'_> {
    let (row_stride, col_stride) = if transposed { (1, t) } else { (t, 1) };
    MatrixView {
        data,
        row_stride,
        col_stride,
    }
}

/// The (batch row, head) pairs of `d` in one contiguous range per thread, or one range when
/// the work (`flops_per_pair` each) is too small to share.
fn pair_ranges(d: &AttentionDims, flops_per_pair: f64) -> Vec<std::ops::Range<usize>> {
    let pairs = d.b * d.nh;
    let threads = if flops_per_pair * (pairs as f64) < MIN_FLOPS_PER_THREAD {
        1
    } else {
        cpu_threads().clamp(1, pairs.max(1))
    };
    let per_range = pairs.div_ceil(threads).max(1);
    (0..pairs)
        .step_by(per_range)
        .map(|start| start..(start + per_range).min(pairs))
        .collect()
}

thread_local! {
    /// The (T, T) and (T, hs) scratch blocks of this thread's jobs, reused across calls.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `job` with `len` floats of this thread's scratch (contents undefined).
fn with_scratch(len: usize, job: impl FnOnce(&mut [f32])) {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        if scratch.len() < len {
            scratch.resize(len, 0.0);
        }
        job(&mut scratch[..len]);
    });
}

/// out (B, T, C) = attention of q, k, v (B, T, C); `att` (B, NH, T, T) receives the
/// probabilities before dropout. `mask`: (B, T) additive; `dropout`: the parameters of a
/// dropout over all B*NH*T*T probabilities.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_forward_cpu(
    out: &mut [f32],
    att: &mut [f32],
    [q, k, v]: [&[f32]; 3],
    mask: Option<&[f32]>,
    dropout: Option<&DropoutParams>,
    d: &AttentionDims,
) {
    let (t, hs) = (d.t, d.hs);
    if d.b * d.nh * t * hs == 0 {
        return;
    }
    let block = t * t;
    let scale = 1.0 / (hs as f32).sqrt();
    let ranges = pair_ranges(d, 2.0 * gemm_flops(t, t, hs));
    let per_range = ranges[0].len();
    let out = SharedTokens(out.as_mut_ptr());
    let jobs: Vec<_> = ranges
        .into_iter()
        .zip(att.chunks_mut(per_range * block))
        .collect();
    run_in_parallel(jobs, |(pairs, att)| {
        with_scratch(if dropout.is_some() { block } else { 0 }, |dropped| {
            for (pair, probs) in pairs.zip(att.chunks_mut(block)) {
                let (b, h) = (pair / d.nh, pair % d.nh);
                // scores (T, T) = qh kh^T / sqrt(hs), into the saved probabilities
                // SAFETY: `probs` is this job's own (T, T) block.
                unsafe {
                    gemm_one_thread(
                        probs.as_mut_ptr(),
                        t,
                        CInit::Zero,
                        d.head_rows(q, b, h),
                        d.head_columns(k, b, h),
                        t,
                        t,
                        hs,
                        scale,
                    )
                };
                softmax_rows_in_place(probs, mask.map(|m| &m[b * t..][..t]), t);
                let used: &[f32] = match dropout {
                    None => probs,
                    Some(params) => {
                        dropout_block_cpu(dropped, probs, params, pair * block);
                        dropped
                    }
                };
                // out[b, :, h] (T, hs) = att_d vh
                // SAFETY: rows b*T.. and columns h*hs.. of out are this pair's alone, and out
                // (B, T, C) holds them (the caller checked its shape).
                unsafe {
                    gemm_one_thread(
                        out.at(d.head_offset(b, h)),
                        d.nh * hs,
                        CInit::Zero,
                        square(used, t, false),
                        d.head_rows(v, b, h),
                        t,
                        hs,
                        t,
                        1.0,
                    )
                };
            }
        });
    });
}

/// dq, dk, dv (B, T, C) += the gradients of [`attention_forward_cpu`] given dout (B, T, C),
/// the saved probabilities `att` (B, NH, T, T), the forward's q, k, v and its dropout.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention_backward_cpu(
    [dq, dk, dv]: [&mut [f32]; 3],
    dout: &[f32],
    att: &[f32],
    [q, k, v]: [&[f32]; 3],
    dropout: Option<&DropoutParams>,
    d: &AttentionDims,
) {
    let (t, hs) = (d.t, d.hs);
    if d.b * d.nh * t * hs == 0 {
        return;
    }
    let block = t * t;
    let scale = 1.0 / (hs as f32).sqrt();
    let ranges = pair_ranges(d, 4.0 * gemm_flops(t, t, hs));
    let [dq, dk, dv] = [dq, dk, dv].map(|g| SharedTokens(g.as_mut_ptr()));
    // dropout: a second (T, T) block for att_d
    let scratch_len = block * (1 + dropout.is_some() as usize) + t * hs;
    run_in_parallel(ranges, |pairs| {
        with_scratch(scratch_len, |scratch| {
            let (grad, rest) = scratch.split_at_mut(block);
            let (head, dropped) = rest.split_at_mut(t * hs);
            for pair in pairs {
                let (b, h) = (pair / d.nh, pair % d.nh);
                let probs = &att[pair * block..][..block];
                let dy = d.head_rows(dout, b, h);
                // grad (T, T) = dy vh^T
                // SAFETY (every gemm_one_thread below): the output is this job's scratch.
                unsafe {
                    gemm_one_thread(
                        grad.as_mut_ptr(),
                        t,
                        CInit::Zero,
                        dy,
                        d.head_columns(v, b, h),
                        t,
                        t,
                        hs,
                        1.0,
                    )
                };
                let used: &[f32] = match dropout {
                    None => probs,
                    Some(params) => {
                        dropout_block_cpu(dropped, probs, params, pair * block);
                        dropped
                    }
                };
                // dv[b, :, h] += att_d^T dy
                add_head_product(dv, head, square(used, t, true), dy, 1.0, d, b, h);
                if let Some(params) = dropout {
                    dropout_block_in_place_cpu(grad, params, pair * block);
                }
                softmax_backward_rows_in_place(grad, probs, t);
                // dq[b, :, h] += grad kh / sqrt(hs)
                add_head_product(
                    dq,
                    head,
                    square(grad, t, false),
                    d.head_rows(k, b, h),
                    scale,
                    d,
                    b,
                    h,
                );
                // dk[b, :, h] += grad^T qh / sqrt(hs)
                add_head_product(
                    dk,
                    head,
                    square(grad, t, true),
                    d.head_rows(q, b, h),
                    scale,
                    d,
                    b,
                    h,
                );
            }
        });
    });
}

/// tokens[b, :, h] (T, hs) += alpha * a (T, T) @ b_rows (T, hs), the product made in `head`
/// (T, hs), the job's scratch.
#[allow(clippy::too_many_arguments)]
fn add_head_product(
    tokens: SharedTokens,
    head: &mut [f32],
    a: MatrixView,
    b_rows: MatrixView,
    alpha: f32,
    d: &AttentionDims,
    b: usize,
    h: usize,
) {
    // SAFETY: the output is the job's own scratch of T x hs values.
    unsafe {
        gemm_one_thread(
            head.as_mut_ptr(),
            d.hs,
            CInit::Zero,
            a,
            b_rows,
            d.t,
            d.hs,
            d.t,
            alpha,
        )
    };
    add_head(tokens, head, d, b, h);
}

/// tokens[b, :, h] (T, hs, inside a (B, T, C) tensor) += head (T, hs).
fn add_head(tokens: SharedTokens, head: &[f32], d: &AttentionDims, b: usize, h: usize) {
    let c = d.nh * d.hs;
    for (t, values) in head.chunks_exact(d.hs).enumerate() {
        // SAFETY: columns h*hs.. of token row b*T + t are this (batch row, head) pair's alone,
        // inside the (B, T, C) tensor the caller checked.
        let row =
            unsafe { std::slice::from_raw_parts_mut(tokens.at(d.head_offset(b, h) + t * c), d.hs) };
        row.iter_mut().zip(values).for_each(|(x, &g)| *x += g);
    }
}
