//! The ops, each on the CPU and on the GPU (Mesa lavapipe): forward against direct formulas or
//! float64 references, backward against finite differences, GPU == CPU; the device layer, the
//! shaders (naga validation, WebGPU's default limits) and the kernel check the browser runs.
//!
//! One test binary for the area (each binary links the whole crate, so a few binaries build and
//! link much faster than one per file): each file of tests/rust/ops/ is a module here, and
//! the shared helpers of tests/rust/common/ are modules of the binary's root.

#[path = "../common/bert_reference.rs"]
mod bert_reference;
#[path = "../common/op_checks.rs"]
mod op_checks;

mod attention_embedding;
mod attention_fused;
mod char_cnn;
mod device;
mod device_lost;
mod dropout;
mod elementwise;
mod f16_matmul;
mod half_matmul;
mod highway;
mod int8_matmul;
mod kernel_check;
mod lanes;
mod losses;
mod lstm;
mod matmul;
mod norm_softmax;
mod optimizer;
mod out_of_memory;
mod pooling;
mod row_shards;
mod shaders_validate;
mod similarity;
