//! A linear layer's weight matrix W (out, in) kept compressed on its device, in 16 bits (fp16,
//! bf16) or as int8 codes with a scale per output channel (`int8.rs`), and the product that
//! reads it: `y (.., out) = x (.., in) @ W^T + bias (out)`, computed in f32.
//!
//! - CPU: W^T packed once into the GEMM's NR-wide strips, 16 bits a value ([`PackedB16`]) or
//!   one byte a value plus the scales ([`PackedB8`]); the GEMM widens one KC x NC block at a
//!   time (`cpu_gemm.rs`). No f32 copy is kept.
//! - GPU: W as a `Tensor<u32>` of shape (out, ceil(in / 2)): word `q` of row `c` holds W(c, 2q)
//!   in its low half and W(c, 2q + 1) in its high half; an odd `in` pads each row's last word
//!   with a zero high half (a row starts on a word, so the kernel finds row `c` at
//!   `c * ceil(in / 2)`). `matmul_forward` (`shaders/matmul.wgsl`, `b_format` 1 or 2) widens
//!   them as it stages B, with integer operations (no `shader-f16`; not `unpack2x16float`,
//!   which naga accepts only with its SHADER_FLOAT16_IN_FLOAT32 capability).
//! - GPU, int8: W's codes as a `Tensor<u32>` of shape (out, ceil(in / 4)): byte j of word `q`
//!   of row `c` holds W(c, 4q + j) (two's complement); an `in` that is not a multiple of 4 pads
//!   each row's last word with zero bytes (rows start on a word). The scales are an f32 tensor
//!   (out) bound next to them (`b_format` 3: `f32(code) * scale[c]`).
//!   With `GpuOptions::f16_arithmetic` on a device with `shader-f16`, fp16 weights go to
//!   `shaders/matmul_f16.wgsl` instead (f16 products, f32 sums; `f16_arithmetic.rs`): not
//!   bit-identical, within the error bound stated there.
//!
//! The widened values are exact functions of what is stored (16-bit: the values themselves;
//! int8: one correctly rounded f32 multiply, the same on both devices) and the rest of the
//! product is the f32 one (the same GEMM and microkernel; the same kernel), so the result is
//! bit-identical to widening W to f32 first and running [`super::matmul_forward`] on either
//! device.
//!
//! Forward only: a compressed weight does not train (`models/linear.rs` refuses its backward).

use super::cpu_gemm::{CompressedPanels, PackedB16, PackedB8};
use super::f16_arithmetic::dispatch_matmul_f16;
use super::half_float::WeightDtype;
use super::int8::{quantize, QuantizedMatrix};
use super::{dispatch_matmul, matmul_cpu_with, CpuB, MatmulDims, MatmulOptions};
use crate::device::Device;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Where the compressed values are.
enum HalfStorage {
    /// W^T in the GEMM's strips: [`PackedB16`] or [`PackedB8`].
    Cpu(Box<dyn CompressedPanels>),
    /// 16 bits: (out, ceil(in / 2)) words, two values each, and no scales; int8:
    /// (out, ceil(in / 4)) words, four codes each, and the scales (out).
    Gpu {
        words: Tensor<u32>,
        scales: Option<Tensor>,
    },
}

/// A weight matrix (out, in) held in fp16, bf16 or int8 on one device.
pub struct HalfWeight {
    name: String,
    dtype: WeightDtype,
    shape: [usize; 2],
    storage: HalfStorage,
}

impl std::fmt::Debug for HalfWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HalfWeight({:?}, {:?}, {})",
            self.name,
            self.shape,
            self.dtype.name()
        )
    }
}

