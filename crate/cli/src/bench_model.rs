//! `webnlu bench model [--device cpu|gpu|auto] [--models minilm,minilm-shape,bert-base,DIR]
//!  [--minilm DIR] [--batch B] [--seq T] [--repeat N] [--policies head,top:2,all] [--threads N]
//!  [--dtype fp32|fp16|bf16|int8] [--f16-arithmetic]
//!  [--peer torch] [--python PATH] [--profile-kernels] [--json]`
//!
//! Throughput of the BERT encoder: tokens per second of the forward pass (inference) and of a
//! whole training step (forward keeping the trained layers' activations, sequence-
//! classification loss, backward as deep as the freezing policy needs, gradient clipping and
//! AdamW), for all-MiniLM-L6-v2 (the real weights) and a bert-base-sized model with random
//! weights (L=12, H=768, A=12, I=3072, vocab 30522), on random token ids (B x T, default
//! 8 x 128); `minilm-shape` is all-MiniLM-L6-v2's shape with random weights (for machines
//! without the checkpoint: the speed does not depend on the values); an entry of `--models`
//! that is a directory loads that checkpoint. Each measurement runs once to warm up, then
//! `--repeat` times (default 3); the mean counts.
//!
//! `--peer torch`: right after each model, the same measurements by PyTorch fp32 +
//! transformers on the same shapes and device (`tests/bench/torch_bert_bench.py` in a child
//! `--python` process, default `python3`; CPU threads as `--threads`), and the ratio
//! webnlu / PyTorch of every throughput, so both numbers come from the same machine and load.
//!
//! On a GPU device the JSON lines also carry the overhead counters of the device
//! (`webnlu::device::DeviceStats`) per forward (`gpu_stats_per_forward`) and per training step
//! (`gpu_stats_per_step` of each policy): dispatches, submits, buffer / uniform / bind-group /
//! pipeline creations, uploads, read-backs, and the host milliseconds spent encoding,
//! submitting and waiting. `--profile-kernels` adds, from one extra forward and one extra step
//! per policy after the timed ones, the GPU time of each kernel (`kernels_per_forward`,
//! `kernels_per_step`; every dispatch run alone and waited for, see `webnlu::device::KernelTime`).
//!
//! Memory per freezing policy: the bytes of the weights, of the gradients and of the AdamW
//! moments (counted from the tensors), and on Linux the peak resident set of the training
//! steps above the resident set before them (`/proc/self/status` VmHWM after resetting it):
//! activations, gradients, optimizer state and temporaries together, on the CPU device. On a
//! GPU device that number is host memory only, so it is left out.
//!
//! `memory` (every device): what the device holds (`webnlu::device::MemoryUsage`: GPU bytes
//! and buffers, live and pooled, and the CPU pool's bytes) before the model is loaded, after
//! loading, after the forwards, after the training steps, and after the model and its input
//! are dropped and the device trimmed ([`webnlu::Device::trim`]).
//!
//! `f16_arithmetic` (GPU): whether fp16 weights were multiplied in f16 arithmetic
//! (`--f16-arithmetic` on a device with shader-f16; `webnlu::device::GpuInfo::f16_arithmetic`).
//!
//! `load_ms`: reading the model's files and loading it onto the device at `--dtype` (for the
//! generated shapes, generating their random weights too).

use std::time::Instant;

use serde_json::json;

use clap::Args;

use super::fixtures;
use super::memory::{peak_resident_bytes, reset_peak, resident_bytes};
use super::model_tasks::open_device;
use webnlu::device::{DeviceChoice, DeviceStats};
use webnlu::io::{ModelFiles, RandomBert};
use webnlu::models::{BertModel, EncoderInput, Freeze, Gradients, RunMode, Targets, Task};
use webnlu::ops::matmul::WeightDtype;
use webnlu::ops::optimizer::AdamWConfig;
use webnlu::train::{clip_and_step, AdamW, SplitMix64};
use webnlu::{Device, Error, Result};

/// bert-base-uncased's shape, with random weights.
const BERT_BASE: RandomBert = RandomBert {
    layers: 12,
    hidden: 768,
    heads: 12,
    intermediate: 3072,
    vocab: 30522,
    positions: 512,
    masked_lm: false,
};
/// all-MiniLM-L6-v2's shape, with random weights.
const MINILM: RandomBert = RandomBert {
    layers: 6,
    hidden: 384,
    intermediate: 1536,
    ..BERT_BASE
};

