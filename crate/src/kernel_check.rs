//! The kernel check: a representative set of ops (matmul with a transposed operand and odd
//! sizes, its backward, LayerNorm, masked softmax, the model's attention op (separate q, k, v,
//! padding mask, with and without attention dropout), their backwards, the LSTM and
//! cross-entropy) run on deterministic data on a GPU device and on
//! the CPU, with the largest difference of every output against its tolerance.
//!
//! The op tests (`tests/rust/ops/*.rs`) do this thoroughly on Mesa lavapipe; this check is the
//! same comparison in a form that also runs in the browser (`checkKernels()` of the wasm test
//! build, feature `kernel-check`), where the GPU is WebGPU (SwiftShader in headless Chromium)
//! and read-back is asynchronous. It runs natively too (`tests/rust/ops/kernel_check.rs`).
//!
//! Every case builds its inputs on one device, runs the ops through the public op functions
//! (which pick the WGSL kernel or the CPU code from where the tensors live) and reads the
//! outputs back; the same function runs once per device, so both paths see the same calls.

use crate::device::Device;
use crate::ops::attention::{attention_backward, attention_forward, AttentionSaved};
use crate::ops::dropout::DropoutMask;
use crate::ops::layernorm::{layernorm_backward, layernorm_forward};
use crate::ops::losses::{cross_entropy_backward, cross_entropy_forward};
use crate::ops::lstm::{
    lstm_backward, lstm_forward, LstmGradTensors, LstmOptions, LstmShape, LstmWeights,
};
use crate::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use crate::ops::softmax::{softmax_backward, softmax_forward};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The result of one output of one op: GPU against CPU.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KernelCheck {
    /// e.g. "matmul_backward db"
    pub name: String,
    pub shape: Vec<usize>,
    /// max_i |gpu_i - cpu_i|
    pub max_abs_diff: f32,
    /// The allowed max_abs_diff: `atol + rtol * max_i |cpu_i|` (reason next to each case).
    pub tolerance: f32,
    /// max_abs_diff <= tolerance and no NaN/inf where the CPU has a finite value.
    pub passed: bool,
}

/// One output of a case, read back to the host.
struct Output {
    name: String,
    shape: Vec<usize>,
    data: Vec<f32>,
    /// Tolerance = atol + rtol * max |cpu|.
    atol: f32,
    rtol: f32,
}

async fn output(tensor: &Tensor, name: &str, atol: f32, rtol: f32) -> Result<Output> {
    Ok(Output {
        name: name.to_string(),
        shape: tensor.shape().to_vec(),
        data: tensor.to_vec().await?,
        atol,
        rtol,
    })
}

/// Deterministic values in [-scale, scale) (the crate's SplitMix64, as the op tests draw them).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    crate::train::SplitMix64::new(seed).uniform_values(n, -scale, scale)
}

fn input(device: &Device, shape: &[usize], seed: u64, scale: f32, name: &str) -> Result<Tensor> {
    let n = shape.iter().product();
    Tensor::from_vec(device, shape, values(n, seed, scale), name)
}

/// The model's additive padding mask (B, T), as `models/bert/mod.rs` makes it: the last `pad[b]`
/// positions of row b are `f32::MIN`, so the kernels are checked on the scores a model gives
/// them (masked ones at the very end of the f32 range, not at a milder -10000).
fn padding_mask(device: &Device, t: usize, pad: &[usize]) -> Result<Tensor> {
    let data = pad
        .iter()
        .flat_map(|&p| (0..t).map(move |j| if j + p >= t { f32::MIN } else { 0.0 }))
        .collect();
    Tensor::from_vec(device, &[pad.len(), t], data, "mask")
}

