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

use super::arguments::Arguments;
use super::model_tasks::{load_pipeline, MODEL_FLAGS, MODEL_OPTIONS};
use super::training_options::{finish_run, float, training_options, TRAINING_OPTIONS};
use webnlu::tasks::MaskedLmTraining;
use webnlu::train::SplitMix64;
use webnlu::{Error, Result};

pub fn run(args: &[String]) -> Result<()> {
    let started = Instant::now();
    let mut with_value = MODEL_OPTIONS.to_vec();
    with_value.extend_from_slice(&["texts", "out", "mlm-probability"]);
    with_value.extend_from_slice(&TRAINING_OPTIONS);
    let args = Arguments::parse(args, &with_value, &MODEL_FLAGS)?;
    if let Some(extra) = args.positional.first() {
        return Err(Error::invalid(format!(
            "train-mlm: unexpected argument {extra:?}"
        )));
    }
    if args.flag("truncate") || args.flag("no-windows") || args.value("stride").is_some() {
        return Err(Error::invalid(
            "train-mlm: texts are cut to --max-length; --stride, --truncate and --no-windows \
             do not apply",
        ));
    }
    let path = args
        .value("texts")
        .ok_or_else(|| Error::invalid("train-mlm needs --texts FILE (one text per line)"))?;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let content =
        String::from_utf8(bytes).map_err(|_| Error::format(path, "the texts are not UTF-8"))?;
    let mut texts: Vec<String> = content
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect();
    let options = training_options(&args)?;
    if let Some(limit) = args.number("limit")? {
        SplitMix64::new(options.seed ^ 0x006c_696d_6974).shuffle(&mut texts);
        texts.truncate(limit);
    }
    let probability = float(&args, "mlm-probability")?.unwrap_or(0.15);
    let mut pipeline = load_pipeline(&args, "train-mlm")?;
    let epochs = options.epochs;
    let mut run = block_on(MaskedLmTraining::new(
        &mut pipeline,
        &texts,
        options,
        probability,
    ))?;
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
    finish_run(&args, &pipeline, &report, started)
}
