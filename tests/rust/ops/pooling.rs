//! Mean (masked) and CLS pooling: forward against direct sums, backward against finite
//! differences, padding-only rows, bad sizes, and the WGSL kernels validated by naga.

use crate::op_checks::*;
use webnlu::ops::pooling::*;

#[test]
fn mean_pooling_ignores_padding() {
    let (b, t, c) = (3, 4, 5);
    let hidden = random_values(1, b * t * c, -1.0, 1.0);
    let mask = [1, 1, 1, 0, /**/ 1, 0, 0, 0, /**/ 0, 0, 0, 0];
    let mut out = vec![7.0; b * c];
    mean_pooling_forward_cpu(&mut out, &hidden, &mask, b, t, c).unwrap();
    for j in 0..c {
        let expected = (hidden[j] + hidden[c + j] + hidden[2 * c + j]) / 3.0;
        assert!((out[j] - expected).abs() < 1e-6, "row 0 col {j}");
        assert_eq!(out[c + j], hidden[t * c + j], "row 1 has one token");
        assert_eq!(out[2 * c + j], 0.0, "an all-padding row pools to zeros");
    }
}

#[test]
fn mean_pooling_backward_matches_finite_differences() {
    let (b, t, c) = (2, 3, 4);
    let hidden = random_values(2, b * t * c, -1.0, 1.0);
    let mask = [1, 0, 1, 1, 1, 1];
    let w = random_values(3, b * c, -1.0, 1.0);
    let numeric = central_difference(&hidden, 1e-2, |h| {
        let mut out = vec![0.0; b * c];
        mean_pooling_forward_cpu(&mut out, h, &mask, b, t, c).unwrap();
        weighted_sum(&out, &w)
    });
    let mut dh = vec![0.0; b * t * c];
    mean_pooling_backward_cpu(&mut dh, &w, &mask, b, t, c).unwrap();
    // linear in h: the quotient is exact up to f32 rounding of the outputs (~1e-7 / 2e-2)
    assert_close("mean pooling dhidden", &dh, &numeric, 2e-5, 1e-4);
    assert!(
        dh[c..2 * c].iter().all(|&d| d == 0.0),
        "padding positions get no gradient"
    );
}

#[test]
fn cls_pooling_forward_and_backward() {
    let (b, t, c) = (2, 3, 4);
    let hidden = random_values(4, b * t * c, -1.0, 1.0);
    let mut out = vec![0.0; b * c];
    cls_pooling_forward_cpu(&mut out, &hidden, b, t, c).unwrap();
    assert_eq!(&out[..c], &hidden[..c]);
    assert_eq!(&out[c..], &hidden[t * c..t * c + c]);
    let w = random_values(5, b * c, -1.0, 1.0);
    let numeric = central_difference(&hidden, 1e-2, |h| {
        let mut out = vec![0.0; b * c];
        cls_pooling_forward_cpu(&mut out, h, b, t, c).unwrap();
        weighted_sum(&out, &w)
    });
    let mut dh = vec![0.0; b * t * c];
    cls_pooling_backward_cpu(&mut dh, &w, b, t, c).unwrap();
    // a selection: exact up to f32 rounding of h +- 0.01
    assert_close("cls pooling dhidden", &dh, &numeric, 2e-5, 1e-4);
}

#[test]
fn empty_batches_and_bad_sizes() {
    mean_pooling_forward_cpu(&mut [], &[], &[], 0, 5, 4).unwrap();
    cls_pooling_forward_cpu(&mut [], &[], 0, 5, 4).unwrap();
    let mut out = vec![0.0; 4];
    let err = mean_pooling_forward_cpu(&mut out, &[0.0; 8], &[1, 1, 1], 1, 2, 4).unwrap_err();
    assert!(err.to_string().contains("attention_mask"), "{err}");
    assert!(
        cls_pooling_forward_cpu(&mut out, &[], 1, 0, 4).is_err(),
        "no [CLS] in an empty sequence"
    );
}

use crate::op_checks;

#[test]
fn gpu_matches_cpu() {
    use webnlu::Tensor;
    let gpu = op_checks::gpu();
    for (b, t, c) in [(1usize, 1usize, 1usize), (3, 7, 13), (2, 5, 300), (0, 4, 8)] {
        let h = random_values((b * t * c) as u64, b * t * c, -1.0, 1.0);
        let mask: Vec<u32> = (0..b * t)
            .map(|i| if i % t < (i / t + 1) * 2 { 1 } else { 0 })
            .collect();
        let dout = random_values(7, b * c, -1.0, 1.0);
        let hg = Tensor::from_vec(&gpu, &[b, t, c], h.clone(), "h").unwrap();
        let mg = Tensor::<u32>::from_vec(&gpu, &[b, t], mask.clone(), "mask").unwrap();
        let dg = Tensor::from_vec(&gpu, &[b, c], dout.clone(), "dout").unwrap();
        let mut want = vec![0.0; b * c];
        mean_pooling_forward_cpu(&mut want, &h, &mask, b, t, c).unwrap();
        let mut got = Tensor::zeros(&gpu, &[b, c], "out").unwrap();
        mean_pooling_forward(&mut got, &hg, &mg).unwrap();
        // same summation order (t ascending), one division: exact up to the compiler's fma use
        op_checks::assert_close(
            "mean pooling",
            &op_checks::download(&got),
            &want,
            1e-6,
            1e-6,
        );
        let mut want = vec![0.5; b * t * c];
        mean_pooling_backward_cpu(&mut want, &dout, &mask, b, t, c).unwrap();
        let mut got = Tensor::from_vec(&gpu, &[b, t, c], vec![0.5; b * t * c], "dh").unwrap();
        mean_pooling_backward(&mut got, &dg, &mg).unwrap();
        op_checks::assert_close(
            "mean pooling backward",
            &op_checks::download(&got),
            &want,
            1e-6,
            1e-6,
        );
        let mut want = vec![0.0; b * c];
        cls_pooling_forward_cpu(&mut want, &h, b, t, c).unwrap();
        let mut got = Tensor::zeros(&gpu, &[b, c], "out").unwrap();
        cls_pooling_forward(&mut got, &hg).unwrap();
        assert_eq!(op_checks::download(&got), want, "cls pooling is a copy");
        let mut want = vec![0.5; b * t * c];
        cls_pooling_backward_cpu(&mut want, &dout, b, t, c).unwrap();
        let mut got = Tensor::from_vec(&gpu, &[b, t, c], vec![0.5; b * t * c], "dh").unwrap();
        cls_pooling_backward(&mut got, &dg).unwrap();
        assert_eq!(
            op_checks::download(&got),
            want,
            "cls pooling backward is one add"
        );
    }
}
