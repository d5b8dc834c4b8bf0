//! The options of a fine-tuning run of the tasks (`train_classifier`, and the token-classifier
//! and masked-LM trainers, which read the shared fields), with the defaults of the CLI and the JS
//! API: the optimizer's (AdamW, linear schedule, clipping, as the Hugging Face Trainer sets them
//! up), the run's (epochs, batches, split, seed) and what the classifier reads.

use crate::models::Freeze;

use super::classifier::ClassifierInput;
use super::problem::ProblemType;
use super::windows::LongTexts;

#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    pub freeze: Freeze,
    pub epochs: usize,
    /// Peak learning rate of the linear schedule.
    pub learning_rate: f32,
    /// Examples per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub accumulation_steps: usize,
    /// Share of the examples held out for validation (0 = none).
    pub validation_fraction: f32,
    /// Seeds the split, the batch order, the new head and dropout.
    pub seed: u64,
    /// AdamW weight decay (not on biases and LayerNorm parameters).
    pub weight_decay: f32,
    /// Share of the optimizer steps spent warming the learning rate up.
    pub warmup_ratio: f32,
    /// Global-norm gradient clipping (`None`: off). The HF Trainer's default is 1.
    pub max_grad_norm: Option<f32>,
    /// Features the classifier reads; `None`: mean-pooled for sentence-embedding models
    /// (sentence-transformers' `modules.json` present), the [CLS] token otherwise.
    pub classifier_input: Option<ClassifierInput>,
    /// How examples longer than the window are read; `None`: as the pipeline reads them
    /// (`Pipeline::read.long_texts`, the windows `classify` averages), so the model trains on
    /// what it is later asked. `Some(LongTexts::Truncate)`: the first window only.
    pub long_texts: Option<LongTexts>,
    /// Single-label classification, regression or multi-label classification.
    pub problem: ProblemType,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            freeze: Freeze::Head,
            epochs: 3,
            learning_rate: 1e-3,
            batch_size: 32,
            accumulation_steps: 1,
            validation_fraction: 0.1,
            seed: 42,
            weight_decay: 0.01,
            warmup_ratio: 0.0,
            max_grad_norm: Some(1.0),
            classifier_input: None,
            long_texts: None,
            problem: ProblemType::SingleLabel,
        }
    }
}
