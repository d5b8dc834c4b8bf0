//! Embedding lookup (gather of table rows by id) and its backward (scatter-add of the output
//! gradient into the table rows), race-free and deterministic on the GPU (one workgroup per
//! vocabulary row; see `shaders/embedding.wgsl`).
//!
//! A table held as row shards (over one storage binding, see `tensor.rs`) is read and written
//! one shard at a time: one dispatch per shard, in the same order every time.

use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct EmbeddingParams {
    n: u32,
    c: u32,
    v: u32,
    accumulate: u32,
    first_row: u32,
    skip_outside: u32,
    _pad: [u32; 2],
}

/// (V, C) of the table and N of the ids, checked against out/dout (N.., C).
fn dims(
    table: &Tensor,
    ids: &Tensor<u32>,
    rows: &Tensor,
    op: &str,
) -> Result<(usize, usize, usize)> {
    if table.shape().len() != 2 {
        return Err(Error::shape(
            format!("{op}: {}", table.name()),
            "(V, C)",
            table.shape(),
        ));
    }
    let (v, c) = (table.shape()[0], table.shape()[1]);
    let n = ids.numel();
    let mut expected = ids.shape().to_vec();
    expected.push(c);
    rows.expect_shape(op, &expected)?;
    Ok((n, c, v))
}

fn check_ids(ids: &[u32], v: usize, name: &str) -> Result<()> {
    match ids.iter().position(|&id| id as usize >= v) {
        Some(i) => Err(Error::invalid(format!(
            "{name}[{i}] = {} is outside the vocabulary of {v} rows",
            ids[i]
        ))),
        None => Ok(()),
    }
}

/// out (ids.., C) = table (V, C)[ids] (or += with `accumulate`, to sum word, position and
/// token-type embeddings). On the CPU an id >= V is an error; on the GPU (where ids are not
/// read back) it yields a zero row.
pub fn embedding_forward(
    out: &mut Tensor,
    table: &Tensor,
    ids: &Tensor<u32>,
    accumulate: bool,
) -> Result<()> {
    let (n, c, v) = dims(table, ids, out, "embedding_forward")?;
    match out.gpu_context().cloned() {
        None => {
            check_ids(ids.cpu()?, v, ids.name())?;
            embedding_forward_cpu(out.cpu_mut()?, table.cpu()?, ids.cpu()?, c, accumulate);
            Ok(())
        }
        Some(ctx) => {
            for (shard_index, (first_row, shard)) in table.row_shards().into_iter().enumerate() {
                ctx.dispatch(
                    &shaders::EMBEDDING.kernel("embedding_forward"),
                    &[shard.gpu()?, ids.gpu()?],
                    &[out.gpu()?],
                    &EmbeddingParams {
                        n: n as u32,
                        c: c as u32,
                        v: shard.shape()[0] as u32,
                        accumulate: accumulate as u32,
                        first_row: first_row as u32,
                        skip_outside: (shard_index > 0) as u32,
                        _pad: [0; 2],
                    },
                    ctx.linear_groups(n * c, 256),
                )?;
            }
            Ok(())
        }
    }
}

/// out (N, C) = (or +=) table (V, C) rows picked by ids (N); ids must be < V.
pub fn embedding_forward_cpu(
    out: &mut [f32],
    table: &[f32],
    ids: &[u32],
    c: usize,
    accumulate: bool,
) {
    for (i, &id) in ids.iter().enumerate() {
        let src = &table[id as usize * c..][..c];
        let dst = &mut out[i * c..][..c];
        if accumulate {
            dst.iter_mut().zip(src).for_each(|(o, &x)| *o += x);
        } else {
            dst.copy_from_slice(src);
        }
    }
}

/// dtable (V, C) += scatter of dout (ids.., C) by ids.
pub fn embedding_backward(dtable: &mut Tensor, dout: &Tensor, ids: &Tensor<u32>) -> Result<()> {
    let (n, c, v) = dims(dtable, ids, dout, "embedding_backward")?;
    match dtable.gpu_context().cloned() {
        None => {
            check_ids(ids.cpu()?, v, ids.name())?;
            embedding_backward_cpu(dtable.cpu_mut()?, dout.cpu()?, ids.cpu()?, c);
            Ok(())
        }
        Some(ctx) => {
            for (first_row, shard) in dtable.row_shards_mut() {
                let rows = shard.shape()[0];
                ctx.dispatch(
                    &shaders::EMBEDDING.kernel("embedding_backward"),
                    &[dout.gpu()?, ids.gpu()?],
                    &[shard.gpu()?],
                    &EmbeddingParams {
                        n: n as u32,
                        c: c as u32,
                        v: rows as u32,
                        accumulate: 1,
                        first_row: first_row as u32,
                        skip_outside: 0,
                        _pad: [0; 2],
                    },
                    ctx.linear_groups(rows, 1),
                )?;
            }
            Ok(())
        }
    }
}

/// dtable (V, C) += dout (N, C) rows added at ids (N); ids must be < V.
pub fn embedding_backward_cpu(dtable: &mut [f32], dout: &[f32], ids: &[u32], c: usize) {
    for (i, &id) in ids.iter().enumerate() {
        let dst = &mut dtable[id as usize * c..][..c];
        dst.iter_mut()
            .zip(&dout[i * c..][..c])
            .for_each(|(d, &g)| *d += g);
    }
}
