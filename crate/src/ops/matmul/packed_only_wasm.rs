//! The wasm build's [`PackedOnlyWeight`]: none can be made (the package's CPU path keeps the
//! cache of [`super::PackedWeight`]; packing at load is the native CLI's, see `packed_only.rs`),
//! so the layer code that matches on one compiles to nothing here and the module stays small.

use crate::tensor::Tensor;
use crate::{Error, Result};

/// Uninhabited in the wasm build.
#[derive(Debug)]
pub enum PackedOnlyWeight {}

impl PackedOnlyWeight {
    /// Refused: packing at load is native only.
    pub fn pack(w: &Tensor) -> Result<PackedOnlyWeight> {
        Err(Error::unsupported(format!(
            "packing {} for inference (native only)",
            w.name()
        )))
    }

    pub fn unpack(&self) -> Result<Tensor> {
        match *self {}
    }

    pub fn name(&self) -> &str {
        match *self {}
    }

    pub fn shape(&self) -> [usize; 2] {
        match *self {}
    }

    pub fn bytes(&self) -> u64 {
        match *self {}
    }
}

pub fn matmul_forward_packed_only(
    _y: &mut Tensor,
    _x: &Tensor,
    w: &PackedOnlyWeight,
    _bias: Option<&Tensor>,
) -> Result<()> {
    match *w {}
}
