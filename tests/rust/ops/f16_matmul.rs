//! fp16 weights multiplied in f16 arithmetic (`shaders/matmul_f16.wgsl`, ops/matmul/
//! f16_arithmetic.rs) on a GPU with `shader-f16` (lavapipe offers it): the product against the
//! CPU's f64 product of the same widened weights, within the kernel's stated error bound, odd
//! shapes, bias and alpha included; and the switch: `GpuOptions::f16_arithmetic` picks the path,
//! without it (the default) or without the feature the f32 path runs, bit-identical to today's.

use crate::op_checks::*;
use webnlu::device::{Device, DeviceChoice, GpuInfo, GpuOptions};
use webnlu::ops::matmul::*;
use webnlu::Tensor;

fn open(options: GpuOptions) -> Device {
    let device = Device::new_blocking(DeviceChoice::Gpu, &options)
        .unwrap_or_else(|e| panic!("{e}: install mesa-vulkan-drivers, WGPU_BACKEND=vulkan"));
    if let Device::Gpu(ctx) = &device {
        // WebGPU's default limits, as `op_checks::gpu()`
        assert_eq!(ctx.limits().max_compute_workgroup_storage_size, 16384);
        assert_eq!(ctx.limits().max_compute_invocations_per_workgroup, 256);
    }
    device
}

fn gpu_info(device: &Device) -> GpuInfo {
    match device {
        Device::Gpu(ctx) => ctx.info().clone(),
        Device::Cpu => panic!("not a GPU"),
    }
}

fn f16_device() -> Device {
    let device = open(GpuOptions {
        f16_arithmetic: true,
        ..GpuOptions::default()
    });
    let info = gpu_info(&device);
    assert!(
        info.has_shader_f16 && info.f16_arithmetic,
        "{} does not offer shader-f16 (lavapipe does): {info:?}",
        info.name
    );
    device
}

/// x (m, k), W (n, k) fp16 bits and bias (n), from `seed`; x spans [-4, 4) and W [-1, 1), so
/// that products fall below and above 1 and some partial sums cancel.
fn inputs(m: usize, n: usize, k: usize, seed: u64) -> (Vec<f32>, Vec<u16>, Vec<f32>) {
    let x = random_values(seed, m * k, -4.0, 4.0);
    let bits = random(n * k, seed + 1)
        .iter()
        .map(|&v| WeightDtype::Fp16.from_f32(v))
        .collect();
    (x, bits, random(n, seed + 2))
}

/// The f16-arithmetic product on `gpu` against the exact product of the same values (f64 sums
/// of the widened weights), within the bound of f16_arithmetic.rs:
/// `3 u S + K 2^-24 S + 3 K 2^-25`, u = 2^-11, S = |alpha| sum_k |x W|. Returns the largest
/// error as a fraction of u S (for the report), and whether any output differs from the f32
/// path's (which is exact up to f32 sums), i.e. f16 rounding really happened.
fn check_f16_product(gpu: &Device, m: usize, n: usize, k: usize, alpha: f32, bias: bool) -> f64 {
    let seed = (m * 1_000_000 + n * 1000 + k) as u64;
    let (x, bits, b) = inputs(m, n, k, seed);
    let w: Vec<f32> = bits.iter().map(|&h| WeightDtype::Fp16.to_f32(h)).collect();
    let xt = Tensor::from_vec(gpu, &[m, k], x.clone(), "x").unwrap();
    let bt = Tensor::from_vec(gpu, &[n], b.clone(), "bias").unwrap();
    let half = HalfWeight::from_bits(gpu, "w16", WeightDtype::Fp16, [n, k], &bits).unwrap();
    let mut y = Tensor::zeros(gpu, &[m, n], "y").unwrap();
    let bias_t = if bias { Some(&bt) } else { None };
    matmul_forward_half_in_f16(&mut y, &xt, &half, bias_t, alpha).unwrap();
    let got = y.to_vec_blocking().unwrap();
    let u = 2f64.powi(-11);
    let mut worst = 0.0f64;
    for r in 0..m {
        for c in 0..n {
            let (mut exact, mut s) = (0.0f64, 0.0f64);
            for kk in 0..k {
                let p = x[r * k + kk] as f64 * w[c * k + kk] as f64;
                exact += p;
                s += p.abs();
            }
            let alpha = alpha as f64;
            let want = alpha * exact + if bias { b[c] as f64 } else { 0.0 };
            let s = alpha.abs() * s;
            let kf = k as f64;
            // + the f32 epilogue's two roundings (alpha * sum, + bias): 2^-24 each, relative
            let bound = 3.0 * u * s
                + kf * 2f64.powi(-24) * s
                + 3.0 * kf * 2f64.powi(-25)
                + 2f64.powi(-23) * (want.abs() + s);
            let error = (got[r * n + c] as f64 - want).abs();
            assert!(
                error <= bound,
                "m={m} n={n} k={k} alpha={alpha} bias={bias}: y({r}, {c}) = {} want {want}: \
                 error {error:e} over the bound {bound:e} (S = {s})",
                got[r * n + c]
            );
            if s > 0.0 {
                worst = worst.max(error / (u * s));
            }
        }
    }
    worst
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 5, 7),
    (4, 33, 2),
    (17, 31, 33),   // k pairs over one 32-deep step, odd k (a padded half)
    (64, 65, 63),   // n over one 64-wide block
    (130, 70, 257), // m over two blocks, k over eight steps
    (5, 40, 384),   // MiniLM's width
];

