//! The CPU matmul: a cache-blocked GEMM with packed panels and a register-tiled microkernel
//! (the BLIS/GotoBLAS structure, Goto & van de Geijn 2008, "Anatomy of high-performance
//! matrix multiplication"), written from that description.
//!
//! C (m, n) += alpha * A (m, k) @ B (k, n), where A and B are strided views (so transposed
//! operands cost nothing: only the strides change). Loop order: columns in NC blocks, depth in
//! KC blocks (B's KC x NC panel is packed into NR-wide strips), rows in MC blocks (A's MC x KC
//! block is packed into MR-tall strips), then an MR x NR microkernel over KC.
//!
//! Microkernels (in [`super::microkernels`]): x86_64 AVX-512F or AVX2+FMA (chosen at run time
//! with `is_x86_feature_detected!`), wasm `simd128` (the package is built with
//! `-C target-feature=+simd128`, see `.cargo/config.toml`), and portable Rust elsewhere. Natively the rows (or columns, for short matrices) are split
//! over the CPU thread pool (`ops/cpu_parallel.rs`); see [`set_cpu_threads`].
//!
//! A B operand that many calls share (a weight matrix) can be packed once into a [`PackedB`]
//! and passed as [`BOperand::Packed`]: the calls then skip packing it (for a single sentence,
//! packing the weight costs more than the product itself) and threads share one copy.
//! Packing only moves values, so a packed and an unpacked B give bit-identical results.
//!
//! The AVX-512 microkernel reads A in place instead in narrow products (under
//! `PACK_A_FROM_COLUMNS` columns), when A's rows are contiguous along k (the activations of
//! every linear layer): whole MR-row strips are read from A itself (twelve rows side by side;
//! an MR x KC strip stays in L1 while the kernel sweeps B's strips), and only a last partial
//! strip is packed. Packing A cost about 6% of an all-MiniLM-L6-v2 forward at B 8 x T 128
//! (perf, 6-row tiles), as it is a pass over A per KC block for little arithmetic when n is
//! 384. The kernel multiplies the same numbers in the same order either way: the same bits.
//!
//! A weight held in 16 bits ([`PackedB16`]: the same strips, fp16 or bf16 values) is widened
//! to f32 one KC x NC block at a time into the thread's packing buffer, where an unpacked B
//! would be packed: the conversion is paid once per block and shared by every row of A, and no
//! f32 copy of the weight is kept. The widened values are the weight's exact f32 values, so the
//! product is bit-identical to widening the whole weight first and multiplying in f32.

use super::half_float::{widen, WeightDtype};
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use super::microkernels::microkernel_wasm_into_c;
#[cfg(target_arch = "x86_64")]
use super::microkernels::{microkernel_avx512_into_c, ASource};
use super::microkernels::{
    microkernel_portable, pick_microkernel, run_microkernel, Microkernel, PORTABLE_ROWS,
};
#[cfg(target_arch = "x86_64")]
use super::microkernels::{AVX2_ROWS, AVX512_ROWS};
use crate::ops::cpu_parallel::run_in_parallel;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Microkernel tile width: NR columns of C (MR rows, per kernel: see `microkernels.rs`).
/// Natively 2 zmm (AVX-512) or 2 x 2 ymm (AVX2); in wasm 2 v128.
#[cfg(not(target_arch = "wasm32"))]
pub const NR: usize = 32;
#[cfg(target_arch = "wasm32")]
pub const NR: usize = 8;
/// Depth of a packed panel: a KC x NR strip of B (32 KiB natively) stays in L1-L2.
const KC: usize = 256;
/// Rows of a packed A block: MC x KC (144 KiB) stays in L2 (2 MiB per core here).
const MC: usize = 144;
/// Columns of a block of B: its KC x NC values are swept once per MC rows of A.
/// - Natively 1024 (1 MiB at KC 256): the block stays in L2 (2 MiB per core here) while each
///   A strip (MR x KC, 12 KiB) stays in L1 and B's panels stream past it (A_STRIP_STAYS).
/// - In wasm 2048 (2 MiB, in L3), each B panel staying in L1 while A's strips stream.
#[cfg(not(target_arch = "wasm32"))]
const NC: usize = 1024;
#[cfg(target_arch = "wasm32")]
const NC: usize = 2048;
/// The order of an MC x NC block's tiles: natively strip by strip of A (an A strip stays in L1
/// while B's panels stream from L2), in wasm panel by panel of B (a B panel stays while A's
/// strips stream). Measured alone at BERT-base shapes (1024 x 3072 x 768, 1024 x 768 x 3072,
/// 1024 x 2304 x 768; one core, 12 x 32 AVX-512 tiles, alternated best of 10), the first ran at
/// 182-186 GFLOP/s, the second at 167-180. Either order sums each element the same way.
const A_STRIP_STAYS: bool = cfg!(not(target_arch = "wasm32"));

