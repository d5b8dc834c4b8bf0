//! Mean (masked) and CLS pooling: forward against direct sums, backward against finite
//! differences, padding-only rows, bad sizes, and the WGSL kernels validated by naga.

mod gradient_check;

use gradient_check::*;
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

#[test]
fn wgsl_validates_within_webgpu_limits() {
    let module = validate_wgsl("pooling.wgsl", webnlu::ops::shaders::POOLING.source);
    assert_eq!(
        entry_point_names(&module),
        [
            "mean_pooling_forward",
            "mean_pooling_backward",
            "cls_pooling_forward",
            "cls_pooling_backward"
        ]
    );
    assert_eq!(
        wgsl_struct_size(&module, "PoolingParams") as usize,
        std::mem::size_of::<PoolingParams>()
    );
}
