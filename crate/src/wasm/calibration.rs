//! The calibration workload of `device: 'auto'` (web/lib/device-choice.js): a small,
//! forward-shaped piece of work that JavaScript times on the GPU and on the CPU to pick the
//! faster device for this machine. It is one linear layer of a MiniLM-sized model over a short
//! batch, `(64, 384) x (384, 384)`, run `repeats` times, then read back so that the GPU has
//! really finished when the promise resolves (a GPU submit alone returns before the work is done).

use crate::ops::matmul::{matmul_forward, MatmulOptions};
use crate::{Device, Result, Tensor};

/// Rows of the calibration input: a batch of a few short sentences.
pub const CALIBRATION_ROWS: usize = 64;
/// Hidden size of the calibration layer: MiniLM's.
pub const CALIBRATION_WIDTH: usize = 384;

/// Runs the calibration matmul `repeats` times on `device` and returns the sum of the last
/// result (read back, so every repeat has run; the value itself only keeps the work observable).
pub async fn run_calibration_workload(device: &Device, repeats: usize) -> Result<f64> {
    let (m, c) = (CALIBRATION_ROWS, CALIBRATION_WIDTH);
    // Deterministic, small values: the result does not matter, only the time it takes.
    let input: Vec<f32> = (0..m * c).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect();
    let weight: Vec<f32> = (0..c * c).map(|i| ((i % 13) as f32 - 6.0) * 0.01).collect();
    let input = Tensor::from_vec(device, &[m, c], input, "calibration_input")?; // (m, C)
    let weight = Tensor::from_vec(device, &[c, c], weight, "calibration_weight")?; // (C, C)
    let mut out = Tensor::uninit(device, &[m, c], "calibration_out")?; // (m, C)
    for _ in 0..repeats.max(1) {
        matmul_forward(&mut out, &input, &weight, None, MatmulOptions::default())?;
    }
    let values = out.to_vec().await?;
    Ok(values.iter().map(|&x| x as f64).sum())
}