/// A read-only strided matrix view: element (i, j) is at `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct MatrixView<'a> {
    pub data: &'a [f32],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl MatrixView<'_> {
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// B (k, n) packed once for many products, in depth blocks of KC rows (the GEMM's own), each
/// block as NR-wide strips: block `pc / KC` holds rows `pc..pc+kc` of every strip, strip `s`
/// (columns `s*NR..s*NR+NR`, zero-padded past n) as a (kc, NR) row-major panel, the strips one
/// after another. The panel that the microkernel reads for depth `pc..pc+kc` is a contiguous
/// slice, and the panels of one depth block, which a product sweeps in order, are one run of
/// memory: a single sentence reads each weight once from main memory, and the CPU's prefetcher
/// follows one stream instead of starting again at every panel (strips over the whole depth
/// put the next panel k x NR values further on).
pub struct PackedB {
    data: Vec<f32>, // (k.div_ceil(KC) blocks, n.div_ceil(NR) strips, kc, NR)
    k: usize,
    n: usize,
}

impl PackedB {
    /// Packs the (k, n) matrix that `b` views.
    pub(crate) fn pack(b: MatrixView, k: usize, n: usize) -> PackedB {
        PackedB::pack_into(Vec::new(), b, k, n)
    }

    /// [`PackedB::pack`] into `data`'s allocation, whatever it held (grown only for the
    /// padding of the last strip): a matrix packed from a copy of its values elsewhere reuses
    /// its own buffer for the panels.
    pub(crate) fn pack_into(mut data: Vec<f32>, b: MatrixView, k: usize, n: usize) -> PackedB {
        data.clear();
        let padded_n = n.div_ceil(NR) * NR;
        data.resize(padded_n * k, 0.0);
        if n > 0 {
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                pack_b(&mut data[pc * padded_n..], b, pc, kc, 0, n);
            }
        }
        PackedB { data, k, n }
    }

    /// (k, n) of the packed matrix.
    pub fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// The transpose of the packed matrix, (n, k) row-major: for panels packed from a
    /// transposed operand (a layer's W (out, in) read as W^T), W as it was, value for value.
    pub(crate) fn unpack_transposed(&self) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        let mut out = vec![0.0; n * k];
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            for col in 0..n {
                let panel = self.panel(pc, kc, col - col % NR);
                let row = &mut out[col * k + pc..][..kc];
                for (v, &x) in row.iter_mut().zip(panel.iter().skip(col % NR).step_by(NR)) {
                    *v = x;
                }
            }
        }
        out
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * 4
    }

    /// The (kc, NR) panel of depth `pc..pc+kc` and columns `col..col+NR` (`col` a multiple of
    /// NR; `pc` a multiple of KC and kc = min(KC, k - pc), as the GEMM's depth blocks are).
    #[inline]
    fn panel(&self, pc: usize, kc: usize, col: usize) -> &[f32] {
        let padded_n = self.n.div_ceil(NR) * NR;
        &self.data[pc * padded_n + (col / NR) * NR * kc..][..kc * NR]
    }
}

impl std::fmt::Debug for PackedB {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedB({} x {})", self.k, self.n)
    }
}

/// A B operand packed once in a compressed format, widened to f32 one KC x NC block at a time
/// inside the GEMM ([`PackedB16`]: fp16 / bf16; [`PackedB8`]: int8 codes and scales). The
/// widened values must be exact functions of what is stored, so the product equals the f32
/// product of the widened matrix bit for bit.
pub(crate) trait CompressedPanels: Send + Sync {
    /// (k, n) of the packed matrix.
    fn dims(&self) -> (usize, usize);
    /// Bytes held.
    fn bytes(&self) -> usize;
    /// Widens the (kc, NR) panels of depth `pc..pc+kc` and columns `col..col+nc` (`col` a
    /// multiple of NR) into `dst`, laid out as [`pack_b`] lays out a KC x NC block.
    fn widen_block(&self, dst: &mut [f32], pc: usize, kc: usize, col: usize, nc: usize);
    /// W (n, k) row-major widened to f32: the values `widen_block` gives, unpacked (the way
    /// back to a trainable f32 weight, `HalfWeight::to_f32_tensor`).
    fn unpack_f32(&self) -> Vec<f32>;
}

/// `op(B) = W^T` (k, n) of W (n, k) row-major (a PyTorch `nn.Linear` weight, (out, in)) in
/// [`PackedB`]'s layout: NR-wide strips over the whole depth, strip `s` holding W's rows
/// `s*NR..s*NR+NR` as a (k, NR) row-major block, zero-padded past n.
fn pack_transposed_strips<T: Copy + Default>(w: &[T], n: usize, k: usize) -> Vec<T> {
    let mut data = vec![T::default(); n.div_ceil(NR) * NR * k];
    for (strip, dst) in data.chunks_exact_mut(NR * k.max(1)).enumerate() {
        for j in 0..NR.min(n - strip * NR) {
            let row = &w[(strip * NR + j) * k..][..k];
            for (p, &v) in row.iter().enumerate() {
                dst[p * NR + j] = v;
            }
        }
    }
    data
}

