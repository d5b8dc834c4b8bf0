//! The ops of the compute core, one file per family. Each family has a plain-Rust CPU forward
//! and backward (the test reference and the fallback backend) and its WGSL kernels in
//! `shaders/<family>.wgsl`, exposed here as a `*_WGSL` source constant.
//!
//! Conventions (llm.c style): arguments go outputs, then inputs, then sizes; a backward adds
//! into its gradients (`+=`); every slice parameter carries a shape comment.

pub mod char_cnn;
pub mod dropout;
pub mod highway;
mod length_check;
pub mod losses;
pub mod lstm;
pub mod optimizer;
pub mod pooling;
pub mod similarity;
