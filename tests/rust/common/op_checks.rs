//! Shared helpers of the tests (a module of the test binaries, declared in their main.rs): the
//! GPU device, the one random generator, the one comparison, finite differences, fixtures.
#![allow(dead_code)]

use webnlu::device::{Device, DeviceChoice, GpuOptions};
use webnlu::train::SplitMix64;
use webnlu::Tensor;

/// The GPU with WebGPU's default limits (never lavapipe's larger ones). No adapter is a test
/// failure, not a skip: install Mesa lavapipe (`apt-get install mesa-vulkan-drivers
/// libvulkan1`) and run with `XDG_RUNTIME_DIR=/tmp WGPU_BACKEND=vulkan`.
pub fn gpu() -> Device {
    let device =
        Device::new_blocking(DeviceChoice::Gpu, &GpuOptions::default()).unwrap_or_else(|e| {
            panic!("{e}: install mesa-vulkan-drivers (lavapipe) and set WGPU_BACKEND=vulkan")
        });
    if let Device::Gpu(ctx) = &device {
        let limits = ctx.limits();
        assert_eq!(limits.max_compute_invocations_per_workgroup, 256);
        assert_eq!(limits.max_compute_workgroup_storage_size, 16384);
        assert_eq!(limits.max_storage_buffer_binding_size, 128 << 20);
    }
    device
}

/// The lavapipe GPU with storage bindings capped at `bytes` (below WebGPU's 128 MiB), so that
/// small tensors are held as row shards.
pub fn gpu_capped(bytes: u64) -> Device {
    Device::new_blocking(
        DeviceChoice::Gpu,
        &GpuOptions {
            max_binding_bytes: Some(bytes),
            ..GpuOptions::default()
        },
    )
    .expect("lavapipe (see op_checks::gpu)")
}

/// `result`'s out-of-memory refusal: the bytes it says are needed and its message (a panic
/// for anything else).
pub fn out_of_memory_refusal<T>(result: webnlu::Result<T>) -> (u64, String) {
    match result {
        Err(e @ webnlu::Error::OutOfMemory { bytes, .. }) => (bytes, e.to_string()),
        Err(other) => panic!("not a refusal: {other}"),
        Ok(_) => panic!("not refused"),
    }
}

/// The tests' one generator: the crate's SplitMix64 (Steele, Lea, Flood, OOPSLA 2014), its seed
/// scrambled so that nearby seeds give unrelated streams. Every random input of the tests comes
/// from here, so a failure reproduces from its seed.
pub fn rng(seed: u64) -> SplitMix64 {
    SplitMix64::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
}

/// Deterministic values uniform in `[lo, hi)` (24 random bits each).
pub fn random_values(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    rng(seed).uniform_values(n, lo, hi)
}

/// Deterministic values uniform in `[-1, 1)`.
pub fn random(n: usize, seed: u64) -> Vec<f32> {
    random_values(seed, n, -1.0, 1.0)
}

/// The tests' one comparison: `|got - want| <= atol + rtol * |want|` elementwise, in f64, with
/// the worst element in the message. `want` is f32 (another path's output) or f64 (a float64
/// reference, a finite difference).
pub fn assert_close<W: Copy + Into<f64>>(
    what: &str,
    got: &[f32],
    want: &[W],
    atol: impl Into<f64>,
    rtol: impl Into<f64>,
) {
    let (atol, rtol) = (atol.into(), rtol.into());
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst = (0usize, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g as f64, w.into());
        assert!(!g.is_nan() || w.is_nan(), "{what}: NaN at {i} (want {w})");
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        if excess > worst.1 {
            worst = (i, excess);
        }
    }
    let i = worst.0;
    assert!(
        worst.1 <= 0.0,
        "{what}: at {i} got {} want {} (atol {atol}, rtol {rtol})",
        got[i],
        want[i].into()
    );
}

