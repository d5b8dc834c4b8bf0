//! Training: the pieces a fine-tuning loop is made of, independent of the model.
//!
//! - [`adamw`]: AdamW over named parameters with the Hugging Face Trainer's weight-decay
//!   groups, and global-norm gradient clipping;
//! - [`schedule`]: linear warmup then linear decay of the learning rate;
//! - [`accumulation`]: gradient accumulation over micro-batches (the loss scale of each);
//! - [`feature_cache`]: encoder features computed once, for head-only training;
//! - [`split`]: seeded train / validation split and epoch batches;
//! - [`metrics`]: accuracy, and the NaN / infinite loss guard;
//! - [`entities`]: entity-level precision / recall / F1 of tag sequences (seqeval's rules).
//!
//! The loops that use them (model + head + loss) are `tasks::train_classifier` and
//! `tasks::train_tokens`, on the optimizer loop of `tasks::training_loop`.

pub mod accumulation;
pub mod adamw;
pub mod entities;
pub mod feature_cache;
pub mod metrics;
pub mod schedule;
pub mod split;

pub use accumulation::GradientAccumulation;
pub use adamw::{clip_and_step, clip_gradients, decays, AdamW, ParameterUpdate};
pub use feature_cache::FeatureCache;
pub use metrics::{accuracy, argmax, check_finite_loss, correct_predictions};
pub use schedule::LinearSchedule;
pub use split::{epoch_batches, train_validation_split, Split, SplitMix64};
