//! Highway (AllenNLP convention): forward against the formula, backward against finite
//! differences for input, weight and bias, the TF weight conversion, and the WGSL kernels.

use crate::op_checks::*;
use webnlu::ops::highway::*;

fn forward(x: &[f32], w: &[f32], b: &[f32], n: usize, d: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut y, mut p) = (vec![0.0; n * d], vec![0.0; n * 2 * d]);
    highway_forward_cpu(&mut y, &mut p, x, w, b, n, d).unwrap();
    (y, p)
}

#[test]
fn forward_is_gate_times_input_plus_rest_times_relu() {
    let (n, d) = (1, 2);
    // W rows: nonlinear k=0, k=1, gate k=0, k=1
    let w = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
    let b = [0.0, 0.0, 0.0, 100.0];
    let x = [-2.0f32, 3.0];
    let (y, _) = forward(&x, &w, &b, n, d);
    // column 0: gate sigmoid(0) = 0.5, relu(-2) = 0 -> 0.5 * -2 = -1
    assert!((y[0] + 1.0).abs() < 1e-6);
    // column 1: gate sigmoid(100) = 1 -> carries x
    assert!((y[1] - 3.0).abs() < 1e-6);
}

#[test]
fn backward_matches_finite_differences() {
    let (n, d) = (3, 5);
    let x = random_values(1, n * d, -1.0, 1.0);
    let w = random_values(2, 2 * d * d, -0.5, 0.5);
    let b = random_values(3, 2 * d, -0.5, 0.5);
    let dy = random_values(4, n * d, -1.0, 1.0);
    let (_, proj) = forward(&x, &w, &b, n, d);
    // relu kinks: a finite difference straddling proj == 0 would be wrong. A probe moves a
    // pre-activation by at most h * max(|x|, |w|, 1) = 1e-3 (h = 1e-3, |x| < 1, |w| < 0.5), so
    // every nonlinear pre-activation must sit further than that from 0 (checked here).
    assert!(
        (0..n).all(|r| (0..d).all(|k| proj[r * 2 * d + k].abs() > 2e-3)),
        "test data sits on a relu kink; change the seed"
    );
    let (mut dx, mut dw, mut db) = (vec![0.0; n * d], vec![0.0; 2 * d * d], vec![0.0; 2 * d]);
    highway_backward_cpu(&mut dx, &mut dw, &mut db, &dy, &x, &proj, &w, n, d).unwrap();
    let h = 1e-3;
    let nx = central_difference(&x, h, |p| weighted_sum(&forward(p, &w, &b, n, d).0, &dy));
    let nw = central_difference(&w, h, |p| weighted_sum(&forward(&x, p, &b, n, d).0, &dy));
    let nb = central_difference(&b, h, |p| weighted_sum(&forward(&x, &w, p, n, d).0, &dy));
    // smooth away from the kinks; values ~1, 15 output terms: rounding ~15 * 6e-8 / 2e-3 = 5e-4
    // worst case (typically far less), truncation ~h^2 = 1e-6
    assert_close("highway dx", &dx, &nx, 5e-4, 1e-3);
    assert_close("highway dweight", &dw, &nw, 5e-4, 1e-3);
    assert_close("highway dbias", &db, &nb, 5e-4, 1e-3);
}