/// W (n, k) row-major again: [`pack_transposed_strips`] undone.
fn unpack_transposed_strips<T: Copy + Default>(data: &[T], n: usize, k: usize) -> Vec<T> {
    let mut w = vec![T::default(); n * k];
    for (strip, src) in data.chunks_exact(NR * k.max(1)).enumerate() {
        for j in 0..NR.min(n - strip * NR) {
            let row = &mut w[(strip * NR + j) * k..][..k];
            for (p, v) in row.iter_mut().enumerate() {
                *v = src[p * NR + j];
            }
        }
    }
    w
}

/// For each strip of columns `col..col+nc` (`col` a multiple of NR): `widen(strip index, its
/// (kc, NR) values at depth pc..pc+kc, the strip's place in `dst`)`.
fn for_each_strip<T>(
    data: &[T],
    k: usize,
    (pc, kc, col, nc): (usize, usize, usize, usize),
    dst: &mut [f32],
    mut widen: impl FnMut(usize, &[T], &mut [f32]),
) {
    for (i, strip) in (col / NR..(col + nc).div_ceil(NR)).enumerate() {
        let src = &data[strip * NR * k + pc * NR..][..kc * NR];
        widen(strip, src, &mut dst[i * NR * kc..][..kc * NR]);
    }
}

/// B (k, n) packed once in 16 bits: the strips of [`pack_transposed_strips`] holding fp16 or
/// bf16 bits.
pub struct PackedB16 {
    data: Vec<u16>, // (n.div_ceil(NR), k, NR)
    k: usize,
    n: usize,
    dtype: WeightDtype,
}

impl PackedB16 {
    /// Packs `op(B) = W^T` (k, n) of the 16-bit matrix W (n, k), its values `bits` in `dtype`
    /// (fp16 or bf16).
    pub(crate) fn pack_transposed(bits: &[u16], n: usize, k: usize, dtype: WeightDtype) -> Self {
        let data = pack_transposed_strips(bits, n, k);
        PackedB16 { data, k, n, dtype }
    }
}

impl CompressedPanels for PackedB16 {
    fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// 2 a value, with the padding of the last strip.
    fn bytes(&self) -> usize {
        self.data.len() * 2
    }

    fn widen_block(&self, dst: &mut [f32], pc: usize, kc: usize, col: usize, nc: usize) {
        for_each_strip(&self.data, self.k, (pc, kc, col, nc), dst, |_, src, dst| {
            widen(self.dtype, src, dst)
        });
    }

    fn unpack_f32(&self) -> Vec<f32> {
        let bits = unpack_transposed_strips(&self.data, self.n, self.k);
        bits.iter().map(|&b| self.dtype.to_f32(b)).collect()
    }
}

impl std::fmt::Debug for PackedB16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedB16({} x {}, {:?})", self.k, self.n, self.dtype)
    }
}

/// B (k, n) packed once in int8: the strips of [`pack_transposed_strips`] holding the codes,
/// and a scale per column of B (per output channel), zero-padded to whole strips. Widened as
/// `code * scale` (`int8::widen_rows`).
pub struct PackedB8 {
    codes: Vec<i8>,   // (n.div_ceil(NR), k, NR)
    scales: Vec<f32>, // (n.div_ceil(NR) * NR)
    k: usize,
    n: usize,
}

impl PackedB8 {
    /// Packs `op(B) = W^T` (k, n) of W (n, k) quantized per row (`codes` (n, k), `scales` (n)).
    pub(crate) fn pack_transposed(codes: &[i8], scales: &[f32], n: usize, k: usize) -> Self {
        let mut padded = vec![0.0; n.div_ceil(NR) * NR];
        padded[..n].copy_from_slice(scales);
        PackedB8 {
            codes: pack_transposed_strips(codes, n, k),
            scales: padded,
            k,
            n,
        }
    }
}

impl CompressedPanels for PackedB8 {
    fn dims(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// 1 a code and 4 a scale, with the padding of the last strip.
    fn bytes(&self) -> usize {
        self.codes.len() + self.scales.len() * 4
    }

    fn widen_block(&self, dst: &mut [f32], pc: usize, kc: usize, col: usize, nc: usize) {
        for_each_strip(
            &self.codes,
            self.k,
            (pc, kc, col, nc),
            dst,
            |strip, src, dst| super::int8::widen_rows(src, &self.scales[strip * NR..][..NR], dst),
        );
    }

    fn unpack_f32(&self) -> Vec<f32> {
        let codes = unpack_transposed_strips(&self.codes, self.n, self.k);
        let row_len = self.k.max(1);
        (codes.chunks(row_len).zip(&self.scales))
            .flat_map(|(row, &s)| row.iter().map(move |&q| q as f32 * s))
            .collect()
    }
}

/// The B operand of a product: a strided view (packed per call), packed once, or packed once
/// in a compressed format (widened per block).
#[derive(Clone, Copy)]
pub(crate) enum BOperand<'a> {
    View(MatrixView<'a>),
    Packed(&'a PackedB),
    Compressed(&'a dyn CompressedPanels),
}

impl BOperand<'_> {
    /// (k, n) of a B packed once (f32 or compressed); None for a view.
    fn packed_dims(&self) -> Option<(usize, usize)> {
        match self {
            BOperand::View(_) => None,
            BOperand::Packed(packed) => Some(packed.dims()),
            BOperand::Compressed(packed) => Some(packed.dims()),
        }
    }
}

static CPU_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Threads the CPU matmul may use (natively; wasm is single-threaded). 0 = all cores.
pub fn set_cpu_threads(threads: usize) {
    CPU_THREADS.store(threads, Ordering::Relaxed);
}

/// Threads the CPU matmul will use.
pub fn cpu_threads() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        match CPU_THREADS.load(Ordering::Relaxed) {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            n => n,
        }
    }
}