/// The PyTorch yardstick script, relative to the repository root.
const TORCH_PEER: &str = "tests/bench/torch_bert_bench.py";

fn random_input(
    device: &Device,
    b: usize,
    t: usize,
    vocab: usize,
    seed: u64,
) -> Result<EncoderInput> {
    let mut rng = SplitMix64::new(seed);
    let rows: Vec<Vec<u32>> = (0..b)
        .map(|_| {
            let mut row: Vec<u32> = (0..t)
                .map(|_| 1000 + rng.below(vocab - 1000) as u32)
                .collect();
            row[0] = 101; // [CLS]
            row[t - 1] = 102; // [SEP]
            row
        })
        .collect();
    EncoderInput::from_ids(device, &rows, &[])
}

/// One training step; returns the bytes of the gradients.
fn training_step(
    model: &mut BertModel,
    optimizer: &mut AdamW,
    input: &EncoderInput,
    freeze: Freeze,
    step: u64,
) -> Result<u64> {
    let mut grads = Gradients::new();
    let targets = Targets::Classes((0..input.batch as i64).map(|i| i % 2).collect());
    let mut out = model.forward_task(
        input,
        Task::SequenceClassification,
        &RunMode::training(step, freeze),
    )?;
    let loss = model.backward_task(&mut out, &targets, &mut grads)?;
    drop(out);
    let gradient_bytes = grads.iter().map(|(_, g)| g.bytes()).sum();
    let device = model.device().clone();
    clip_and_step(
        optimizer,
        &device,
        model.parameters_mut(),
        &mut grads,
        Some(1.0),
        2e-5,
    )?;
    let loss = loss.to_vec_blocking()?; // waits for the step to finish
    if !loss[0].is_finite() {
        return Err(Error::invalid(format!(
            "bench: loss {} at step {step}",
            loss[0]
        )));
    }
    Ok(gradient_bytes)
}

