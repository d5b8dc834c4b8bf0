//! Subcommands of the `webnlu` binary, one file each.

pub mod arguments;
pub mod bench;
pub mod tokenize;
