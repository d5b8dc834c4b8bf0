//! Subcommands of the `webnlu` binary, one file each.

pub mod arguments;
pub mod bench;
pub mod bench_elmo;
pub mod bench_model;
pub mod bench_ops;
pub mod elmo;
pub mod elmo_train;
pub mod inspect;
pub mod memory;
pub mod model_tasks;
pub mod tokenize;
pub mod train_head;
pub mod train_mlm;
pub mod train_tokens;
pub mod training_options;
