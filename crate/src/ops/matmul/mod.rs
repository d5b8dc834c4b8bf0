//! Matmul, batched, with transposed operands and a bias epilogue, forward and backward:
//!
//! `out[b] (m, n) = alpha * op(a[b]) (m, k) @ op(b[b]) (k, n) + bias (n)`, or `+=` with
//! `accumulate`. `op(x)` is `x` or its transpose (`trans_a`, `trans_b`): a is stored (m, k) or
//! (k, m), b is stored (k, n) or (n, k). The last two dimensions are the matrix, the ones before
//! are the batch; an operand without batch dimensions is shared by every batch entry (a linear
//! layer: `(B, T, C) x (C, 3C)`; per-head attention: `(B*NH, T, hs) x (B*NH, T, hs)^T`).
//!
//! Kernel: `shaders/matmul.wgsl` (register-tiled, 64 x 64 per workgroup, 4 x 4 per invocation).
//! CPU: [`cpu_gemm`] (packed, cache-blocked, AVX2/FMA, simd128 or portable microkernel, threads).
//! Backward is the same product with flipped transposes and `accumulate` (like llm.c's
//! `matmul_backward`), and the bias gradient is a column sum.

pub mod cpu_gemm;
pub(crate) mod f16_arithmetic;
pub mod half_float;
pub mod half_weight;
pub mod int8;
mod microkernels;
pub mod packed_only;

pub use cpu_gemm::{cpu_threads, set_cpu_threads, PackedB};
pub use half_float::WeightDtype;
pub use half_weight::{matmul_forward_half, matmul_forward_half_in_f16, HalfWeight};
pub use microkernels::cpu_microkernel_name;
pub use packed_only::{matmul_forward_packed_only, PackedOnlyWeight};

use crate::ops::cpu_parallel::run_in_parallel;
use cpu_gemm::{gemm_accumulate, gemm_flops, BOperand, CInit, MatrixView, MIN_FLOPS_PER_THREAD};
use std::sync::{Arc, Mutex};

use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// How the operands are read and the result stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatmulOptions {
    /// `a` is stored (k, m): use its transpose.
    pub trans_a: bool,
    /// `b` is stored (n, k): use its transpose (PyTorch `nn.Linear` weights are (out, in)).
    pub trans_b: bool,
    /// Scale of the product (the bias is not scaled).
    pub alpha: f32,
    /// `out += ...` instead of `out = ...`.
    pub accumulate: bool,
}

impl Default for MatmulOptions {
    fn default() -> Self {
        MatmulOptions {
            trans_a: false,
            trans_b: false,
            alpha: 1.0,
            accumulate: false,
        }
    }
}

/// The sizes of one matmul as the kernel sees them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatmulDims {
    pub batch: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Elements between consecutive batch entries of a / b; 0 = shared.
    pub a_stride: usize,
    pub b_stride: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub alpha: f32,
    pub accumulate: bool,
}

impl MatmulDims {
    /// The dims of `max(batch_a, batch_b)` products (m, k) @ (k, n), where a holds `batch_a`
    /// matrices and b `batch_b` (1: one matrix shared by every product).
    pub fn new(
        batch_a: usize,
        batch_b: usize,
        m: usize,
        n: usize,
        k: usize,
        options: MatmulOptions,
    ) -> MatmulDims {
        MatmulDims {
            batch: batch_a.max(batch_b),
            m,
            n,
            k,
            a_stride: if batch_a == 1 { 0 } else { m * k },
            b_stride: if batch_b == 1 { 0 } else { k * n },
            trans_a: options.trans_a,
            trans_b: options.trans_b,
            alpha: options.alpha,
            accumulate: options.accumulate,
        }
    }
}

/// Uniform of `matmul.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    trans_a: u32,
    trans_b: u32,
    has_bias: u32,
    accumulate: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    alpha: f32,
    /// How B is held: 0 = f32 values, 1 = fp16, 2 = bf16, 3 = int8 (a compressed weight:
    /// `half_weight`).
    b_format: u32,
}

