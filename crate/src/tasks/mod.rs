//! The jobs people run with a BERT-family model, shared by the CLI and the browser bindings:
//! fill the masks of a text, embed texts and compare them, classify texts, and fine-tune a
//! classifier on labelled examples.

pub mod examples;
pub mod windows;

pub use examples::{label_classes, parse_examples, Example, ExampleFormat};
pub use windows::{encode_windows, LongTexts, Window};
