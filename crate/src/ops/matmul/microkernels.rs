//! The microkernels of the CPU matmul ([`super::cpu_gemm`]): tile (MR, NR) = panel_a (kc, MR)^T @
//! panel_b (kc, NR) over packed panels, one per instruction set: x86_64 AVX-512F and AVX2+FMA
//! (chosen at run time with `is_x86_feature_detected!`), wasm `simd128` (fused with
//! relaxed SIMD where the build enables it), and portable Rust elsewhere. Each kernel has its
//! own tile height MR (a const generic here; [`Microkernel::rows`]); NR is shared, as packed
//! weights are laid out in NR-wide strips whichever kernel reads them.

use super::cpu_gemm::NR;

/// Tile heights (MR) per kernel: MR rows x NR columns of C kept in registers.
/// - x86_64 AVX-512: 12 x 2 zmm = 24 accumulators, 2 for B, 1 broadcast of A (27 of 32
///   registers; 14 loads per 24 FMAs). Measured alone at the fc1 shape (1024 x 3072 x 768, one
///   core of this 2-core Xeon), 12 x 32 ran at 174-193 GFLOP/s where 6 x 32 (12 accumulators,
///   8 loads per 12 FMAs) ran at 145-167 and 8 x 48 at 168-181; OpenBLAS 176.
#[cfg(target_arch = "x86_64")]
pub(super) const AVX512_ROWS: usize = 12;
/// - x86_64 AVX2 (no AVX-512): 6 x 32 as two 6 x 16 halves, each 6 x 2 ymm = 12 accumulators,
///   2 for B, 1 broadcast: 15 of 16 registers. (12 x 32 in four 6 x 16 quarters ran 8% slower.)
#[cfg(target_arch = "x86_64")]
pub(super) const AVX2_ROWS: usize = 6;
/// - wasm: 4 x 8 (4 rows of 2 v128: 8 accumulators). V8 on x86 has 15-16 vector registers:
///   the microkernel alone ran 6 x 8 at 42 GFLOP/s and 4 x 8 at 47 with a separate multiply
///   and add (the product needs a register of its own), and in relaxed SIMD (fused) 4 x 8 at
///   54 and 5 x 8 at 60; yet in the whole model (all-MiniLM-L6-v2 in Chromium 156, 20
///   sentences) 4 x 8 won in both builds (relaxed 5 x 8: 292 ms a batch; 4 x 8: 209 ms), as
///   short sentences leave fewer rows idle in 4-row tiles.
/// - portable Rust on other native targets: 6 x 32.
///
/// A tile's shape never changes a result: each element of C is the same products summed over
/// k in order, KC at a time, whichever kernel and tile computes it.
pub(super) const PORTABLE_ROWS: usize = if cfg!(target_arch = "wasm32") { 4 } else { 6 };

/// The microkernel this CPU runs (see [`pick_microkernel`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Microkernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

pub(super) fn pick_microkernel() -> Microkernel {
    #[cfg(target_arch = "x86_64")]
    {
        static DETECTED: std::sync::OnceLock<Microkernel> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            // WEBNLU_CPU_KERNEL=avx2 (or portable) forces a narrower kernel, for comparisons.
            let forced = std::env::var("WEBNLU_CPU_KERNEL").unwrap_or_default();
            if is_x86_feature_detected!("avx512f") && forced.is_empty() {
                Microkernel::Avx512
            } else if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && forced != "portable"
            {
                Microkernel::Avx2Fma
            } else {
                Microkernel::Portable
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    Microkernel::Portable
}

impl Microkernel {
    /// Rows of C per call of this kernel (its tile's height MR).
    pub(super) fn rows(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Microkernel::Avx512 => AVX512_ROWS,
            #[cfg(target_arch = "x86_64")]
            Microkernel::Avx2Fma => AVX2_ROWS,
            Microkernel::Portable => PORTABLE_ROWS,
        }
    }
}

/// Name of the microkernel in use (the benchmark prints it).
pub fn cpu_microkernel_name() -> &'static str {
    match pick_microkernel() {
        Microkernel::Portable
            if cfg!(all(target_arch = "wasm32", target_feature = "relaxed-simd")) =>
        {
            "wasm-relaxed-simd"
        }
        Microkernel::Portable if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) => {
            "wasm-simd128"
        }
        Microkernel::Portable => "portable",
        #[cfg(target_arch = "x86_64")]
        Microkernel::Avx2Fma => "avx2+fma",
        #[cfg(target_arch = "x86_64")]
        Microkernel::Avx512 => "avx512f",
    }
}