/// A raw pointer to C that threads share; each thread writes a disjoint block of rows/columns.
#[derive(Clone, Copy)]
struct SharedOut {
    ptr: *mut f32,
    row_stride: usize,
}
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// What C holds before the product is added: set by each thread for its own part of C, so
/// that this pass over C is split over the threads too.
#[derive(Clone, Copy)]
pub(crate) enum CInit<'a> {
    /// C as it is (accumulating into it).
    Keep,
    /// Zeros.
    Zero,
    /// The bias (n) in every row.
    Bias(&'a [f32]),
    /// C plus the bias (n) in every row.
    AddBias(&'a [f32]),
}

/// C (m, n; row stride `ldc`) = init + alpha * A (m, k) @ B (k, n).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_accumulate(
    c: &mut [f32],
    ldc: usize,
    init: CInit,
    a: MatrixView,
    b: BOperand,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    if let Some(dims) = b.packed_dims() {
        assert_eq!(dims, (k, n), "packed B of another shape");
    }
    assert!(
        c.len() >= (m - 1) * ldc + n,
        "C too small for ({m}, {n}) with stride {ldc}"
    );
    let out = SharedOut {
        ptr: c.as_mut_ptr(),
        row_stride: ldc,
    };
    let threads = if gemm_flops(m, n, k) < MIN_FLOPS_PER_THREAD {
        1
    } else {
        cpu_threads()
    };
    if threads <= 1 {
        // SAFETY: `out` covers exactly the (m, n) block checked above; one writer.
        unsafe {
            gemm_block(
                GemmPart {
                    out,
                    a,
                    b,
                    rows: 0..m,
                    cols: 0..n,
                    k,
                    alpha,
                },
                init,
            )
        };
        return;
    }
    let split_rows = split_by_rows(a, b, m, n, k, threads);
    let (len, unit) = if split_rows {
        (m, pick_microkernel().rows())
    } else {
        (n, NR)
    };
    let per_thread = len.div_ceil(unit).div_ceil(threads) * unit;
    let parts: Vec<_> = (0..len)
        .step_by(per_thread)
        .map(|start| {
            let end = (start + per_thread).min(len);
            if split_rows {
                (start..end, 0..n)
            } else {
                (0..m, start..end)
            }
        })
        .collect();
    // SAFETY: the parts are disjoint row (or column) ranges of C.
    run_in_parallel(parts, |(rows, cols)| unsafe {
        gemm_block(
            GemmPart {
                out,
                a,
                b,
                rows,
                cols,
                k,
                alpha,
            },
            init,
        )
    });
}

/// C (m, n; row stride `ldc`, at `c`) = init + alpha * A (m, k) @ B (k, n) on the calling
/// thread alone: for callers that already split their work over the threads (the fused CPU
/// attention, `ops/attention_cpu.rs`, one (batch row, head) per call). The same blocking and
/// microkernel as [`gemm_accumulate`], so the same bits.
///
/// # Safety
/// `c` must be valid for reads and writes of the (m, n) block with row stride `ldc`, and no
/// other thread may read or write that block during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_one_thread(
    c: *mut f32,
    ldc: usize,
    init: CInit,
    a: MatrixView,
    b: MatrixView,
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    let part = GemmPart {
        out: SharedOut {
            ptr: c,
            row_stride: ldc,
        },
        a,
        b: BOperand::View(b),
        rows: 0..m,
        cols: 0..n,
        k,
        alpha,
    };
    gemm_block(part, init);
}