#[test]
fn tensorflow_weights_convert_as_allennlp_does() {
    // TF: y = (1 - t) x + t relu(x Wt + bt), t = sigmoid(x Wc + bc). After conversion our forward
    // must give the same y.
    let (n, d) = (2, 3);
    let x = random_values(5, n * d, -1.0, 1.0);
    let wt = random_values(6, d * d, -1.0, 1.0);
    let bt = random_values(7, d, -1.0, 1.0);
    let wc = random_values(8, d * d, -1.0, 1.0);
    let bc = random_values(9, d, -1.0, 1.0);
    let (w, b) = highway_weights_from_tensorflow(&wt, &bt, &wc, &bc, d).unwrap();
    let (y, _) = forward(&x, &w, &b, n, d);
    for r in 0..n {
        for k in 0..d {
            let xr = &x[r * d..(r + 1) * d];
            let pre_t: f32 = bt[k] + (0..d).map(|i| xr[i] * wt[i * d + k]).sum::<f32>();
            let pre_c: f32 = bc[k] + (0..d).map(|i| xr[i] * wc[i * d + k]).sum::<f32>();
            let t = 1.0 / (1.0 + (-pre_c).exp());
            let expected = (1.0 - t) * xr[k] + t * pre_t.max(0.0);
            assert!((y[r * d + k] - expected).abs() < 1e-5, "row {r} col {k}");
        }
    }
    assert!(highway_weights_from_tensorflow(&wt, &bt, &wc[..4], &bc, d).is_err());
}

#[test]
fn empty_and_bad_sizes() {
    let w = vec![0.0; 2 * 4 * 4];
    let b = vec![0.0; 8];
    highway_forward_cpu(&mut [], &mut [], &[], &w, &b, 0, 4).unwrap();
    let err = highway_forward_cpu(&mut [0.0; 4], &mut [0.0; 8], &[0.0; 4], &w[..8], &b, 1, 4)
        .unwrap_err();
    assert!(err.to_string().contains("weight"), "{err}");
}

use crate::op_checks;

#[test]
fn gpu_matches_cpu() {
    use webnlu::Tensor;
    let gpu = op_checks::gpu();
    for (n, d) in [(1usize, 1usize), (7, 13), (3, 120), (0, 4)] {
        let x = random_values(n as u64, n * d, -1.0, 1.0);
        let w = random_values(2, 2 * d * d, -0.3, 0.3);
        let b = random_values(3, 2 * d, -0.5, 0.5);
        let dy = random_values(4, n * d, -1.0, 1.0);
        let (mut y, mut proj) = (vec![0.0; n * d], vec![0.0; n * 2 * d]);
        highway_forward_cpu(&mut y, &mut proj, &x, &w, &b, n, d).unwrap();
        let (mut dx, mut dw, mut db) = (vec![0.1; n * d], vec![0.1; 2 * d * d], vec![0.1; 2 * d]);
        highway_backward_cpu(&mut dx, &mut dw, &mut db, &dy, &x, &proj, &w, n, d).unwrap();
        let t =
            |shape: &[usize], v: &[f32]| Tensor::from_vec(&gpu, shape, v.to_vec(), "t").unwrap();
        let (xg, wg, bg, dyg) = (
            t(&[n, d], &x),
            t(&[2 * d, d], &w),
            t(&[2 * d], &b),
            t(&[n, d], &dy),
        );
        let (mut yg, mut pg) = (
            Tensor::zeros(&gpu, &[n, d], "y").unwrap(),
            Tensor::zeros(&gpu, &[n, 2 * d], "p").unwrap(),
        );
        highway_forward(&mut yg, &mut pg, &xg, &wg, &bg).unwrap();
        let (mut dxg, mut dwg, mut dbg) = (
            t(&[n, d], &vec![0.1; n * d]),
            t(&[2 * d, d], &vec![0.1; 2 * d * d]),
            t(&[2 * d], &vec![0.1; 2 * d]),
        );
        highway_backward(&mut dxg, &mut dwg, &mut dbg, &dyg, &xg, &pg, &wg).unwrap();
        // dot products of <= 240 terms in the same order; exp may differ by an ulp or two
        op_checks::assert_close("highway y", &op_checks::download(&yg), &y, 1e-5, 1e-5);
        op_checks::assert_close("highway proj", &op_checks::download(&pg), &proj, 1e-5, 1e-5);
        op_checks::assert_close("highway dx", &op_checks::download(&dxg), &dx, 1e-5, 1e-5);
        op_checks::assert_close("highway dw", &op_checks::download(&dwg), &dw, 1e-5, 1e-5);
        op_checks::assert_close("highway db", &op_checks::download(&dbg), &db, 1e-5, 1e-5);
    }
}