fn batch_of(shape: &[usize]) -> usize {
    shape[..shape.len() - 2].iter().product()
}

/// Work out the kernel's sizes from the tensors' shapes (and check them).
pub fn resolve_dims(
    out: &Tensor,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    options: MatmulOptions,
) -> Result<MatmulDims> {
    for t in [out, a, b] {
        if t.shape().len() < 2 {
            return Err(Error::shape(
                format!("matmul: {}", t.name()),
                "at least 2 dimensions",
                t.shape(),
            ));
        }
    }
    let (sa, sb) = (a.shape(), b.shape());
    let (ar, ac) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (br, bc) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    let (m, k) = if options.trans_a { (ac, ar) } else { (ar, ac) };
    let (kb, n) = if options.trans_b { (bc, br) } else { (br, bc) };
    if kb != k {
        return Err(Error::shape(
            format!(
                "matmul: inner size of {} (k = {k}) and {}",
                a.name(),
                b.name()
            ),
            format!("k = {k}"),
            format!("k = {kb} (shape {sb:?}, trans_b = {})", options.trans_b),
        ));
    }
    let (batch_a, batch_b) = (batch_of(sa), batch_of(sb));
    let batch = batch_a.max(batch_b);
    if (batch_a != 1 && batch_a != batch) || (batch_b != 1 && batch_b != batch) {
        return Err(Error::shape(
            format!("matmul: batch of {} and {}", a.name(), b.name()),
            format!("equal batches or one of them 1 (a: {batch_a})"),
            format!("b: {batch_b}"),
        ));
    }
    let so = out.shape();
    if batch_of(so) != batch || so[so.len() - 2..] != [m, n] {
        return Err(Error::shape(
            format!("matmul: output {}", out.name()),
            format!("(batch {batch}, {m}, {n})"),
            so,
        ));
    }
    if let Some(bias) = bias {
        bias.expect_shape("matmul bias", &[n])?;
    }
    let mut dims = MatmulDims::new(batch_a, batch_b, m, n, k, options);
    // A shared b with a batched, row-major a is one big matmul: (batch*m, k) x (k, n).
    if batch > 1 && batch_b == 1 && batch_a == batch && !options.trans_a {
        dims.m *= batch;
        dims.batch = 1;
        dims.a_stride = 0;
    }
    Ok(dims)
}

/// out (batch.., m, n) = alpha * op(a) @ op(b) + bias (n)   [+= with `options.accumulate`]
///
/// a: (batch.. or none, m, k), or (.., k, m) with `trans_a`
/// b: (batch.. or none, k, n), or (.., n, k) with `trans_b`
pub fn matmul_forward(
    out: &mut Tensor,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    options: MatmulOptions,
) -> Result<()> {
    let dims = resolve_dims(out, a, b, bias, options)?;
    run(out, a, b, bias, &dims)
}

/// The CPU matmul's packed panels of one weight, made on its first product and made again
/// whenever the weight changed since (a training step). Owned by the layer whose weight it is
/// (`models/linear.rs`); costs as much memory as the weight while the model runs on the CPU.
#[derive(Debug, Default)]
pub struct PackedWeight {
    /// (the weight's content version, transposed?, its packed panels)
    slot: Mutex<Option<(u64, bool, Arc<PackedB>)>>,
}

impl PackedWeight {
    /// The packed panels of `b` read as `op(b)` (k, n), from the cache when `b` is unchanged.
    fn get(&self, b: &Tensor, d: &MatmulDims) -> Result<Arc<PackedB>> {
        let mut slot = self
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((version, trans_b, packed)) = slot.as_ref() {
            if *version == b.version() && *trans_b == d.trans_b && packed.dims() == (d.k, d.n) {
                return Ok(packed.clone());
            }
        }
        let packed = Arc::new(PackedB::pack(b_view(b.cpu()?, d), d.k, d.n));
        *slot = Some((b.version(), d.trans_b, packed.clone()));
        Ok(packed)
    }