/// matmul forward and backward, (M, K) x (N, K)^T + bias with odd sizes that are not multiples
/// of the 64x64 output tile, and a batched product with a transposed `a`.
async fn matmul_case(device: &Device) -> Result<Vec<Output>> {
    // Tolerance: sums of K products of values in [-1, 1]; a different summation order (tiles
    // on the GPU, packed panels on the CPU) changes each by about sqrt(K) ulp of the largest
    // partial sum (<= K), so 2e-6 * K absolute plus 1e-5 relative, as in tests/rust/ops/matmul.rs.
    let (m, k, n) = (67, 45, 70);
    let tol = 2e-6 * k as f32;
    let a = input(device, &[m, k], 1, 1.0, "a")?; // (M, K)
    let b = input(device, &[n, k], 2, 1.0, "b")?; // (N, K), used transposed
    let bias = input(device, &[n], 3, 1.0, "bias")?; // (N)
    let options = MatmulOptions {
        trans_b: true,
        ..Default::default()
    };
    let mut out = Tensor::uninit(device, &[m, n], "out")?; // (M, N)
    matmul_forward(&mut out, &a, &b, Some(&bias), options)?;

    // backward: da = dout b (sum over N), db = dout^T a (sum over M), dbias (sum over M)
    let dout = input(device, &[m, n], 4, 1.0, "dout")?; // (M, N)
    let mut da = Tensor::zeros(device, &[m, k], "da")?; // (M, K)
    let mut db = Tensor::zeros(device, &[n, k], "db")?; // (N, K)
    let mut dbias = Tensor::zeros(device, &[n], "dbias")?; // (N)
    matmul_backward(
        Some(&mut da),
        Some(&mut db),
        Some(&mut dbias),
        &dout,
        &a,
        &b,
        options,
    )?;

    // batched, a transposed: (3, 17, 13) stored (K, M) -> out (3, 13, 11)
    let (batch, bm, bk, bn) = (3, 13, 17, 11);
    let at = input(device, &[batch, bk, bm], 5, 1.0, "a_t")?; // (3, K, M)
    let bb = input(device, &[batch, bk, bn], 6, 1.0, "b_batched")?; // (3, K, N)
    let trans_a = MatmulOptions {
        trans_a: true,
        alpha: 0.5,
        ..Default::default()
    };
    let mut out_batched = Tensor::uninit(device, &[batch, bm, bn], "out_batched")?;
    matmul_forward(&mut out_batched, &at, &bb, None, trans_a)?;

    Ok(vec![
        output(&out, "matmul_forward (67x45)·(70x45)^T + bias", tol, 1e-5).await?,
        output(&da, "matmul_backward da", 2e-6 * n as f32, 1e-5).await?,
        output(&db, "matmul_backward db", 2e-6 * m as f32, 1e-5).await?,
        output(&dbias, "matmul_backward dbias", 2e-6 * m as f32, 1e-5).await?,
        output(
            &out_batched,
            "matmul_forward batched, trans_a, alpha",
            2e-6 * bk as f32,
            1e-5,
        )
        .await?,
    ])
}

/// LayerNorm over C = 50 for (3, 7) rows, forward (out, mean, rstd) and backward.
async fn layernorm_case(device: &Device) -> Result<Vec<Output>> {
    let (b, t, c) = (3, 7, 50);
    let x = input(device, &[b, t, c], 11, 2.0, "x")?; // (B, T, C)
    let weight = input(device, &[c], 12, 1.0, "weight")?; // (C)
    let bias = input(device, &[c], 13, 1.0, "bias")?; // (C)
    let mut out = Tensor::uninit(device, &[b, t, c], "out")?; // (B, T, C)
    let mut mean = Tensor::uninit(device, &[b * t], "mean")?; // (B*T)
    let mut rstd = Tensor::uninit(device, &[b * t], "rstd")?; // (B*T)
    layernorm_forward(&mut out, &mut mean, &mut rstd, &x, &weight, &bias, 1e-5)?;
    let dout = input(device, &[b, t, c], 14, 1.0, "dout")?; // (B, T, C)
    let mut dx = Tensor::zeros(device, &[b, t, c], "dx")?;
    let mut dweight = Tensor::zeros(device, &[c], "dweight")?;
    let mut dbias = Tensor::zeros(device, &[c], "dbias")?;
    layernorm_backward(
        Some(&mut dx),
        Some(&mut dweight),
        Some(&mut dbias),
        &dout,
        &x,
        &weight,
        &mean,
        &rstd,
    )?;
    // Tolerance: a mean and a variance over C = 50 values (|x| < 2) in another order and a
    // GPU inverseSqrt that may be a few ulp off: ~1e-6 relative on rstd, so outputs of size
    // ~3 agree to ~1e-5; dweight/dbias sum B*T = 21 such terms.
    Ok(vec![
        output(&out, "layernorm_forward out", 1e-5, 1e-5).await?,
        output(&mean, "layernorm_forward mean", 1e-6, 1e-5).await?,
        output(&rstd, "layernorm_forward rstd", 1e-6, 1e-5).await?,
        output(&dx, "layernorm_backward dx", 2e-5, 1e-5).await?,
        output(&dweight, "layernorm_backward dweight", 5e-5, 1e-5).await?,
        output(&dbias, "layernorm_backward dbias", 5e-5, 1e-5).await?,
    ])
}