/// Whether the threads of a product take row blocks (MR multiples) or column blocks (NR
/// multiples) of C. Each thread packs the parts of the operands it reads, so a row split has
/// every thread pack all of an unpacked B (k x n), and a column split every thread pack all of
/// A (k x m) unless the kernel reads A in place. Where both splits have enough rows and
/// columns, the one packing fewer values twice wins: the weight gradients and the input
/// gradients of the linear layers pack B per call (a row split had both threads pack all of it:
/// 5-7% of a MiniLM training step of all layers in pack_b, perf), the forward's weights are
/// packed once (then rows, as before). The split does not change any value: each element of
/// C is the same products summed in the same depth blocks either way.
fn split_by_rows(a: MatrixView, b: BOperand, m: usize, n: usize, k: usize, threads: usize) -> bool {
    let enough_rows = m >= threads * pick_microkernel().rows() * 4;
    let enough_columns = n >= threads * NR * 2;
    if !enough_columns {
        return true;
    }
    if !enough_rows {
        return m >= n;
    }
    let b_packed_per_call = !matches!(b, BOperand::Packed(_));
    // split by columns, each thread has n / threads of them
    let a_packed_per_call = !reads_a_in_place(pick_microkernel(), a, n / threads);
    let twice_by_rows = if b_packed_per_call { k * n } else { 0 };
    let twice_by_columns = if a_packed_per_call { k * m } else { 0 };
    twice_by_rows <= twice_by_columns
}

/// Below this much work one thread does a product: a thread costs tens of microseconds.
pub(crate) const MIN_FLOPS_PER_THREAD: f64 = 4.0e6;

/// The floating-point operations of an (m, k) x (k, n) product.
pub(crate) fn gemm_flops(m: usize, n: usize, k: usize) -> f64 {
    2.0 * m as f64 * n as f64 * k as f64
}

/// One thread's share of a product: C[rows, cols] (+)= alpha * A[rows, :] @ B[:, cols], k deep.
struct GemmPart<'a> {
    out: SharedOut,
    a: MatrixView<'a>,
    b: BOperand<'a>,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    k: usize,
    alpha: f32,
}

/// One thread's share: C[rows, cols] = init + alpha * A[rows, :] @ B[:, cols].
///
/// # Safety
/// `part.out` must be valid for the rows and columns given, and no other thread may write them.
unsafe fn gemm_block(part: GemmPart, init: CInit) {
    let GemmPart {
        out,
        b,
        ref rows,
        ref cols,
        k,
        ..
    } = part;
    // Zeros or the bias are not written first: the first depth block stores `start + alpha *
    // product` over them (one pass less over C). Without depth there is no block: written here.
    let start = match init {
        CInit::Zero if k > 0 => Some(FreshStart::Zero),
        CInit::Bias(bias) if k > 0 => Some(FreshStart::Bias(bias)),
        _ => None,
    };
    if start.is_none() {
        for i in rows.clone() {
            let row = std::slice::from_raw_parts_mut(
                out.ptr.add(i * out.row_stride + cols.start),
                cols.len(),
            );
            match init {
                CInit::Keep => {}
                CInit::Zero => row.fill(0.0),
                CInit::Bias(bias) => row.copy_from_slice(&bias[cols.clone()]),
                CInit::AddBias(bias) => row
                    .iter_mut()
                    .zip(&bias[cols.clone()])
                    .for_each(|(c, &x)| *c += x),
            }
        }
    }
    if k == 0 {
        return;
    }
    let kernel = pick_microkernel();
    // Packing buffers sized to this call (small per-head products need little), reused across
    // calls on the same thread: allocating and zeroing 2 MiB per call dominated small shapes.
    let kc_max = KC.min(k);
    let mr = kernel.rows();
    let a_len = MC.min(rows.len()).div_ceil(mr) * mr * kc_max;
    let b_len = match b {
        BOperand::View(_) | BOperand::Compressed(_) => {
            NC.min(cols.len()).div_ceil(NR) * NR * kc_max
        }
        BOperand::Packed(_) => 0,
    };
    PACK_BUFFERS.with(|buffers| {
        let (packed_a, packed_b) = &mut *buffers.borrow_mut();
        if packed_a.len() < a_len {
            packed_a.resize(a_len, 0.0);
        }
        if packed_b.len() < b_len {
            packed_b.resize(b_len, 0.0);
        }
        // One instance per tile height, so each kernel's tile is a fixed-size array.
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Microkernel::Avx512 => {
                gemm_block_packed::<AVX512_ROWS>(part, kernel, start, packed_a, packed_b)
            }
            #[cfg(target_arch = "x86_64")]
            Microkernel::Avx2Fma => {
                gemm_block_packed::<AVX2_ROWS>(part, kernel, start, packed_a, packed_b)
            }
            Microkernel::Portable => {
                gemm_block_packed::<PORTABLE_ROWS>(part, kernel, start, packed_a, packed_b)
            }
        }
    });
}

/// What C starts from when the first depth block is stored over it instead of added to it.
#[derive(Clone, Copy)]
enum FreshStart<'a> {
    Zero,
    /// The bias (n), by absolute column.
    Bias(&'a [f32]),
}

impl<'a> FreshStart<'a> {
    /// The start values of columns `first..first + len` (len <= NR).
    fn columns(self, first: usize, len: usize) -> &'a [f32] {
        const ZEROS: [f32; NR] = [0.0; NR];
        match self {
            FreshStart::Zero => &ZEROS[..len],
            FreshStart::Bias(bias) => &bias[first..first + len],
        }
    }
}