/// `bench model`'s options.
#[derive(Args)]
pub struct BenchModelArgs {
    /// The device measured
    #[arg(long, value_name = "cpu|gpu|auto", default_value = "auto")]
    pub device: DeviceChoice,
    /// Models measured: minilm, minilm-shape (its shape, random weights), bert-base (random
    /// weights), or a checkpoint directory
    #[arg(long, value_name = "LIST", default_value = "minilm,bert-base")]
    pub models: String,
    /// all-MiniLM-L6-v2's directory
    #[arg(long, value_name = "DIR", default_value = fixtures::MINILM)]
    pub minilm: String,
    /// Sequences per batch (B)
    #[arg(long, value_name = "B", default_value_t = 8)]
    pub batch: usize,
    /// Tokens per sequence (T)
    #[arg(long, value_name = "T", default_value_t = 128)]
    pub seq: usize,
    /// Timed runs per measurement (after one warm-up); the mean counts
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub repeat: usize,
    /// Freezing policies of the training steps
    #[arg(long, value_name = "LIST", default_value = "head,top:2,all")]
    pub policies: String,
    /// How the encoder layers' weight matrices are held (fp16/bf16/int8: only the `head`
    /// policy trains; the others are left out)
    #[arg(long, value_name = "fp32|fp16|bf16|int8", default_value = "fp32")]
    pub dtype: WeightDtype,
    /// With --dtype fp16 on a GPU with shader-f16: multiply in f16 (sums in f32)
    #[arg(long)]
    pub f16_arithmetic: bool,
    /// CPU threads of the matmuls [default: all cores]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// The same measurements by PyTorch + transformers alongside
    #[arg(long, value_name = "torch", value_parser = ["torch"])]
    pub peer: Option<String>,
    /// The Python of --peer torch
    #[arg(long, value_name = "PATH", default_value = "python3")]
    pub python: String,
    /// GPU time of each kernel, from one extra forward and step per policy
    #[arg(long)]
    pub profile_kernels: bool,
    /// JSON lines instead of the table
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: BenchModelArgs) -> Result<()> {
    let device = open_device(args.device, args.f16_arithmetic)?;
    if let Some(threads) = args.threads {
        webnlu::ops::matmul::cpu_gemm::set_cpu_threads(threads);
    }
    let b = args.batch;
    let t = args.seq;
    let repeat = args.repeat.max(1);
    let models = args.models.as_str();
    let policies: Vec<Freeze> = args
        .policies
        .split(',')
        .map(str::parse)
        .collect::<Result<_>>()?;
    let minilm_dir = args.minilm.as_str();
    let peer = args.peer.as_ref().map(|_| args.python.as_str());
    let mut results = Vec::new();
    for name in models.split(',') {
        let load_started = Instant::now();
        let files = match name {
            "minilm" => ModelFiles::from_dir(minilm_dir)?,
            "minilm-shape" => MINILM.files(1)?,
            "bert-base" => BERT_BASE.files(1)?,
            dir if std::path::Path::new(dir).is_dir() => ModelFiles::from_dir(dir)?,
            other => {
                return Err(Error::invalid(format!(
                    "bench model: unknown model {other:?} (minilm, minilm-shape, bert-base or a model directory)"
                )))
            }
        };
        let before_load = device.memory_usage();
        let mut model = BertModel::load_as(&files, &device, args.dtype)?;
        drop(files);
        let load_seconds = load_started.elapsed().as_secs_f64();
        let after_load = device.memory_usage();
        model.add_sequence_classifier(&["a".to_string(), "b".to_string()], 0)?;
        let weight_bytes = model.weight_bytes();
        let input = random_input(
            &device,
            b,
            t.min(model.max_positions()),
            model.vocab_size(),
            7,
        )?;
        let tokens = (input.batch * input.seq) as f64;

        // forward (inference)
        model
            .encode(&input, &RunMode::inference())?
            .hidden
            .to_vec_blocking()?;
        let started = Instant::now();
        let stats_before = device.stats();
        for _ in 0..repeat {
            let out = model.encode(&input, &RunMode::inference())?;
            out.hidden.to_vec_blocking()?;
        }
        let forward_seconds = started.elapsed().as_secs_f64() / repeat as f64;
        let after_forward = device.memory_usage();
        let forward_stats = per_step(&device, &stats_before, repeat);
        let profile = args.profile_kernels && device.is_gpu();
        let forward_kernels = if profile {
            device.set_kernel_profile(true)?;
            model
                .encode(&input, &RunMode::inference())?
                .hidden
                .to_vec_blocking()?;
            let kernels = device.take_kernel_profile();
            device.set_kernel_profile(false)?;
            Some(kernels)
        } else {
            None
        };
        let mut line = json!({
            "model": name, "device": device.kind(), "batch": input.batch, "seq": input.seq,
            "parameters": model.parameter_count(), "weight_bytes": weight_bytes,
            "dtype": model.weight_dtype().name(),
            "load_ms": load_seconds * 1e3,
            "forward_tokens_per_s": tokens / forward_seconds,
            "forward_ms": forward_seconds * 1e3,
        });
        if let Device::Gpu(ctx) = &device {
            line["adapter"] = json!(format!("{} ({})", ctx.info().name, ctx.info().backend));
            line["f16_arithmetic"] = json!(ctx.info().f16_arithmetic);
            line["gpu_stats_per_forward"] = forward_stats;
            if let Some(kernels) = forward_kernels {
                line["kernels_per_forward"] = json!(kernels);
            }
        }
        let mut per_policy = Vec::new();
        for &freeze in &policies {
            if let Freeze::Top(k) = freeze {
                if k > model.num_layers() {
                    continue;
                }
            }
            if freeze != Freeze::Head && args.dtype != WeightDtype::Fp32 {
                continue; // the step here runs the backward directly: no trainer widens the layers
            }
            let mut optimizer = AdamW::new(AdamWConfig::default());
            let cpu = !device.is_gpu();
            let reset = cpu && reset_peak();
            let before = resident_bytes();
            let gradient_bytes = training_step(&mut model, &mut optimizer, &input, freeze, 1)?;
            let started = Instant::now();
            let stats_before = device.stats();
            for step in 0..repeat as u64 {
                training_step(&mut model, &mut optimizer, &input, freeze, step + 2)?;
            }
            let seconds = started.elapsed().as_secs_f64() / repeat as f64;
            let step_stats = per_step(&device, &stats_before, repeat);
            let peak_above = match (reset, before, peak_resident_bytes()) {
                (true, Some(before), Some(peak)) => Some(peak.saturating_sub(before)),
                _ => None,
            };
            let mut policy = json!({
                "freeze": freeze.to_string(),
                "train_step_tokens_per_s": tokens / seconds,
                "train_step_ms": seconds * 1e3,
                "gradient_bytes": gradient_bytes,
                "optimizer_state_bytes": optimizer.state_bytes(),
                "peak_rss_above_loaded_model_bytes": peak_above,
            });
            if device.is_gpu() {
                policy["gpu_stats_per_step"] = step_stats;
            }
            if profile {
                device.set_kernel_profile(true)?;
                training_step(
                    &mut model,
                    &mut optimizer,
                    &input,
                    freeze,
                    repeat as u64 + 2,
                )?;
                policy["kernels_per_step"] = json!(device.take_kernel_profile());
                device.set_kernel_profile(false)?;
            }
            per_policy.push(policy);
        }
        line["training"] = per_policy.into();
        // What the device holds at each stage, and after the model and its input are dropped
        // and the device trimmed (back to `before_load` when nothing leaks).
        let after_training = device.memory_usage();
        drop(model);
        drop(input);
        device.trim()?;
        line["memory"] = json!({
            "before_load": before_load, "after_load": after_load,
            "after_forward": after_forward, "after_training": after_training,
            "after_drop_and_trim": device.memory_usage(),
        });
        if let Some(python) = peer {
            let threads = args.threads;
            match torch_peer(python, name, &device, &line, &policies, repeat, threads) {
                Ok(measured) => add_peer(&mut line, measured),
                Err(e) => eprintln!("webnlu bench model: PyTorch yardstick unavailable: {e}"),
            }
        }
        if args.json {
            println!("{line}");
        } else {
            print_table(&line);
        }
        results.push(line);
    }
    Ok(())
}

