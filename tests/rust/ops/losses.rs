//! Losses: forward against direct formulas, backward against central finite differences,
//! bad targets rejected, and the WGSL kernels validated by naga.

use crate::op_checks::*;
use webnlu::ops::losses::*;

// Tolerance shared by the finite-difference checks below: the losses are smooth, evaluated in f32
// (absolute rounding ~1e-6 on sums of order 10), so with h = 1e-2 the quotient carries
// ~1e-6 / 2e-2 = 5e-5 of rounding noise and ~h^2 |f'''| / 6 < 2e-5 of truncation error.
const FD_H: f32 = 1e-2;
const FD_ABS: f64 = 5e-4;
const FD_REL: f64 = 1e-3;

#[test]
fn cross_entropy_forward_matches_definition() {
    let (n, v) = (4, 5);
    let logits = random_values(1, n * v, -3.0, 3.0);
    let targets = [2, IGNORE_INDEX, 0, 4];
    let mut losses = vec![0.0; n];
    let mut lse = vec![0.0; n];
    cross_entropy_forward_cpu(&mut losses, &mut lse, &logits, &targets, IGNORE_INDEX, n, v)
        .unwrap();
    for row in 0..n {
        let x = &logits[row * v..(row + 1) * v];
        let z: f64 = x.iter().map(|&a| (a as f64).exp()).sum();
        assert!(
            (lse[row] as f64 - z.ln()).abs() < 1e-5,
            "logsumexp row {row}"
        );
        let expected = if targets[row] == IGNORE_INDEX {
            0.0
        } else {
            z.ln() - x[targets[row] as usize] as f64
        };
        // f32 logsumexp of 5 values of size ~3: a few ulps of ~4
        assert!(
            (losses[row] as f64 - expected).abs() < 1e-5,
            "loss row {row}"
        );
    }
    let (mean_loss, count) = mean_over_valid_cpu(&losses, &targets, IGNORE_INDEX).unwrap();
    assert_eq!(count, 3);
    assert!((mean_loss - (losses[0] + losses[2] + losses[3]) / 3.0).abs() < 1e-6);
    // large logits stay finite (the max is subtracted before exp)
    let big = vec![1000.0f32, 0.0, -1000.0];
    let (mut l, mut s) = (vec![0.0; 1], vec![0.0; 1]);
    cross_entropy_forward_cpu(&mut l, &mut s, &big, &[1], IGNORE_INDEX, 1, 3).unwrap();
    assert_eq!(l[0], 1000.0);
}

#[test]
fn cross_entropy_backward_matches_finite_differences() {
    let (n, v) = (5, 7);
    let logits = random_values(2, n * v, -2.0, 2.0);
    let targets = [6, 0, IGNORE_INDEX, 3, 3];
    let scale = 1.0 / 4.0; // mean over the 4 valid rows
    let loss = |x: &[f32]| {
        let (mut l, mut s) = (vec![0.0; n], vec![0.0; n]);
        cross_entropy_forward_cpu(&mut l, &mut s, x, &targets, IGNORE_INDEX, n, v).unwrap();
        l.iter().map(|&a| a as f64).sum::<f64>() * scale as f64
    };
    let (mut l, mut lse) = (vec![0.0; n], vec![0.0; n]);
    cross_entropy_forward_cpu(&mut l, &mut lse, &logits, &targets, IGNORE_INDEX, n, v).unwrap();
    let mut dlogits = vec![0.25f32; n * v];
    cross_entropy_backward_cpu(
        &mut dlogits,
        &logits,
        &lse,
        &targets,
        IGNORE_INDEX,
        scale,
        n,
        v,
    )
    .unwrap();
    dlogits.iter_mut().for_each(|d| *d -= 0.25); // it accumulated onto 0.25
    let numeric = central_difference(&logits, FD_H, loss);
    assert_close("cross_entropy dlogits", &dlogits, &numeric, FD_ABS, FD_REL);
    assert!(
        dlogits[2 * v..3 * v].iter().all(|&d| d.abs() < 1e-7),
        "ignored row has no gradient"
    );
}