    /// Bytes held by the packed panels (0 before the first CPU product).
    pub fn bytes(&self) -> usize {
        let slot = self
            .slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.as_ref().map_or(0, |(_, _, packed)| packed.bytes())
    }
}

/// [`matmul_forward`] for a `b` that many calls share unchanged (a layer's weight): on the CPU
/// its panels are packed once into `packed` and reused; on the GPU this is `matmul_forward`.
/// Same results as `matmul_forward`, bit for bit.
pub fn matmul_forward_packed(
    out: &mut Tensor,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    options: MatmulOptions,
    packed: &PackedWeight,
) -> Result<()> {
    let dims = resolve_dims(out, a, b, bias, options)?;
    if out.is_gpu() || dims.batch != 1 {
        return run(out, a, b, bias, &dims);
    }
    let panels = packed.get(b, &dims)?;
    let bias = match bias {
        Some(t) => Some(t.cpu()?),
        None => None,
    };
    matmul_cpu_with(out.cpu_mut()?, a.cpu()?, CpuB::Packed(&panels), bias, &dims);
    Ok(())
}

/// The gradients of [`matmul_forward`] (same `options`; `accumulate` there is irrelevant):
/// da += alpha * dout @ op(b)^T (as stored), db += alpha * op(a)^T @ dout, dbias += column
/// sums of dout. Pass `None` for gradients not wanted (a frozen weight, an input).
///
/// A shared (unbatched) operand's gradient sums over the batch; that works for a shared `b`
/// with a row-major `a` (every linear layer); the other broadcast cases are refused.
#[allow(clippy::too_many_arguments)]
pub fn matmul_backward(
    da: Option<&mut Tensor>,
    db: Option<&mut Tensor>,
    dbias: Option<&mut Tensor>,
    dout: &Tensor,
    a: &Tensor,
    b: &Tensor,
    options: MatmulOptions,
) -> Result<()> {
    let f = resolve_dims(dout, a, b, None, options)?;
    let dout_stride = f.m * f.n;
    if let Some(da) = da {
        da.expect_shape("matmul_backward da", a.shape())?;
        if f.a_stride == 0 && f.batch > 1 {
            return Err(Error::unsupported(
                "matmul_backward: gradient of a batch-shared `a`",
            ));
        }
        let dims = if !f.trans_a {
            // da (m, k) += alpha * dout (m, n) @ op(b)^T (n, k)
            MatmulDims {
                m: f.m,
                n: f.k,
                k: f.n,
                a_stride: dout_stride,
                b_stride: f.b_stride,
                trans_a: false,
                trans_b: !f.trans_b,
                ..f
            }
        } else {
            // da (k, m) += alpha * op(b) (k, n) @ dout^T (n, m)
            MatmulDims {
                m: f.k,
                n: f.m,
                k: f.n,
                a_stride: f.b_stride,
                b_stride: dout_stride,
                trans_a: f.trans_b,
                trans_b: true,
                ..f
            }
        };
        let (x, y) = if !f.trans_a { (dout, b) } else { (b, dout) };
        run(
            da,
            x,
            y,
            None,
            &MatmulDims {
                accumulate: true,
                ..dims
            },
        )?;
    }
    if let Some(db) = db {
        db.expect_shape("matmul_backward db", b.shape())?;
        if f.b_stride == 0 && f.batch > 1 {
            return Err(Error::unsupported(
                "matmul_backward: gradient of a batch-shared `b` with a transposed `a`",
            ));
        }
        let dims = if !f.trans_b {
            // db (k, n) += alpha * op(a)^T (k, m) @ dout (m, n)
            MatmulDims {
                m: f.k,
                n: f.n,
                k: f.m,
                a_stride: f.a_stride,
                b_stride: dout_stride,
                trans_a: !f.trans_a,
                trans_b: false,
                ..f
            }
        } else {
            // db (n, k) += alpha * dout^T (n, m) @ op(a) (m, k)
            MatmulDims {
                m: f.n,
                n: f.k,
                k: f.m,
                a_stride: dout_stride,
                b_stride: f.a_stride,
                trans_a: true,
                trans_b: f.trans_a,
                ..f
            }
        };
        let (x, y) = if !f.trans_b { (a, dout) } else { (dout, a) };
        run(
            db,
            x,
            y,
            None,
            &MatmulDims {
                accumulate: true,
                ..dims
            },
        )?;
    }
    if let Some(dbias) = dbias {
        dbias.expect_shape("matmul_backward dbias", &[f.n])?;
        bias_backward(dbias, dout, f.batch * f.m, f.n)?;
    }
    Ok(())
}

