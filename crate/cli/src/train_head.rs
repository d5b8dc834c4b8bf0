//! `webnlu train-head --model DIR --examples FILE [--out DIR] [options]`
//!
//! Fine-tunes a sequence classifier on labelled examples and writes the trained model
//! directory (config.json + model.safetensors + the tokenizer files) to `--out`.
//! `--examples`: the VADER rated TSV (`id<TAB>rating<TAB>text`, label = sign of the rating, e.g.
//! tests/fixtures/models/vader/movieReviewSnippets_GroundTruth.txt), a `text<TAB>label` TSV or
//! a CSV with `text` and `label` columns (see `tasks/examples.rs`); pairs of texts as
//! `text<TAB>text_pair<TAB>label` or a CSV column `text_pair`, read as `classify --pair` reads
//! them (one window `[CLS] a [SEP] b [SEP]`; too long: an error, or cut with `--truncate`).
//! `--task classification|regression|multi-label` (default classification): regression reads
//! each label as a number (MSE; validation reports the mean absolute error and Pearson's
//! correlation), multi-label as label names separated by commas (BCE with logits; validation
//! reports exact-match accuracy); see `tasks/problem.rs`.
//!
//! Options: `--freeze head|top:K|all` (default head), `--epochs N` (3), `--learning-rate X`
//! (1e-3), `--batch-size N` (32), `--accumulation N` (1), `--validation F` (0.1),
//! `--seed N` (42), `--weight-decay X` (0.01), `--warmup-ratio X` (0), `--max-grad-norm X|none`
//! (1), `--pooling cls|mean` (mean for sentence-transformers models, else cls), `--limit N`
//! (a seeded random subset of N examples), `--max-length N`, `--device auto|gpu|cpu`.
//! Examples longer than `--max-length` are read as `classify` reads them: in overlapping
//! windows (`--stride N`, default a quarter of the length) whose logits are averaged, in
//! training and validation alike; `--truncate`: their first window only; `--no-windows`: an
//! error naming the example.
//!
//! Output, JSON lines: one per epoch `{"epoch", "loss", "accuracy", "validation_accuracy",
//! "seconds"}` (regression: accuracy null, and `validation_mae`, `validation_pearson`), then `{"report": {...}, "seconds", "peak_rss_bytes", "saved"}`.

use std::time::Instant;

use pollster::block_on;
use serde_json::json;

use clap::Args;

use super::model_tasks::{load_pipeline, ModelArgs, WindowArgs};
use super::training_options::{checked, finish_run, TrainingArgs};
use webnlu::tasks::{parse_examples, ClassifierInput, ExampleFormat, ProblemType, TrainOptions};
use webnlu::train::SplitMix64;
use webnlu::{Error, Result};

/// `train-head`'s options.
#[derive(Args)]
pub struct TrainHeadArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub windows: WindowArgs,
    /// The labelled examples
    #[arg(long, value_name = "FILE")]
    pub examples: String,
    /// The examples' format: auto (from the content), rated (VADER's id<TAB>rating<TAB>text),
    /// tsv, csv (a header naming text and label) or lines (text,label or text<TAB>label)
    #[arg(long, value_name = "auto|rated|tsv|csv|lines", default_value = "auto")]
    pub format: ExampleFormat,
    /// What the head predicts
    #[arg(
        long,
        value_name = "classification|regression|multi-label",
        default_value = "classification"
    )]
    pub task: ProblemType,
    /// The features the classifier reads [default: mean for sentence-transformers models, else
    /// cls]
    #[arg(long, value_name = "cls|mean")]
    pub pooling: Option<ClassifierInput>,
    #[command(flatten)]
    pub training: TrainingArgs,
}

pub fn run(args: TrainHeadArgs) -> Result<()> {
    let started = Instant::now();
    let path = args.examples.as_str();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let content =
        String::from_utf8(bytes).map_err(|_| Error::format(path, "examples are not UTF-8"))?;
    let mut examples = parse_examples(&content, args.format, path)?;
    let options = checked(TrainOptions {
        problem: args.task,
        classifier_input: args.pooling,
        ..args.training.options(args.model.batch_size)
    })?;
    if let Some(limit) = args.training.limit {
        SplitMix64::new(options.seed ^ 0x006c_696d_6974).shuffle(&mut examples);
        examples.truncate(limit);
    }
    args.training.apply_memory_limit()?;
    let mut pipeline = load_pipeline(&args.model, Some(&args.windows))?;
    if let (Some(note), true) = (
        pipeline.pair_note(),
        examples.iter().any(|e| e.pair.is_some()),
    ) {
        eprintln!("webnlu: note: {note}");
    }
    let mut epoch_started = Instant::now();
    let report = block_on(pipeline.train_classifier(&examples, options, |progress| {
        let mut line = json!({
            "epoch": progress.epoch,
            "loss": progress.loss,
            "accuracy": progress.accuracy,
            "validation_accuracy": progress.validation_accuracy,
            "seconds": epoch_started.elapsed().as_secs_f64(),
        });
        if progress.validation_mae.is_some() {
            line["validation_mae"] = json!(progress.validation_mae);
            line["validation_pearson"] = json!(progress.validation_pearson);
        }
        println!("{line}");
        epoch_started = Instant::now();
    }))?;
    finish_run(args.training.out.as_deref(), &pipeline, &report, started)
}
