//! The options every training command shares (`train-head`, `train-tokens`, `train-mlm`): their
//! declaration ([`TrainingArgs`], defaults from the library's `TrainOptions::default()`), how
//! they fill the library's one options type, [`TrainOptions`], and the end of every run.

use clap::Args;

use super::memory::peak_resident_bytes;
use webnlu::models::Freeze;
use webnlu::tasks::{OptionError, TrainOptions};
use webnlu::{Error, Result};

/// The training options of every training command (`--batch-size` with them is one of the
/// model options: the micro-batch and the batch of a forward pass).
#[derive(Args)]
pub struct TrainingArgs {
    /// Which weights learn: the new head only (head), it and the top K encoder layers (top:K),
    /// or all
    #[arg(long, value_name = "head|top:K|all", default_value_t = TrainOptions::default().freeze)]
    pub freeze: Freeze,
    /// Passes over the training examples
    #[arg(long, value_name = "N", default_value_t = TrainOptions::default().epochs)]
    pub epochs: usize,
    /// Peak AdamW learning rate of the linear schedule
    #[arg(long, value_name = "X", default_value_t = TrainOptions::default().learning_rate)]
    pub learning_rate: f32,
    /// Micro-batches whose gradients add up before one optimizer step
    #[arg(long, value_name = "N", default_value_t = TrainOptions::default().accumulation_steps)]
    pub accumulation: usize,
    /// The fraction of the examples held out for validation, in [0, 1)
    #[arg(long, value_name = "F", default_value_t = TrainOptions::default().validation_fraction)]
    pub validation: f32,
    /// Seeds the split, the batch order, the new head and dropout
    #[arg(long, value_name = "N", default_value_t = TrainOptions::default().seed)]
    pub seed: u64,
    /// AdamW weight decay (not on biases and LayerNorm weights)
    #[arg(long, value_name = "X", default_value_t = TrainOptions::default().weight_decay)]
    pub weight_decay: f32,
    /// The share of the optimizer steps over which the learning rate rises from 0, in [0, 1]
    #[arg(long, value_name = "X", default_value_t = TrainOptions::default().warmup_ratio)]
    pub warmup_ratio: f32,
    /// Global-norm gradient clipping; none: no clipping
    #[arg(long, value_name = "X|none", default_value_t = GradNorm(TrainOptions::default().max_grad_norm))]
    pub max_grad_norm: GradNorm,
    /// Train on a seeded random subset of N examples
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Write the trained model (config.json, model.safetensors, tokenizer files) to DIR
    #[arg(long, value_name = "DIR")]
    pub out: Option<String>,
    /// Refuse a model load or a run that needs more than this many MiB, before it starts: the
    /// run's estimate counts the weights, fp32 master copies of trained 16-bit / int8 layers,
    /// gradients + AdamW moments and the activations of its largest batch, and the error says
    /// what to try. Natively there is no limit by default; the browser's is the wasm module's
    /// 4 GiB (on the GPU, whose memory WebGPU does not report, only a limit given here
    /// applies, besides the device's per-buffer limit)
    #[arg(long, value_name = "MIB")]
    pub memory_limit: Option<f64>,
}

/// `--max-grad-norm`: a number, or `none` for no clipping.
#[derive(Clone, Copy, Debug)]
pub struct GradNorm(pub Option<f32>);

impl std::str::FromStr for GradNorm {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "none" => Ok(GradNorm(None)),
            number => number
                .parse()
                .map(|n| GradNorm(Some(n)))
                .map_err(|_| "a number, or none for no clipping".to_string()),
        }
    }
}

impl std::fmt::Display for GradNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(norm) => write!(f, "{norm}"),
            None => write!(f, "none"),
        }
    }
}

impl TrainingArgs {
    /// Holds the model load and the run of this thread to `--memory-limit` (when given).
    pub fn apply_memory_limit(&self) -> Result<()> {
        let Some(mib) = self.memory_limit else {
            return Ok(());
        };
        if !(mib.is_finite() && mib >= 0.0) {
            return Err(Error::invalid(format!(
                "--memory-limit must be a number of MiB >= 0, found {mib}"
            )));
        }
        webnlu::memory_limit::set_model_bytes_limit(Some((mib * 1048576.0) as u64));
        Ok(())
    }

    /// The options these arguments give, with the micro-batch of `--batch-size`; the command
    /// sets its own (`--task`, `--pooling`, `--mlm-probability`) before [`checked`].
    pub fn options(&self, batch_size: Option<usize>) -> TrainOptions {
        let defaults = TrainOptions::default();
        TrainOptions {
            freeze: self.freeze,
            epochs: self.epochs,
            learning_rate: self.learning_rate,
            batch_size: batch_size.unwrap_or(defaults.batch_size),
            accumulation_steps: self.accumulation,
            validation_fraction: self.validation,
            seed: self.seed,
            weight_decay: self.weight_decay,
            warmup_ratio: self.warmup_ratio,
            max_grad_norm: self.max_grad_norm.0,
            // long examples are read as the pipeline reads texts (`--stride`, `--truncate`,
            // `--no-windows`)
            long_texts: None,
            ..defaults
        }
    }
}

/// `options` if every one is in range (the library's `TrainOptions::validate`), else an error
/// naming the flag, its value and the range.
pub fn checked(options: TrainOptions) -> Result<TrainOptions> {
    options
        .validate()
        .map_err(|e| Error::invalid(flag_error(&e)))?;
    Ok(options)
}

/// "--batch-size must be ...": the option's flag (its JS name in kebab case) and the problem.
fn flag_error(error: &OptionError) -> String {
    let mut flag = String::from("--");
    for c in error.option.chars() {
        if c.is_ascii_uppercase() {
            flag.push('-');
            flag.push(c.to_ascii_lowercase());
        } else {
            flag.push(c);
        }
    }
    format!("{flag} {}", error.problem)
}

/// The end of every training command: the model saved to `--out` (if given), then one JSON
/// line `{"report", "device", "seconds", "peak_rss_bytes", "saved"}`.
pub fn finish_run(
    out: Option<&str>,
    pipeline: &webnlu::tasks::Pipeline,
    report: &impl serde::Serialize,
    started: std::time::Instant,
) -> Result<()> {
    let saved = match out {
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