/// PyTorch's numbers for the model `name` on the same shapes and device, from the yardstick
/// script in a child process.
fn torch_peer(
    python: &str,
    name: &str,
    device: &Device,
    line: &serde_json::Value,
    policies: &[Freeze],
    repeat: usize,
    threads: Option<usize>,
) -> Result<serde_json::Value> {
    let shape = match name {
        "minilm" | "minilm-shape" => "minilm",
        other => other,
    };
    let policies: Vec<String> = policies.iter().map(Freeze::to_string).collect();
    let mut command = std::process::Command::new(python);
    command.arg(TORCH_PEER).args([
        "--device",
        if device.is_gpu() { "cuda" } else { "cpu" },
        "--models",
        shape,
        "--batch",
        &line["batch"].to_string(),
        "--seq",
        &line["seq"].to_string(),
        "--repeat",
        &repeat.to_string(),
        "--policies",
        &policies.join(","),
    ]);
    if let Some(threads) = threads {
        command.args(["--threads", &threads.to_string()]);
    }
    let output = command
        .output()
        .map_err(|e| Error::invalid(format!("cannot run {python} {TORCH_PEER}: {e}")))?;
    if !output.status.success() {
        return Err(Error::invalid(format!(
            "{python} {TORCH_PEER} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim())
        .map_err(|e| Error::format("PyTorch yardstick output", format!("{e}: {stdout}")))
}

/// Puts PyTorch's throughputs beside ours with the ratios webnlu / PyTorch.
fn add_peer(line: &mut serde_json::Value, peer: serde_json::Value) {
    let ratio = |ours: &serde_json::Value, theirs: &serde_json::Value| match (
        ours.as_f64(),
        theirs.as_f64(),
    ) {
        (Some(a), Some(b)) if b > 0.0 => json!(a / b),
        _ => serde_json::Value::Null,
    };
    line["peer"] = peer["peer"].clone();
    line["peer_gpu"] = peer["gpu"].clone();
    line["peer_forward_tokens_per_s"] = peer["forward_tokens_per_s"].clone();
    line["forward_ratio_vs_peer"] =
        ratio(&line["forward_tokens_per_s"], &peer["forward_tokens_per_s"]);
    let theirs = peer["training"].as_array().cloned().unwrap_or_default();
    for ours in line["training"].as_array_mut().into_iter().flatten() {
        if let Some(p) = theirs.iter().find(|p| p["freeze"] == ours["freeze"]) {
            ours["peer_train_step_tokens_per_s"] = p["train_step_tokens_per_s"].clone();
            ours["train_ratio_vs_peer"] = ratio(
                &ours["train_step_tokens_per_s"],
                &p["train_step_tokens_per_s"],
            );
        }
    }
}

/// The device's overhead counters since `before`, divided by the `steps` they cover (the
/// times in milliseconds): what one forward or one training step costs besides its kernels.
fn per_step(device: &Device, before: &DeviceStats, steps: usize) -> serde_json::Value {
    let total = device.stats().since(before);
    let n = steps as f64;
    let count = |v: u64| v as f64 / n;
    let ms = |ns: u64| ns as f64 / n / 1e6;
    json!({
        "dispatches": count(total.dispatches),
        "submits": count(total.submits),
        "buffers_created": count(total.buffers_created),
        "buffers_reused": count(total.buffers_reused),
        "uniform_buffers_created": count(total.uniform_buffers_created),
        "bind_groups_created": count(total.bind_groups_created),
        "pipelines_created": count(total.pipelines_created),
        "uploads": count(total.uploads),
        "readbacks": count(total.readbacks),
        "encode_ms": ms(total.encode_ns),
        "submit_ms": ms(total.submit_ns),
        "wait_ms": ms(total.wait_ns),
    })
}

/// "matmul_forward 93% (202), softmax_forward 5% (24), ..." of a kernel profile, top `n`.
fn kernel_shares(kernels: &serde_json::Value, n: usize) -> Option<String> {
    let kernels = kernels.as_array()?;
    let total: f64 = kernels.iter().filter_map(|k| k["ms"].as_f64()).sum();
    let top: Vec<String> = kernels
        .iter()
        .take(n)
        .map(|k| {
            format!(
                "{} {:.0}% ({})",
                k["kernel"].as_str().unwrap_or(""),
                100.0 * k["ms"].as_f64().unwrap_or(0.0) / total.max(1e-9),
                k["dispatches"]
            )
        })
        .collect();
    Some(format!("{:.1} ms: {}", total, top.join(", ")))
}

fn mib(v: &serde_json::Value) -> String {
    v.as_f64()
        .map_or("-".to_string(), |b| format!("{:.1}", b / (1024.0 * 1024.0)))
}

fn print_table(line: &serde_json::Value) {
    println!(
        "{} on {} (B={}, T={}, {} parameters, weights {} MiB): forward {:.0} tokens/s ({:.1} ms)",
        line["model"].as_str().unwrap_or(""),
        line["adapter"]
            .as_str()
            .unwrap_or(line["device"].as_str().unwrap_or("")),
        line["batch"],
        line["seq"],
        line["parameters"],
        mib(&line["weight_bytes"]),
        line["forward_tokens_per_s"].as_f64().unwrap_or(0.0),
        line["forward_ms"].as_f64().unwrap_or(0.0),
    );
    if let Some(peer) = line["peer"].as_str() {
        println!(
            "  {peer}: forward {:.0} tokens/s, webnlu / PyTorch {:.2}",
            line["peer_forward_tokens_per_s"].as_f64().unwrap_or(0.0),
            line["forward_ratio_vs_peer"].as_f64().unwrap_or(0.0),
        );
    }
    println!(
        "  freeze   train tokens/s   step ms   grads MiB   AdamW MiB   peak RSS above model MiB   PyTorch tokens/s   ratio"
    );
    for p in line["training"].as_array().into_iter().flatten() {
        let peer = |key: &str, digits: usize| {
            p[key]
                .as_f64()
                .map_or("-".to_string(), |v| format!("{v:.digits$}"))
        };
        println!(
            "  {:<8} {:>14.0} {:>9.1} {:>11} {:>11} {:>26} {:>18} {:>7}",
            p["freeze"].as_str().unwrap_or(""),
            p["train_step_tokens_per_s"].as_f64().unwrap_or(0.0),
            p["train_step_ms"].as_f64().unwrap_or(0.0),
            mib(&p["gradient_bytes"]),
            mib(&p["optimizer_state_bytes"]),
            mib(&p["peak_rss_above_loaded_model_bytes"]),
            peer("peer_train_step_tokens_per_s", 0),
            peer("train_ratio_vs_peer", 2),
        );
    }
    if let Some(shares) = kernel_shares(&line["kernels_per_forward"], 5) {
        println!("  kernels, one forward alone: {shares}");
    }
    for p in line["training"].as_array().into_iter().flatten() {
        if let Some(shares) = kernel_shares(&p["kernels_per_step"], 5) {
            println!(
                "  kernels, one {} step alone: {shares}",
                p["freeze"].as_str().unwrap_or("")
            );
        }
    }
}