/// `sum_i weights[i] * values[i]` in f64: turns a vector output into a scalar loss whose
/// gradient with respect to the output is `weights`.
pub fn weighted_sum(values: &[f32], weights: &[f32]) -> f64 {
    assert_eq!(values.len(), weights.len());
    values
        .iter()
        .zip(weights)
        .map(|(&v, &w)| v as f64 * w as f64)
        .sum()
}

/// Central differences `(f(x + h e_i) - f(x - h e_i)) / 2h` for every coordinate of `x`.
pub fn central_difference(x: &[f32], h: f32, mut f: impl FnMut(&[f32]) -> f64) -> Vec<f64> {
    let mut probe = x.to_vec();
    (0..x.len())
        .map(|i| {
            let original = probe[i];
            probe[i] = original + h;
            let up = f(&probe);
            probe[i] = original - h;
            let down = f(&probe);
            probe[i] = original;
            // the step actually taken in f32 (x + h may round)
            let step = (original + h) as f64 - (original - h) as f64;
            (up - down) / step
        })
        .collect()
}

pub fn upload(device: &Device, shape: &[usize], data: &[f32], name: &str) -> Tensor {
    Tensor::from_vec(device, shape, data.to_vec(), name).expect("upload")
}

pub fn download(t: &Tensor) -> Vec<f32> {
    t.to_vec_blocking().expect("read back")
}

/// Central finite differences of the scalar loss L(x) = sum_i w_i * f(x)_i, compared with the
/// analytic gradient `analytic` (= backward with dout = w into zeros).
///
/// Why these numbers: the forward runs in f32 while L is summed in f64. With eps = 1e-2 the
/// truncation error of the central difference is O(eps^2 * f''') ~ 1e-4 for our smooth ops,
/// and the rounding error of f32 outputs (~6e-8 relative, |L| ~ sqrt(n)) divided by 2 eps
/// stays below ~1e-4 for n <= 10^4. So `atol = 2e-3, rtol = 1e-2` is loose enough to pass for
/// correct gradients and tight enough to catch a wrong term (errors of O(1) * |x|).
pub fn check_gradient(
    what: &str,
    x: &[f32],
    analytic: &[f32],
    forward: impl Fn(&[f32]) -> Vec<f32>,
    w: &[f32],
) {
    let numeric = central_difference(x, 1e-2, |x| weighted_sum(&forward(x), w));
    assert_close(what, analytic, &numeric, 2e-3, 1e-2);
}

/// `tests/fixtures/models/<name>`, checked to hold `files`; a missing one fails the test with the
/// command that downloads it.
pub fn fixture_model_dir(name: &str, files: &[&str]) -> std::path::PathBuf {
    // the repository: the first folder above the test's package (crate/ or crate/cli/) with tests/
    let package = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = package
        .ancestors()
        .find(|dir| dir.join("tests/fixtures").is_dir())
        .unwrap_or(package);
    let dir = root.join("tests/fixtures/models").join(name);
    assert!(
        dir.is_dir(),
        "{} is missing: run `bash tests/setup/fetch-assets.sh {name}`",
        dir.display()
    );
    for file in files {
        assert!(
            dir.join(file).is_file(),
            "missing fixture {}: run `bash tests/setup/fetch-assets.sh {name}`",
            dir.join(file).display()
        );
    }
    dir
}

/// AllenNLP's ELMo test model (`tests/fixtures/models/elmo-fixture`) loaded on `device`.
pub fn load_elmo_fixture(device: &Device) -> webnlu::models::elmo::ElmoBiLm {
    let dir = fixture_model_dir("elmo-fixture", &["options.json", "lm_weights.hdf5"]);
    let options = std::fs::read_to_string(dir.join("options.json")).unwrap();
    let weights = std::fs::read(dir.join("lm_weights.hdf5")).unwrap();
    webnlu::models::elmo::ElmoBiLm::load(&options, "lm_weights.hdf5", &weights, device).unwrap()
}
