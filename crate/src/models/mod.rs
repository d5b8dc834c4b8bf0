//! Whole models assembled from the ops, one folder per family:
//! - `bert/`: BERT and DistilBERT (one `BertModel`; their layers are the same post-LN block), with
//!   the parts only they use: embeddings, encoder layer, encoder input and states, task heads and
//!   the task step (forward, loss, backward).
//! - `elmo/`: ELMo's biLM (char CNN, highway, projection, LSTMs), its backward, its weights,
//!   the scalar mix and the sentence classifier on its features.
//!
//! Here beside them, the building blocks both families use: `linear`, `layer_norm`, the
//! gradients map and the weight loader. The self-attention itself is one op, `ops::attention`,
//! which BERT's encoder layer calls.

pub mod bert;
pub mod elmo;
pub mod gradients;
pub mod layer_norm;
pub mod linear;
pub mod weight_loader;

pub use bert::encoder_input::{EncoderInput, Freeze, RunMode};
pub use bert::encoder_states::{EncoderStates, StatesToKeep};
pub use bert::task_step::{Targets, Task, TaskOutput};
pub use bert::{BertModel, EncoderOutput, Family, SavedModel};
pub use gradients::Gradients;
