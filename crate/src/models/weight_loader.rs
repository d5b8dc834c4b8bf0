//! Tensors of a checkpoint onto a device under their canonical names: the loader looks a
//! tensor up by its Hugging Face name (any spelling the file uses, see `io::model_files`),
//! checks its shape against what the config implies (an error names the tensor, the expected
//! and the found shape), converts it to f32, refuses NaN and infinite values (a corrupt or
//! diverged checkpoint would otherwise give NaN scores without a word) and uploads it named
//! `<prefix><name>`.

use crate::device::Device;
use crate::io::{NonFinite, WeightSource};
use crate::ops::matmul::{HalfWeight, WeightDtype};
use crate::tensor::Tensor;
use crate::Result;

pub struct WeightLoader<'f, 'a> {
    pub file: &'f WeightSource<'a>,
    pub device: &'f Device,
}

impl WeightLoader<'_, '_> {
    /// The tensor `name` (written without the model prefix), named `canonical` on the device.
    /// A streamed file's tensor already uploaded to the GPU (checked finite then) is taken as
    /// it is, renamed.
    pub fn load(&self, name: &str, canonical: &str, shape: &[usize]) -> Result<Tensor> {
        if let Some(uploaded) = self.file.take_uploaded(name, shape)? {
            return Ok(uploaded.renamed(canonical));
        }
        let values = self.file.read_f32(name, shape)?;
        check_finite(name, &values)?;
        Tensor::from_vec(self.device, shape, values, canonical)
    }

    /// The matrix `name` (out, in) held in compressed `dtype` on the device: an F16 (BF16)
    /// file tensor asked for as fp16 (bf16) is read as it is, without widening; any other float
    /// tensor is converted (through f32, rounding to nearest even; int8: quantized per output
    /// channel). NaN and infinite values
    /// (and, in fp16, values beyond its range) are refused, naming the tensor. A streamed
    /// file's matrix already converted as it completed (`io::WeightStream`) is taken as it is.
    pub fn load_half(
        &self,
        name: &str,
        canonical: &str,
        shape: [usize; 2],
        dtype: WeightDtype,
    ) -> Result<HalfWeight> {
        if let Some(compressed) = self.file.take_compressed(name, &shape, dtype)? {
            return Ok(compressed.renamed(canonical));
        }
        let view = self.file.read_view(name, &shape)?;
        view.to_half_weight(self.device, canonical, dtype)
    }

    pub fn has(&self, name: &str) -> bool {
        self.file.has(name)
    }
}

/// An error naming tensor `name`, how many of its values are NaN or infinite and the first,
/// unless all are finite.
fn check_finite(name: &str, values: &[f32]) -> Result<()> {
    NonFinite::of(values).check(name, values.len())
}
