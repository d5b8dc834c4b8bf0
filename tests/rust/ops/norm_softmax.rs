//! LayerNorm and softmax (with additive mask): GPU == CPU on odd sizes, 1 and empty;
//! backward == finite differences; accumulation; shape errors.

use crate::op_checks;
use op_checks::*;
use webnlu::ops::layernorm::*;
use webnlu::ops::softmax::*;
use webnlu::{Device, Tensor};

const EPS: f32 = 1e-12; // BERT's layer_norm_eps

/// Runs forward + backward on `device` from the same inputs; returns
/// [out, mean, rstd, dx, dweight, dbias] with gradients accumulated onto `start` values.
fn layernorm_all(device: &Device, rows: usize, c: usize) -> Vec<Vec<f32>> {
    let x: Vec<f32> = random(rows * c, 1).iter().map(|v| 3.0 * v + 0.5).collect();
    let (w, b) = (random(c, 2), random(c, 3));
    let dout = random(rows * c, 4);
    let mut out = Tensor::uninit(device, &[rows, c], "out").unwrap();
    let mut mean = Tensor::uninit(device, &[rows], "mean").unwrap();
    let mut rstd = Tensor::uninit(device, &[rows], "rstd").unwrap();
    let (tx, tw) = (
        upload(device, &[rows, c], &x, "x"),
        upload(device, &[c], &w, "w"),
    );
    layernorm_forward(
        &mut out,
        &mut mean,
        &mut rstd,
        &tx,
        &tw,
        &upload(device, &[c], &b, "b"),
        EPS,
    )
    .unwrap();
    let mut dx = upload(device, &[rows, c], &random(rows * c, 5), "dx");
    let mut dw = upload(device, &[c], &random(c, 6), "dw");
    let mut db = upload(device, &[c], &random(c, 7), "db");
    layernorm_backward(
        Some(&mut dx),
        Some(&mut dw),
        Some(&mut db),
        &upload(device, &[rows, c], &dout, "dout"),
        &tx,
        &tw,
        &mean,
        &rstd,
    )
    .unwrap();
    [&out, &mean, &rstd, &dx, &dw, &db]
        .iter()
        .map(|t| download(t))
        .collect()
}

#[test]
fn layernorm_gpu_matches_cpu() {
    let gpu = gpu();
    // C = 768 (BERT), odd C below and above the 256-wide workgroup, a single row/column, empty.
    for &(rows, c) in &[(3, 768), (5, 7), (2, 300), (1, 1), (0, 16)] {
        let cpu = layernorm_all(&Device::Cpu, rows, c);
        let got = layernorm_all(&gpu, rows, c);
        for (i, name) in ["out", "mean", "rstd", "dx", "dweight", "dbias"]
            .iter()
            .enumerate()
        {
            // Tree reduction vs sequential f32 sums: relative differences ~ sqrt(C) ulp; rstd
            // of a C = 1 row is 1/sqrt(eps) = 1e6, hence the relative part.
            assert_close(
                &format!("layernorm {name} ({rows}, {c})"),
                &got[i],
                &cpu[i],
                2e-5,
                2e-5,
            );
        }
    }
}

#[test]
fn layernorm_backward_matches_finite_differences() {
    let (rows, c) = (3, 10);
    let x: Vec<f32> = random(rows * c, 11).iter().map(|v| 2.0 * v).collect();
    let (w, b) = (random(c, 12), random(c, 13));
    let dout = random(rows * c, 14);
    let forward = |x: &[f32], w: &[f32], b: &[f32]| {
        let (mut out, mut mean, mut rstd) = (vec![0.0; rows * c], vec![0.0; rows], vec![0.0; rows]);
        layernorm_forward_cpu(&mut out, &mut mean, &mut rstd, x, w, b, c, 1e-5);
        (out, mean, rstd)
    };
    let (_, mean, rstd) = forward(&x, &w, &b);
    let (mut dx, mut dw, mut db) = (vec![0.0; rows * c], vec![0.0; c], vec![0.0; c]);
    layernorm_backward_dx_cpu(&mut dx, &dout, &x, &w, &mean, &rstd, c);
    layernorm_backward_params_cpu(&mut dw, &mut db, &dout, &x, &mean, &rstd, c);
    check_gradient("layernorm dx", &x, &dx, |x| forward(x, &w, &b).0, &dout);
    check_gradient(
        "layernorm dweight",
        &w,
        &dw,
        |w| forward(&x, w, &b).0,
        &dout,
    );
    check_gradient("layernorm dbias", &b, &db, |b| forward(&x, &w, b).0, &dout);
}

