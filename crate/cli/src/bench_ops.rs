//! `webnlu bench ops [--json] [--device cpu|gpu] [--threads N] [--bt 128,512]`
//!
//! Times every core op at BERT-base sizes (C = 768, 12 heads, T = 128, B*T = 128 or 512):
//! GFLOP/s of the matmuls ((B*T, 768) x (768, 2304), (B*T, 768) x (768, 3072),
//! (B*T, 3072) x (3072, 768), per-head Q K^T and A V) and milliseconds of the other ops, on
//! the CPU path and the GPU path, next to numpy/OpenBLAS for the same matmuls in the same run
//! (a `python3` child per shape, run just before ours, with `OPENBLAS_NUM_THREADS`; `OPENBLAS_CORETYPE`/`OPENBLAS_L2_SIZE` are
//! removed for that child only, so OpenBLAS picks its own kernel).
//!
//! `--json`: one object per line, `{"op":"matmul","device":"cpu"|"gpu"|"numpy","m":..,"n":..,
//! "k":..,"ms":..,"gflops":..}` plus `name`, `batch`, `threads` (and `shape` for non-matmul ops).
//! On a software GPU adapter (lavapipe, SwiftShader) the GPU numbers are emulation and are
//! labelled so in the text output and with `"gpu_software": true` in JSON. Every time is the
//! best of several calls (see `time_it`).

use std::process::Command;

use clap::Args;
use std::time::Instant;

use webnlu::device::{Device, DeviceChoice, GpuOptions};
use webnlu::ops::attention::{attention_backward, attention_forward, AttentionSaved};
use webnlu::ops::elementwise::{add_forward, gelu_backward, gelu_forward};
use webnlu::ops::embedding::{embedding_backward, embedding_forward};
use webnlu::ops::layernorm::{layernorm_backward, layernorm_forward};
use webnlu::ops::matmul::{self, matmul_backward, matmul_forward, MatmulOptions};
use webnlu::ops::softmax::{softmax_backward, softmax_forward};
use webnlu::{Error, Result, Tensor};

const C: usize = 768;
const NH: usize = 12;
const T: usize = 128;
const VOCAB: usize = 30522;

/// `bench ops`' options.
#[derive(Args)]
pub struct BenchOpsArgs {
    /// JSON lines instead of the table
    #[arg(long)]
    pub json: bool,
    /// One device only [default: both]
    #[arg(long, value_name = "cpu|gpu", value_parser = ["cpu", "gpu"])]
    pub device: Option<String>,
    /// CPU threads of the matmuls (0: all cores)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// B*T values (multiples of 128)
    #[arg(long, value_name = "LIST", default_value = "128,512")]
    pub bt: String,
}

struct Options {
    json: bool,
    devices: Vec<DeviceChoice>,
    threads: usize,
    bts: Vec<usize>,
}

fn parse(args: BenchOpsArgs) -> Result<Options> {
    let devices = match args.device {
        Some(device) => vec![device.parse()?],
        None => vec![DeviceChoice::Cpu, DeviceChoice::Gpu],
    };
    let bts: Vec<usize> = args
        .bt
        .split(',')
        .map(|s| s.parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::invalid("--bt needs numbers like 128,512"))?;
    if bts.iter().any(|&bt| bt == 0 || bt % T != 0) {
        return Err(Error::invalid(format!(
            "--bt values must be multiples of {T}"
        )));
    }
    Ok(Options {
        json: args.json,
        devices,
        threads: args.threads,
        bts,
    })
}

/// One matmul shape of the benchmark.
#[derive(Clone, Debug)]
struct MatmulCase {
    name: &'static str,
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    trans_b: bool,
}

