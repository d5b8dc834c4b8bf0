//! A named tensor inside a weight file: dtype, shape and a borrowed view of its raw
//! little-endian bytes. Conversion to f32 is explicit (`to_f32`), zero-copy when the bytes are
//! F32 and 4-byte aligned in memory.

use std::borrow::Cow;

use super::byte_reader::checked_product;
use crate::device::Device;
use crate::ops::matmul::{HalfWeight, WeightDtype};
use crate::{Error, Result};

/// Element types that appear in safetensors / PyTorch state dicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// The name safetensors uses in its header ("F32", "BF16", ...).
    pub fn safetensors_name(self) -> &'static str {
        match self {
            DType::F64 => "F64",
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::I16 => "I16",
            DType::I8 => "I8",
            DType::U8 => "U8",
            DType::Bool => "BOOL",
        }
    }

    pub fn from_safetensors_name(name: &str) -> Option<DType> {
        Some(match name {
            "F64" => DType::F64,
            "F32" => DType::F32,
            "F16" => DType::F16,
            "BF16" => DType::BF16,
            "I64" => DType::I64,
            "I32" => DType::I32,
            "I16" => DType::I16,
            "I8" => DType::I8,
            "U8" => DType::U8,
            "BOOL" => DType::Bool,
            _ => return None,
        })
    }
}

/// The NaN and infinite values among a tensor's values, counted as they go by (a tensor
/// streamed to the GPU is checked block by block, `io::WeightStream`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NonFinite {
    count: usize,
    /// The flat index and the value of the first.
    first: Option<(usize, f32)>,
}

impl NonFinite {
    pub fn of(values: &[f32]) -> Self {
        let mut found = NonFinite::default();
        found.count_in(0, values);
        found
    }

    /// Counts those among `values`, the tensor's elements from flat index `offset` on.
    pub fn count_in(&mut self, offset: usize, values: &[f32]) {
        if values.iter().all(|v| v.is_finite()) {
            return;
        }
        for (i, &v) in values.iter().enumerate().filter(|(_, v)| !v.is_finite()) {
            self.count += 1;
            self.first.get_or_insert((offset + i, v));
        }
    }

    pub fn any(&self) -> bool {
        self.count > 0
    }

    /// An error naming checkpoint tensor `name` (of `total` values), how many of its values
    /// are NaN or infinite and the first, unless none is.
    pub fn check(&self, name: &str, total: usize) -> Result<()> {
        let Some((first, value)) = self.first else {
            return Ok(());
        };
        Err(Error::format(
            format!("checkpoint tensor {name}"),
            format!(
                "{} of its {total} values are NaN or infinite (the first, {value}, at flat index \
                 {first}); the checkpoint is corrupt or was saved from a diverged training",
                self.count
            ),
        ))
    }
}

/// One tensor of a weight file. `data` holds numel * dtype size bytes, row-major, little endian:
/// borrowed from the file where the file stores it that way, owned where a strided view had to
/// be made contiguous.
#[derive(Clone, Debug)]
pub struct TensorView<'a> {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Cow<'a, [u8]>,
}

impl<'a> TensorView<'a> {
    /// Checks that `data` holds exactly the bytes that `shape` and `dtype` call for.
    /// `file` names the weight file for the error message.
    pub fn new(
        file: &str,
        name: &str,
        dtype: DType,
        shape: Vec<usize>,
        data: impl Into<Cow<'a, [u8]>>,
    ) -> Result<Self> {
        let data = data.into();
        let expected = checked_product(&shape)
            .and_then(|n| n.checked_mul(dtype.size_in_bytes()))
            .ok_or_else(|| {
                Error::format(file, format!("tensor {name}: shape {shape:?} overflows"))
            })?;
        if expected != data.len() {
            return Err(Error::format(
                file,
                format!(
                    "tensor {name}: shape {shape:?} of {dtype:?} needs {expected} bytes, found {}",
                    data.len()
                ),
            ));
        }
        Ok(TensorView {
            name: name.to_string(),
            dtype,
            shape,
            data,
        })
    }

    pub fn numel(&self) -> usize {
        self.data.len() / self.dtype.size_in_bytes()
    }

    /// The F32 data as a slice without copying, when the dtype is F32 and the bytes happen to be
    /// 4-byte aligned in memory (always so for safetensors files read into a `Vec`).
    pub fn as_f32_slice(&self) -> Option<&[f32]> {
        if self.dtype != DType::F32 || cfg!(target_endian = "big") {
            return None;
        }
        bytemuck::try_cast_slice(&self.data).ok()
    }

