//! The tokenizer: WordPiece parity with Hugging Face tokenizers, properties over generated
//! inputs, and the errors of bad tokenizer files.
//!
//! One test binary for the area (each binary links the whole crate, so a few binaries build and
//! link much faster than one per file): each file of tests/rust/tokenizer/ is a module here, and
//! the shared helpers of tests/rust/common/ are modules of the binary's root.

#[path = "../common/bert_reference.rs"]
mod bert_reference;

mod errors;
mod parity;
mod properties;