impl HalfWeight {
    /// W (out, in) from its 16-bit values `bits` (row-major) in `dtype` (fp16 or bf16), on
    /// `device`, named `name`. An infinite or NaN value is an error naming the tensor and the
    /// value's index (a corrupt checkpoint, or an f32 value beyond fp16's range, 65504).
    pub fn from_bits(
        device: &Device,
        name: &str,
        dtype: WeightDtype,
        shape: [usize; 2],
        bits: &[u16],
    ) -> Result<HalfWeight> {
        let [out, inp] = shape;
        if !matches!(dtype, WeightDtype::Fp16 | WeightDtype::Bf16) || bits.len() != out * inp {
            return Err(Error::invalid(format!(
                "{name}: {} values of shape {shape:?} in {}: a 16-bit dtype and one value each",
                bits.len(),
                dtype.name()
            )));
        }
        // infinite or NaN: the exponent bits all ones
        let exponent = if dtype == WeightDtype::Bf16 {
            0x7f80
        } else {
            0x7c00
        };
        if let Some(i) = bits.iter().position(|&b| b & exponent == exponent) {
            return Err(Error::invalid(format!(
                "{name}: the value at flat index {i} is infinite or NaN in {}: the checkpoint \
                 is corrupt, or (fp16) holds values beyond 65504; load the model with dtype \
                 bf16 or fp32",
                dtype.name()
            )));
        }
        let storage = match device {
            Device::Cpu => {
                HalfStorage::Cpu(Box::new(PackedB16::pack_transposed(bits, out, inp, dtype)))
            }
            Device::Gpu(_) => HalfStorage::Gpu {
                words: rows_in_words(device, name, bits, shape, 16)?,
                scales: None,
            },
        };
        Ok(HalfWeight {
            name: name.to_string(),
            dtype,
            shape,
            storage,
        })
    }

    /// W (out, in) from f32 `values`: in fp16 / bf16 each rounded to nearest even (see
    /// [`HalfWeight::from_bits`] for the values it refuses), in int8 quantized per output
    /// channel (`int8::quantize`: infinite and NaN values refused).
    pub fn from_f32(
        device: &Device,
        name: &str,
        dtype: WeightDtype,
        shape: [usize; 2],
        values: &[f32],
    ) -> Result<HalfWeight> {
        if dtype == WeightDtype::Int8 {
            return HalfWeight::from_quantized(device, name, &quantize(name, shape, values)?);
        }
        let bits: Vec<u16> = values.iter().map(|&x| dtype.from_f32(x)).collect();
        HalfWeight::from_bits(device, name, dtype, shape, &bits)
    }

    /// W (out, in) held in int8: the codes and scales of `q` as they are.
    pub fn from_quantized(device: &Device, name: &str, q: &QuantizedMatrix) -> Result<HalfWeight> {
        let [out, inp] = q.shape;
        if q.codes.len() != out * inp || q.scales.len() != out {
            return Err(Error::invalid(format!(
                "{name}: {} codes and {} scales for shape {:?}: one code a value and one scale \
                 a row",
                q.codes.len(),
                q.scales.len(),
                q.shape
            )));
        }
        let storage = match device {
            Device::Cpu => HalfStorage::Cpu(Box::new(PackedB8::pack_transposed(
                &q.codes, &q.scales, out, inp,
            ))),
            Device::Gpu(_) => {
                let codes: &[u8] = bytemuck::cast_slice(&q.codes); // two's complement bytes
                let scales_name = format!("{name} (int8 scales)");
                HalfStorage::Gpu {
                    words: rows_in_words(device, name, codes, q.shape, 8)?,
                    scales: Some(Tensor::from_vec(
                        device,
                        &[out],
                        q.scales.clone(),
                        &scales_name,
                    )?),
                }
            }
        };
        Ok(HalfWeight {
            name: name.to_string(),
            dtype: WeightDtype::Int8,
            shape: q.shape,
            storage,
        })
    }

    /// The same weight under another name (its buffers keep their labels).
    pub fn renamed(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn dtype(&self) -> WeightDtype {
        self.dtype
    }
    /// (out, in)
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }
    pub fn numel(&self) -> usize {
        self.shape[0] * self.shape[1]
    }
    /// Bytes held on the device (2 a value in 16 bits; 1 a value and 4 a row in int8; plus
    /// the padding of the packed layout).
    pub fn bytes(&self) -> u64 {
        match &self.storage {
            HalfStorage::Cpu(packed) => packed.bytes() as u64,
            HalfStorage::Gpu { words, scales } => {
                words.bytes() + scales.as_ref().map_or(0, |s| s.bytes())
            }
        }
    }
    pub fn is_gpu(&self) -> bool {
        matches!(self.storage, HalfStorage::Gpu { .. })
    }