impl MatmulCase {
    fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

fn matmul_cases(bt: usize) -> Vec<MatmulCase> {
    let b = bt / T;
    let hs = C / NH;
    // Linear layers use PyTorch's (out, in) weight layout, so b is transposed.
    vec![
        MatmulCase {
            name: "qkv",
            batch: 1,
            m: bt,
            n: 3 * C,
            k: C,
            trans_b: true,
        },
        MatmulCase {
            name: "fc1",
            batch: 1,
            m: bt,
            n: 4 * C,
            k: C,
            trans_b: true,
        },
        MatmulCase {
            name: "fc2",
            batch: 1,
            m: bt,
            n: C,
            k: 4 * C,
            trans_b: true,
        },
        MatmulCase {
            name: "qk^T",
            batch: b * NH,
            m: T,
            n: T,
            k: hs,
            trans_b: true,
        },
        MatmulCase {
            name: "av",
            batch: b * NH,
            m: T,
            n: hs,
            k: T,
            trans_b: false,
        },
    ]
}

/// Seconds per call, the best of the timed calls: one warm-up call, then calls until
/// `min_reps` and `min_seconds` are reached, each one waited for (GPU) and timed alone. The
/// minimum is the number least disturbed by other processes on a shared machine; numpy is
/// timed the same way.
fn time_it(
    device: &Device,
    min_reps: usize,
    min_seconds: f64,
    mut call: impl FnMut() -> Result<()>,
) -> Result<f64> {
    call()?;
    finish(device)?;
    let start = Instant::now();
    let mut best = f64::INFINITY;
    let mut reps = 0;
    while reps < min_reps || start.elapsed().as_secs_f64() < min_seconds {
        let t0 = Instant::now();
        call()?;
        finish(device)?;
        best = best.min(t0.elapsed().as_secs_f64());
        reps += 1;
    }
    Ok(best)
}

fn finish(device: &Device) -> Result<()> {
    device.synchronize()
}

/// Inputs uniform in [-1, 1) (the crate's SplitMix64).
fn random(n: usize, seed: u64) -> Vec<f32> {
    webnlu::train::SplitMix64::new(seed).uniform_values(n, -1.0, 1.0)
}

fn tensor(device: &Device, shape: &[usize], seed: u64, name: &str) -> Result<Tensor> {
    Tensor::from_vec(device, shape, random(shape.iter().product(), seed), name)
}

struct Report {
    json: bool,
    gpu_software: bool,
}

impl Report {
    fn matmul(&self, device: &str, threads: usize, case: &MatmulCase, seconds: f64) {
        let gflops = case.flops() / seconds / 1e9;
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "op": "matmul", "name": case.name, "device": device, "batch": case.batch,
                    "m": case.m, "n": case.n, "k": case.k, "ms": seconds * 1e3,
                    "gflops": gflops, "threads": threads,
                    "gpu_software": device == "gpu" && self.gpu_software,
                })
            );
        } else {
            println!(
                "matmul {:5} {:>6} batch {:3} ({:4} x {:4} x {:4}) {:9.3} ms {:8.2} GFLOP/s{}",
                case.name,
                device_label(device, threads),
                case.batch,
                case.m,
                case.n,
                case.k,
                seconds * 1e3,
                gflops,
                self.emulated(device)
            );
        }
    }

    fn op(&self, op: &str, device: &str, threads: usize, shape: &[usize], seconds: f64) {
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "op": op, "device": device, "shape": shape, "ms": seconds * 1e3,
                    "threads": threads, "gpu_software": device == "gpu" && self.gpu_software,
                })
            );
        } else {
            println!(
                "{op:22} {:>6} {:24} {:9.3} ms{}",
                device_label(device, threads),
                format!("{shape:?}"),
                seconds * 1e3,
                self.emulated(device)
            );
        }
    }

    fn emulated(&self, device: &str) -> &'static str {
        if device == "gpu" && self.gpu_software {
            "  (GPU emulated on the CPU)"
        } else {
            ""
        }
    }
}

fn device_label(device: &str, threads: usize) -> String {
    if device == "gpu" {
        "gpu".into()
    } else {
        format!("{device}/{threads}")
    }
}