/// tile (MR, NR) = panel_a (kc, MR)^T @ panel_b (kc, NR), where MR is `kernel`'s own height
/// ([`Microkernel::rows`]; another MR panics).
#[inline]
pub(super) fn run_microkernel<const MR: usize>(
    kernel: Microkernel,
    kc: usize,
    panel_a: &[f32],
    panel_b: &[f32],
    tile: &mut [[f32; NR]; MR],
) {
    assert_eq!(MR, kernel.rows(), "a tile of another kernel's height");
    match kernel {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: chosen only when AVX2 and FMA were detected; panels hold kc*MR / kc*NR.
        Microkernel::Avx2Fma => unsafe {
            microkernel_avx2_half::<MR>(kc, panel_a, panel_b, tile, 0);
            microkernel_avx2_half::<MR>(kc, panel_a, panel_b, tile, 16);
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: chosen only when AVX-512F was detected; panels hold kc*MR / kc*NR.
        Microkernel::Avx512 => unsafe { microkernel_avx512::<MR>(kc, panel_a, panel_b, tile) },
        Microkernel::Portable => microkernel_portable::<MR>(kc, panel_a, panel_b, tile),
    }
}

/// Columns `col..col+16` of the tile: tile[.., col..col+16] = panel_a^T @ panel_b[.., col..col+16].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn microkernel_avx2_half<const MR: usize>(
    kc: usize,
    panel_a: &[f32],
    panel_b: &[f32],
    tile: &mut [[f32; NR]; MR],
    col: usize,
) {
    // A runtime check (folded away per MR): run_microkernel instantiates every kernel at every
    // tile height, and picks this one only at its own.
    assert!(
        MR <= AVX2_ROWS && NR == 32,
        "the AVX2 microkernel keeps at most 6 x 16 in registers"
    );
    use std::arch::x86_64::*;
    debug_assert!(panel_a.len() >= kc * MR && panel_b.len() >= kc * NR && col + 16 <= NR);
    let mut pa = panel_a.as_ptr();
    let mut pb = panel_b.as_ptr().add(col);
    let mut c = [[_mm256_setzero_ps(); 2]; MR];
    for _ in 0..kc {
        let b0 = _mm256_loadu_ps(pb);
        let b1 = _mm256_loadu_ps(pb.add(8));
        for (i, row) in c.iter_mut().enumerate() {
            let a = _mm256_broadcast_ss(&*pa.add(i));
            row[0] = _mm256_fmadd_ps(a, b0, row[0]);
            row[1] = _mm256_fmadd_ps(a, b1, row[1]);
        }
        pa = pa.add(MR);
        pb = pb.add(NR);
    }
    for (row, acc) in tile.iter_mut().zip(&c) {
        _mm256_storeu_ps(row.as_mut_ptr().add(col), acc[0]);
        _mm256_storeu_ps(row.as_mut_ptr().add(col + 8), acc[1]);
    }
}

/// Where the AVX-512 microkernel reads A: a packed panel (kc, MR) row-major, or MR rows of
/// A itself (row-major, `row_stride` apart, contiguous along k), which saves packing A when
/// its rows are contiguous. Either way element (i, p) is the same number, so the products and
/// their order, and the result, are the same.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(super) enum ASource<'a> {
    Panel(&'a [f32]),
    Rows { first: &'a [f32], row_stride: usize },
}

/// The AVX-512 microkernel's products: A (MR, kc) @ panel_b (kc, NR) in MR x 2 zmm.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn avx512_products<const MR: usize>(
    kc: usize,
    a: ASource,
    panel_b: &[f32],
) -> [[std::arch::x86_64::__m512; 2]; MR] {
    const {
        assert!(
            MR <= 14 && NR == 32,
            "the AVX-512 microkernel keeps at most 14 x 32 in the 32 registers"
        )
    };
    assert!(panel_b.len() >= kc * NR, "B panel shorter than kc * NR");
    // One instance per layout, so that the step along k is a constant: packed, every row's
    // offset is a constant too and the loop has no address arithmetic besides two pointer
    // increments; in place, LLVM still rebuilds the 12 row addresses from the stride each step
    // (about a dozen integer operations beside the 24 FMAs), which is why wide products pack A.
    match a {
        ASource::Panel(panel) => {
            assert!(panel.len() >= kc * MR, "A panel shorter than kc * MR");
            avx512_products_at::<MR, MR>(kc, panel.as_ptr(), 1, panel_b)
        }
        ASource::Rows { first, row_stride } => {
            assert!(
                first.len() >= (MR - 1) * row_stride + kc,
                "A rows shorter than MR rows of kc"
            );
            avx512_products_at::<MR, 1>(kc, first.as_ptr(), row_stride, panel_b)
        }
    }
}

