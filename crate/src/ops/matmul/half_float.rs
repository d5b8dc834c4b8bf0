//! The element types a weight matrix may be stored in ([`WeightDtype`]: fp32, fp16, bf16,
//! int8; int8's quantization is in `int8.rs`) and the 16-bit conversions: f32 -> 16 bits
//! rounding to nearest even, 16 bits -> f32 exactly (every fp16 and bf16 value is an f32). [`widen`] converts a run of 16-bit values, with F16C
//! on x86_64 where the CPU has it and integer bit operations elsewhere (wasm simd128 has no
//! half-float conversion; bf16 is a 16-bit shift everywhere).

use crate::{Error, Result};

/// How a linear layer's weight matrix is held on the device (`loadModel`'s `dtype`, the CLI's
/// `--dtype`). Computation is f32 in every case: compressed values are widened as the matmul
/// reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum WeightDtype {
    /// 4 bytes a value (the default; what training needs).
    #[default]
    Fp32,
    /// IEEE binary16: 2 bytes, 11 significant bits, largest finite value 65504.
    Fp16,
    /// bfloat16 (the top half of an f32): 2 bytes, 8 significant bits, f32's range.
    Bf16,
    /// Symmetric int8 codes with an f32 scale per output channel (absmax / 127; `int8.rs`):
    /// 1 byte a value plus 4 a row, quantized at load from any float checkpoint.
    Int8,
}

impl WeightDtype {
    /// The dtype named `name` ("fp32", "fp16", "bf16" or "int8"); an error listing them
    /// otherwise.
    pub fn parse(name: &str) -> Result<WeightDtype> {
        match name {
            "fp32" => Ok(WeightDtype::Fp32),
            "fp16" => Ok(WeightDtype::Fp16),
            "bf16" => Ok(WeightDtype::Bf16),
            "int8" => Ok(WeightDtype::Int8),
            other => Err(Error::invalid(format!(
                "unknown dtype {other:?}: expected \"fp32\", \"fp16\", \"bf16\" or \"int8\""
            ))),
        }
    }

    /// The name `parse` reads.
    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::Fp32 => "fp32",
            WeightDtype::Fp16 => "fp16",
            WeightDtype::Bf16 => "bf16",
            WeightDtype::Int8 => "int8",
        }
    }

    /// `matmul_forward`'s `b_format` for a B held in this dtype (`shaders/matmul.wgsl`'s
    /// `load_b`: 0 = f32 values, 1 = fp16, 2 = bf16, 3 = int8 codes with a scales buffer).
    pub(crate) fn shader_format(self) -> u32 {
        match self {
            WeightDtype::Fp32 => 0,
            WeightDtype::Fp16 => 1,
            WeightDtype::Bf16 => 2,
            WeightDtype::Int8 => 3,
        }
    }

    /// The error of training `what` (a model's layers, or one weight) held in this dtype: a
    /// compressed (16-bit or int8) weight is not a parameter (the trainers widen the layers
    /// they train first; this is a backward through one left compressed).
    pub fn refuse_training(self, what: &str) -> Error {
        Error::unsupported(format!(
            "training {what} of a model loaded with dtype {}: {} weights do not train; \
             train the head only (freeze: 'head', --freeze head) or load the model with dtype \
             fp32",
            self.name(),
            if self == WeightDtype::Int8 {
                "int8"
            } else {
                "16-bit"
            }
        ))
    }

    /// Bytes per stored value (int8: the codes only; each output channel adds a 4-byte scale).
    pub fn bytes_per_value(self) -> usize {
        match self {
            WeightDtype::Fp32 => 4,
            WeightDtype::Fp16 | WeightDtype::Bf16 => 2,
            WeightDtype::Int8 => 1,
        }
    }

    /// `x` in this 16-bit format, rounded to nearest even (fp16 or bf16 only: the callers
    /// refuse fp32 and quantize int8 per channel instead).
    pub fn from_f32(self, x: f32) -> u16 {
        match self {
            WeightDtype::Bf16 => f32_to_bf16_bits(x),
            _ => f32_to_f16_bits(x),
        }
    }

    /// The f32 value of 16-bit `bits` in this format (exact).
    #[inline(always)]
    pub fn to_f32(self, bits: u16) -> f32 {
        match self {
            WeightDtype::Bf16 => f32::from_bits((bits as u32) << 16),
            _ => f16_bits_to_f32(bits),
        }
    }
}

