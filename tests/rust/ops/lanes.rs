//! The vectorizable building blocks of the CPU ops (`ops/lanes.rs`): `exp` against float64 over
//! the whole float range (2 ulp), its edges (underflow to 0, overflow to inf, NaN), and the
//! 8-lane reductions against float64 sums on lengths around the lane count.

use webnlu::ops::lanes;

/// Distance in units in the last place between two finite positive floats.
fn ulps(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

#[test]
fn exp_is_within_2_ulp_where_the_result_is_normal() {
    let mut worst = (0u32, 0.0f32);
    let mut x = -87.33f32;
    while x < 88.72 {
        let want = (x as f64).exp() as f32;
        let got = lanes::exp(x);
        let d = ulps(got, want);
        if d > worst.0 {
            worst = (d, x);
        }
        x += 0.000_37;
    }
    for x in [
        0.0f32, -0.0, 1e-30, -1e-30, 0.5, -0.5, 1.0, -1.0, 10.0, -10.0, 88.7, -87.3,
    ] {
        let d = ulps(lanes::exp(x), (x as f64).exp() as f32);
        if d > worst.0 {
            worst = (d, x);
        }
    }
    assert!(
        worst.0 <= 2,
        "exp off by {} ulp at x = {}",
        worst.0,
        worst.1
    );
}

#[test]
fn exp_edges() {
    // Below ln(smallest normal) the true value is subnormal or 0: 0, as softmax over padding needs.
    for x in [-87.4f32, -100.0, -1e30, f32::MIN, f32::NEG_INFINITY] {
        assert_eq!(lanes::exp(x), 0.0, "exp({x})");
    }
    for x in [88.73f32, 100.0, f32::MAX, f32::INFINITY] {
        assert_eq!(lanes::exp(x), f32::INFINITY, "exp({x})");
    }
    assert!(
        lanes::exp(f32::NAN).is_nan(),
        "NaN must stay NaN (training's NaN guard)"
    );
    assert_eq!(lanes::exp(0.0), 1.0);
}

#[test]
fn reductions_match_float64_on_lengths_around_the_lanes() {
    for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 31, 384, 1000] {
        let a: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..n)
            .map(|i| ((i * 53 % 89) as f32 - 44.0) / 9.0)
            .collect();
        let sum: f64 = a.iter().map(|&v| v as f64).sum();
        let dot: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let shift = 0.25f32;
        let dev: f64 = a.iter().map(|&v| (v as f64 - shift as f64).powi(2)).sum();
        let scale: f64 = a.iter().map(|&v| v.abs() as f64).sum::<f64>().max(1.0);
        // f32 sums of n terms: error grows with n; relative to the sum of magnitudes.
        let tol = 1e-6 * scale * (n.max(1) as f64).log2().max(1.0);
        assert!((lanes::sum(&a) as f64 - sum).abs() <= tol, "sum n={n}");
        assert!(
            (lanes::dot(&a, &b) as f64 - dot).abs() <= tol * 10.0,
            "dot n={n}"
        );
        assert!(
            (lanes::sum_squared_deviation(&a, shift) as f64 - dev).abs() <= tol * 100.0,
            "dev n={n}"
        );
        let max = a.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert_eq!(lanes::max(&a), max, "max n={n}");
    }
    assert!(
        lanes::max(&[1.0, f32::NAN, 3.0]).is_nan(),
        "max with a NaN is NaN"
    );
    assert_eq!(lanes::max(&[]), f32::NEG_INFINITY);
}
