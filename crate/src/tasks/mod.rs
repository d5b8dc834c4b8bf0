//! The jobs people run with a BERT-family model, shared by the CLI and the browser bindings:
//! fill the masks of a text, embed texts and compare them, classify texts or their tokens (or
//! pairs of texts, see [`text_pairs`]), predict whether a sentence follows another, look inside
//! the model (hidden states, attentions, word vectors: `inspect.rs`), and fine-tune a
//! classifier on labelled examples (texts, or words for a token classifier; masked-LM
//! fine-tuning on plain texts; an ELMo classifier: `elmo_training.rs`). All are methods of
//! [`Pipeline`] (async: on the GPU in a browser, results are read back with promises; natively
//! use `pollster::block_on`).

pub mod classifier;
pub mod classify;
pub mod classify_tokens;
pub mod elmo_examples;
pub mod elmo_train_options;
pub mod elmo_training;
pub mod elmo_training_memory;
pub mod embed;
pub mod examples;
pub mod fill_mask;
pub mod inspect;
pub mod next_sentence;
pub mod pipeline;
pub mod problem;
pub mod save;
pub mod text_pairs;
pub mod train_classifier;
pub mod train_masked_lm;
pub mod train_options;
pub use train_options::{OptionError, DEFAULT_MLM_PROBABILITY};
pub mod train_tokens;
pub mod training_loop;
pub mod training_memory;
pub mod windows;
pub mod word_examples;

pub use classifier::ClassifierInput;
pub use classify::Classification;
pub use classify_tokens::TokenLabel;
pub use embed::{l2_normalize_rows, Pooling};
pub use examples::{label_classes, parse_examples, Example, ExampleFormat};
pub use fill_mask::MaskPrediction;
pub use inspect::{InspectOptions, Inspection, LayerSelection, WordSpan, WordVectors};
pub use next_sentence::NextSentence;
pub use pipeline::{Pipeline, ReadOptions};
pub use problem::ProblemType;
pub use text_pairs::{TaskText, TextPair};
pub use train_classifier::{
    head_features, ClassifierTraining, EpochProgress, TrainOptions, TrainReport,
};
pub use train_masked_lm::{MaskedLmEpochProgress, MaskedLmReport, MaskedLmTraining};
pub use train_tokens::{
    align_word_labels, AlignedWords, TokenClassifierTraining, TokenEpochProgress, TokenTrainReport,
};
pub use training_loop::StepsProgress;
pub use windows::{encode_item, encode_windows, token_sources, LongTexts, TokenSource, Window};
pub use word_examples::{parse_word_examples, WordExample, WordExampleFormat};