/// [`avx512_products`] with A's element (i, p) at `a_first + i * row_step + p * P_STEP`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn avx512_products_at<const MR: usize, const P_STEP: usize>(
    kc: usize,
    a_first: *const f32,
    row_step: usize,
    panel_b: &[f32],
) -> [[std::arch::x86_64::__m512; 2]; MR] {
    use std::arch::x86_64::*;
    let offsets: [usize; MR] = std::array::from_fn(|i| i * row_step);
    let mut pa = a_first;
    let mut pb = panel_b.as_ptr();
    let mut c = [[_mm512_setzero_ps(); 2]; MR];
    for _ in 0..kc {
        let b0 = _mm512_loadu_ps(pb);
        let b1 = _mm512_loadu_ps(pb.add(16));
        for (row, &offset) in c.iter_mut().zip(&offsets) {
            let a = _mm512_set1_ps(*pa.add(offset));
            row[0] = _mm512_fmadd_ps(a, b0, row[0]);
            row[1] = _mm512_fmadd_ps(a, b1, row[1]);
        }
        pa = pa.add(P_STEP);
        pb = pb.add(NR);
    }
    c
}

/// tile (MR, NR) = panel_a (kc, MR)^T @ panel_b (kc, NR) with 16-wide vectors (partial tiles).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn microkernel_avx512<const MR: usize>(
    kc: usize,
    panel_a: &[f32],
    panel_b: &[f32],
    tile: &mut [[f32; NR]; MR],
) {
    use std::arch::x86_64::*;
    let c = avx512_products::<MR>(kc, ASource::Panel(panel_a), panel_b);
    for (row, acc) in tile.iter_mut().zip(&c) {
        _mm512_storeu_ps(row.as_mut_ptr(), acc[0]);
        _mm512_storeu_ps(row.as_mut_ptr().add(16), acc[1]);
    }
}

/// C[0..MR, 0..NR] (row stride `ldc`) = before + alpha * A @ panel_b: the AVX-512 microkernel
/// storing into C itself, for whole tiles (no pass through a tile buffer). `before`: C's
/// values before this depth block, by column (zeros or the bias, on the first block), or None
/// for C's own. The same products and sums as [`microkernel_avx512`] then the epilogue
/// (`before + alpha * v`, no fused op), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn microkernel_avx512_into_c<const MR: usize>(
    kc: usize,
    a: ASource,
    panel_b: &[f32],
    c_out: *mut f32,
    ldc: usize,
    alpha: f32,
    before: Option<&[f32]>,
) {
    use std::arch::x86_64::*;
    // Ask for C's rows now: they arrive while the products run (thousands of cycles). Storing
    // (and, after the first depth block, loading) them cold after the products was 8.2% of a
    // bert-base forward's samples (perf; C is 12 MiB at fc1, out of L2), 7.0% with these hints.
    // A hint only: no value changes.
    for i in 0..MR {
        let row = c_out.add(i * ldc) as *const i8;
        _mm_prefetch::<_MM_HINT_ET0>(row);
        _mm_prefetch::<_MM_HINT_ET0>(row.add(4 * NR - 1));
    }
    let c = avx512_products::<MR>(kc, a, panel_b);
    let scale = _mm512_set1_ps(alpha);
    if let Some(before) = before {
        assert!(before.len() >= NR, "fewer than NR start values");
    }
    for (i, row) in c.iter().enumerate() {
        let out = c_out.add(i * ldc);
        for (h, &acc) in row.iter().enumerate() {
            let at = out.add(16 * h);
            let c_before = match before {
                Some(before) => _mm512_loadu_ps(before.as_ptr().add(16 * h)),
                None => _mm512_loadu_ps(at),
            };
            let sum = _mm512_add_ps(c_before, _mm512_mul_ps(scale, acc));
            _mm512_storeu_ps(at, sum);
        }
    }
}

/// c + a * b on 4 lanes: one fused multiply-add in the relaxed-SIMD build (`relaxed_madd`,
/// which engines compile to FMA where the CPU has it), a multiply and an add in plain simd128.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn multiply_add(
    a: core::arch::wasm32::v128,
    b: core::arch::wasm32::v128,
    c: core::arch::wasm32::v128,
) -> core::arch::wasm32::v128 {
    use core::arch::wasm32::*;
    #[cfg(target_feature = "relaxed-simd")]
    {
        f32x4_relaxed_madd(a, b, c)
    }
    #[cfg(not(target_feature = "relaxed-simd"))]
    {
        f32x4_add(c, f32x4_mul(a, b))
    }
}