pub fn run(args: BenchOpsArgs) -> Result<()> {
    let options = parse(args)?;
    matmul::set_cpu_threads(options.threads);
    let cpu_threads = matmul::cpu_threads();
    let mut report = Report {
        json: options.json,
        gpu_software: false,
    };
    if !options.json {
        println!(
            "webnlu bench ops: BERT-base sizes (C {C}, {NH} heads, T {T}), CPU microkernel {}, {cpu_threads} thread(s)",
            matmul::cpu_microkernel_name()
        );
    }

    let cases: Vec<MatmulCase> = options
        .bts
        .iter()
        .flat_map(|&bt| matmul_cases(bt))
        .collect();
    for &choice in &options.devices {
        let device = match Device::new_blocking(choice, &GpuOptions::default()) {
            Ok(device) => device,
            Err(e) if choice == DeviceChoice::Gpu => {
                eprintln!("webnlu bench ops: skipping the GPU: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Device::Gpu(ctx) = &device {
            report.gpu_software = ctx.info().is_software;
            if !options.json {
                println!(
                    "GPU: {} ({}){}",
                    ctx.info().name,
                    ctx.info().backend,
                    if ctx.info().is_software {
                        ", a software adapter: emulated numbers"
                    } else {
                        ""
                    }
                );
            }
        }
        bench_device(&device, &options, &cases, cpu_threads, &report)?;
    }
    Ok(())
}

fn bench_device(
    device: &Device,
    options: &Options,
    cases: &[MatmulCase],
    cpu_threads: usize,
    report: &Report,
) -> Result<()> {
    let kind = device.kind();
    let threads = if device.is_gpu() { 0 } else { cpu_threads };
    // The emulated GPU runs ~1-5 GFLOP/s: fewer repetitions keep the run short.
    let (reps, seconds) = if device.is_gpu() && report.gpu_software {
        (2, 0.0)
    } else {
        (3, 0.3)
    };
    for case in cases {
        // numpy/OpenBLAS on the same shape right before ours (so both see the same machine
        // load): single-threaded, and with our thread count.
        if !device.is_gpu() {
            let mut numpy_threads = vec![1];
            if cpu_threads != 1 {
                numpy_threads.push(cpu_threads);
            }
            for t in numpy_threads {
                match numpy_matmul_seconds(std::slice::from_ref(case), t) {
                    Ok(seconds) => report.matmul("numpy", t, case, seconds[0]),
                    Err(e) => eprintln!("webnlu bench ops: numpy yardstick unavailable: {e}"),
                }
            }
        }
        let a = tensor(device, &[case.batch, case.m, case.k], 1, "a")?;
        let b_shape = if case.trans_b {
            [case.batch, case.n, case.k]
        } else {
            [case.batch, case.k, case.n]
        };
        let b = tensor(device, &b_shape, 2, "b")?;
        let mut out = Tensor::uninit(device, &[case.batch, case.m, case.n], "out")?;
        let opts = MatmulOptions {
            trans_b: case.trans_b,
            ..Default::default()
        };
        let s = time_it(device, reps, seconds, || {
            matmul_forward(&mut out, &a, &b, None, opts)
        })?;
        report.matmul(kind, threads, case, s);
    }

    for &bt in &options.bts {
        let b = bt / T;
        let x = tensor(device, &[bt, C], 3, "x")?;
        let h = tensor(device, &[bt, 4 * C], 4, "h")?;
        let mut y = Tensor::uninit(device, &[bt, C], "y")?;
        let mut h_out = Tensor::uninit(device, &[bt, 4 * C], "h_out")?;
        let mut dh = Tensor::zeros(device, &[bt, 4 * C], "dh")?;
        let s = time_it(device, reps, seconds, || add_forward(&mut y, &x, &x))?;
        report.op("add", kind, threads, &[bt, C], s);
        let s = time_it(device, reps, seconds, || gelu_forward(&mut h_out, &h))?;
        report.op("gelu_forward", kind, threads, &[bt, 4 * C], s);
        let s = time_it(device, reps, seconds, || gelu_backward(&mut dh, &h, &h))?;
        report.op("gelu_backward", kind, threads, &[bt, 4 * C], s);

        let w = tensor(device, &[C], 5, "ln.weight")?;
        let bias = tensor(device, &[C], 6, "ln.bias")?;
        let mut mean = Tensor::uninit(device, &[bt], "mean")?;
        let mut rstd = Tensor::uninit(device, &[bt], "rstd")?;
        let s = time_it(device, reps, seconds, || {
            layernorm_forward(&mut y, &mut mean, &mut rstd, &x, &w, &bias, 1e-12)
        })?;
        report.op("layernorm_forward", kind, threads, &[bt, C], s);
        let mut dx = Tensor::zeros(device, &[bt, C], "dx")?;
        let mut dw = Tensor::zeros(device, &[C], "dw")?;
        let mut db = Tensor::zeros(device, &[C], "db")?;
        let s = time_it(device, reps, seconds, || {
            layernorm_backward(
                Some(&mut dx),
                Some(&mut dw),
                Some(&mut db),
                &x,
                &x,
                &w,
                &mean,
                &rstd,
            )
        })?;
        report.op("layernorm_backward", kind, threads, &[bt, C], s);

        let scores = tensor(device, &[b, NH, T, T], 7, "scores")?;
        let mask_data: Vec<f32> = (0..b * T)
            .map(|i| if i % T >= T - 16 { f32::MIN } else { 0.0 })
            .collect();
        let mask = Tensor::from_vec(device, &[b, T], mask_data, "mask")?;
        let mut probs = Tensor::uninit(device, &[b, NH, T, T], "probs")?;
        let s = time_it(device, reps, seconds, || {
            softmax_forward(&mut probs, &scores, Some(&mask))
        })?;
        report.op("softmax_forward", kind, threads, &[b, NH, T, T], s);
        let mut dscores = Tensor::zeros(device, &[b, NH, T, T], "dscores")?;
        let s = time_it(device, reps, seconds, || {
            softmax_backward(&mut dscores, &probs, &scores)
        })?;
        report.op("softmax_backward", kind, threads, &[b, NH, T, T], s);

        // The model's attention op: q, k, v (B, T, C) each, eval (no dropout).
        let q = tensor(device, &[b, T, C], 8, "q")?;
        let k = tensor(device, &[b, T, C], 81, "k")?;
        let v = tensor(device, &[b, T, C], 82, "v")?;
        let mut att_out = Tensor::uninit(device, &[b, T, C], "att_out")?;
        let mut saved = AttentionSaved::new(device, b, T, C, NH)?;
        let s = time_it(device, reps, seconds, || {
            attention_forward(&mut att_out, &mut saved, &q, &k, &v, Some(&mask), None)
        })?;
        report.op("attention_forward", kind, threads, &[b, T, C], s);
        let dout = tensor(device, &[b, T, C], 9, "dout")?;
        let mut dq = Tensor::zeros(device, &[b, T, C], "dq")?;
        let mut dk = Tensor::zeros(device, &[b, T, C], "dk")?;
        let mut dv = Tensor::zeros(device, &[b, T, C], "dv")?;
        let s = time_it(device, reps, seconds, || {
            attention_backward(&mut dq, &mut dk, &mut dv, &dout, &saved, None)
        })?;
        report.op("attention_backward", kind, threads, &[b, T, C], s);

        // One linear layer's backward (dx, dW, dbias) at the fc1 shape.
        let w1 = tensor(device, &[4 * C, C], 10, "fc1.weight")?;
        let mut dw1 = Tensor::zeros(device, &[4 * C, C], "dfc1.weight")?;
        let mut db1 = Tensor::zeros(device, &[4 * C], "dfc1.bias")?;
        let mut dx1 = Tensor::zeros(device, &[bt, C], "dx")?;
        let opts = MatmulOptions {
            trans_b: true,
            ..Default::default()
        };
        let s = time_it(device, reps, seconds, || {
            matmul_backward(
                Some(&mut dx1),
                Some(&mut dw1),
                Some(&mut db1),
                &h,
                &x,
                &w1,
                opts,
            )
        })?;
        report.op("matmul_backward_fc1", kind, threads, &[bt, C, 4 * C], s);

        let table = tensor(device, &[VOCAB, C], 11, "word_embeddings")?;
        let ids_data: Vec<u32> = (0..bt as u32).map(|i| (i * 7919) % VOCAB as u32).collect();
        let ids = Tensor::<u32>::from_vec(device, &[bt], ids_data, "input_ids")?;
        let mut emb = Tensor::uninit(device, &[bt, C], "emb")?;
        let s = time_it(device, reps, seconds, || {
            embedding_forward(&mut emb, &table, &ids, false)
        })?;
        report.op("embedding_forward", kind, threads, &[bt, C], s);
        let mut dtable = Tensor::zeros(device, &[VOCAB, C], "dword_embeddings")?;
        let s = time_it(device, reps, seconds, || {
            embedding_backward(&mut dtable, &x, &ids)
        })?;
        report.op("embedding_backward", kind, threads, &[VOCAB, C], s);
    }
    Ok(())
}

/// Seconds per matmul for each case, measured by numpy in a child process.
fn numpy_matmul_seconds(cases: &[MatmulCase], threads: usize) -> Result<Vec<f64>> {
    let shapes: Vec<serde_json::Value> = cases
        .iter()
        .map(|c| serde_json::json!([c.batch, c.m, c.n, c.k, c.trans_b]))
        .collect();
    let script = r#"
import json, sys, time
import numpy as np
rng = np.random.default_rng(0)
out = []
for batch, m, n, k, trans_b in json.loads(sys.argv[1]):
    a = rng.standard_normal((batch, m, k), dtype=np.float32)
    b = rng.standard_normal((batch, n, k) if trans_b else (batch, k, n), dtype=np.float32)
    if batch == 1:
        a, b = a[0], b[0]
    bb = b.swapaxes(-1, -2) if trans_b else b
    c = a @ bb
    reps, best, start = 0, float("inf"), time.perf_counter()
    while reps < 3 or time.perf_counter() - start < 0.3:
        t0 = time.perf_counter()
        np.matmul(a, bb, out=c)
        best = min(best, time.perf_counter() - t0)
        reps += 1
    out.append(best)
print(json.dumps(out))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(serde_json::Value::Array(shapes).to_string())
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .map_err(|e| Error::invalid(format!("cannot run python3: {e}")))?;
    if !output.status.success() {
        return Err(Error::invalid(format!(
            "python3/numpy failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim())
        .map_err(|e| Error::format("numpy yardstick output", format!("{e}: {stdout}")))
}
