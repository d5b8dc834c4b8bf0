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
//! Common options: `--device auto|gpu|cpu`, `--dtype fp32|fp16|bf16|int8` (how the encoder
//! layers' weight matrices are held; 16 bits: half their memory, int8: about a quarter;
//! inference and head-only training),
//! `--max-length N` (window length, default the
//! model's positions), `--stride N` (overlap of windows, default a quarter), `--no-windows`
//! (a text longer than the model is an error) or `--truncate` (keep its first window),
//! `--batch-size N`. `similarity` compares every input line with every line of `--against`
//! (default: the input lines themselves).

use std::io::{BufRead, BufWriter, Write};

use pollster::block_on;
use serde_json::json;

use clap::Args;
use webnlu::device::{DeviceChoice, GpuOptions};
use webnlu::ops::matmul::WeightDtype;
use webnlu::tasks::{LongTexts, Pipeline, Pooling, ReadOptions, TextPair};
use webnlu::{Device, Error, Result};

/// The options of every command that loads a model.
#[derive(Args)]
pub struct ModelArgs {
    /// The model directory (config.json, model.safetensors or pytorch_model.bin, tokenizer files)
    #[arg(long, value_name = "DIR")]
    pub model: String,
    /// Where the model runs
    #[arg(long, value_name = "auto|gpu|cpu", default_value = "auto")]
    pub device: DeviceChoice,
    /// Window length in tokens [default: the model's positions]
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    /// Texts per forward pass (training: examples per micro-batch) [default: 32]
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// How the encoder layers' weight matrices are held: fp16 and bf16 take half the memory
    /// (an fp16/bf16 checkpoint is read without widening), int8 about a quarter (quantized at
    /// load, a scale per output channel); all compute in f32; training a compressed model's
    /// layers (--freeze top:K / all) widens those layers to fp32 first (fp32 master weights);
    /// saving needs every layer in fp32
    #[arg(long, value_name = "fp32|fp16|bf16|int8", default_value = "fp32")]
    pub dtype: WeightDtype,
    /// With --dtype fp16 on a GPU with shader-f16: multiply in f16 (sums in f32), not in f32;
    /// faster on real GPUs, within about 3 * 2^-11 of each product's sum of |terms| instead of
    /// bit-identical to fp32 arithmetic. Ignored elsewhere (CPU, bf16, no shader-f16)
    #[arg(long)]
    pub f16_arithmetic: bool,
}

/// How a text longer than the window is read (the commands that read whole texts).
#[derive(Args)]
pub struct WindowArgs {
    /// Overlap of the windows a long text is read in [default: a quarter of the max length]
    #[arg(long, value_name = "N", conflicts_with_all = ["no_windows", "truncate"])]
    pub stride: Option<usize>,
    /// A text longer than the model is an error (no windows)
    #[arg(long, conflicts_with = "truncate")]
    pub no_windows: bool,
    /// Keep a long text's first window; a pair longer than --max-length is cut longest_first
    /// (without it: an error naming its lengths)
    #[arg(long)]
    pub truncate: bool,
}

/// `embed`'s options.
#[derive(Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub windows: WindowArgs,
    /// How the token vectors become one vector
    #[arg(long, value_name = "mean|cls", default_value = "mean")]
    pub pooling: Pooling,
    /// Leave the embeddings as they are (default: unit length)
    #[arg(long)]
    pub no_normalize: bool,
}

/// `similarity`'s options.
#[derive(Args)]
pub struct SimilarityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub windows: WindowArgs,
    /// Compare with the lines of this file [default: the input lines]
    #[arg(long, value_name = "FILE")]
    pub against: Option<String>,
}

/// `fill-mask`'s options.
#[derive(Args)]
pub struct FillMaskArgs {
    #[command(flatten)]
    pub task: PairTaskArgs,
    /// Guesses per [MASK]
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub top_k: usize,
}

/// The options of the commands that read texts or pairs (`classify`, `classify-tokens`).
#[derive(Args)]
pub struct PairTaskArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub windows: WindowArgs,
    /// Each line is a pair a<TAB>b, read as [CLS] a [SEP] b [SEP]
    #[arg(long)]
    pub pair: bool,
}

/// `next-sentence`'s options (every line is a pair).
#[derive(Args)]
pub struct NextSentenceArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub windows: WindowArgs,
}