/// wasm simd128: 4-wide f32 vectors, MR rows x 2 vectors of accumulators (NR = 8). The
/// fixed-size arrays are unrolled by the compiler and live in registers.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) fn microkernel_portable<const MR: usize>(
    kc: usize,
    panel_a: &[f32],
    panel_b: &[f32],
    tile: &mut [[f32; NR]; MR],
) {
    use core::arch::wasm32::*;
    let acc = wasm_products::<MR>(kc, panel_a, panel_b);
    for (row, vectors) in tile.iter_mut().zip(&acc) {
        for (j, &v) in vectors.iter().enumerate() {
            // SAFETY: a tile row has NR floats; 4*j + 4 <= NR.
            unsafe { v128_store(row.as_mut_ptr().add(4 * j) as *mut v128, v) };
        }
    }
}

/// C[0..MR, 0..NR] (row stride `ldc`) = before + alpha * panel_a^T @ panel_b: the wasm
/// microkernel storing into C itself, for whole tiles (no pass through a tile buffer, which
/// was 4-5% of a single sentence's time in Node). `before`: C's values before this depth
/// block, by column (zeros or the bias, on the first block), or None for C's own. The same
/// products and sums as [`microkernel_portable`] then the epilogue (`before + alpha * v`, a
/// multiply and an add, as the scalar epilogue of partial tiles), so the same bits.
///
/// # Safety
/// `c_out` must be valid for MR rows of NR floats, `ldc` apart.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(super) unsafe fn microkernel_wasm_into_c<const MR: usize>(
    kc: usize,
    panel_a: &[f32],
    panel_b: &[f32],
    c_out: *mut f32,
    ldc: usize,
    alpha: f32,
    before: Option<&[f32]>,
) {
    use core::arch::wasm32::*;
    let acc = wasm_products::<MR>(kc, panel_a, panel_b);
    let scale = f32x4_splat(alpha);
    if let Some(before) = before {
        assert!(before.len() >= NR, "fewer than NR start values");
    }
    for (i, row) in acc.iter().enumerate() {
        let out = c_out.add(i * ldc);
        for (j, &v) in row.iter().enumerate() {
            let at = out.add(4 * j) as *mut v128;
            let c_before = match before {
                Some(before) => v128_load(before.as_ptr().add(4 * j) as *const v128),
                None => v128_load(at),
            };
            v128_store(at, f32x4_add(c_before, f32x4_mul(scale, v)));
        }
    }
}

/// The wasm kernels' products: MR rows x 2 vectors (NR = 8) of panel_a (kc, MR)^T @ panel_b
/// (kc, NR), summed along k in order.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
fn wasm_products<const MR: usize>(
    kc: usize,
    panel_a: &[f32],
    panel_b: &[f32],
) -> [[core::arch::wasm32::v128; NR / 4]; MR] {
    use core::arch::wasm32::*;
    const VECTORS: usize = NR / 4;
    assert!(panel_a.len() >= kc * MR && panel_b.len() >= kc * NR);
    let mut acc = [[f32x4_splat(0.0); VECTORS]; MR];
    let pa = panel_a.as_ptr();
    let pb = panel_b.as_ptr();
    for p in 0..kc {
        // SAFETY: p < kc, and the panels hold kc*MR and kc*NR floats (asserted above);
        // unaligned 16-byte loads are allowed in wasm.
        unsafe {
            let b: [v128; VECTORS] =
                std::array::from_fn(|j| v128_load(pb.add(p * NR + 4 * j) as *const v128));
            let a = pa.add(p * MR);
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = f32x4_splat(*a.add(i));
                for (c, &bj) in row.iter_mut().zip(&b) {
                    *c = multiply_add(ai, bj, *c);
                }
            }
        }
    }
    acc
}

/// Portable Rust: fixed-size arrays the compiler vectorizes for the baseline target.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub(super) fn microkernel_portable<const MR: usize>(
    kc: usize,
    panel_a: &[f32],
    panel_b: &[f32],
    tile: &mut [[f32; NR]; MR],
) {
    let mut acc = [[0.0f32; NR]; MR];
    for p in 0..kc {
        let b: &[f32; NR] = panel_b[p * NR..][..NR].try_into().expect("NR floats");
        let a: &[f32; MR] = panel_a[p * MR..][..MR].try_into().expect("MR floats");
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += a[i] * b[j];
            }
        }
    }
    *tile = acc;
}