#[test]
fn the_device_reports_shader_f16_and_the_path_it_takes() {
    // What the adapter offers, for the log (lavapipe: shader-f16 among them).
    let plain = open(GpuOptions::default());
    let info = gpu_info(&plain);
    eprintln!("{}: {info:?}", info.name);
    assert!(!info.f16_arithmetic, "off by default");
    let f16 = f16_device();
    assert!(gpu_info(&f16).f16_arithmetic);
    let hidden = open(GpuOptions {
        f16_arithmetic: true,
        hide_shader_f16: true,
        ..GpuOptions::default()
    });
    let info = gpu_info(&hidden);
    assert!(!info.has_shader_f16 && !info.f16_arithmetic, "{info:?}");
}

#[test]
fn f16_arithmetic_product_is_within_its_error_bound_of_the_exact_product() {
    let gpu = f16_device();
    let mut worst = 0.0f64;
    for &(m, n, k) in SHAPES {
        worst = worst.max(check_f16_product(&gpu, m, n, k, 1.0, true));
    }
    worst = worst.max(check_f16_product(&gpu, 9, 13, 50, 0.125, true));
    worst = worst.max(check_f16_product(&gpu, 9, 13, 50, -1.75, false));
    worst = worst.max(check_f16_product(&gpu, 0, 13, 50, 1.0, true));
    // the bound is 3 u S: a kernel in f32 would be far below 1 u S, one in f16 comes near it
    eprintln!("largest error: {worst:.3} u S (bound 3 u S)");
    assert!(
        worst > 0.05,
        "largest error {worst} u S: no f16 rounding seen"
    );
}

/// y from `matmul_forward_half` (the path the device picks) for a weight in `dtype`.
fn half_product(device: &Device, dtype: WeightDtype, m: usize, n: usize, k: usize) -> Vec<f32> {
    let (x, _, b) = inputs(m, n, k, 77);
    let w = random(n * k, 78);
    let xt = Tensor::from_vec(device, &[m, k], x, "x").unwrap();
    let bt = Tensor::from_vec(device, &[n], b, "bias").unwrap();
    let half = HalfWeight::from_f32(device, "w", dtype, [n, k], &w).unwrap();
    let mut y = Tensor::zeros(device, &[m, n], "y").unwrap();
    matmul_forward_half(&mut y, &xt, &half, Some(&bt)).unwrap();
    y.to_vec_blocking().unwrap()
}

fn f16_kernel_product(device: &Device, m: usize, n: usize, k: usize) -> Vec<f32> {
    let (x, _, b) = inputs(m, n, k, 77);
    let w = random(n * k, 78);
    let xt = Tensor::from_vec(device, &[m, k], x, "x").unwrap();
    let bt = Tensor::from_vec(device, &[n], b, "bias").unwrap();
    let half = HalfWeight::from_f32(device, "w", WeightDtype::Fp16, [n, k], &w).unwrap();
    let mut y = Tensor::zeros(device, &[m, n], "y").unwrap();
    matmul_forward_half_in_f16(&mut y, &xt, &half, Some(&bt), 1.0).unwrap();
    y.to_vec_blocking().unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn the_switch_picks_the_path_and_the_f32_path_is_unchanged_without_it() {
    let (m, n, k) = (19, 37, 45);
    let default = open(GpuOptions::default());
    let f16 = f16_device();
    let hidden = open(GpuOptions {
        f16_arithmetic: true,
        hide_shader_f16: true,
        ..GpuOptions::default()
    });
    for dtype in [WeightDtype::Fp16, WeightDtype::Bf16] {
        // Today's path: the f32 kernel (`matmul.wgsl`), bit-identical to the CPU's product of
        // the widened weights (tests/rust/ops/half_matmul.rs); the same bits on every device
        // that does not take the f16 path: off by default, the feature absent, or bf16.
        let today = bits(&half_product(&default, dtype, m, n, k));
        assert_eq!(
            bits(&half_product(&hidden, dtype, m, n, k)),
            today,
            "{dtype:?}"
        );
        let on = bits(&half_product(&f16, dtype, m, n, k));
        if dtype == WeightDtype::Bf16 {
            assert_eq!(on, today, "bf16 keeps the f32 path");
        } else {
            assert_ne!(on, today, "fp16 with f16_arithmetic: the f16 kernel");
            assert_eq!(on, bits(&f16_kernel_product(&f16, m, n, k)));
        }
    }
    // Asked for explicitly without the feature, on the CPU, or for bf16: a clear error.
    let x = Tensor::zeros(&hidden, &[2, 4], "x").unwrap();
    let mut y = Tensor::zeros(&hidden, &[2, 3], "y").unwrap();
    let w = HalfWeight::from_f32(&hidden, "w", WeightDtype::Fp16, [3, 4], &[0.5; 12]).unwrap();
    let error = matmul_forward_half_in_f16(&mut y, &x, &w, None, 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("w:") && error.contains("shader-f16"),
        "{error}"
    );
    let bf = HalfWeight::from_f32(&f16, "bf", WeightDtype::Bf16, [3, 4], &[0.5; 12]).unwrap();
    let x = Tensor::zeros(&f16, &[2, 4], "x").unwrap();
    let mut y = Tensor::zeros(&f16, &[2, 3], "y").unwrap();
    let error = matmul_forward_half_in_f16(&mut y, &x, &bf, None, 1.0)
        .unwrap_err()
        .to_string();
    assert!(error.contains("bf:") && error.contains("bf16"), "{error}");
    let cpu = HalfWeight::from_f32(&Device::Cpu, "c", WeightDtype::Fp16, [3, 4], &[0.5; 12]);
    let x = Tensor::zeros(&Device::Cpu, &[2, 4], "x").unwrap();
    let mut y = Tensor::zeros(&Device::Cpu, &[2, 3], "y").unwrap();
    let error = matmul_forward_half_in_f16(&mut y, &x, &cpu.unwrap(), None, 1.0)
        .unwrap_err()
        .to_string();
    assert!(error.contains("c:") && error.contains("CPU"), "{error}");
}
