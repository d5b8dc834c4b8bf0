//! Tensors of a checkpoint onto a device under their canonical names: the loader looks a
//! tensor up by its Hugging Face name (any spelling the file uses, see `io::model_files`),
//! checks its shape against what the config implies (an error names the tensor, the expected
//! and the found shape), converts it to f32 and uploads it named `<prefix><name>`.

use crate::device::Device;
use crate::io::WeightFile;
use crate::tensor::Tensor;
use crate::Result;

pub struct WeightLoader<'f, 'a> {
    pub file: &'f WeightFile<'a>,
    pub device: &'f Device,
}

impl WeightLoader<'_, '_> {
    /// The tensor `name` (written without the model prefix), named `canonical` on the device.
    pub fn load(&self, name: &str, canonical: &str, shape: &[usize]) -> Result<Tensor> {
        let view = self.file.require(name, shape)?;
        let values = view.to_f32()?.into_owned();
        Tensor::from_vec(self.device, shape, values, canonical)
    }

    pub fn has(&self, name: &str) -> bool {
        self.file.find(name).is_some()
    }
}
