//! Products against a weight held as row shards (a tensor over one storage binding, see
//! `tensor.rs`): the masked-LM decoder `logits (.., V) = x (.., C) @ W^T + bias (V)` with the
//! word embeddings W (V, C) as the weight. Shard s (rows first..first + V_s of W) makes the
//! logits' column block first..first + V_s:
//!
//! ```text
//! block_s (.., V_s) = x @ W_s^T                       (the ordinary matmul kernel)
//! logits[.., first + j] = block_s[.., j] + bias[first + j]          (place_columns)
//! backward: dblock_s = dlogits[.., first..first + V_s]              (take_columns)
//!           dx += dblock_s @ W_s, dW_s += dblock_s^T @ x            (matmul_backward)
//!           dbias += column sums of dlogits                          (once, whole width)
//! ```
//!
//! A weight in one buffer (always on the CPU) takes the ordinary [`matmul_forward`] /
//! [`matmul_backward`], so the normal path is unchanged. The logits themselves must fit one
//! binding (N * V * 4 bytes: up to ~280 rows for mBERT under the default 128 MiB); allocating
//! larger ones fails with the error that names "mlm.logits".
//!
//! Kernels: `shaders/column_block.wgsl`; CPU twins: [`place_columns_cpu`], [`take_columns_cpu`].

use crate::ops::matmul::{bias_backward, matmul_backward, matmul_forward, MatmulOptions};
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ColumnBlockParams {
    m: u32,
    n: u32,
    w: u32,
    first: u32,
    has_bias: u32,
    _pad: [u32; 3],
}

/// (M, N of the whole matrix, W of the block), checked: same rows, the block inside.
fn block_dims(
    whole: &Tensor,
    block: &Tensor,
    first: usize,
    op: &str,
) -> Result<(usize, usize, usize)> {
    let (n, w) = (
        *whole.shape().last().unwrap_or(&0),
        *block.shape().last().unwrap_or(&0),
    );
    let m = whole.numel().checked_div(n).unwrap_or(0);
    if w == 0 || block.numel() != m * w || first + w > n {
        return Err(Error::shape(
            format!(
                "{op}: block {} at column {first} of {}",
                block.name(),
                whole.name()
            ),
            format!("({m}, <= {} columns)", n.saturating_sub(first)),
            block.shape(),
        ));
    }
    Ok((m, n, w))
}

/// out (M, N)[.., first..first + W] = block (M, W) (+ bias (N)[first..first + W]).
pub fn place_columns(
    out: &mut Tensor,
    block: &Tensor,
    bias: Option<&Tensor>,
    first: usize,
) -> Result<()> {
    let (m, n, w) = block_dims(out, block, first, "place_columns")?;
    if let Some(bias) = bias {
        bias.expect_shape("place_columns bias", &[n])?;
    }
    match out.gpu_context().cloned() {
        None => {
            let bias = bias.map(|b| b.cpu()).transpose()?;
            place_columns_cpu(out.cpu_mut()?, block.cpu()?, bias, m, n, w, first);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::COLUMN_BLOCK.kernel("place_columns"),
            &[
                block.gpu()?,
                bias.map_or(Ok(ctx.placeholder()), |b| b.gpu())?,
            ],
            &[out.gpu()?],
            &ColumnBlockParams {
                m: m as u32,
                n: n as u32,
                w: w as u32,
                first: first as u32,
                has_bias: bias.is_some() as u32,
                _pad: [0; 3],
            },
            ctx.linear_groups(m * w, 256),
        ),
    }
}

/// out (M, N)[.., first..first + W] = block (M, W) (+ bias (N)[first..first + W]).
pub fn place_columns_cpu(
    out: &mut [f32],
    block: &[f32],
    bias: Option<&[f32]>,
    m: usize,
    n: usize,
    w: usize,
    first: usize,
) {
    for i in 0..m {
        let dst = &mut out[i * n + first..][..w];
        dst.copy_from_slice(&block[i * w..][..w]);
        if let Some(bias) = bias {
            dst.iter_mut()
                .zip(&bias[first..first + w])
                .for_each(|(o, &b)| *o += b);
        }
    }
}

/// block (M, W) = src (M, N)[.., first..first + W].
pub fn take_columns(block: &mut Tensor, src: &Tensor, first: usize) -> Result<()> {
    let (m, n, w) = block_dims(src, block, first, "take_columns")?;
    match block.gpu_context().cloned() {
        None => {
            take_columns_cpu(block.cpu_mut()?, src.cpu()?, m, n, w, first);
            Ok(())
        }
        Some(ctx) => ctx.dispatch(
            &shaders::COLUMN_BLOCK.kernel("take_columns"),
            &[src.gpu()?],
            &[block.gpu()?],
            &ColumnBlockParams {
                m: m as u32,
                n: n as u32,
                w: w as u32,
                first: first as u32,
                has_bias: 0,
                _pad: [0; 3],
            },
            ctx.linear_groups(m * w, 256),
        ),
    }
}

