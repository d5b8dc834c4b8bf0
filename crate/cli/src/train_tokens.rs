//! `webnlu train-tokens --model DIR --examples FILE [--out DIR] [options]`
//!
//! Fine-tunes a token classifier (named entities, parts of speech) on word-labelled examples
//! and writes the trained model directory (config.json + model.safetensors + the tokenizer
//! files, transformers' `*ForTokenClassification` layout) to `--out`.
//! `--examples`: CoNLL columns (word first, label last, a blank line between sentences,
//! `-DOCSTART-` skipped) or JSON lines `{"words": [...], "labels": [...]}`
//! (`--format auto|conll|jsonl`, default auto: JSON when the first line starts with `{`).
//! Labels go on each word's first WordPiece (the others are ignored, -100), as transformers'
//! token-classification recipe; examples are cut to `--max-length` tokens.
//!
//! Options as `train-head` (see `training_options.rs`): `--freeze head|top:K|all`,
//! `--epochs N`, `--learning-rate X`, `--batch-size N`, `--accumulation N`, `--validation F`,
//! `--seed N`, `--weight-decay X`, `--warmup-ratio X`, `--max-grad-norm X|none`, `--limit N`,
//! `--max-length N`, `--device auto|gpu|cpu`.
//!
//! Output, JSON lines: one per epoch `{"epoch", "loss", "accuracy", "validation_accuracy",
//! "validation_entities": {"overall": {precision, recall, f1, support}, "per_type": {...}},
//! "seconds"}`, then `{"report": {...}, "device", "seconds", "peak_rss_bytes", "saved"}`.

use std::time::Instant;

use pollster::block_on;
use serde_json::json;

use clap::Args;

use super::model_tasks::{load_pipeline, ModelArgs};
use super::training_options::{checked, finish_run, TrainingArgs};
use webnlu::tasks::{parse_word_examples, WordExampleFormat};
use webnlu::train::SplitMix64;
use webnlu::{Error, Result};

/// `train-tokens`' options (no window options: examples are cut to `--max-length`).
#[derive(Args)]
pub struct TrainTokensArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The word-labelled examples
    #[arg(long, value_name = "FILE")]
    pub examples: String,
    /// CoNLL columns or JSON lines {"words", "labels"}; auto: JSON when the first line starts
    /// with {
    #[arg(long, value_name = "auto|conll|jsonl", default_value = "auto")]
    pub format: WordExampleFormat,
    #[command(flatten)]
    pub training: TrainingArgs,
}

pub fn run(args: TrainTokensArgs) -> Result<()> {
    let started = Instant::now();
    let path = args.examples.as_str();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let content =
        String::from_utf8(bytes).map_err(|_| Error::format(path, "examples are not UTF-8"))?;
    let mut examples = parse_word_examples(&content, args.format, path)?;
    let options = checked(args.training.options(args.model.batch_size))?;
    if let Some(limit) = args.training.limit {
        SplitMix64::new(options.seed ^ 0x006c_696d_6974).shuffle(&mut examples);
        examples.truncate(limit);
    }
    args.training.apply_memory_limit()?;
    let mut pipeline = load_pipeline(&args.model, None)?;
    let mut epoch_started = Instant::now();
    let report = block_on(
        pipeline.train_token_classifier(&examples, options, |progress| {
            let line = json!({
                "epoch": progress.epoch,
                "loss": progress.loss,
                "accuracy": progress.accuracy,
                "validation_accuracy": progress.validation_accuracy,
                "validation_entities": progress.validation_entities,
                "seconds": epoch_started.elapsed().as_secs_f64(),
            });
            println!("{line}");
            epoch_started = Instant::now();
        }),
    )?;
    finish_run(args.training.out.as_deref(), &pipeline, &report, started)
}