/// Softmax over L = 9 of (B, NH, T) = (2, 3, 5) rows with an additive (B, L) padding mask
/// broadcast over each batch entry's NH*T rows, forward and backward.
async fn softmax_case(device: &Device) -> Result<Vec<Output>> {
    let (b, nh, t, l) = (2, 3, 5, 9);
    let x = input(device, &[b, nh, t, l], 21, 3.0, "scores")?; // (B, NH, T, L)
    let mask = padding_mask(device, l, &[0, 4])?; // (B, L)
    let mut y = Tensor::uninit(device, &[b, nh, t, l], "probs")?;
    softmax_forward(&mut y, &x, Some(&mask))?;
    let dy = input(device, &[b, nh, t, l], 22, 1.0, "dprobs")?;
    let mut dx = Tensor::zeros(device, &[b, nh, t, l], "dscores")?;
    softmax_backward(&mut dx, &y, &dy)?;
    // Tolerance: probabilities <= 1 from exp() of arguments <= 6 after the max shift; the GPU's
    // exp may differ by a few ulp (WGSL allows 3 + 2|x| ulp), so ~1e-6 absolute.
    Ok(vec![
        output(&y, "softmax_forward with mask", 2e-6, 1e-5).await?,
        output(&dx, "softmax_backward", 2e-6, 1e-5).await?,
    ])
}

/// The attention op the encoder layer uses: separate q, k, v (B, T, C) = (2, 7, 24) over 3
/// heads of size 8, the last 3 positions of batch entry 1 masked, forward and backward, without
/// dropout (eval) and with attention-probability dropout p = 0.25 (training; the Threefry mask
/// is the same on both devices, so the outputs compare like the eval ones).
async fn attention_case(device: &Device) -> Result<Vec<Output>> {
    let (b, t, c, nh) = (2, 7, 24, 3);
    let q = input(device, &[b, t, c], 31, 2.0, "q")?; // (B, T, C)
    let k = input(device, &[b, t, c], 32, 2.0, "k")?; // (B, T, C)
    let v = input(device, &[b, t, c], 33, 2.0, "v")?; // (B, T, C)
    let mask = padding_mask(device, t, &[0, 3])?; // (B, T)
    let dout = input(device, &[b, t, c], 34, 1.0, "dout")?; // (B, T, C)
    let dropped = DropoutMask {
        probability: 0.25,
        seed: 5,
        stream: 1,
    };
    let mut outputs = Vec::new();
    for (dropout, label) in [(None, ""), (Some(dropped), " with dropout")] {
        let mut out = Tensor::uninit(device, &[b, t, c], "out")?; // (B, T, C)
        let mut saved = AttentionSaved::new(device, b, t, c, nh)?;
        attention_forward(&mut out, &mut saved, &q, &k, &v, Some(&mask), dropout)?;
        let mut dq = Tensor::zeros(device, &[b, t, c], "dq")?; // (B, T, C)
        let mut dk = Tensor::zeros(device, &[b, t, c], "dk")?; // (B, T, C)
        let mut dv = Tensor::zeros(device, &[b, t, c], "dv")?; // (B, T, C)
        attention_backward(&mut dq, &mut dk, &mut dv, &dout, &saved, dropout)?;
        // Tolerance: matmuls over hs = 8 and T = 7 of values in [-2, 2] plus a softmax (and a
        // dropout scale of 4/3, exact on both devices): errors of a few ulp of values up to
        // ~30 (scores before scaling) stay below 2e-5; as the native test.
        let (atol, rtol) = (2e-5, 1e-4);
        for (tensor, name) in [
            (&saved.att, "attention_forward probabilities"),
            (&out, "attention_forward out"),
            (&dq, "attention_backward dq"),
            (&dk, "attention_backward dk"),
            (&dv, "attention_backward dv"),
        ] {
            outputs.push(output(tensor, &format!("{name}{label}"), atol, rtol).await?);
        }
    }
    Ok(outputs)
}

