//! int8 weights: symmetric per-output-channel quantization of a linear layer's W (out, in) and
//! the widening of its codes back to f32 inside the matmul.
//!
//! Quantization (absmax, one f32 scale per output feature, i.e. per row of W and per column of
//! `op(b) = W^T` as the layer multiplies it):
//! `scale[c] = max_i |W(c, i)| / 127` and `q(c, i) = round_half_to_even(W(c, i) / scale[c])`,
//! clamped to [-127, 127] (-128 is never used: the range is symmetric). A channel of zeros gets
//! scale 0 and all-zero codes (its dequantized values are the zeros it held). The clamp only
//! acts where the scale's own rounding puts `max / scale` past 127.5, which happens for
//! channels whose largest value is a subnormal f32 (normal scales give at most 127.0001).
//!
//! Dequantization is `f32(q) * scale[c]`, one correctly rounded f32 multiply, on every path
//! (portable, AVX2, AVX-512, wasm simd128 and the WGSL kernel): the CPU and the GPU widen to
//! the same f32 values, so a product with int8 weights equals the f32 product of the
//! dequantized matrix ([`dequantize`]) bit for bit on the CPU, and up to summation order
//! between the devices.

use crate::{Error, Result};

/// W (out, in) as int8 codes and a scale per output channel.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedMatrix {
    /// (out, in) row-major, each in [-127, 127].
    pub codes: Vec<i8>,
    /// (out): W(c, i) ~ codes(c, i) * scales[c]; 0 for a channel of zeros.
    pub scales: Vec<f32>,
    /// (out, in)
    pub shape: [usize; 2],
}

/// Quantizes W (out, in) row-major (`values`), named `name` in errors: an error for a length
/// that is not out * in, and for an infinite or NaN value (naming the tensor and the value's
/// flat index).
pub fn quantize(name: &str, shape: [usize; 2], values: &[f32]) -> Result<QuantizedMatrix> {
    let [out, inp] = shape;
    if values.len() != out * inp {
        return Err(Error::invalid(format!(
            "{name}: {} values for shape {shape:?} in int8",
            values.len()
        )));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::invalid(format!(
            "{name}: the value at flat index {i} is {} and cannot be quantized to int8: the \
             checkpoint is corrupt",
            values[i]
        )));
    }
    let mut codes = vec![0i8; out * inp];
    let mut scales = vec![0f32; out];
    for (c, (row, scale)) in values.chunks(inp.max(1)).zip(&mut scales).enumerate() {
        let absmax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        *scale = absmax / 127.0;
        if *scale == 0.0 {
            continue; // zeros (or values too small for any scale): codes stay 0
        }
        for (q, &v) in codes[c * inp..][..inp].iter_mut().zip(row) {
            *q = (v / *scale).round_ties_even().clamp(-127.0, 127.0) as i8;
        }
    }
    Ok(QuantizedMatrix {
        codes,
        scales,
        shape,
    })
}

/// W's dequantized values (out, in): `codes(c, i) * scales[c]`, exactly what the matmul reads.
pub fn dequantize(m: &QuantizedMatrix) -> Vec<f32> {
    let inp = m.shape[1].max(1);
    (m.codes.chunks(inp).zip(&m.scales))
        .flat_map(|(row, &s)| row.iter().map(move |&q| q as f32 * s))
        .collect()
}

/// dst[p * width + j] = codes[p * width + j] * scales[j] for every row p: the widening of a
/// packed strip (rows of `width` = `scales.len()` codes, one output channel per column). With
/// AVX-512 or AVX2 where the CPU has them, wasm simd128 in the package, portable Rust
/// elsewhere; every path is one exact conversion and one f32 multiply per value. In the wasm
/// build rows are a multiple of 8 values (the strips there are NR = 8 wide; no scalar
/// fallback is compiled in).
pub fn widen_rows(codes: &[i8], scales: &[f32], dst: &mut [f32]) {
    debug_assert_eq!(codes.len(), dst.len());
    let width = scales.len();
    #[cfg(target_arch = "x86_64")]
    if width % 16 == 0 && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F detected; rows are whole multiples of 16 values.
        unsafe { widen_rows_avx512(codes, scales, dst) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if width % 8 == 0 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 detected; rows are whole multiples of 8 values.
        unsafe { widen_rows_avx2(codes, scales, dst) };
        return;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        assert!(
            width % 8 == 0,
            "int8 rows of {width} values: a multiple of 8 in wasm"
        );
        widen_rows_simd128(codes, scales, dst);
    }
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    widen_rows_portable(codes, scales, dst);
}

/// [`widen_rows`] in plain Rust (tests compare the SIMD paths with it).
pub fn widen_rows_portable(codes: &[i8], scales: &[f32], dst: &mut [f32]) {
    let width = scales.len().max(1);
    for (d, q) in dst.chunks_exact_mut(width).zip(codes.chunks_exact(width)) {
        for ((d, &q), &s) in d.iter_mut().zip(q).zip(scales) {
            *d = q as f32 * s;
        }
    }
}

/// # Safety
/// The CPU must have AVX-512F; `scales.len()` a multiple of 16, `codes` and `dst` of equal
/// length, a multiple of it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn widen_rows_avx512(codes: &[i8], scales: &[f32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = codes.len().min(dst.len());
    let width = scales.len();
    for i in (0..n).step_by(16) {
        let bytes = _mm_loadu_si128(codes.as_ptr().add(i) as *const __m128i);
        let values = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)); // sign-extend, convert
        let scale = _mm512_loadu_ps(scales.as_ptr().add(i % width));
        _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_mul_ps(values, scale));
    }
}

/// # Safety
/// The CPU must have AVX2; `scales.len()` a multiple of 8, `codes` and `dst` of equal length,
/// a multiple of it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn widen_rows_avx2(codes: &[i8], scales: &[f32], dst: &mut [f32]) {
    use std::arch::x86_64::*;
    let n = codes.len().min(dst.len());
    let width = scales.len();
    for i in (0..n).step_by(8) {
        let bytes = _mm_loadl_epi64(codes.as_ptr().add(i) as *const __m128i);
        let values = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)); // sign-extend, convert
        let scale = _mm256_loadu_ps(scales.as_ptr().add(i % width));
        _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_mul_ps(values, scale));
    }
}

/// [`widen_rows`] with wasm simd128, 8 values at a time (`scales.len()` a multiple of 8).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn widen_rows_simd128(codes: &[i8], scales: &[f32], dst: &mut [f32]) {
    use core::arch::wasm32::*;
    let width = scales.len();
    for ((d, q), i) in dst
        .chunks_exact_mut(8)
        .zip(codes.chunks_exact(8))
        .zip((0..).step_by(8))
    {
        let s = &scales[i % width..][..8];
        // SAFETY: `q` holds 8 bytes, `s` 8 f32 and `d` room for 8 f32 (unaligned v128
        // loads and stores are allowed in wasm).
        unsafe {
            let wide = i16x8_load_extend_i8x8(q.as_ptr()); // sign-extend to i16
            let low = f32x4_convert_i32x4(i32x4_extend_low_i16x8(wide));
            let high = f32x4_convert_i32x4(i32x4_extend_high_i16x8(wide));
            let s_low = v128_load(s.as_ptr() as *const v128);
            let s_high = v128_load(s.as_ptr().add(4) as *const v128);
            v128_store(d.as_mut_ptr() as *mut v128, f32x4_mul(low, s_low));
            v128_store(d.as_mut_ptr().add(4) as *mut v128, f32x4_mul(high, s_high));
        }
    }
}
