//! L2 normalize and cosine similarity: forward against direct formulas, backward against
//! finite differences (also inside the eps clamp), and the WGSL kernels validated by naga.

use crate::op_checks::*;
use webnlu::ops::similarity::*;

#[test]
fn l2_normalize_forward_and_backward() {
    let (n, c) = (3, 5);
    let mut x = random_values(1, n * c, -1.0, 1.0);
    x[2 * c..].fill(0.0); // a zero row: stays zero, no NaN
    let (mut y, mut norms) = (vec![0.0; n * c], vec![0.0; n]);
    l2_normalize_forward_cpu(&mut y, &mut norms, &x, n, c).unwrap();
    let norm0: f32 = x[..c].iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norms[0] - norm0).abs() < 1e-6);
    let len0: f32 = y[..c].iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((len0 - 1.0).abs() < 1e-6, "unit length");
    assert!(y[2 * c..].iter().all(|&v| v == 0.0));

    // gradient on the two non-zero rows (the zero row's function x / 1e-12 is linear with a
    // slope of 1e12, which f32 finite differences cannot resolve; checked separately below)
    let probe = &x[..2 * c];
    let w = random_values(2, 2 * c, -1.0, 1.0);
    let numeric = central_difference(probe, 1e-3, |p| {
        let (mut y, mut nn) = (vec![0.0; 2 * c], vec![0.0; 2]);
        l2_normalize_forward_cpu(&mut y, &mut nn, p, 2, c).unwrap();
        weighted_sum(&y, &w)
    });
    let mut dx = vec![0.0; 2 * c];
    l2_normalize_backward_cpu(&mut dx, &w, &y[..2 * c], &norms[..2], 2, c).unwrap();
    // smooth, |x| ~ 1: h = 1e-3 gives truncation ~h^2 = 1e-6 and rounding ~1e-7/2e-3 = 5e-5
    assert_close("l2_normalize dx", &dx, &numeric, 3e-4, 1e-3);

    let mut dz = vec![0.0; c];
    l2_normalize_backward_cpu(&mut dz, &[1.0; 5], &[0.0; 5], &[0.0], 1, c).unwrap();
    assert!(
        dz.iter().all(|&d| d == 1.0 / NORMALIZE_EPS),
        "below eps the map is x / eps"
    );
}

#[test]
fn cosine_similarity_forward_and_backward() {
    let (n, c) = (4, 6);
    let a = random_values(3, n * c, -1.0, 1.0);
    let mut b = random_values(4, n * c, -1.0, 1.0);
    b[c..2 * c].copy_from_slice(&a[c..2 * c].iter().map(|v| -2.0 * v).collect::<Vec<_>>());
    let mut s = vec![0.0; n];
    cosine_similarity_forward_cpu(&mut s, &a, &b, n, c).unwrap();
    assert!(
        (s[1] + 1.0).abs() < 1e-6,
        "opposite vectors have similarity -1"
    );
    let w = random_values(5, n, -1.0, 1.0);
    let cos = |a: &[f32], b: &[f32]| {
        let mut s = vec![0.0; n];
        cosine_similarity_forward_cpu(&mut s, a, b, n, c).unwrap();
        weighted_sum(&s, &w)
    };
    let (mut da, mut db) = (vec![0.0; n * c], vec![0.0; n * c]);
    cosine_similarity_backward_cpu(&mut da, &mut db, &w, &a, &b, n, c).unwrap();
    let numeric_a = central_difference(&a, 1e-3, |p| cos(p, &b));
    let numeric_b = central_difference(&b, 1e-3, |p| cos(&a, p));
    // smooth, |x| ~ 1, outputs in [-1, 1]: same budget as for l2_normalize
    assert_close("cosine da", &da, &numeric_a, 3e-4, 1e-3);
    assert_close("cosine db", &db, &numeric_b, 3e-4, 1e-3);
}

#[test]
fn cosine_similarity_with_a_tiny_vector_uses_the_clamped_norm() {
    // ||a|| = 1e-9 < eps = 1e-8: the denominator is eps * ||b||, a constant in a, so the
    // function is linear in a with slope b / (eps ||b||); compare with that exactly.
    let c = 3;
    let a = [1e-9f32, 0.0, 0.0];
    let b = [0.6f32, 0.8, 0.0];
    let (mut da, mut db) = (vec![0.0; c], vec![0.0; c]);
    cosine_similarity_backward_cpu(&mut da, &mut db, &[1.0], &a, &b, 1, c).unwrap();
    for j in 0..c {
        let expected = b[j] / COSINE_EPS;
        assert!(
            (da[j] - expected).abs() <= 1e-6 * expected.abs(),
            "da[{j}] = {} vs {expected}",
            da[j]
        );
    }
}