/// `--device` as a device; a GPU with the adapter's largest storage bindings (fewer row
/// shards for a big vocabulary; see `GpuOptions::largest_bindings`), and with
/// `f16_arithmetic` (`--f16-arithmetic`) fp16 weights multiplied in f16 where it has
/// shader-f16 (`GpuOptions::f16_arithmetic`).
pub fn open_device(choice: DeviceChoice, f16_arithmetic: bool) -> Result<Device> {
    let options = GpuOptions {
        f16_arithmetic,
        ..GpuOptions::largest_bindings()
    };
    Device::new_blocking(choice, &options)
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

/// The pipeline of `--model DIR` on `--device`, reading long texts as `windows` says (`None`:
/// the commands that cut examples to the max length).
pub fn load_pipeline(args: &ModelArgs, windows: Option<&WindowArgs>) -> Result<Pipeline> {
    let device = open_device(args.device, args.f16_arithmetic)?;
    let mut pipeline = Pipeline::load_dir_as(&args.model, &device, args.dtype)?;
    warn_newly_initialized(&pipeline, &args.model);
    let max_length = args.max_length.unwrap_or(pipeline.model.max_positions());
    let long_texts = match windows {
        Some(w) if w.no_windows => LongTexts::Refuse,
        Some(w) if w.truncate => LongTexts::Truncate,
        Some(w) => LongTexts::Windows {
            stride: w.stride.unwrap_or(max_length / 4),
        },
        None => LongTexts::Windows {
            stride: max_length / 4,
        },
    };
    pipeline.set_read_options(ReadOptions {
        max_length,
        long_texts,
        batch_size: args.batch_size.unwrap_or(32),
    })?;
    Ok(pipeline)
}

/// [`load_pipeline`] for a command that only runs the model (no training, no saving): on the
/// CPU the encoder's f32 weight matrices are packed for the GEMM at load and their plain
/// copies dropped (`BertModel::pack_for_inference`), so the model is held once, not twice
/// after the first forward. Same outputs, bit for bit.
pub fn load_inference_pipeline(args: &ModelArgs, windows: Option<&WindowArgs>) -> Result<Pipeline> {
    let mut pipeline = load_pipeline(args, windows)?;
    pipeline.model.pack_for_inference()?;
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

pub fn embed(args: EmbedArgs) -> Result<()> {
    let pipeline = load_inference_pipeline(&args.model, Some(&args.windows))?;
    let texts = stdin_texts()?;
    let c = pipeline.hidden_size();
    let embeddings = block_on(pipeline.embed(&texts, args.pooling, !args.no_normalize))?;
    write_lines(embeddings.chunks(c).map(|e| json!({ "embedding": e })))
}

pub fn similarity(args: SimilarityArgs) -> Result<()> {
    let pipeline = load_inference_pipeline(&args.model, Some(&args.windows))?;
    let texts = stdin_texts()?;
    let against = match &args.against {
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

pub fn fill_mask(args: FillMaskArgs) -> Result<()> {
    let task = &args.task;
    let pipeline = load_inference_pipeline(&task.model, Some(&task.windows))?;
    let texts = stdin_items(&pipeline, task.pair)?;
    if texts.is_empty() {
        return Err(Error::invalid("fill-mask: no texts on stdin"));
    }
    let mut lines = Vec::with_capacity(texts.len());
    for (number, text) in texts.iter().enumerate() {
        let masks = block_on(pipeline.fill_mask(text, args.top_k)).map_err(|e| match e {
            Error::InvalidArgument(m) => Error::invalid(format!("line {}: {m}", number + 1)),
            other => other,
        })?;
        lines.push(json!({ "masks": masks }));
    }
    write_lines(lines)
}

pub fn classify(args: PairTaskArgs) -> Result<()> {
    let pipeline = load_inference_pipeline(&args.model, Some(&args.windows))?;
    let texts = stdin_items(&pipeline, args.pair)?;
    let results = block_on(pipeline.classify(&texts))?;
    write_lines(results.into_iter().map(|r| json!(r)))
}

pub fn classify_tokens(args: PairTaskArgs) -> Result<()> {
    let pipeline = load_inference_pipeline(&args.model, Some(&args.windows))?;
    let texts = stdin_items(&pipeline, args.pair)?;
    let results = block_on(pipeline.classify_tokens(&texts))?;
    write_lines(
        results
            .into_iter()
            .map(|tokens| json!({ "tokens": tokens })),
    )
}

pub fn next_sentence(args: NextSentenceArgs) -> Result<()> {
    let pipeline = load_inference_pipeline(&args.model, Some(&args.windows))?;
    let pairs = stdin_items(&pipeline, true)?;
    let results = block_on(pipeline.next_sentence(&pairs))?;
    write_lines(results.into_iter().map(|r| json!(r)))
}
