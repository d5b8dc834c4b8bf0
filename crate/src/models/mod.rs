//! Whole models assembled from the ops: one file per model, plus the building blocks that
//! BERT and DistilBERT share (embeddings, encoder layer, linear, layer norm, heads). The
//! self-attention itself is one op, `ops::attention`, which the encoder layer calls.

pub mod bert;
pub mod distilbert;
pub mod elmo;
pub mod elmo_backward;
pub mod elmo_classifier;
pub mod elmo_sentiment_data;
pub mod elmo_weights;
pub mod embeddings;
pub mod encoder_input;
pub mod encoder_layer;
pub mod encoder_states;
pub mod gradients;
pub mod heads;
pub mod layer_norm;
pub mod linear;
pub mod scalar_mix;
pub mod task_step;
pub mod weight_loader;

pub use bert::{BertModel, EncoderOutput, Family, SavedModel};
pub use encoder_input::{EncoderInput, Freeze, RunMode};
pub use encoder_states::{EncoderStates, StatesToKeep};
pub use gradients::Gradients;
pub use task_step::{Targets, Task, TaskOutput};
