//! The models against their references: BERT and DistilBERT against transformers (forward and
//! gradients), ELMo against AllenNLP (forward, scalar mix, classifier training).
//!
//! One test binary for the area (each binary links the whole crate, so a few binaries build and
//! link much faster than one per file): each file of tests/rust/models/ is a module here, and
//! the shared helpers of tests/rust/common/ are modules of the binary's root.

#[path = "../common/bert_reference.rs"]
mod bert_reference;
#[path = "../common/elmo_fixture.rs"]
mod elmo_fixture;
#[path = "../common/op_checks.rs"]
mod op_checks;

mod bert_model;
mod bert_parity;
mod elmo_memory;
mod elmo_parity;
mod elmo_scalar_mix;
mod elmo_training;
mod load_budget;
mod packed_inference;
