//! Shared helpers of the op tests (included with `mod op_checks;`, not a test on its own).
#![allow(dead_code)]

use webnlu::device::{Device, DeviceChoice, GpuOptions};
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

/// Deterministic values in [-1, 1) (xorshift64*), so failures reproduce.
pub fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 bits
            bits as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// |got - want| <= atol + rtol * |want| elementwise, with the worst index in the message.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    let mut worst = (0usize, 0.0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let excess = (g - w).abs() - (atol + rtol * w.abs());
        assert!(!g.is_nan() || w.is_nan(), "{what}: NaN at {i} (want {w})");
        if excess > worst.1 {
            worst = (i, excess);
        }
    }
    let i = worst.0;
    assert!(
        worst.1 <= 0.0,
        "{what}: at {i} got {} want {} (atol {atol}, rtol {rtol})",
        got[i],
        want[i]
    );
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
    let eps = 1e-2f32;
    let loss = |x: &[f32]| -> f64 {
        forward(x)
            .iter()
            .zip(w)
            .map(|(&y, &wi)| y as f64 * wi as f64)
            .sum()
    };
    let mut numeric = vec![0.0f32; x.len()];
    let mut probe = x.to_vec();
    for i in 0..x.len() {
        let keep = probe[i];
        probe[i] = keep + eps;
        let plus = loss(&probe);
        probe[i] = keep - eps;
        let minus = loss(&probe);
        probe[i] = keep;
        numeric[i] = ((plus - minus) / (2.0 * eps as f64)) as f32;
    }
    assert_close(what, analytic, &numeric, 2e-3, 1e-2);
}

/// `tests/fixtures/models/<name>`, checked to hold `files`; a missing one fails the test with the
/// command that downloads it.
pub fn fixture_model_dir(name: &str, files: &[&str]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models")
        .join(name);
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