/// block (M, W) = src (M, N)[.., first..first + W].
pub fn take_columns_cpu(
    block: &mut [f32],
    src: &[f32],
    m: usize,
    n: usize,
    w: usize,
    first: usize,
) {
    for i in 0..m {
        block[i * w..][..w].copy_from_slice(&src[i * n + first..][..w]);
    }
}

/// The shape of x (.., C) with the last dimension `width`.
fn with_last(x: &Tensor, width: usize) -> Vec<usize> {
    let mut shape = x.shape().to_vec();
    if let Some(last) = shape.last_mut() {
        *last = width;
    }
    shape
}

/// Only `x @ W^T` (+ bias, overwriting out) is split over shards: the decoder's form.
fn check_sharded_form(b: &Tensor, options: MatmulOptions, op: &str) -> Result<()> {
    if options.trans_a || !options.trans_b || options.accumulate {
        return Err(Error::unsupported(format!(
            "{op}: {} is held as {} row shards; only out = x @ W^T (+ bias) reads row shards",
            b.name(),
            b.shard_count()
        )));
    }
    Ok(())
}

/// out (.., N) = x (.., C) @ b^T + bias (N), b (N, C) in one buffer or row shards; with one
/// buffer this is [`matmul_forward`] with `options`.
pub fn matmul_forward_row_sharded(
    out: &mut Tensor,
    x: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    options: MatmulOptions,
) -> Result<()> {
    if b.shard_count() == 1 {
        return matmul_forward(out, x, b, bias, options);
    }
    check_sharded_form(b, options, "matmul_forward_row_sharded")?;
    out.expect_shape(
        "matmul_forward_row_sharded out",
        &with_last(x, b.shape()[0]),
    )?;
    let device = x.device();
    for (first, shard) in b.row_shards() {
        let rows = shard.shape()[0];
        let mut block = Tensor::uninit(&device, &with_last(x, rows), "row_sharded.block")?; // (.., V_s)
        matmul_forward(&mut block, x, shard, None, options)?;
        place_columns(out, &block, bias, first)?;
    }
    Ok(())
}

/// The gradients of [`matmul_forward_row_sharded`]: dx += dout @ b, db += dout^T @ x (db in the
/// same shards as b), dbias += column sums of dout; with one buffer this is
/// [`matmul_backward`].
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward_row_sharded(
    mut dx: Option<&mut Tensor>,
    db: Option<&mut Tensor>,
    dbias: Option<&mut Tensor>,
    dout: &Tensor,
    x: &Tensor,
    b: &Tensor,
    options: MatmulOptions,
) -> Result<()> {
    if b.shard_count() == 1 && db.as_ref().is_none_or(|db| db.shard_count() == 1) {
        return matmul_backward(dx, db, dbias, dout, x, b, options);
    }
    check_sharded_form(b, options, "matmul_backward_row_sharded")?;
    let n = b.shape()[0];
    dout.expect_shape("matmul_backward_row_sharded dout", &with_last(x, n))?;
    let mut db_shards = match db {
        Some(db) => {
            db.expect_shape("matmul_backward_row_sharded db", b.shape())?;
            let shards: Vec<&mut Tensor> =
                db.row_shards_mut().into_iter().map(|(_, s)| s).collect();
            if shards.len() != b.shard_count() {
                return Err(Error::invalid(format!(
                    "matmul_backward_row_sharded: the gradient is in {} shards, {} in {}",
                    shards.len(),
                    b.name(),
                    b.shard_count()
                )));
            }
            shards.into_iter().map(Some).collect()
        }
        None => (0..b.shard_count()).map(|_| None).collect::<Vec<_>>(),
    };
    let device = x.device();
    for ((first, shard), db_shard) in b.row_shards().into_iter().zip(db_shards.iter_mut()) {
        let rows = shard.shape()[0];
        let mut dblock = Tensor::uninit(&device, &with_last(x, rows), "row_sharded.dblock")?; // (.., V_s)
        take_columns(&mut dblock, dout, first)?;
        matmul_backward(
            dx.as_deref_mut(),
            db_shard.as_deref_mut(),
            None,
            &dblock,
            x,
            shard,
            options,
        )?;
    }
    if let Some(dbias) = dbias {
        dbias.expect_shape("matmul_backward_row_sharded dbias", &[n])?;
        bias_backward(dbias, dout, dout.numel() / n.max(1), n)?;
    }
    Ok(())
}
