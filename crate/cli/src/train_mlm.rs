//! `webnlu train-mlm --model DIR --texts FILE [--out DIR] [options]`
//!
//! Masked-LM fine-tuning (domain adaptation) of a checkpoint with its masked-LM head on plain
//! text, one text per line (blank lines skipped), with BERT's corruption
//! (`--mlm-probability P`, default 0.15: of the chosen tokens 80% [MASK], 10% random, 10%
//! kept; seeded by `--seed`, a new draw every epoch; see `tasks/train_masked_lm.rs`). Texts are
//! cut to `--max-length` tokens. Writes the trained model (the checkpoint's architecture, e.g.
//! BertForMaskedLM) to `--out`, which `fill-mask` reads.
//!
//! Options as `train-head` (see `training_options.rs`; not `--pooling`): `--freeze
//! head|top:K|all`, `--epochs N`, `--learning-rate X`, `--batch-size N`, `--accumulation N`,
//! `--validation F` (held-out texts, one fixed corruption), `--seed N`, `--weight-decay X`,
//! `--warmup-ratio X`, `--max-grad-norm X|none`, `--limit N`, `--max-length N`,
//! `--device auto|gpu|cpu`.
//!
//! Output, JSON lines: `{"initial_validation_loss", "initial_validation_perplexity"}`, one per
//! epoch `{"epoch", "loss", "validation_loss", "validation_perplexity", "seconds"}`, then
//! `{"report": {...}, "device", "seconds", "peak_rss_bytes", "saved"}`.

use std::time::Instant;

use pollster::block_on;
use serde_json::json;

use clap::Args;

use super::model_tasks::{load_pipeline, ModelArgs};
use super::training_options::{checked, finish_run, TrainingArgs};
use webnlu::tasks::{MaskedLmTraining, TrainOptions, DEFAULT_MLM_PROBABILITY};
use webnlu::train::SplitMix64;
use webnlu::{Error, Result};

/// `train-mlm`'s options (no window options: texts are cut to `--max-length`).
#[derive(Args)]
pub struct TrainMlmArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The texts, one per line (blank lines skipped)
    #[arg(long, value_name = "FILE")]
    pub texts: String,
    /// The share of the tokens chosen for prediction, in (0, 1)
    #[arg(long, value_name = "P", default_value_t = DEFAULT_MLM_PROBABILITY)]
    pub mlm_probability: f32,
    #[command(flatten)]
    pub training: TrainingArgs,
}

pub fn run(args: TrainMlmArgs) -> Result<()> {
    let started = Instant::now();
    let path = args.texts.as_str();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let content =
        String::from_utf8(bytes).map_err(|_| Error::format(path, "the texts are not UTF-8"))?;
    let mut texts: Vec<String> = content
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    let options = checked(TrainOptions {
        mlm_probability: Some(args.mlm_probability),
        ..args.training.options(args.model.batch_size)
    })?;
    if let Some(limit) = args.training.limit {
        SplitMix64::new(options.seed ^ 0x006c_696d_6974).shuffle(&mut texts);
        texts.truncate(limit);
    }
    args.training.apply_memory_limit()?;
    let mut pipeline = load_pipeline(&args.model, None)?;
    let epochs = options.epochs;
    let mut run = block_on(MaskedLmTraining::new(&mut pipeline, &texts, options))?;
    println!(
        "{}",
        json!({
            "initial_validation_loss": run.report().initial_validation_loss,
            "initial_validation_perplexity": run.report().initial_validation_perplexity,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    for _ in 0..epochs {
        let epoch_started = Instant::now();
        let progress = block_on(run.run_epoch(&mut pipeline))?;
        let line = json!({
            "epoch": progress.epoch,
            "loss": progress.loss,
            "validation_loss": progress.validation_loss,
            "validation_perplexity": progress.validation_perplexity,
            "seconds": epoch_started.elapsed().as_secs_f64(),
        });
        println!("{line}");
    }
    let report = run.finish();
    finish_run(args.training.out.as_deref(), &pipeline, &report, started)
}
