//! The model subcommands: `embed`, `similarity`, `fill-mask`, `classify`, `classify-tokens`,
//! `next-sentence`. Each reads one text per line from stdin (a `\r` before the `\n` dropped;
//! with `--pair`, and always for `next-sentence`, a pair of texts `a<TAB>b`) and writes one
//! JSON object per line:
//!
//! ```text
//! webnlu embed      --model DIR [--pooling mean|cls] [--no-normalize]   {"embedding": [...]}
//! webnlu similarity --model DIR [--against FILE]                        {"similarities": [...]}
//! webnlu fill-mask  --model DIR [--top-k 5]          {"masks": [[{"token", "id", "score"}, ...]]}
//! webnlu classify   --model DIR                      {"label", "score", "scores"}
//! webnlu classify-tokens --model DIR     {"tokens": [{"token", "start", "end", "label", "score"}, ...]}
//! webnlu next-sentence --model DIR       {"is_next", "scores": [p_is_next, p_not_next], "logits"}
//! ```
//!
//! A pair longer than the window is refused with its lengths, or with `--truncate` cut as the
//! tokenizer cuts pairs (`longest_first`); pairs are never read in windows.
//!
//! Common options: `--device auto|gpu|cpu`, `--max-length N` (window length, default the
//! model's positions), `--stride N` (overlap of windows, default a quarter), `--no-windows`
//! (a text longer than the model is an error) or `--truncate` (keep its first window),
//! `--batch-size N`. `similarity` compares every input line with every line of `--against`
//! (default: the input lines themselves).

use std::io::{BufRead, BufWriter, Write};

use pollster::block_on;
use serde_json::json;

use super::arguments::Arguments;
use webnlu::device::{DeviceChoice, GpuOptions};
use webnlu::tasks::{LongTexts, Pipeline, Pooling, ReadOptions, TextPair};
use webnlu::{Device, Error, Result};

/// Options every model subcommand takes (values).
pub const MODEL_OPTIONS: [&str; 6] = [
    "model",
    "device",
    "max-length",
    "stride",
    "batch-size",
    "against",
];
/// Flags every model subcommand takes.
pub const MODEL_FLAGS: [&str; 2] = ["no-windows", "truncate"];

/// `--device` as a device; a GPU with the adapter's largest storage bindings (fewer row
/// shards for a big vocabulary; see `GpuOptions::largest_bindings`).
pub fn open_device(args: &Arguments) -> Result<Device> {
    let choice: DeviceChoice = args.value("device").unwrap_or("auto").parse()?;
    Device::new_blocking(choice, &GpuOptions::largest_bindings())
}

/// On stderr, as transformers warns: the parameters that `dir`'s checkpoint lacked and the
/// load initialized randomly (a pooler for a next-sentence or classification head).
pub fn warn_newly_initialized(pipeline: &Pipeline, dir: &str) {
    let names = &pipeline.model.newly_initialized;
    if !names.is_empty() {
        eprintln!(
            "webnlu: warning: some weights of {} were not in the checkpoint at {dir} and are \
             newly initialized: [{}]; fine-tune the model before trusting what it predicts",
            pipeline.model.architecture(),
            names.join(", ")
        );
    }
}

/// The pipeline of `--model DIR` on `--device`, with the read options of the flags.
pub fn load_pipeline(args: &Arguments, command: &str) -> Result<Pipeline> {
    let dir = args
        .value("model")
        .ok_or_else(|| Error::invalid(format!("{command} needs --model DIR")))?;
    let device = open_device(args)?;
    let mut pipeline = Pipeline::load_dir(dir, &device)?;
    warn_newly_initialized(&pipeline, dir);
    let max_length = args
        .number("max-length")?
        .unwrap_or(pipeline.model.max_positions());
    let long_texts = match (args.flag("no-windows"), args.flag("truncate")) {
        (true, true) => {
            return Err(Error::invalid(
                "--no-windows and --truncate exclude each other",
            ))
        }
        (true, false) => LongTexts::Refuse,
        (false, true) => LongTexts::Truncate,
        (false, false) => LongTexts::Windows {
            stride: args.number("stride")?.unwrap_or(max_length / 4),
        },
    };
    pipeline.set_read_options(ReadOptions {
        max_length,
        long_texts,
        batch_size: args.number("batch-size")?.unwrap_or(32),
    })?;
    Ok(pipeline)
}

/// The lines of stdin (`\r\n` or `\n`), as texts.
pub fn read_lines(input: impl BufRead, what: &str) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for line in input.lines() {
        let line = line.map_err(|e| Error::io(what, e))?;
        lines.push(line.strip_suffix('\r').unwrap_or(&line).to_string());
    }
    Ok(lines)
}

fn write_lines(values: impl IntoIterator<Item = serde_json::Value>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for value in values {
        writeln!(out, "{value}").map_err(|e| Error::io("<stdout>", e))?;
    }
    out.flush().map_err(|e| Error::io("<stdout>", e))
}