    /// W (out, in) widened to f32 on its device, named as W: every value exact (the f32 that
    /// the matmul widens it to; int8: code * scale). The one way from a stored weight back to a
    /// trainable f32 one (`Linear::widen_to_f32`, when a training run updates the layer). On
    /// the GPU the words (and int8's scales) are read back (hence async) and widened here.
    pub async fn to_f32_tensor(&self) -> Result<Tensor> {
        let [out, inp] = self.shape;
        let (device, values) = match &self.storage {
            HalfStorage::Cpu(packed) => (Device::Cpu, packed.unpack_f32()),
            HalfStorage::Gpu { words, scales } => {
                // (out, ceil(in / per word)) words -> (out, in) values, the lowest bits first
                let read = words.to_vec().await?;
                let bits = if scales.is_some() { 8 } else { 16 };
                let row_words = inp.div_ceil(32 / bits);
                let value = |i: usize| {
                    let (row, c) = (i / inp, i % inp);
                    let word = read[row * row_words + c / (32 / bits)];
                    word >> (bits * (c % (32 / bits)))
                };
                let values = match scales {
                    None => (0..out * inp)
                        .map(|i| self.dtype.to_f32(value(i) as u16))
                        .collect(),
                    Some(scales) => {
                        let scales = scales.to_vec().await?;
                        (0..out * inp)
                            .map(|i| value(i) as u8 as i8 as f32 * scales[i / inp])
                            .collect()
                    }
                };
                (words.device(), values)
            }
        };
        Tensor::from_vec(&device, &[out, inp], values, &self.name)
    }
}

/// The (out, in) matrix `values` of `bits`-bit values (16 or 8) as a GPU tensor of
/// (out, ceil(in / per word)) u32 words: value j of a word in bits `j * bits..`, counted from
/// the lowest (so fp16 value 2q is the low half of word q, int8 code 4q + j its byte j); the
/// last word of a row padded with zeros, so that every row starts on a word.
fn rows_in_words<T: Copy + Into<u32>>(
    device: &Device,
    name: &str,
    values: &[T],
    [out, inp]: [usize; 2],
    bits: usize,
) -> Result<Tensor<u32>> {
    let per_word = 32 / bits;
    let row_words = inp.div_ceil(per_word);
    let mut words = Vec::with_capacity(out * row_words);
    for row in values.chunks(inp.max(1)) {
        for group in row.chunks(per_word) {
            let word = (group.iter().enumerate()).fold(0, |w, (j, &v)| w | v.into() << (j * bits));
            words.push(word);
        }
    }
    Tensor::from_vec(device, &[out, row_words], words, name)
}

/// y (.., out) = x (.., in) @ W^T + bias (out), W held compressed; x, y and the bias on W's
/// device.
pub fn matmul_forward_half(
    y: &mut Tensor,
    x: &Tensor,
    w: &HalfWeight,
    bias: Option<&Tensor>,
) -> Result<()> {
    let dims = half_product_dims(y, x, w, bias, 1.0)?;
    // A tensor on the other device than W: the error of `cpu_mut` / `gpu` names it.
    match &w.storage {
        HalfStorage::Cpu(packed) => {
            let bias = match bias {
                Some(t) => Some(t.cpu()?),
                None => None,
            };
            matmul_cpu_with(
                y.cpu_mut()?,
                x.cpu()?,
                CpuB::Compressed(&**packed),
                bias,
                &dims,
            );
            Ok(())
        }
        HalfStorage::Gpu { words, scales } => match y.gpu_context().cloned() {
            // fp16 in f16 arithmetic where the device allows it and it was asked for
            Some(ctx) if w.dtype == WeightDtype::Fp16 && ctx.info().f16_arithmetic => {
                dispatch_matmul_f16(&ctx, y, x, words.gpu()?, bias, &dims)
            }
            Some(ctx) => {
                let scales = match scales {
                    Some(s) => Some(s.gpu()?),
                    None => None,
                };
                dispatch_matmul(&ctx, y, x, (words.gpu()?, scales), w.dtype, bias, &dims)
            }
            None => y.gpu().map(|_| ()),
        },
    }
}

