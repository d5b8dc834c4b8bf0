//! A linear layer's f32 weight W (out, in) held on the CPU only as the GEMM's packed panels of
//! W^T, with no plain copy: what an inference-only model keeps (the CLI's inference commands,
//! and every model the package loads in fp32 on the CPU; see `models/linear.rs`).
//!
//! An f32 [`Tensor`] weight on the CPU gets the same panels made on its first product and
//! cached next to it ([`super::PackedWeight`]), so after one forward the model would hold its
//! layer weights twice (bert-base: 340 MB more). Packed once at load instead, from the plain
//! tensor that is then dropped, the product reads the same panels with the same GEMM: results
//! are bit-identical to [`super::matmul_forward_packed`]. [`PackedOnlyWeight::unpack`] gives
//! the plain tensor back, value for value, for a layer that is to train, and
//! [`PackedOnlyWeight::unpack_values`] its values for saving.

use std::sync::Arc;

use super::cpu_gemm::PackedB;
use super::half_weight::linear_product_dims;
use super::{b_view, matmul_cpu_with, CpuB, MatmulDims, MatmulOptions};
use crate::device::Device;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// W (out, in) as the CPU GEMM's packed panels of W^T (in, out).
pub struct PackedOnlyWeight {
    name: String,
    /// (out, in)
    shape: [usize; 2],
    panels: Arc<PackedB>,
}

impl std::fmt::Debug for PackedOnlyWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedOnlyWeight({:?}, {:?})", self.name, self.shape)
    }
}

/// How a layer reads its W (out, in): `y = x @ W^T`.
const WEIGHT_IS_OUT_BY_IN: MatmulOptions = MatmulOptions {
    trans_a: false,
    trans_b: true,
    alpha: 1.0,
    accumulate: false,
};

impl PackedOnlyWeight {
    /// Packs `w` (out, in), a CPU tensor that it consumes, as a product `x @ w^T` packs it: its
    /// values are copied into `scratch` (the caller's, kept for the next matrix) and packed into
    /// the tensor's own buffer, so packing a model's matrices one after the other allocates
    /// nothing of their size but the scratch once (no freed plain buffers between new panels:
    /// the wasm memory holds the weights once plus the largest matrix, not a fragmented extra).
    pub fn pack(w: Tensor, scratch: &mut Vec<f32>) -> Result<PackedOnlyWeight> {
        let [out, inp] = matrix_shape(&w)?;
        let name = w.name().to_string();
        scratch.clear();
        scratch.extend_from_slice(w.cpu()?);
        let dims = MatmulDims::new(1, 1, 0, out, inp, WEIGHT_IS_OUT_BY_IN);
        let panels = PackedB::pack_into(w.into_cpu_vec()?, b_view(scratch, &dims), inp, out);
        Ok(PackedOnlyWeight {
            name,
            shape: [out, inp],
            panels: Arc::new(panels),
        })
    }

    /// W (out, in) as a plain CPU tensor of the same name, value for value.
    pub fn unpack(&self) -> Result<Tensor> {
        Tensor::from_vec(&Device::Cpu, &self.shape, self.unpack_values(), &self.name)
    }

    /// W's values (out, in) row-major, value for value (what saving writes).
    pub fn unpack_values(&self) -> Vec<f32> {
        self.panels.unpack_transposed()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// (out, in)
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// Bytes held by the panels (the padding of the last strip included).
    pub fn bytes(&self) -> u64 {
        self.panels.bytes() as u64
    }
}

/// (out, in) of a weight matrix, or an error naming it.
fn matrix_shape(w: &Tensor) -> Result<[usize; 2]> {
    match w.shape() {
        &[out, inp] => Ok([out, inp]),
        other => Err(Error::shape(
            format!("packing {}", w.name()),
            "(out, in)",
            other,
        )),
    }
}

/// y (.., out) = x (.., in) @ W^T + bias (out), W packed; x, y and the bias on the CPU.
pub fn matmul_forward_packed_only(
    y: &mut Tensor,
    x: &Tensor,
    w: &PackedOnlyWeight,
    bias: Option<&Tensor>,
) -> Result<()> {
    let dims = linear_product_dims(y, x, &w.name, w.shape, bias, 1.0)?;
    let bias = match bias {
        Some(t) => Some(t.cpu()?),
        None => None,
    };
    // A GPU x or y: the error of `cpu` / `cpu_mut` names it.
    matmul_cpu_with(y.cpu_mut()?, x.cpu()?, CpuB::Packed(&w.panels), bias, &dims);
    Ok(())
}