/// [y, dx] on `device`; mask (M, L) shared by R / M rows; dx accumulated onto `start`.
fn softmax_all(
    device: &Device,
    rows: usize,
    cols: usize,
    mask_rows: Option<usize>,
) -> Vec<Vec<f32>> {
    let x: Vec<f32> = random(rows * cols, 21).iter().map(|v| 4.0 * v).collect();
    let mask_data: Option<Vec<f32>> = mask_rows.map(|m| {
        // BERT's additive padding mask: 0 kept, finfo(f32).min for padding (every 3rd column).
        (0..m * cols)
            .map(|i| if (i % cols) % 3 == 2 { f32::MIN } else { 0.0 })
            .collect()
    });
    let mask = mask_data
        .as_ref()
        .map(|d| upload(device, &[mask_rows.unwrap(), cols], d, "mask"));
    let mut y = Tensor::uninit(device, &[rows, cols], "y").unwrap();
    let tx = upload(device, &[rows, cols], &x, "x");
    softmax_forward(&mut y, &tx, mask.as_ref()).unwrap();
    let mut dx = upload(device, &[rows, cols], &random(rows * cols, 22), "dx");
    softmax_backward(
        &mut dx,
        &y,
        &upload(device, &[rows, cols], &random(rows * cols, 23), "dy"),
    )
    .unwrap();
    vec![download(&y), download(&dx)]
}

#[test]
fn softmax_gpu_matches_cpu() {
    let gpu = gpu();
    for &(rows, cols, mask) in &[
        (6, 128, Some(2)),
        (5, 7, None),
        (4, 300, Some(1)),
        (1, 1, None),
        (3, 1, Some(3)),
        (0, 5, None),
        (2, 0, None),
    ] {
        let cpu = softmax_all(&Device::Cpu, rows, cols, mask);
        let got = softmax_all(&gpu, rows, cols, mask);
        // Probabilities in [0, 1]; exp and the reduction order differ by a few ulp.
        assert_close(
            &format!("softmax y ({rows}, {cols})"),
            &got[0],
            &cpu[0],
            1e-6,
            1e-5,
        );
        assert_close(
            &format!("softmax dx ({rows}, {cols})"),
            &got[1],
            &cpu[1],
            1e-6,
            1e-5,
        );
        if let Some(m) = mask {
            // Masked columns get exactly zero probability.
            let _ = m;
            for r in 0..rows {
                for j in (2..cols).step_by(3) {
                    assert_eq!(got[0][r * cols + j], 0.0, "masked ({r}, {j})");
                }
            }
        }
    }
}

#[test]
fn softmax_backward_matches_finite_differences() {
    let (rows, cols) = (4, 9);
    let x = random(rows * cols, 31);
    let mask: Vec<f32> = (0..2 * cols)
        .map(|i| if i % 4 == 1 { -1e4 } else { 0.0 })
        .collect();
    let w = random(rows * cols, 32);
    let forward = |x: &[f32]| {
        let mut y = vec![0.0; rows * cols];
        softmax_forward_cpu(&mut y, x, Some(&mask), cols, rows / 2);
        y
    };
    let y = forward(&x);
    let mut dx = vec![0.0; rows * cols];
    softmax_backward_cpu(&mut dx, &y, &w, cols);
    check_gradient("softmax dx", &x, &dx, forward, &w);
}

#[test]
fn shape_errors() {
    let cpu = Device::Cpu;
    let x = Tensor::zeros(&cpu, &[6, 5], "scores").unwrap();
    let mut y = Tensor::zeros(&cpu, &[6, 5], "probs").unwrap();
    let bad_mask = Tensor::zeros(&cpu, &[4, 5], "mask").unwrap(); // 4 does not divide 6
    assert!(matches!(
        softmax_forward(&mut y, &x, Some(&bad_mask)),
        Err(webnlu::Error::Shape { .. })
    ));
    let (mut mean, mut rstd) = (
        Tensor::zeros(&cpu, &[6], "mean").unwrap(),
        Tensor::zeros(&cpu, &[6], "rstd").unwrap(),
    );
    let w = Tensor::zeros(&cpu, &[4], "ln.weight").unwrap();
    let err = layernorm_forward(&mut y, &mut mean, &mut rstd, &x, &w, &w, 1e-5).unwrap_err();
    assert!(err.to_string().contains("ln.weight"), "{err}");
    let empty_c = Tensor::zeros(&cpu, &[6, 0], "x").unwrap();
    assert!(layernorm_forward(&mut y, &mut mean, &mut rstd, &empty_c, &w, &w, 1e-5).is_err());
}
