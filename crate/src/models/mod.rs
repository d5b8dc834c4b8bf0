//! Whole models assembled from the ops: one file per model.

pub mod elmo;
pub mod scalar_mix;