thread_local! {
    /// (packed A block, packed B panel) of this thread.
    static PACK_BUFFERS: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// [`gemm_block`] with its packing buffers, for a kernel of tile height MR.
///
/// # Safety
/// As [`gemm_block`].
unsafe fn gemm_block_packed<const MR: usize>(
    part: GemmPart,
    kernel: Microkernel,
    start: Option<FreshStart>,
    packed_a: &mut [f32],
    packed_b: &mut [f32],
) {
    let GemmPart {
        out,
        a,
        b,
        rows,
        cols,
        k,
        alpha,
    } = part;
    let mut tile = [[0.0f32; NR]; MR];
    let mut jc = cols.start;
    while jc < cols.end {
        let nc = NC.min(cols.end - jc);
        let mut pc = 0;
        while pc < k {
            let kc = KC.min(k - pc);
            match b {
                BOperand::View(view) => pack_b(packed_b, view, pc, kc, jc, nc),
                // `jc` is a multiple of NR (see below): whole strips
                BOperand::Compressed(packed) => packed.widen_block(packed_b, pc, kc, jc, nc),
                BOperand::Packed(_) => {}
            }
            let mut ic = rows.start;
            while ic < rows.end {
                let mc = MC.min(rows.end - ic);
                // The AVX-512 kernel reads whole MR-row strips of a row-major A in place;
                // only a last, partial strip is packed (zero-padded) then.
                let packed_from = if reads_a_in_place(kernel, a, cols.len()) {
                    mc / MR * MR
                } else {
                    0
                };
                if packed_from < mc {
                    pack_a::<MR>(packed_a, a, ic + packed_from, mc - packed_from, pc, kc);
                }
                // One tile: C[ic+ir.., jc+jr..] (+)= A strip ir @ B panel jr.
                let mut compute_tile = |ir: usize, jr: usize| {
                    let panel_b = match b {
                        BOperand::View(_) | BOperand::Compressed(_) => {
                            &packed_b[(jr / NR) * NR * kc..][..NR * kc]
                        }
                        // `jc + jr` is a multiple of NR: column blocks start at multiples of
                        // NC and threads split columns in multiples of NR.
                        BOperand::Packed(packed) => packed.panel(pc, kc, jc + jr),
                    };
                    let rows_here = MR.min(mc - ir);
                    let cols_here = NR.min(nc - jr);
                    let first = out.ptr.add((ic + ir) * out.row_stride + jc + jr);
                    // C's values before this block, by column: `start`'s on the first
                    // block, else C's own (None).
                    let before = match start {
                        Some(start) if pc == 0 => Some(start.columns(jc + jr, cols_here)),
                        _ => None,
                    };
                    #[cfg(target_arch = "x86_64")]
                    if kernel == Microkernel::Avx512 && rows_here == MR && cols_here == NR {
                        let a_strip = if ir < packed_from {
                            ASource::Rows {
                                first: &a.data[(ic + ir) * a.row_stride + pc..],
                                row_stride: a.row_stride,
                            }
                        } else {
                            ASource::Panel(&packed_a[((ir - packed_from) / MR) * MR * kc..])
                        };
                        // SAFETY: AVX-512F detected; `first` starts a whole MR x NR block
                        // of this thread's part of C (row stride out.row_stride).
                        microkernel_avx512_into_c::<MR>(
                            kc,
                            a_strip,
                            panel_b,
                            first,
                            out.row_stride,
                            alpha,
                            before,
                        );
                        return;
                    }
                    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
                    if rows_here == MR && cols_here == NR {
                        let panel_a = &packed_a[(ir / MR) * MR * kc..][..MR * kc];
                        // SAFETY: `first` starts a whole MR x NR block of this thread's part
                        // of C (row stride out.row_stride).
                        microkernel_wasm_into_c::<MR>(
                            kc,
                            panel_a,
                            panel_b,
                            first,
                            out.row_stride,
                            alpha,
                            before,
                        );
                        return;
                    }
                    // A strip read in place, at a partial tile of columns: packed after the
                    // packed strips (there is room: packed_from >= MR then).
                    let strip = if ir < packed_from {
                        let spare = (mc - packed_from).div_ceil(MR);
                        let spare_panel = &mut packed_a[spare * MR * kc..];
                        pack_a::<MR>(spare_panel, a, ic + ir, MR, pc, kc);
                        spare
                    } else {
                        (ir - packed_from) / MR
                    };
                    let panel_a = &packed_a[strip * MR * kc..][..MR * kc];
                    run_microkernel(kernel, kc, panel_a, panel_b, &mut tile);
                    match before {
                        Some(before) if rows_here == MR && cols_here == NR => {
                            // A whole tile: fixed bounds, so the adds are vector adds.
                            for (i, t) in tile.iter().enumerate() {
                                let row = std::slice::from_raw_parts_mut(
                                    first.add(i * out.row_stride),
                                    NR,
                                );
                                for ((c, &v), &b) in row.iter_mut().zip(t).zip(before) {
                                    *c = b + alpha * v;
                                }
                            }
                        }
                        None if rows_here == MR && cols_here == NR => {
                            for (i, t) in tile.iter().enumerate() {
                                let row = std::slice::from_raw_parts_mut(
                                    first.add(i * out.row_stride),
                                    NR,
                                );
                                for (c, &v) in row.iter_mut().zip(t) {
                                    *c += alpha * v;
                                }
                            }
                        }
                        _ => {
                            for (i, t) in tile.iter().enumerate().take(rows_here) {
                                let row = first.add(i * out.row_stride);
                                for (j, &v) in t.iter().enumerate().take(cols_here) {
                                    let c_before = before.map_or(*row.add(j), |b| b[j]);
                                    *row.add(j) = c_before + alpha * v;
                                }
                            }
                        }
                    }
                };
                // The block's tiles in the order A_STRIP_STAYS says: strip by strip of A (each
                // strip's tiles across all of B's panels) or panel by panel of B.
                if A_STRIP_STAYS {
                    for ir in (0..mc).step_by(MR) {
                        for jr in (0..nc).step_by(NR) {
                            compute_tile(ir, jr);
                        }
                    }
                } else {
                    for jr in (0..nc).step_by(NR) {
                        for ir in (0..mc).step_by(MR) {
                            compute_tile(ir, jr);
                        }
                    }
                }
                ic += mc;
            }
            pc += kc;
        }
        jc += nc;
    }
}

/// Whether `kernel` reads whole MR-row strips of `a` where they are, unpacked, for a product
/// with `columns` columns of C: the AVX-512 kernel, when A's rows are contiguous along k (the
/// activations of every linear layer) and the product is narrower than
/// [`PACK_A_FROM_COLUMNS`].
fn reads_a_in_place(kernel: Microkernel, a: MatrixView, columns: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    if kernel == Microkernel::Avx512 {
        return a.col_stride == 1 && columns < PACK_A_FROM_COLUMNS;
    }
    let _ = (kernel, a, columns);
    false
}

/// From this many columns of C on, the AVX-512 kernel reads A packed. A packed strip gives the
/// kernel constant offsets to its 12 rows (in place, about a dozen address computations per step
/// along k, beside 24 FMAs), and the pass that packs it is shared by the strip's tiles across
/// all the block's columns: worth it when there are many. bert-base at B 8 x T 128 (n 768 and
/// 3072; `bench model --threads 2`, alternated four times): forward 1729-1762 tokens/s in place,
/// 1775-1815 packed; all-MiniLM-L6-v2 (n 384 and 1536) and the per-head attention products
/// (n 32-128) no faster packed (MiniLM forward 10027-12311 in place, 11623-12099 packed).
#[cfg(target_arch = "x86_64")]
const PACK_A_FROM_COLUMNS: usize = 768;

/// Pack B[pc..pc+kc, jc..jc+nc] as NR-wide strips, each kc x NR row-major, zero-padded.
fn pack_b(packed: &mut [f32], b: MatrixView, pc: usize, kc: usize, jc: usize, nc: usize) {
    for (strip, j0) in (0..nc).step_by(NR).enumerate() {
        let cols_here = NR.min(nc - j0);
        let dst = &mut packed[strip * NR * kc..][..NR * kc];
        if b.row_stride == 1 && b.col_stride != 1 {
            // B stored transposed (PyTorch (out, in) weights, attention's k): each column is
            // contiguous along k. Read the NR columns side by side and write the strip's rows
            // in order (a transposition; NR read streams, one write stream).
            let column = |j: usize| -> &[f32] {
                if j < cols_here {
                    &b.data[(jc + j0 + j) * b.col_stride + pc..][..kc]
                } else {
                    &[]
                }
            };
            let columns: [&[f32]; NR] = std::array::from_fn(column);
            if cols_here == NR {
                for (p, row) in dst.chunks_exact_mut(NR).enumerate() {
                    for (v, col) in row.iter_mut().zip(&columns) {
                        *v = col[p];
                    }
                }
            } else {
                for (p, row) in dst.chunks_exact_mut(NR).enumerate() {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = if j < cols_here { columns[j][p] } else { 0.0 };
                    }
                }
            }
            continue;
        }
        for p in 0..kc {
            let row = &mut dst[p * NR..][..NR];
            if b.col_stride == 1 && cols_here == NR {
                // A whole strip row as one fixed-size copy: a few vector moves, where a
                // copy_from_slice of a run-time length called memmove for every 32 values (5%
                // of a MiniLM training step of all layers, perf).
                let start = (pc + p) * b.row_stride + jc + j0;
                let src: &[f32; NR] = b.data[start..start + NR].try_into().expect("NR values");
                *<&mut [f32; NR]>::try_from(row).expect("NR values") = *src;
                continue;
            }
            if b.col_stride == 1 {
                let start = (pc + p) * b.row_stride + jc + j0;
                row[..cols_here].copy_from_slice(&b.data[start..start + cols_here]);
            } else {
                for (j, v) in row[..cols_here].iter_mut().enumerate() {
                    *v = b.at(pc + p, jc + j0 + j);
                }
            }
            row[cols_here..].fill(0.0);
        }
    }
}