/// Run one matmul with explicit sizes (shapes already checked by the caller).
fn run(
    out: &mut Tensor,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
    d: &MatmulDims,
) -> Result<()> {
    match out.gpu_context().cloned() {
        None => {
            let bias = match bias {
                Some(t) => Some(t.cpu()?),
                None => None,
            };
            matmul_cpu(out.cpu_mut()?, a.cpu()?, b.cpu()?, bias, d);
            Ok(())
        }
        Some(ctx) => dispatch_matmul(&ctx, out, a, (b.gpu()?, None), WeightDtype::Fp32, bias, d),
    }
}

/// `matmul_forward`'s dispatch: B is `b` as f32 values (`b_dtype` fp32), or a compressed
/// weight (fp16, bf16: two values a word; int8: four codes a word and `b_scales`, a scale per
/// output channel; see `shaders/matmul.wgsl`'s `load_b` and [`half_weight`]).
fn dispatch_matmul(
    ctx: &crate::device::GpuContext,
    out: &Tensor,
    a: &Tensor,
    (b, b_scales): (&crate::device::GpuBuffer, Option<&crate::device::GpuBuffer>),
    b_dtype: WeightDtype,
    bias: Option<&Tensor>,
    d: &MatmulDims,
) -> Result<()> {
    let params = MatmulParams {
        m: d.m as u32,
        n: d.n as u32,
        k: d.k as u32,
        batch: d.batch as u32,
        trans_a: d.trans_a as u32,
        trans_b: d.trans_b as u32,
        has_bias: bias.is_some() as u32,
        accumulate: d.accumulate as u32,
        a_batch_stride: d.a_stride as u32,
        b_batch_stride: d.b_stride as u32,
        alpha: d.alpha,
        b_format: b_dtype.shader_format(),
    };
    let bias_buffer = match bias {
        Some(t) => t.gpu()?,
        None => ctx.placeholder(),
    };
    // k = 0: the product is zero, the kernel still writes bias / keeps the old value.
    ctx.dispatch(
        &shaders::MATMUL.kernel("matmul_forward"),
        &[
            a.gpu()?,
            b,
            bias_buffer,
            b_scales.unwrap_or(ctx.placeholder()),
        ],
        &[out.gpu()?],
        &params,
        [
            d.n.div_ceil(64) as u32,
            d.m.div_ceil(64) as u32,
            d.batch as u32,
        ],
    )
}

/// CPU matmul on slices: out (batch, m, n) = alpha * op(a) @ op(b) + bias [+ out].
/// a: batch entries `a_stride` apart, each (m, k) or (k, m); b likewise (k, n) or (n, k).
pub fn matmul_cpu(out: &mut [f32], a: &[f32], b: &[f32], bias: Option<&[f32]>, d: &MatmulDims) {
    matmul_cpu_with(out, a, CpuB::Slice(b), bias, d)
}

/// The B operand on the CPU: values as stored, or packed once (one shared matrix), in f32 or
/// compressed (16 bits, int8).
#[derive(Clone, Copy)]
enum CpuB<'a> {
    Slice(&'a [f32]),
    Packed(&'a PackedB),
    Compressed(&'a dyn cpu_gemm::CompressedPanels),
}

/// The view of batch entry 0 of `b` as `op(b)` (k, n).
fn b_view<'a>(b: &'a [f32], d: &MatmulDims) -> MatrixView<'a> {
    if d.trans_b {
        MatrixView {
            data: b,
            row_stride: 1,
            col_stride: d.k,
        }
    } else {
        MatrixView {
            data: b,
            row_stride: d.n,
            col_stride: 1,
        }
    }
}

