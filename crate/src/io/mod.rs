//! Reading and writing weight files: `config.json`, safetensors, PyTorch `.bin` (zip and legacy),
//! and the HDF5 subset of AllenNLP's ELMo files.
//!
//! Every parser here treats its input as hostile: each size and offset is checked against the
//! bytes that are really there before it is used, nothing is allocated from a header value that
//! the file cannot back, and every failure is a `webnlu::Error` that names the file, the tensor
//! and what was expected versus found. No parser needs a file system or mmap: each takes bytes
//! (`&[u8]`), so the same code runs in the browser; [`read_file`] is the native convenience.

pub mod byte_reader;
pub mod config;
pub mod elmo_options;
pub mod hdf5;
pub mod model_files;
pub mod pickle;
pub mod pytorch;
pub mod random_bert;
pub mod safetensors;
pub mod safetensors_file;
pub mod tensor_view;
pub mod weight_stream;
pub mod zip_archive;

pub use config::{Activation, BertConfig, DistilBertConfig, ModelConfig};
pub use elmo_options::ElmoOptions;
pub use hdf5::Hdf5File;
pub use model_files::{ModelFiles, WeightFile, WeightSource};
pub use pytorch::PytorchFile;
pub use random_bert::RandomBert;
pub use safetensors::{write_safetensors, SafeTensors};
pub use safetensors_file::SafeTensorsFile;
pub use tensor_view::{DType, NonFinite, TensorView};
pub use weight_stream::{HeaderPlan, StreamedWeights, WeightStream};

use crate::{Error, Result};

/// Reads a whole file into memory (native only; the browser hands bytes to the parsers directly).
pub fn read_file(path: impl AsRef<std::path::Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|source| Error::io(path.display().to_string(), source))
}