/// One LSTM direction with projection and clips (ELMo's cell), B = 2 rows of lengths 5 and 3,
/// forward and backward through time.
async fn lstm_case(device: &Device) -> Result<Vec<Output>> {
    let (b, t, i, c, h) = (2, 5, 6, 8, 4);
    let lengths = [5, 3];
    let options = LstmOptions {
        cell_clip: Some(3.0),
        proj_clip: Some(3.0),
        go_forward: true,
    };
    let w_input = input(device, &[4 * c, i], 41, 0.5, "w_input")?; // (4C, I)
    let w_state = input(device, &[4 * c, h], 42, 0.5, "w_state")?; // (4C, H)
    let bias = input(device, &[4 * c], 43, 0.5, "bias")?; // (4C)
    let w_proj = input(device, &[h, c], 44, 0.5, "w_proj")?; // (H, C)
    let weights = LstmWeights {
        w_input: &w_input,
        w_state: &w_state,
        bias: &bias,
        w_proj: &w_proj,
    };
    let x = input(device, &[b, t, i], 45, 1.0, "inputs")?; // (B, T, I)
    let h0 = input(device, &[b, h], 46, 0.5, "h0")?; // (B, H)
    let c0 = input(device, &[b, c], 47, 0.5, "c0")?; // (B, C)
    let mut h_state = input(device, &[b, h], 46, 0.5, "h_state")?; // (B, H), = h0
    let mut c_state = input(device, &[b, c], 47, 0.5, "c_state")?; // (B, C), = c0
    let mut outputs = Tensor::zeros(device, &[b, t, h], "outputs")?; // (B, T, H)
    let saved = lstm_forward(
        &mut outputs,
        &mut h_state,
        &mut c_state,
        &x,
        &lengths,
        &weights,
        &options,
    )?;

    let doutputs = input(device, &[b, t, h], 48, 1.0, "doutputs")?; // (B, T, H)
    let dh_final = input(device, &[b, h], 49, 1.0, "dh_final")?; // (B, H)
    let dc_final = input(device, &[b, c], 50, 1.0, "dc_final")?; // (B, C)
    let shape = LstmShape {
        batch: b,
        steps: t,
        input: i,
        cell: c,
        hidden: h,
    };
    let mut grads = LstmGradTensors::zeros(device, &shape)?;
    let (dinputs, dweights) = grads.as_grads();
    lstm_backward(
        dinputs, dweights, &doutputs, &dh_final, &dc_final, &x, &saved, &h0, &c0, &lengths,
        &weights, &options,
    )?;
    // Tolerance: per step sums of <= I + H + 4 products, sigmoid/tanh whose GPU versions may be
    // a few ulp off, compounding mildly over T = 5 steps (forward and back): 2e-5 absolute and
    // 1e-4 relative, as tests/rust/ops/lstm.rs.
    let (atol, rtol) = (2e-5, 1e-4);
    Ok(vec![
        output(&outputs, "lstm_forward outputs", atol, rtol).await?,
        output(&c_state, "lstm_forward final cell", atol, rtol).await?,
        output(&grads.inputs, "lstm_backward dinputs", atol, rtol).await?,
        output(&grads.c_initial, "lstm_backward dc_initial", atol, rtol).await?,
        output(&grads.w_state, "lstm_backward dw_state", atol, rtol).await?,
        output(&grads.w_proj, "lstm_backward dw_proj", atol, rtol).await?,
    ])
}