fn matmul_cpu_with(out: &mut [f32], a: &[f32], b: CpuB, bias: Option<&[f32]>, d: &MatmulDims) {
    let entry_len = d.m * d.n;
    if entry_len == 0 {
        return;
    }
    let out = &mut out[..d.batch * entry_len];
    // Many small products (attention's per-head ones): whole batch entries per thread, as one
    // product is too small to split.
    let threads = cpu_threads().min(d.batch);
    if threads > 1 && gemm_flops(d.m, d.n, d.k) < MIN_FLOPS_PER_THREAD {
        let per_thread = d.batch.div_ceil(threads);
        let parts: Vec<_> = out.chunks_mut(per_thread * entry_len).enumerate().collect();
        run_in_parallel(parts, |(part, entries)| {
            for (i, c) in entries.chunks_mut(entry_len).enumerate() {
                matmul_entry(c, a, b, bias, d, part * per_thread + i);
            }
        });
        return;
    }
    for (batch, c) in out.chunks_mut(entry_len).enumerate() {
        matmul_entry(c, a, b, bias, d, batch);
    }
}

/// Batch entry `batch`: c (m, n) = alpha * op(a) @ op(b) + bias [+ c].
fn matmul_entry(
    c: &mut [f32],
    a: &[f32],
    b: CpuB,
    bias: Option<&[f32]>,
    d: &MatmulDims,
    batch: usize,
) {
    let (m, n, k) = (d.m, d.n, d.k);
    let init = match (d.accumulate, bias) {
        (false, None) => CInit::Zero,
        (false, Some(bias)) => CInit::Bias(bias),
        (true, Some(bias)) => CInit::AddBias(bias),
        (true, None) => CInit::Keep,
    };
    if m == 0 || n == 0 {
        return;
    }
    let a_data = &a[batch * d.a_stride..];
    let av = if d.trans_a {
        MatrixView {
            data: a_data,
            row_stride: 1,
            col_stride: m,
        }
    } else {
        MatrixView {
            data: a_data,
            row_stride: k,
            col_stride: 1,
        }
    };
    let bv = match b {
        CpuB::Slice(b) => BOperand::View(b_view(&b[batch * d.b_stride..], d)),
        CpuB::Packed(packed) => BOperand::Packed(packed),
        CpuB::Compressed(packed) => BOperand::Compressed(packed),
    };
    gemm_accumulate(c, n, init, av, bv, m, n, k, d.alpha);
}

/// dbias (n) += sum over `rows` rows of dout (rows, n).
pub(crate) fn bias_backward(
    dbias: &mut Tensor,
    dout: &Tensor,
    rows: usize,
    n: usize,
) -> Result<()> {
    match dbias.gpu_context().cloned() {
        None => {
            bias_backward_cpu(dbias.cpu_mut()?, dout.cpu()?, rows, n);
            Ok(())
        }
        Some(ctx) => {
            let params = MatmulParams {
                m: rows as u32,
                n: n as u32,
                alpha: 1.0,
                ..bytemuck::Zeroable::zeroed()
            };
            ctx.dispatch(
                &shaders::MATMUL.kernel("matmul_bias_backward"),
                &[dout.gpu()?],
                &[dbias.gpu()?],
                &params,
                ctx.linear_groups(n, 256),
            )
        }
    }
}

/// dbias (n) += column sums of dout (rows, n)
pub fn bias_backward_cpu(dbias: &mut [f32], dout: &[f32], rows: usize, n: usize) {
    for r in 0..rows {
        for (d, &g) in dbias.iter_mut().zip(&dout[r * n..(r + 1) * n]) {
            *d += g;
        }
    }
}
