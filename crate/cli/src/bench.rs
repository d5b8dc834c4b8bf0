//! `webnlu bench tokenizer [--input FILE] [--tokenizer PATH] [--repeat N] [--json]`
//! (`webnlu bench ops` lives in `bench_ops.rs`, `webnlu bench elmo` in `bench_elmo.rs`,
//! `webnlu bench model` in `bench_model.rs`.)
//!
//! Single-thread tokenization throughput, same input, same tokenizer.json, same process:
//! webnlu's `Tokenizer::encode_batch` vs the Hugging Face `tokenizers` crate's `encode_batch`
//! (parallelism switched off). The peer is an optional native dependency: build with
//! `cargo build --release --features bench-peers`. Both run with the tokenizer.json's truncation
//! and with padding off (padding a whole corpus to its longest line measures memset, not
//! tokenization). Each engine runs `--repeat` times, interleaved; the best time counts.
//! MB/s = input bytes (UTF-8, line breaks excluded) / seconds / 1e6. The run also checks that
//! both engines give the same ids for every line and reports how many differ.

use std::time::Instant;

use clap::{Args, Subcommand};

use super::fixtures;
use super::tokenize::load_tokenizer;
use webnlu::{Error, Result};

/// The benchmarks of `webnlu bench`.
#[derive(Subcommand)]
pub enum Bench {
    /// Single-thread tokenization throughput of webnlu vs the `tokenizers` crate.
    ///
    /// The peer needs the build feature: cargo build --release --features bench-peers --bin webnlu.
    Tokenizer(TokenizerArgs),
    /// Tokens/s of BERT forward and training steps, peak memory per freezing policy.
    ///
    /// With --json, `memory`: the device's GPU and CPU-pool bytes before and after load,
    /// forwards, training, and after the model is dropped and the device trimmed.
    Model(super::bench_model::BenchModelArgs),
    /// ELMo biLM sentences/s per device.
    ///
    /// Default: AllenNLP's fixture model, VADER's movie-review sentences.
    Elmo(super::bench_elmo::BenchElmoArgs),
    /// Matmul GFLOP/s at BERT-base shapes and per-op times, CPU and GPU, numpy/OpenBLAS alongside.
    Ops(super::bench_ops::BenchOpsArgs),
}

pub fn run(benchmark: Bench) -> Result<()> {
    match benchmark {
        Bench::Tokenizer(args) => tokenizer(args),
        Bench::Ops(args) => super::bench_ops::run(args),
        Bench::Elmo(args) => super::bench_elmo::run(args),
        Bench::Model(args) => super::bench_model::run(args),
    }
}

/// `bench tokenizer`'s options.
#[derive(Args)]
pub struct TokenizerArgs {
    /// One text per line
    #[arg(long, value_name = "FILE", default_value = fixtures::CORPUS)]
    pub input: String,
    /// A tokenizer.json
    #[arg(long, value_name = "PATH", default_value = fixtures::BERT_TOKENIZER)]
    pub tokenizer: String,
    /// Rounds per engine (interleaved); the best counts
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub repeat: usize,
    /// One JSON object instead of the table
    #[arg(long)]
    pub json: bool,
}

struct Measured {
    seconds: f64,
    tokens: usize,
}