#[test]
fn empty_and_bad_sizes() {
    l2_normalize_forward_cpu(&mut [], &mut [], &[], 0, 7).unwrap();
    cosine_similarity_forward_cpu(&mut [], &[], &[], 0, 7).unwrap();
    let err = cosine_similarity_forward_cpu(&mut [0.0], &[0.0; 3], &[0.0; 2], 1, 3).unwrap_err();
    assert!(
        err.to_string().contains("cosine_similarity_forward_cpu: b"),
        "{err}"
    );
}

use crate::op_checks;

#[test]
fn gpu_matches_cpu() {
    use webnlu::Tensor;
    let gpu = op_checks::gpu();
    for (n, c) in [(1usize, 1usize), (5, 384), (3, 1000), (0, 7), (2, 3)] {
        let mut a = random_values((n * c) as u64, n * c, -1.0, 1.0);
        if n > 1 {
            a[c..2 * c].fill(0.0); // a zero row: the eps branch
        }
        let b = random_values((n * c) as u64 + 1, n * c, -1.0, 1.0);
        let dy = random_values(3, n * c, -1.0, 1.0);
        let ds = random_values(4, n, -1.0, 1.0);
        let (ag, bg) = (
            Tensor::from_vec(&gpu, &[n, c], a.clone(), "a").unwrap(),
            Tensor::from_vec(&gpu, &[n, c], b.clone(), "b").unwrap(),
        );
        // normalize
        let (mut y, mut norms) = (vec![0.0; n * c], vec![0.0; n]);
        l2_normalize_forward_cpu(&mut y, &mut norms, &a, n, c).unwrap();
        let (mut yg, mut ng) = (
            Tensor::zeros(&gpu, &[n, c], "y").unwrap(),
            Tensor::zeros(&gpu, &[n], "norms").unwrap(),
        );
        l2_normalize_forward(&mut yg, &mut ng, &ag).unwrap();
        // tree vs sequential sum of squares of up to 1000 terms: relative 1e-6
        op_checks::assert_close("normalize y", &op_checks::download(&yg), &y, 1e-6, 1e-5);
        op_checks::assert_close(
            "normalize norms",
            &op_checks::download(&ng),
            &norms,
            1e-6,
            1e-5,
        );
        let mut dx = vec![0.0; n * c];
        l2_normalize_backward_cpu(&mut dx, &dy, &y, &norms, n, c).unwrap();
        let dyg = Tensor::from_vec(&gpu, &[n, c], dy.clone(), "dy").unwrap();
        let mut dxg = Tensor::zeros(&gpu, &[n, c], "dx").unwrap();
        l2_normalize_backward(&mut dxg, &dyg, &yg, &ng).unwrap();
        // the zero row gives dy / 1e-12 ~ 1e12: relative tolerance covers it
        op_checks::assert_close("normalize dx", &op_checks::download(&dxg), &dx, 1e-5, 1e-4);
        // cosine
        let mut s = vec![0.0; n];
        cosine_similarity_forward_cpu(&mut s, &a, &b, n, c).unwrap();
        let mut sg = Tensor::zeros(&gpu, &[n], "s").unwrap();
        cosine_similarity_forward(&mut sg, &ag, &bg).unwrap();
        op_checks::assert_close("cosine", &op_checks::download(&sg), &s, 1e-6, 1e-5);
        let (mut da, mut db) = (vec![0.0; n * c], vec![0.0; n * c]);
        cosine_similarity_backward_cpu(&mut da, &mut db, &ds, &a, &b, n, c).unwrap();
        let dsg = Tensor::from_vec(&gpu, &[n], ds.clone(), "ds").unwrap();
        let (mut dag, mut dbg) = (
            Tensor::zeros(&gpu, &[n, c], "da").unwrap(),
            Tensor::zeros(&gpu, &[n, c], "db").unwrap(),
        );
        cosine_similarity_backward(&mut dag, &mut dbg, &dsg, &ag, &bg).unwrap();
        // the zero row's gradient is b / (1e-8 ||b||) ~ 1e8: relative tolerance covers it
        op_checks::assert_close("cosine da", &op_checks::download(&dag), &da, 1e-5, 1e-4);
        op_checks::assert_close("cosine db", &op_checks::download(&dbg), &db, 1e-5, 1e-4);
    }
}
