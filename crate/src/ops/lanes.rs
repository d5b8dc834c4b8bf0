//! Building blocks for the CPU ops between the matmuls, written so that the compiler turns
//! them into SIMD code without intrinsics: 8 independent lanes for reductions (a float sum in
//! one accumulator cannot be vectorized, as reordering it changes the result), and branch-free
//! math (`exp`) that inlines into the callers' loops. In wasm with simd128 the lanes become
//! f32x4 operations; natively AVX-512 or AVX2 in functions defined with [`wide_simd_fn!`].
//!
//! Summation order: a reduction over 8 lanes adds the elements in another order than a single
//! running sum, so results move in the last bits (relative 1e-7 on a row of 384) against the
//! scalar versions they replace. `exp` is within 2 ulp of the correctly rounded value.

/// Lanes of the reductions: two f32x4 (wasm, SSE2) or one AVX2 register.
const LANES: usize = 8;

/// sum of `x`, in 8 lanes then across them.
#[inline(always)]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for l in 0..LANES {
            acc[l] += chunk[l];
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        acc[l] += v;
    }
    across(acc)
}

/// sum of (x - shift)^2, in 8 lanes.
#[inline(always)]
pub fn sum_squared_deviation(x: &[f32], shift: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for l in 0..LANES {
            let d = chunk[l] - shift;
            acc[l] += d * d;
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        let d = v - shift;
        acc[l] += d * d;
    }
    across(acc)
}

/// sum of a[i] * b[i] over the shorter length, in 8 lanes.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    for (l, (&x, &y)) in ca.remainder().iter().zip(cb.remainder()).enumerate() {
        acc[l] += x * y;
    }
    across(acc)
}

/// The largest element (NaN if any is NaN; -inf for an empty slice).
#[inline(always)]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut nan = false;
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for l in 0..LANES {
            let v = chunk[l];
            nan |= v.is_nan();
            acc[l] = if v > acc[l] { v } else { acc[l] };
        }
    }
    for (l, &v) in chunks.remainder().iter().enumerate() {
        nan |= v.is_nan();
        acc[l] = if v > acc[l] { v } else { acc[l] };
    }
    if nan {
        return f32::NAN;
    }
    acc.into_iter()
        .fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m })
}

/// The 8 lanes added pairwise: (0+4, 1+5, 2+6, 3+7), then (0+2, 1+3), then 0+1.
#[inline(always)]
fn across(acc: [f32; LANES]) -> f32 {
    let q = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    (q[0] + q[2]) + (q[1] + q[3])
}

/// e^x without a library call, so that loops over it vectorize: x = n ln2 + r with n an
/// integer and |r| <= ln2 / 2, e^r by a degree-6 polynomial (the minimax coefficients of
/// Cephes' expf, Moshier 1989), 2^n through the exponent bits. Within 2 ulp of e^x for
/// normal results; 0 below -87.34 (where e^x is subnormal or 0), +inf above 88.72, NaN for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 in two parts: LN2_HI has few significant bits, so n * LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const LO: f32 = -87.336_55; // ln of the smallest normal f32
    const HI: f32 = 88.722_83; // ln of the largest f32
                               // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer (|x * log2 e| < 2^22).
    const ROUND: f32 = 12_582_912.0;
    // Clamp into [LO, HI]; NaN stays NaN.
    let xc = x.clamp(LO, HI);
    // t = ROUND + n exactly, so n is also the difference of the two floats' bits: integer
    // arithmetic only (a float-to-int conversion would not vectorize everywhere).
    let t = xc * LOG2E + ROUND;
    let n = t - ROUND; // -126 ..= 128
    let n_int = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let er = p * r * r + r + 1.0;
    // 2^n as 2^h * 2^(n-h), both normal for every n in range (2^128 alone is not a float).
    let h = n_int >> 1;
    let y = er * pow2(h) * pow2(n_int.wrapping_sub(h));
    if x < LO {
        0.0
    } else if x > HI {
        f32::INFINITY
    } else {
        y
    }
}

/// 2^e for -126 <= e <= 127, from the exponent bits (other e: some float; NaN inputs only).
#[inline(always)]
fn pow2(e: i32) -> f32 {
    f32::from_bits((e.wrapping_add(127) as u32) << 23)
}

/// The widest vectors this CPU runs, for [`wide_simd_fn!`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SimdWidth {
    /// x86_64 AVX-512 (F, BW, DQ, VL): 16 f32 lanes.
    Avx512,
    /// x86_64 AVX2 + FMA: 8 f32 lanes.
    Avx2,
    /// What the build targets (wasm simd128, x86_64 SSE2, ...).
    Baseline,
}

/// Detected once. `WEBNLU_CPU_KERNEL` (any value: `avx2`, `portable`) caps it at AVX2, for
/// comparisons.
pub fn simd_width() -> SimdWidth {
    #[cfg(target_arch = "x86_64")]
    {
        static WIDTH: std::sync::OnceLock<SimdWidth> = std::sync::OnceLock::new();
        *WIDTH.get_or_init(|| {
            let avx512 = is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl");
            let capped = std::env::var("WEBNLU_CPU_KERNEL").is_ok_and(|k| !k.is_empty());
            if avx512 && !capped {
                SimdWidth::Avx512
            } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                SimdWidth::Avx2
            } else {
                SimdWidth::Baseline
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    SimdWidth::Baseline
}

/// Defines a function whose body is compiled three times natively on x86_64 (for AVX-512,
/// AVX2 and the baseline) and run in the widest one the CPU has ([`simd_width`]); elsewhere
/// (wasm) once. The body's loops and the `#[inline(always)]` helpers it calls (this module's)
/// are vectorized at that width. Results do not depend on the width: no operation is
/// contracted into an FMA (Rust never fuses a * b + c by itself) and the reductions' lane count
/// is fixed in the code ([`LANES`]).
#[macro_export]
macro_rules! wide_simd_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                match $crate::ops::lanes::simd_width() {
                    // SAFETY: the features were detected on this CPU.
                    $crate::ops::lanes::SimdWidth::Avx512 => return unsafe { avx512($($arg),*) },
                    $crate::ops::lanes::SimdWidth::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::ops::lanes::SimdWidth::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}
