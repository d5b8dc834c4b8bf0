//! `webnlu bench elmo [--options P --weights P] [--input FILE] [--sentences N]
//! [--batch-size B] [--device cpu|gpu|both] [--threads N] [--repeat R] [--json]`
//!
//! ELMo biLM throughput: sentences per second (and words per second) of the stateless forward
//! pass with the layers read back to the host (what `webnlu elmo` and `WasmElmo.embed` do, JSON
//! printing excluded), per device, in batches of B (default 32) of the first N (default 256)
//! sentences of the input. Defaults: AllenNLP's test fixture model and VADER's movie-review
//! sentences (`id<TAB>rating<TAB>text`; any other file is read as one sentence per line).
//! One untimed pass warms up (shader compilation, buffer pool); the best of R passes (default
//! 3) counts. On a software GPU adapter (lavapipe) the GPU numbers are emulation and are
//! labelled so (`"gpu_software": true`).

use std::time::Instant;

use clap::Args;

use super::fixtures;
use webnlu::device::{Device, DeviceChoice, GpuOptions};
use webnlu::models::elmo::ElmoBiLm;
use webnlu::ops::matmul;
use webnlu::{Error, Result};

/// The sentences of `text`: the third field of `id<TAB>rating<TAB>text` lines, else each line.
fn sentences_of(text: &str, count: usize) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .map(|l| l.splitn(3, '\t').last().unwrap_or(""))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .take(count)
        .collect()
}

/// `bench elmo`'s options.
#[derive(Args)]
pub struct BenchElmoArgs {
    /// The biLM's options.json [default: AllenNLP's fixture model]
    #[arg(long, value_name = "PATH")]
    pub options: Option<String>,
    /// The biLM's weights (.hdf5) [default: AllenNLP's fixture model]
    #[arg(long, value_name = "PATH")]
    pub weights: Option<String>,
    /// id<TAB>rating<TAB>text lines, or one sentence per line
    #[arg(long, value_name = "FILE", default_value = fixtures::MOVIE_REVIEWS)]
    pub input: String,
    /// Sentences timed (the first N of the input)
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub sentences: usize,
    /// Sentences per forward pass
    #[arg(long, value_name = "B", default_value_t = 32)]
    pub batch_size: usize,
    /// The devices measured
    #[arg(long, value_name = "cpu|gpu|both", default_value = "both")]
    pub device: String,
    /// CPU threads of the matmuls (0: all cores)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Timed passes; the best counts
    #[arg(long, value_name = "R", default_value_t = 3)]
    pub repeat: usize,
    /// JSON lines instead of the table
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: BenchElmoArgs) -> Result<()> {
    let options_path = args
        .options
        .clone()
        .unwrap_or(format!("{}/options.json", fixtures::ELMO));
    let weights_path = args
        .weights
        .clone()
        .unwrap_or(format!("{}/lm_weights.hdf5", fixtures::ELMO));
    let input = args.input.as_str();
    let count = args.sentences;
    let batch_size = args.batch_size;
    let repeat = args.repeat.max(1);
    if batch_size == 0 || count == 0 {
        return Err(Error::invalid(
            "bench elmo: --batch-size and --sentences must be at least 1",
        ));
    }
    let devices = match args.device.as_str() {
        "both" => vec![DeviceChoice::Cpu, DeviceChoice::Gpu],
        other => {
            let choice: DeviceChoice = other.parse()?;
            if choice == DeviceChoice::Auto {
                return Err(Error::invalid(
                    "bench elmo: --device must be cpu, gpu or both",
                ));
            }
            vec![choice]
        }
    };
    matmul::set_cpu_threads(args.threads);

    let options_bytes = webnlu::io::read_file(&options_path)?;
    let options_text = std::str::from_utf8(&options_bytes)
        .map_err(|_| Error::format(options_path.as_str(), "not UTF-8 text"))?;
    let weights = webnlu::io::read_file(&weights_path)?;
    let bytes = webnlu::io::read_file(input)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Error::format(input, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let sentences = sentences_of(text, count);
    if sentences.is_empty() {
        return Err(Error::invalid(format!(
            "bench elmo: no sentences in {input}"
        )));
    }
    let words: usize = sentences.iter().map(Vec::len).sum();
    let batches: Vec<Vec<Vec<&str>>> = sentences
        .chunks(batch_size)
        .map(|c| {
            c.iter()
                .map(|s| s.iter().map(String::as_str).collect())
                .collect()
        })
        .collect();

    for choice in devices {
        let device = Device::new_blocking(choice, &GpuOptions::default())?;
        let software = match &device {
            Device::Gpu(ctx) => ctx.info().is_software,
            Device::Cpu => false,
        };
        let adapter = match &device {
            Device::Gpu(ctx) => ctx.info().name.clone(),
            Device::Cpu => format!("{} matmul threads", matmul::cpu_threads()),
        };
        let mut bilm = ElmoBiLm::load(options_text, &weights_path, &weights, &device)?;
        let mut best = f64::INFINITY;
        for pass in 0..=repeat {
            let started = Instant::now();
            for batch in &batches {
                bilm.embed_sentences_blocking(batch)?;
            }
            let seconds = started.elapsed().as_secs_f64();
            if pass > 0 {
                best = best.min(seconds);
            }
        }
        let rate = sentences.len() as f64 / best;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "bench": "elmo",
                    "device": device.kind(),
                    "adapter": adapter,
                    "gpu_software": software,
                    "options": options_path,
                    "input": input,
                    "sentences": sentences.len(),
                    "words": words,
                    "batch_size": batch_size,
                    "repeat": repeat,
                    "seconds": best,
                    "sentences_per_s": rate,
                    "words_per_s": words as f64 / best,
                })
            );
        } else {
            println!(
                "elmo {:>3} ({adapter}{}): {:>9.1} sentences/s  {:>9.0} words/s  ({} sentences, batch {batch_size}, best of {repeat}: {:.3} s)",
                device.kind(),
                if software { ", software emulation" } else { "" },
                rate,
                words as f64 / best,
                sentences.len(),
                best
            );
        }
    }
    Ok(())
}