/// Pack A[ic..ic+mc, pc..pc+kc] as MR-tall strips, each kc x MR (column of the strip first).
fn pack_a<const MR: usize>(
    packed: &mut [f32],
    a: MatrixView,
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
) {
    for (strip, i0) in (0..mc).step_by(MR).enumerate() {
        let rows_here = MR.min(mc - i0);
        let dst = &mut packed[strip * MR * kc..][..MR * kc];
        if a.col_stride == 1 && rows_here == MR {
            // Rows contiguous along k: read the MR rows side by side and write the strip in
            // order (a transposition; MR read streams, one write stream).
            let rows: [&[f32]; MR] =
                std::array::from_fn(|i| &a.data[(ic + i0 + i) * a.row_stride + pc..][..kc]);
            for (p, column) in dst.chunks_exact_mut(MR).enumerate() {
                for (v, row) in column.iter_mut().zip(&rows) {
                    *v = row[p];
                }
            }
            continue;
        }
        if a.row_stride == 1 {
            // A stored transposed (a gradient's x^T): the strip's rows are contiguous already.
            for (p, column) in dst.chunks_exact_mut(MR).enumerate() {
                let src = &a.data[(pc + p) * a.col_stride + ic + i0..];
                if rows_here == MR {
                    // fixed-size: vector moves, not a memmove call per MR values
                    let src: &[f32; MR] = src[..MR].try_into().expect("MR values");
                    *<&mut [f32; MR]>::try_from(column).expect("MR values") = *src;
                } else {
                    column[..rows_here].copy_from_slice(&src[..rows_here]);
                    column[rows_here..].fill(0.0);
                }
            }
            continue;
        }
        if a.col_stride == 1 {
            for i in 0..rows_here {
                let src = &a.data[(ic + i0 + i) * a.row_stride + pc..][..kc];
                for (p, &v) in src.iter().enumerate() {
                    dst[p * MR + i] = v;
                }
            }
        } else {
            for p in 0..kc {
                for i in 0..rows_here {
                    dst[p * MR + i] = a.at(ic + i0 + i, pc + p);
                }
            }
        }
        if rows_here < MR {
            for p in 0..kc {
                dst[p * MR + rows_here..p * MR + MR].fill(0.0);
            }
        }
    }
}

