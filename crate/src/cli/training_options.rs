//! The options every training command shares (`train-head`, `train-tokens`): the values they
//! take and how they become [`TrainOptions`].

use super::arguments::Arguments;
use super::memory::peak_resident_bytes;
use webnlu::models::Freeze;
use webnlu::tasks::{ClassifierInput, TrainOptions};
use webnlu::{Error, Result};

/// The options with a value that every training command takes (`--batch-size` with them, one
/// of the model options).
pub const TRAINING_OPTIONS: [&str; 11] = [
    "freeze",
    "epochs",
    "learning-rate",
    "accumulation",
    "validation",
    "seed",
    "weight-decay",
    "warmup-ratio",
    "max-grad-norm",
    "pooling",
    "limit",
];

/// `--name` as a number, if given.
pub fn float(args: &Arguments, name: &str) -> Result<Option<f32>> {
    match args.value(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<f32>()
            .map(Some)
            .map_err(|_| Error::invalid(format!("--{name} must be a number, got {v:?}"))),
    }
}

/// The training options given, the defaults for the others. Long examples are read as the
/// pipeline reads texts (`--stride`, `--truncate`, `--no-windows`), so `long_texts` is left
/// to it.
pub fn training_options(args: &Arguments) -> Result<TrainOptions> {
    let defaults = TrainOptions::default();
    let max_grad_norm = match args.value("max-grad-norm") {
        Some("none") => None,
        Some(_) => float(args, "max-grad-norm")?,
        None => defaults.max_grad_norm,
    };
    Ok(TrainOptions {
        freeze: args
            .value("freeze")
            .map_or(Ok(defaults.freeze), str::parse::<Freeze>)?,
        epochs: args.number("epochs")?.unwrap_or(defaults.epochs),
        learning_rate: float(args, "learning-rate")?.unwrap_or(defaults.learning_rate),
        batch_size: args.number("batch-size")?.unwrap_or(defaults.batch_size),
        accumulation_steps: args
            .number("accumulation")?
            .unwrap_or(defaults.accumulation_steps),
        validation_fraction: float(args, "validation")?.unwrap_or(defaults.validation_fraction),
        seed: args.number("seed")?.map_or(defaults.seed, |s| s as u64),
        weight_decay: float(args, "weight-decay")?.unwrap_or(defaults.weight_decay),
        warmup_ratio: float(args, "warmup-ratio")?.unwrap_or(defaults.warmup_ratio),
        max_grad_norm,
        classifier_input: args
            .value("pooling")
            .map(str::parse::<ClassifierInput>)
            .transpose()?,
        long_texts: None,
        // the command's own `--task` (train-head)
        problem: defaults.problem,
    })
}

/// The end of every training command: the model saved to `--out` (if given), then one JSON
/// line `{"report", "device", "seconds", "peak_rss_bytes", "saved"}`.
pub fn finish_run(
    args: &Arguments,
    pipeline: &webnlu::tasks::Pipeline,
    report: &impl serde::Serialize,
    started: std::time::Instant,
) -> Result<()> {
    let saved = match args.value("out") {
        Some(dir) => {
            pipeline.save_dir(dir)?;
            Some(dir)
        }
        None => None,
    };
    let line = serde_json::json!({
        "report": report,
        "device": pipeline.device().kind(),
        "seconds": started.elapsed().as_secs_f64(),
        "peak_rss_bytes": peak_resident_bytes(),
        "saved": saved,
    });
    println!("{line}");
    Ok(())
}