    /// The matrix held compressed in `dtype` on `device`, named `name`: an F16 (BF16) tensor
    /// asked for as fp16 (bf16) is taken as it is, without widening; any other float tensor is
    /// converted (through f32, rounding to nearest even; int8: quantized per output channel).
    /// NaN and infinite values (and, in fp16, values beyond its range) are refused, naming it.
    pub fn to_half_weight(
        &self,
        device: &Device,
        name: &str,
        dtype: WeightDtype,
    ) -> Result<HalfWeight> {
        let shape = match self.shape[..] {
            [out, inp] => [out, inp],
            _ => {
                return Err(Error::shape(
                    format!("{name}: a weight matrix held in {}", dtype.name()),
                    "(out, in)",
                    &self.shape,
                ))
            }
        };
        let same = matches!(
            (self.dtype, dtype),
            (DType::F16, WeightDtype::Fp16) | (DType::BF16, WeightDtype::Bf16)
        );
        if !same {
            return HalfWeight::from_f32(device, name, dtype, shape, &self.to_f32()?);
        }
        let bits: Vec<u16> = (self.data.chunks_exact(2))
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        HalfWeight::from_bits(device, name, dtype, shape, &bits)
    }

    /// The values as f32: borrowed when possible, else converted (F16, BF16, F64, or unaligned
    /// F32). Integer and bool tensors are refused: they are ids/masks, not weights.
    pub fn to_f32(&self) -> Result<Cow<'_, [f32]>> {
        if let Some(slice) = self.as_f32_slice() {
            return Ok(Cow::Borrowed(slice));
        }
        let values: Vec<f32> = match self.dtype {
            DType::F32 => self
                .data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::F16 => self
                .data
                .chunks_exact(2)
                .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            DType::BF16 => self
                .data
                .chunks_exact(2)
                .map(|b| bf16_to_f32(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            DType::F64 => self
                .data
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
            other => {
                return Err(Error::shape(
                    format!("tensor {} (converting to f32)", self.name),
                    "a float dtype (F32, F16, BF16, F64)",
                    other,
                ))
            }
        };
        Ok(Cow::Owned(values))
    }
}

impl TensorView<'_> {
    /// The values of an integer or bool tensor (buffers such as `position_ids`).
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        let size = self.dtype.size_in_bytes();
        let signed = match self.dtype {
            DType::I64 | DType::I32 | DType::I16 | DType::I8 => true,
            DType::U8 | DType::Bool => false,
            other => {
                return Err(Error::shape(
                    format!("tensor {} (converting to integers)", self.name),
                    "an integer dtype",
                    other,
                ))
            }
        };
        Ok(self
            .data
            .chunks_exact(size)
            .map(|b| {
                let mut raw = [if signed && b[size - 1] & 0x80 != 0 {
                    0xff
                } else {
                    0
                }; 8];
                raw[..size].copy_from_slice(b);
                i64::from_le_bytes(raw)
            })
            .collect())
    }
}

/// IEEE 754 binary16 -> binary32, exact (every f16 is representable as f32).
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exponent = ((bits >> 10) & 0x1f) as u32;
    let mantissa = (bits & 0x3ff) as u32;
    let out = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal f16: value = m * 2^-24; normalise it into an f32.
            let shift = m.leading_zeros() - 21; // bring the top set bit to bit 10
            let m = (m << shift) & 0x3ff;
            let e = 127 - 15 + 1 - shift;
            sign | (e << 23) | (m << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13), // inf / NaN (payload kept)
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(out)
}

/// bfloat16 is the top half of an f32.
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// The lookups by name of a parsed weight file type with fields `file: String` and
/// `tensors: Vec<TensorView>` (`SafeTensors`, `PytorchFile`): `get`, `tensor` and `names`.
macro_rules! impl_tensor_lookup {
    ($file_type:ident) => {
        impl<'a> $file_type<'a> {
            /// The tensor of this name, if the file has one.
            pub fn get(&self, name: &str) -> Option<&TensorView<'a>> {
                self.tensors.iter().find(|t| t.name == name)
            }

            /// The tensor or an error naming the file and the missing tensor.
            pub fn tensor(&self, name: &str) -> crate::Result<&TensorView<'a>> {
                self.get(name).ok_or_else(|| {
                    crate::Error::format(&self.file, format!("no tensor named {name}"))
                })
            }

            /// The tensors' names in the file's order.
            pub fn names(&self) -> Vec<&str> {
                self.tensors.iter().map(|t| t.name.as_str()).collect()
            }
        }
    };
}
pub(crate) use impl_tensor_lookup;