impl std::str::FromStr for WeightDtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        WeightDtype::parse(s)
    }
}

/// IEEE binary16 bits -> f32, exact, with integer operations and one multiply: the 15 bits below
/// the sign, moved to an f32's exponent and mantissa position, are the value times 2^-112 (for
/// normal and subnormal values alike), so a multiply by 2^112 finishes it; infinities and NaNs
/// (exponent all ones) are rebuilt separately.
#[inline(always)]
pub fn f16_bits_to_f32(bits: u16) -> f32 {
    let sign = ((bits & 0x8000) as u32) << 16;
    let rest = (bits & 0x7fff) as u32;
    let magnitude = if rest >= 0x7c00 {
        0x7f80_0000 | ((rest & 0x3ff) << 13)
    } else {
        (f32::from_bits(rest << 13) * f32::from_bits(0x7780_0000)).to_bits() // * 2^112
    };
    f32::from_bits(sign | magnitude)
}

/// f32 -> IEEE binary16 bits, rounded to nearest even; beyond 65504 (after rounding) it is
/// infinite, which the weight loader refuses with the tensor's name.
pub fn f32_to_f16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x7f_ffff;
    if exponent == 0xff {
        let nan = if mantissa != 0 { 0x200 } else { 0 };
        return sign | 0x7c00 | nan;
    }
    let e = exponent - 127 + 15; // the binary16 exponent field
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e >= 1 {
        // Normal: keep 10 mantissa bits; a carry out of the mantissa moves into the exponent
        // (up to infinity), which is what rounding means there.
        let kept = ((e as u32) << 10) | (mantissa >> 13);
        let dropped = mantissa & 0x1fff;
        let up = dropped > 0x1000 || (dropped == 0x1000 && kept & 1 == 1);
        return sign | (kept + up as u32) as u16;
    }
    // Subnormal (or zero): the value in units of 2^-24 is the 24-bit significand >> (14 - e).
    let shift = (14 - e) as u32;
    if shift > 24 {
        return sign; // below half of the smallest subnormal
    }
    let significand = mantissa | 0x80_0000;
    let kept = significand >> shift;
    let dropped = significand & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let up = dropped > half || (dropped == half && kept & 1 == 1);
    sign | (kept + up as u32) as u16
}

/// f32 -> bfloat16 bits, rounded to nearest even (NaN stays a NaN).
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// dst[i] = the f32 value of src[i] in `dtype` (16-bit), for equal lengths.
pub fn widen(dtype: WeightDtype, src: &[u16], dst: &mut [f32]) {
    debug_assert_eq!(src.len(), dst.len());
    match dtype {
        WeightDtype::Bf16 => {
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f32::from_bits((s as u32) << 16);
            }
        }
        _ => {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("f16c") {
                // SAFETY: F16C (which implies AVX's 256-bit stores) was detected.
                unsafe { widen_f16_f16c(src, dst) };
                return;
            }
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = f16_bits_to_f32(s);
            }
        }
    }
}

/// [`widen`] for fp16 with the F16C instruction `vcvtph2ps`, 8 values at a time.
///
/// # Safety
/// The CPU must have F16C and AVX.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn widen_f16_f16c(src: &[u16], dst: &mut [f32]) {
    use std::arch::x86_64::{__m128i, _mm256_cvtph_ps, _mm256_storeu_ps, _mm_loadu_si128};
    let n = src.len().min(dst.len());
    let whole = n / 8 * 8;
    for i in (0..whole).step_by(8) {
        let half = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
        _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(half));
    }
    for i in whole..n {
        dst[i] = f16_bits_to_f32(src[i]);
    }
}

/// The portable fp16 widening regardless of the CPU (tests compare it with F16C).
pub fn widen_portable_for_tests(src: &[u16], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16_bits_to_f32(s);
    }
}
