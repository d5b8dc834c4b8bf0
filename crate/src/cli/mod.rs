//! Subcommands of the `webnlu` binary, one file each.

pub mod bench_ops;
