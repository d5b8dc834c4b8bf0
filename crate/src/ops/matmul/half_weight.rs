//! A linear layer's weight matrix W (out, in) kept in 16 bits on its device, and the product
//! that reads it: `y (.., out) = x (.., in) @ W^T + bias (out)`, computed in f32.
//!
//! - CPU: W^T packed once into the GEMM's NR-wide strips, 16 bits a value ([`PackedB16`]);
//!   the GEMM widens one KC x NC block at a time (`cpu_gemm.rs`). No f32 copy is kept.
//! - GPU: W as a `Tensor<u32>` of shape (out, ceil(in / 2)): word `q` of row `c` holds W(c, 2q)
//!   in its low half and W(c, 2q + 1) in its high half; an odd `in` pads each row's last word
//!   with a zero high half (a row starts on a word, so the kernel finds row `c` at
//!   `c * ceil(in / 2)`). `matmul_forward_w16` in `shaders/matmul.wgsl` widens with integer
//!   operations (no `shader-f16`; not `unpack2x16float`, which naga accepts only with its
//!   SHADER_FLOAT16_IN_FLOAT32 capability), bf16 with a 16-bit shift.
//!
//! The widened values are exact, so on the CPU the result is bit-identical to widening W to
//! f32 first and running [`super::matmul_forward`]; the GPU kernel accumulates in the same
//! order as `matmul_forward` does.
//!
//! Forward only: a 16-bit weight does not train (`models/linear.rs` refuses its backward).
//! Another storage (int8 with a scale per output row) would be one more variant of
//! [`HalfStorage`]'s role and of the kernel's `b_format`.

use super::cpu_gemm::{gemm_accumulate, BOperand, CInit, MatrixView, PackedB16};
use super::half_float::WeightDtype;
use super::MatmulParams;
use crate::device::Device;
use crate::ops::shaders;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Where the 16-bit values are.
enum HalfStorage {
    Cpu(PackedB16),
    /// (out, ceil(in / 2)) words, two values each.
    Gpu(Tensor<u32>),
}

/// A weight matrix (out, in) held in fp16 or bf16 on one device.
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
    /// `device`, named `name`.
    pub fn from_bits(
        device: &Device,
        name: &str,
        dtype: WeightDtype,
        shape: [usize; 2],
        bits: &[u16],
    ) -> Result<HalfWeight> {
        let [out, inp] = shape;
        if dtype == WeightDtype::Fp32 {
            return Err(Error::invalid(format!(
                "{name}: a 16-bit weight needs dtype fp16 or bf16, not fp32"
            )));
        }
        if bits.len() != out * inp {
            return Err(Error::shape(
                format!("{name}: 16-bit values for shape {shape:?}"),
                out * inp,
                bits.len(),
            ));
        }
        let storage = match device {
            Device::Cpu => HalfStorage::Cpu(PackedB16::pack_transposed(bits, out, inp, dtype)),
            Device::Gpu(_) => {
                let words_per_row = inp.div_ceil(2);
                let mut words = vec![0u32; out * words_per_row];
                for (row, dst) in words.chunks_exact_mut(words_per_row.max(1)).enumerate() {
                    let src = &bits[row * inp..][..inp];
                    for (q, word) in dst.iter_mut().enumerate() {
                        let high = src.get(2 * q + 1).copied().unwrap_or(0);
                        *word = src[2 * q] as u32 | (high as u32) << 16;
                    }
                }
                HalfStorage::Gpu(Tensor::from_vec(
                    device,
                    &[out, words_per_row],
                    words,
                    name,
                )?)
            }
        };
        Ok(HalfWeight {
            name: name.to_string(),
            dtype,
            shape,
            storage,
        })
    }

    /// W (out, in) from f32 `values`, each rounded to nearest even in `dtype`; a value that
    /// overflows fp16 (beyond 65504) is an error naming the tensor.
    pub fn from_f32(
        device: &Device,
        name: &str,
        dtype: WeightDtype,
        shape: [usize; 2],
        values: &[f32],
    ) -> Result<HalfWeight> {
        let bits: Vec<u16> = values.iter().map(|&x| dtype.from_f32(x)).collect();
        if let Some(i) = bits.iter().position(|&b| !dtype.to_f32(b).is_finite()) {
            return Err(Error::invalid(format!(
                "{name}: value {} (flat index {i}) is beyond the range of {}; load the model \
                 with dtype bf16 or fp32",
                values[i],
                dtype.name()
            )));
        }
        HalfWeight::from_bits(device, name, dtype, shape, &bits)
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
    /// Bytes held on the device (2 a value, plus the padding of the packed layout).
    pub fn bytes(&self) -> u64 {
        match &self.storage {
            HalfStorage::Cpu(packed) => packed.bytes() as u64,
            HalfStorage::Gpu(words) => words.bytes(),
        }
    }
    pub fn is_gpu(&self) -> bool {
        matches!(self.storage, HalfStorage::Gpu(_))
    }
}