#[test]
fn cross_entropy_rejects_bad_targets_and_sizes() {
    let logits = vec![0.0f32; 6];
    let (mut l, mut s) = (vec![0.0; 2], vec![0.0; 2]);
    let err = cross_entropy_forward_cpu(&mut l, &mut s, &logits, &[0, 3], IGNORE_INDEX, 2, 3)
        .unwrap_err();
    assert!(err.to_string().contains("target 3 of row 1"), "{err}");
    assert!(
        cross_entropy_forward_cpu(&mut l, &mut s, &logits, &[0, 7], IGNORE_INDEX, 2, 3).is_err()
    );
    assert!(
        cross_entropy_forward_cpu(&mut l, &mut s, &logits, &[0, 1], IGNORE_INDEX, 2, 4).is_err()
    );
    // empty batch is fine
    cross_entropy_forward_cpu(&mut [], &mut [], &[], &[], IGNORE_INDEX, 0, 3).unwrap();
    assert_eq!(
        mean_over_valid_cpu(&[], &[], IGNORE_INDEX).unwrap(),
        (0.0, 0)
    );
    assert_eq!(
        mean_over_valid_cpu(&[1.0], &[IGNORE_INDEX], IGNORE_INDEX).unwrap(),
        (0.0, 0)
    );
}

#[test]
fn bce_with_logits_forward_and_backward() {
    let n = 9;
    let mut logits = random_values(3, n, -4.0, 4.0);
    logits[0] = 80.0; // far saturated: must stay finite and exact
    logits[1] = -80.0;
    let targets: Vec<f32> = random_values(4, n, 0.0, 1.0);
    let mut losses = vec![0.0; n];
    bce_with_logits_forward_cpu(&mut losses, &logits, &targets).unwrap();
    for i in 0..n {
        let (x, y) = (logits[i] as f64, targets[i] as f64);
        let p = 1.0 / (1.0 + (-x).exp());
        let direct = if i < 2 {
            // saturated: ln sigmoid(80) underflows in the naive form; use the limit
            if x > 0.0 {
                (1.0 - y) * x
            } else {
                -y * x
            }
        } else {
            -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
        };
        // f32 arithmetic on terms up to 80: relative 1e-6
        assert!(
            (losses[i] as f64 - direct).abs() <= 1e-5 + 1e-6 * direct.abs(),
            "element {i}: {} vs {direct}",
            losses[i]
        );
    }
    let probe = &logits[2..];
    let scale = 0.5;
    let numeric = central_difference(probe, FD_H, |x| {
        let mut l = vec![0.0; x.len()];
        bce_with_logits_forward_cpu(&mut l, x, &targets[2..]).unwrap();
        l.iter().map(|&a| a as f64).sum::<f64>() * scale as f64
    });
    let mut d = vec![0.0f32; n - 2];
    bce_with_logits_backward_cpu(&mut d, probe, &targets[2..], scale).unwrap();
    assert_close("bce dlogits", &d, &numeric, FD_ABS, FD_REL);
}

#[test]
fn mse_forward_and_backward() {
    let n = 11;
    let p = random_values(5, n, -2.0, 2.0);
    let y = random_values(6, n, -2.0, 2.0);
    let mut l = vec![0.0; n];
    mse_forward_cpu(&mut l, &p, &y).unwrap();
    assert_eq!(l[3], (p[3] - y[3]) * (p[3] - y[3]));
    let scale = 1.0 / n as f32;
    let numeric = central_difference(&p, FD_H, |x| {
        let mut l = vec![0.0; n];
        mse_forward_cpu(&mut l, x, &y).unwrap();
        mean_cpu(&l) as f64
    });
    let mut d = vec![0.0f32; n];
    mse_backward_cpu(&mut d, &p, &y, scale).unwrap();
    // quadratic: the central difference is exact up to rounding of mean() in f32 (~2e-7 / 2e-2)
    assert_close("mse dpredictions", &d, &numeric, 1e-4, 1e-4);
    assert!(mse_forward_cpu(&mut l, &p, &y[..3]).is_err());
}

use crate::op_checks;

use webnlu::Tensor;

fn up(d: &webnlu::Device, shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_vec(d, shape, v.to_vec(), "t").unwrap()
}

