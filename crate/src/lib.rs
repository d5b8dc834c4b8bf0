//! webnlu: BERT, DistilBERT and ELMo in the browser.
//!
//! The same core builds natively (the `webnlu` CLI, the tests, the benchmarks) and to
//! WebAssembly (the npm package). `crate/ARCHITECTURE.md` describes the layers, the data flow
//! (text -> tokenizer -> model -> task) and how to add an op, a model or a task.

pub mod cpu_pool;
pub mod device;
pub mod error;
pub mod io;
#[cfg(feature = "kernel-check")]
pub mod kernel_check;
pub mod memory_limit;
pub mod models;
pub mod ops;
pub mod sort;
pub mod tasks;
pub mod tensor;
pub mod tokenizer;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use device::{Device, DeviceChoice};
pub use error::{Error, Result};
pub use tensor::Tensor;
