//! Whole models assembled from the ops: one file per model.

pub mod elmo;
pub mod elmo_backward;
pub mod elmo_classifier;
pub mod elmo_sentiment_data;
pub mod elmo_weights;
pub mod scalar_mix;