#[test]
fn gpu_matches_cpu_cross_entropy() {
    let gpu = op_checks::gpu();
    // odd row counts, odd vocab (not a multiple of 256, and above 256), size 1 and empty
    for (n, v) in [(1usize, 1usize), (7, 1000), (3, 257), (0, 5), (2, 30522)] {
        let logits = random_values(n as u64 + v as u64, n * v, -4.0, 4.0);
        let targets: Vec<u32> = (0..n)
            .map(|i| {
                if i % 3 == 1 {
                    IGNORE_INDEX
                } else {
                    ((i * 7919) % v) as u32
                }
            })
            .collect();
        let (mut l, mut s) = (vec![0.0; n], vec![0.0; n]);
        cross_entropy_forward_cpu(&mut l, &mut s, &logits, &targets, IGNORE_INDEX, n, v).unwrap();
        let (count, scale) = {
            let c = targets.iter().filter(|&&t| t != IGNORE_INDEX).count();
            (c, if c > 0 { 1.0 / c as f32 } else { 0.0 })
        };
        let mut dl = vec![0.5; n * v];
        cross_entropy_backward_cpu(&mut dl, &logits, &s, &targets, IGNORE_INDEX, scale, n, v)
            .unwrap();
        let (mean, _) = mean_over_valid_cpu(&l, &targets, IGNORE_INDEX).unwrap();

        let lg = up(&gpu, &[n, v], &logits);
        let tg = Tensor::<u32>::from_vec(&gpu, &[n], targets.clone(), "targets").unwrap();
        let (mut lo, mut se) = (
            Tensor::zeros(&gpu, &[n], "l").unwrap(),
            Tensor::zeros(&gpu, &[n], "s").unwrap(),
        );
        cross_entropy_forward(&mut lo, &mut se, &lg, &tg, IGNORE_INDEX).unwrap();
        let mut dg = up(&gpu, &[n, v], &vec![0.5; n * v]);
        cross_entropy_backward(&mut dg, &lg, &se, &tg, IGNORE_INDEX, scale).unwrap();
        let mut m = Tensor::zeros(&gpu, &[2], "mean").unwrap();
        cross_entropy_mean(&mut m, &lo, &tg, IGNORE_INDEX).unwrap();
        // a tree reduction vs a sequential sum of up to 30522 exp terms: relative ~1e-6,
        // logsumexp ~ 10 -> 1e-5 absolute is a few ulps
        op_checks::assert_close(
            &format!("ce losses n={n} v={v}"),
            &op_checks::download(&lo),
            &l,
            1e-5,
            1e-5,
        );
        op_checks::assert_close(
            &format!("ce logsumexp n={n} v={v}"),
            &op_checks::download(&se),
            &s,
            1e-5,
            1e-5,
        );
        op_checks::assert_close(
            &format!("ce dlogits n={n} v={v}"),
            &op_checks::download(&dg),
            &dl,
            1e-6,
            1e-5,
        );
        op_checks::assert_close(
            &format!("ce mean n={n} v={v}"),
            &op_checks::download(&m),
            &[mean, count as f32],
            1e-5,
            1e-5,
        );
    }
}

#[test]
fn gpu_matches_cpu_elementwise_losses() {
    let gpu = op_checks::gpu();
    for n in [1usize, 255, 1027, 0] {
        let x = random_values(n as u64, n, -6.0, 6.0);
        let y = random_values(n as u64 + 1, n, 0.0, 1.0);
        let (xg, yg) = (up(&gpu, &[n], &x), up(&gpu, &[n], &y));
        let scale = 1.0 / n.max(1) as f32;
        // BCE: the GPU uses log(1 + e) for log1p(e), e = exp(-|x|) <= 1: ~1 ulp of 1 absolute
        let mut want = vec![0.0; n];
        bce_with_logits_forward_cpu(&mut want, &x, &y).unwrap();
        let mut got = Tensor::zeros(&gpu, &[n], "l").unwrap();
        bce_with_logits_forward(&mut got, &xg, &yg).unwrap();
        op_checks::assert_close("bce forward", &op_checks::download(&got), &want, 1e-6, 1e-5);
        let mut want = vec![0.0; n];
        bce_with_logits_backward_cpu(&mut want, &x, &y, scale).unwrap();
        let mut got = Tensor::zeros(&gpu, &[n], "d").unwrap();
        bce_with_logits_backward(&mut got, &xg, &yg, scale).unwrap();
        op_checks::assert_close(
            "bce backward",
            &op_checks::download(&got),
            &want,
            1e-7,
            1e-5,
        );
        let mut want = vec![0.0; n];
        mse_forward_cpu(&mut want, &x, &y).unwrap();
        let mut got = Tensor::zeros(&gpu, &[n], "l").unwrap();
        mse_forward(&mut got, &xg, &yg).unwrap();
        op_checks::assert_close("mse forward", &op_checks::download(&got), &want, 0.0, 1e-6);
        let mut mean_t = Tensor::zeros(&gpu, &[1], "mean").unwrap();
        loss_mean(&mut mean_t, &got).unwrap();
        op_checks::assert_close(
            "loss mean",
            &op_checks::download(&mean_t),
            &[mean_cpu(&want)],
            1e-5,
            1e-5,
        );
        let mut want = vec![0.0; n];
        mse_backward_cpu(&mut want, &x, &y, scale).unwrap();
        let mut got = Tensor::zeros(&gpu, &[n], "d").unwrap();
        mse_backward(&mut got, &xg, &yg, scale).unwrap();
        op_checks::assert_close("mse backward", &op_checks::download(&got), &want, 0.0, 1e-6);
    }
}
