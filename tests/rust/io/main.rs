//! Reading model files: safetensors, PyTorch (zip and legacy pickle), HDF5, config.json, whole
//! model folders, hostile inputs, and the replay of the fuzzers' saved corpus (tests/fuzz/).
//!
//! One test binary for the area (each binary links the whole crate, so a few binaries build and
//! link much faster than one per file): each file of tests/rust/io/ is a module here, and
//! the shared helpers of tests/rust/common/ are modules of the binary's root.

#[path = "../common/bert_reference.rs"]
mod bert_reference;
#[path = "../common/io_reference_summary.rs"]
mod io_reference_summary;
#[path = "../common/op_checks.rs"]
mod op_checks;

mod config;
mod fuzz_replay;
mod hdf5;
mod hostile;
mod model_files;
mod pytorch;
mod safetensors;
mod safetensors_file;
mod weight_stream;