/// y (.., out) = x (.., in) @ W^T + bias (out), W held in 16 bits; x, y and the bias on W's
/// device.
pub fn matmul_forward_half(
    y: &mut Tensor,
    x: &Tensor,
    w: &HalfWeight,
    bias: Option<&Tensor>,
) -> Result<()> {
    let [n, k] = w.shape;
    let xs = x.shape();
    if xs.last() != Some(&k) {
        return Err(Error::shape(
            format!("matmul of {} by {}", x.name(), w.name),
            format!("(.., {k})"),
            xs,
        ));
    }
    let rows: usize = xs[..xs.len() - 1].iter().product(); // m
    let mut expected = xs.to_vec();
    *expected.last_mut().unwrap_or(&mut 0) = n;
    y.expect_shape(&format!("matmul by {}", w.name), &expected)?;
    if let Some(bias) = bias {
        bias.expect_shape(&format!("matmul by {}: bias", w.name), &[n])?;
    }
    if rows == 0 || n == 0 {
        return Ok(());
    }
    match (&w.storage, y.gpu_context().cloned()) {
        (HalfStorage::Cpu(packed), None) => {
            let init = match bias {
                Some(b) => CInit::Bias(b.cpu()?),
                None => CInit::Zero,
            };
            let a = MatrixView {
                data: x.cpu()?,
                row_stride: k,
                col_stride: 1,
            };
            let out = y.cpu_mut()?;
            gemm_accumulate(out, n, init, a, BOperand::Packed16(packed), rows, n, k, 1.0);
            Ok(())
        }
        (HalfStorage::Gpu(words), Some(ctx)) => {
            let params = MatmulParams {
                m: rows as u32,
                n: n as u32,
                k: k as u32,
                batch: 1,
                trans_a: 0,
                trans_b: 1,
                has_bias: bias.is_some() as u32,
                accumulate: 0,
                a_batch_stride: 0,
                b_batch_stride: 0,
                alpha: 1.0,
                b_format: match w.dtype {
                    WeightDtype::Bf16 => 2,
                    _ => 1,
                },
            };
            let bias_buffer = match bias {
                Some(t) => t.gpu()?,
                None => ctx.placeholder(),
            };
            ctx.dispatch(
                &shaders::MATMUL.kernel("matmul_forward_w16"),
                &[x.gpu()?, words.gpu()?, bias_buffer],
                &[y.gpu()?],
                &params,
                [n.div_ceil(64) as u32, rows.div_ceil(64) as u32, 1],
            )
        }
        (storage, _) => {
            let place = |gpu: bool| if gpu { "GPU" } else { "CPU" };
            Err(Error::invalid(format!(
                "{} is on the {}, the matmul's input {} on the {}",
                w.name,
                place(matches!(storage, HalfStorage::Gpu(_))),
                x.name(),
                place(y.is_gpu())
            )))
        }
    }
}