fn tokenizer(args: TokenizerArgs) -> Result<()> {
    let input = args.input.as_str();
    let path = args.tokenizer.as_str();
    let repeat = args.repeat.max(1);

    let bytes = std::fs::read(input).map_err(|e| Error::io(input, e))?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| Error::format(input, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect::<Vec<_>>();
    let lines: Vec<&str> = match lines.last() {
        Some(&"") => lines[..lines.len() - 1].to_vec(),
        _ => lines,
    };
    let input_bytes: usize = lines.iter().map(|l| l.len()).sum();

    let mut ours = load_tokenizer(path, true)?;
    ours.set_padding(None);
    #[cfg(feature = "bench-peers")]
    let peer = peer::load(path, &ours)?;

    let mut best_ours: Option<Measured> = None;
    #[cfg(feature = "bench-peers")]
    let mut best_peer: Option<Measured> = None;
    let mut ours_ids: Vec<Vec<u32>> = Vec::new();
    for round in 0..repeat {
        let start = Instant::now();
        let encodings = ours.encode_batch(&lines)?;
        let seconds = start.elapsed().as_secs_f64();
        let tokens = encodings.iter().map(|e| e.len()).sum();
        if best_ours.as_ref().is_none_or(|b| seconds < b.seconds) {
            best_ours = Some(Measured { seconds, tokens });
        }
        if round == 0 {
            ours_ids = encodings.into_iter().map(|e| e.ids).collect();
        }
        #[cfg(feature = "bench-peers")]
        {
            let (seconds, tokens, ids) = peer::encode(&peer, &lines, round == 0)?;
            if best_peer.as_ref().is_none_or(|b| seconds < b.seconds) {
                best_peer = Some(Measured { seconds, tokens });
            }
            if let Some(ids) = ids {
                let differ = ids.iter().zip(&ours_ids).filter(|(a, b)| a != b).count();
                if differ > 0 {
                    eprintln!(
                        "bench: warning: {differ} of {} lines get different ids from tokenizers",
                        lines.len()
                    );
                }
            }
        }
    }
    let ours = best_ours.expect("repeat >= 1");
    let mb = input_bytes as f64 / 1e6;
    let ours_rate = mb / ours.seconds;
    #[cfg(feature = "bench-peers")]
    let peer = best_peer.map(|p| (p.seconds, p.tokens, mb / p.seconds));
    #[cfg(not(feature = "bench-peers"))]
    let peer: Option<(f64, usize, f64)> = None;
    let _ = &ours_ids;

    if args.json {
        let mut report = serde_json::json!({
            "input": input,
            "tokenizer": path,
            "texts": lines.len(),
            "bytes": input_bytes,
            "repeat": repeat,
            "threads": 1,
            "webnlu": {"seconds": ours.seconds, "tokens": ours.tokens, "mb_per_s": ours_rate},
        });
        if let Some((seconds, tokens, rate)) = peer {
            report["tokenizers"] = serde_json::json!({"crate_version": PEER_VERSION, "seconds": seconds, "tokens": tokens, "mb_per_s": rate});
            report["ratio"] = serde_json::json!(ours_rate / rate);
        }
        println!("{report}");
    } else {
        println!(
            "input: {input} ({} texts, {:.2} MB); tokenizer: {path}; best of {repeat}, one thread",
            lines.len(),
            mb
        );
        println!(
            "webnlu      {:>9.2} MB/s  ({:.3} s, {} tokens)",
            ours_rate, ours.seconds, ours.tokens
        );
        match peer {
            Some((seconds, tokens, rate)) => {
                println!(
                    "tokenizers  {:>9.2} MB/s  ({:.3} s, {} tokens; crate {PEER_VERSION})",
                    rate, seconds, tokens
                );
                println!("ratio       {:>9.2}x", ours_rate / rate);
            }
            None => {
                println!("tokenizers  not built in (cargo build --release --features bench-peers)")
            }
        }
    }
    Ok(())
}

const PEER_VERSION: &str = "0.22.2";

#[cfg(feature = "bench-peers")]
mod peer {
    use std::time::Instant;

    use webnlu::tokenizer::Tokenizer as Ours;
    use webnlu::{Error, Result};

    pub fn load(path: &str, ours: &Ours) -> Result<tokenizers::Tokenizer> {
        if !path.to_ascii_lowercase().ends_with(".json") {
            return Err(Error::invalid(
                "bench: the tokenizers crate needs a tokenizer.json (--tokenizer PATH.json)",
            ));
        }
        tokenizers::utils::parallelism::set_parallelism(false);
        let mut peer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::format(path, format!("tokenizers cannot read it: {e}")))?;
        peer.with_padding(None);
        let truncation = ours.truncation().map(|t| tokenizers::TruncationParams {
            max_length: t.max_length,
            stride: t.stride,
            ..Default::default()
        });
        peer.with_truncation(truncation)
            .map_err(|e| Error::invalid(format!("tokenizers: {e}")))?;
        Ok(peer)
    }

    #[allow(clippy::type_complexity)]
    pub fn encode(
        peer: &tokenizers::Tokenizer,
        lines: &[&str],
        keep_ids: bool,
    ) -> Result<(f64, usize, Option<Vec<Vec<u32>>>)> {
        let inputs: Vec<&str> = lines.to_vec();
        let start = Instant::now();
        let encodings = peer
            .encode_batch(inputs, true)
            .map_err(|e| Error::invalid(format!("tokenizers: {e}")))?;
        let seconds = start.elapsed().as_secs_f64();
        let tokens = encodings.iter().map(|e| e.len()).sum();
        let ids = keep_ids.then(|| encodings.iter().map(|e| e.get_ids().to_vec()).collect());
        Ok((seconds, tokens, ids))
    }
}