/// The portable microkernel regardless of the CPU (tests compare it with the SIMD one).
pub fn gemm_portable_for_tests(c: &mut [f32], a: &[f32], b: &[f32], m: usize, n: usize, k: usize) {
    const MR: usize = PORTABLE_ROWS;
    let mut tile = [[0.0f32; NR]; MR];
    let mut packed_a = vec![0.0f32; MR * k.max(1)];
    let mut packed_b = vec![0.0f32; NR * k.max(1)];
    let av = MatrixView {
        data: a,
        row_stride: k,
        col_stride: 1,
    };
    let bv = MatrixView {
        data: b,
        row_stride: n,
        col_stride: 1,
    };
    for i0 in (0..m).step_by(MR) {
        pack_a::<MR>(&mut packed_a, av, i0, MR.min(m - i0), 0, k);
        for j0 in (0..n).step_by(NR) {
            pack_b(&mut packed_b, bv, 0, k, j0, NR.min(n - j0));
            microkernel_portable(k, &packed_a, &packed_b, &mut tile);
            for i in 0..MR.min(m - i0) {
                for j in 0..NR.min(n - j0) {
                    c[(i0 + i) * n + j0 + j] += tile[i][j];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packed in depth blocks (a last partial block, a last partial strip), every panel holds
    /// B's values where the microkernel reads them, zeros past n, and unpacking gives W back
    /// value for value.
    #[test]
    fn packed_b_panels_hold_b_and_unpack_to_w() {
        let (k, n) = (2 * KC + 7, 3 * NR + 5);
        // W (n, k) row-major, as nn.Linear stores it; B = W^T (k, n) is read through strides.
        let w: Vec<f32> = (0..n * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b = MatrixView {
            data: &w,
            row_stride: 1,
            col_stride: k,
        };
        let packed = PackedB::pack(b, k, n);
        assert_eq!(packed.bytes(), n.div_ceil(NR) * NR * k * 4);
        for pc in (0..k).step_by(KC) {
            let kc = KC.min(k - pc);
            for col in (0..n).step_by(NR) {
                let panel = packed.panel(pc, kc, col);
                for p in 0..kc {
                    for j in 0..NR {
                        let want = if col + j < n {
                            b.at(pc + p, col + j)
                        } else {
                            0.0
                        };
                        assert_eq!(
                            panel[p * NR + j],
                            want,
                            "depth {}, column {}",
                            pc + p,
                            col + j
                        );
                    }
                }
            }
        }
        assert_eq!(packed.unpack_transposed(), w);
    }
}
