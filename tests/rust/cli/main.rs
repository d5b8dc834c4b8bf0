//! The `webnlu` binary (crate/cli) run as a user runs it: its JSON lines against the references,
//! its errors, and its declaration (help, unknown / missing / invalid options). These tests live
//! in the CLI's package because cargo gives `CARGO_BIN_EXE_webnlu` (the freshly built binary)
//! only to the tests of the binary's own package.

#[path = "../common/bert_reference.rs"]
mod bert_reference;
#[path = "../common/elmo_fixture.rs"]
mod elmo_fixture;
#[path = "../common/op_checks.rs"]
mod op_checks;

mod dtype;
mod elmo;
mod inspect;
mod memory_limit;
mod options;
mod tokenize;