/// y (.., out) = alpha * x (.., in) @ W^T + bias (out) in f16 arithmetic with f32 sums
/// (`shaders/matmul_f16.wgsl`, see `f16_arithmetic.rs` for its error bound), whatever
/// `GpuOptions::f16_arithmetic` says: W in fp16 on a GPU opened with `shader-f16`, else an error
/// naming W. [`matmul_forward_half`] takes this path by itself where the device allows it and
/// the option asks for it.
pub fn matmul_forward_half_in_f16(
    y: &mut Tensor,
    x: &Tensor,
    w: &HalfWeight,
    bias: Option<&Tensor>,
    alpha: f32,
) -> Result<()> {
    let dims = half_product_dims(y, x, w, bias, alpha)?;
    let words = match &w.storage {
        HalfStorage::Gpu { words, .. } if w.dtype == WeightDtype::Fp16 => words,
        _ => {
            return Err(Error::invalid(format!(
                "{}: f16 arithmetic needs an fp16 weight on the GPU, found {} on the {}",
                w.name,
                w.dtype.name(),
                if w.is_gpu() { "GPU" } else { "CPU" }
            )))
        }
    };
    let ctx = y.gpu_context().cloned().ok_or_else(|| {
        Error::invalid(format!(
            "{}: the output {} is not on the GPU",
            w.name,
            y.name()
        ))
    })?;
    if !ctx.info().has_shader_f16 {
        return Err(Error::invalid(format!(
            "{}: f16 arithmetic needs the shader-f16 feature, which {} does not offer",
            w.name,
            ctx.info().name
        )));
    }
    dispatch_matmul_f16(&ctx, y, x, words.gpu()?, bias, &dims)
}

/// The sizes of y (.., out) = alpha * x (.., in) @ W^T + bias (out), the shapes checked.
fn half_product_dims(
    y: &Tensor,
    x: &Tensor,
    w: &HalfWeight,
    bias: Option<&Tensor>,
    alpha: f32,
) -> Result<MatmulDims> {
    linear_product_dims(y, x, &w.name, w.shape, bias, alpha)
}

/// The sizes of y (.., out) = alpha * x (.., in) @ W^T + bias (out) for a weight `name` of
/// `[out, in]` held in its own storage (16-bit, int8 or packed-only), the shapes checked
/// (errors name the weight).
pub(super) fn linear_product_dims(
    y: &Tensor,
    x: &Tensor,
    name: &str,
    [n, k]: [usize; 2],
    bias: Option<&Tensor>,
    alpha: f32,
) -> Result<MatmulDims> {
    // m: the rows of x, from its leading dimensions (not numel / in, which is 0 / 0 when the
    // weight has no inputs; then each row of y is the bias)
    let rows = x
        .shape()
        .split_last()
        .map_or(1, |(_, leading)| leading.iter().product());
    let mut shape = x.shape().to_vec(); // x (.., in), then y (.., out)
    if let Some(last) = shape.len().checked_sub(1) {
        shape[last] = k;
        x.expect_shape(name, &shape)?;
        shape[last] = n;
    }
    y.expect_shape(name, &shape)?;
    if let Some(bias) = bias {
        bias.expect_shape(name, &[n])?;
    }
    Ok(MatmulDims::new(
        1,
        1,
        rows,
        n,
        k,
        MatmulOptions {
            trans_b: true,
            alpha,
            ..MatmulOptions::default()
        },
    ))
}