fn parse(args: &[String], command: &str, values: &[&str], flags: &[&str]) -> Result<Arguments> {
    let mut with_value = MODEL_OPTIONS.to_vec();
    with_value.extend_from_slice(values);
    let mut all_flags = MODEL_FLAGS.to_vec();
    all_flags.extend_from_slice(flags);
    let parsed = Arguments::parse(args, &with_value, &all_flags)?;
    if let Some(extra) = parsed.positional.first() {
        return Err(Error::invalid(format!(
            "{command}: unexpected argument {extra:?} (texts come on stdin, one per line)"
        )));
    }
    Ok(parsed)
}

fn stdin_texts() -> Result<Vec<String>> {
    read_lines(std::io::stdin().lock(), "<stdin>")
}

/// The lines of stdin as texts, or with `pairs` as pairs `a<TAB>b` (an error naming the line
/// without a tab). For a model that reads pairs differently from BERT (DistilBERT), a note on
/// stderr says how.
fn stdin_items(pipeline: &Pipeline, pairs: bool) -> Result<Vec<TextPair>> {
    let lines = stdin_texts()?;
    if !pairs {
        return Ok(lines.into_iter().map(TextPair::single).collect());
    }
    if let (Some(note), false) = (pipeline.pair_note(), lines.is_empty()) {
        eprintln!("webnlu: note: {note}");
    }
    lines
        .iter()
        .enumerate()
        .map(|(number, line)| {
            let (a, b) = line.split_once('\t').ok_or_else(|| {
                Error::invalid(format!(
                    "line {}: expected a pair of texts separated by a tab (a<TAB>b)",
                    number + 1
                ))
            })?;
            Ok(TextPair::new(a, b))
        })
        .collect()
}

pub fn embed(args: &[String]) -> Result<()> {
    let args = parse(args, "embed", &["pooling"], &["no-normalize"])?;
    let pooling: Pooling = args.value("pooling").unwrap_or("mean").parse()?;
    let pipeline = load_pipeline(&args, "embed")?;
    let texts = stdin_texts()?;
    let c = pipeline.hidden_size();
    let embeddings = block_on(pipeline.embed(&texts, pooling, !args.flag("no-normalize")))?;
    write_lines(embeddings.chunks(c).map(|e| json!({ "embedding": e })))
}

pub fn similarity(args: &[String]) -> Result<()> {
    let args = parse(args, "similarity", &[], &[])?;
    let pipeline = load_pipeline(&args, "similarity")?;
    let texts = stdin_texts()?;
    let against = match args.value("against") {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            read_lines(std::io::BufReader::new(file), path)?
        }
        None => texts.clone(),
    };
    let matrix = block_on(pipeline.similarity(&texts, &against))?;
    write_lines(
        matrix
            .chunks(against.len().max(1))
            .map(|row| json!({ "similarities": row })),
    )
}

pub fn fill_mask(args: &[String]) -> Result<()> {
    let args = parse(args, "fill-mask", &["top-k"], &["pair"])?;
    let top_k = args.number("top-k")?.unwrap_or(5);
    let pipeline = load_pipeline(&args, "fill-mask")?;
    let texts = stdin_items(&pipeline, args.flag("pair"))?;
    if texts.is_empty() {
        return Err(Error::invalid("fill-mask: no texts on stdin"));
    }
    let mut lines = Vec::with_capacity(texts.len());
    for (number, text) in texts.iter().enumerate() {
        let masks = block_on(pipeline.fill_mask(text, top_k)).map_err(|e| match e {
            Error::InvalidArgument(m) => Error::invalid(format!("line {}: {m}", number + 1)),
            other => other,
        })?;
        lines.push(json!({ "masks": masks }));
    }
    write_lines(lines)
}

pub fn classify(args: &[String]) -> Result<()> {
    let args = parse(args, "classify", &[], &["pair"])?;
    let pipeline = load_pipeline(&args, "classify")?;
    let texts = stdin_items(&pipeline, args.flag("pair"))?;
    let results = block_on(pipeline.classify(&texts))?;
    write_lines(results.into_iter().map(|r| json!(r)))
}

pub fn classify_tokens(args: &[String]) -> Result<()> {
    let args = parse(args, "classify-tokens", &[], &["pair"])?;
    let pipeline = load_pipeline(&args, "classify-tokens")?;
    let texts = stdin_items(&pipeline, args.flag("pair"))?;
    let results = block_on(pipeline.classify_tokens(&texts))?;
    write_lines(
        results
            .into_iter()
            .map(|tokens| json!({ "tokens": tokens })),
    )
}

pub fn next_sentence(args: &[String]) -> Result<()> {
    let args = parse(args, "next-sentence", &[], &[])?;
    let pipeline = load_pipeline(&args, "next-sentence")?;
    let pairs = stdin_items(&pipeline, true)?;
    let results = block_on(pipeline.next_sentence(&pairs))?;
    write_lines(results.into_iter().map(|r| json!(r)))
}