/// Cross-entropy of (N, V) = (6, 37) logits with one ignored row, forward and backward.
async fn cross_entropy_case(device: &Device) -> Result<Vec<Output>> {
    let (n, v) = (6, 37);
    let ignore = u32::MAX;
    let logits = input(device, &[n, v], 51, 4.0, "logits")?; // (N, V)
    let targets: Tensor<u32> = Tensor::from_vec(
        device,
        &[n],
        vec![0, 36, 5, ignore, 17, 2], // (N), row 3 ignored
        "targets",
    )?;
    let mut losses = Tensor::uninit(device, &[n], "losses")?; // (N)
    let mut logsumexp = Tensor::uninit(device, &[n], "logsumexp")?; // (N)
    cross_entropy_forward(&mut losses, &mut logsumexp, &logits, &targets, ignore)?;
    let mut dlogits = Tensor::zeros(device, &[n, v], "dlogits")?; // (N, V)
    cross_entropy_backward(&mut dlogits, &logits, &logsumexp, &targets, ignore, 0.2)?;
    // Tolerance: a logsumexp of 37 exp() values of arguments in [-8, 0] (GPU exp/log a few ulp
    // off): losses ~4 agree to ~1e-6; gradients are probabilities (<= 1) times 0.2.
    Ok(vec![
        output(&losses, "cross_entropy_forward losses", 1e-5, 1e-5).await?,
        output(&dlogits, "cross_entropy_backward dlogits", 2e-6, 1e-5).await?,
    ])
}

/// Runs every case on `device` (the GPU under test) and on the CPU and compares them.
pub async fn check_kernels(device: &Device) -> Result<Vec<KernelCheck>> {
    if !device.is_gpu() {
        return Err(Error::invalid(
            "the kernel check compares a GPU device with the CPU; it was given the CPU",
        ));
    }
    let mut checks = Vec::new();
    for case in 0..6 {
        let (gpu, cpu) = match case {
            0 => (matmul_case(device).await?, matmul_case(&Device::Cpu).await?),
            1 => (
                layernorm_case(device).await?,
                layernorm_case(&Device::Cpu).await?,
            ),
            2 => (
                softmax_case(device).await?,
                softmax_case(&Device::Cpu).await?,
            ),
            3 => (
                attention_case(device).await?,
                attention_case(&Device::Cpu).await?,
            ),
            4 => (lstm_case(device).await?, lstm_case(&Device::Cpu).await?),
            _ => (
                cross_entropy_case(device).await?,
                cross_entropy_case(&Device::Cpu).await?,
            ),
        };
        checks.extend(gpu.iter().zip(&cpu).map(|(g, c)| compare(g, c)));
    }
    Ok(checks)
}

fn compare(gpu: &Output, cpu: &Output) -> KernelCheck {
    let largest = cpu.data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let tolerance = gpu.atol + gpu.rtol * largest;
    let mut max_abs_diff = 0.0f32;
    let mut finite = gpu.data.len() == cpu.data.len();
    for (g, c) in gpu.data.iter().zip(&cpu.data) {
        if !g.is_finite() && c.is_finite() {
            finite = false;
        }
        max_abs_diff = max_abs_diff.max((g - c).abs());
    }
    KernelCheck {
        name: gpu.name.clone(),
        shape: gpu.shape.clone(),
        max_abs_diff,
        tolerance,
        passed: finite && max_abs_diff <= tolerance,
    }
}
