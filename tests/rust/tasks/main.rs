//! The tasks over the models: fill-mask, embeddings, classification, pairs, inspection, and
//! training of every head, against transformers and PyTorch.
//!
//! One test binary for the area (each binary links the whole crate, so a few binaries build and
//! link much faster than one per file): each file of tests/rust/tasks/ is a module here, and
//! the shared helpers of tests/rust/common/ are modules of the binary's root.

#[path = "../common/bert_reference.rs"]
mod bert_reference;
#[path = "../common/op_checks.rs"]
mod op_checks;

mod elmo_train_options;
mod examples;
mod f16_arithmetic;
mod half_weights;
mod half_weights_training;
mod inspect;
mod int8_weights;
mod models;
mod pairs;
mod train;
mod train_masked_lm;
mod train_options;
mod train_problems;
mod train_tokens;
mod training_memory;
