//! Dropout: the generator against Random123's known answers, the mask statistics, forward and
//! backward agreeing on the mask, edge cases, and the WGSL kernel validated by naga.

use crate::op_checks::*;
use webnlu::ops::dropout::*;

#[test]
fn threefry_matches_random123_known_answers() {
    // Random123 tests/kat_vectors, threefry2x32 with 20 rounds: (counter, key) -> output.
    let cases = [
        ([0u32, 0], [0u32, 0], [0x6B20_0159u32, 0x99BA_4EFE]),
        (
            [u32::MAX, u32::MAX],
            [u32::MAX, u32::MAX],
            [0x1CB9_96FC, 0xBB00_2BE7],
        ),
        (
            [0x243F_6A88, 0x85A3_08D3],
            [0x1319_8A2E, 0x0370_7344],
            [0xC492_3A9C, 0x483D_F7A0],
        ),
    ];
    for (counter, key, expected) in cases {
        assert_eq!(
            threefry2x32(key, counter),
            expected,
            "counter {counter:x?} key {key:x?}"
        );
    }
}

#[test]
fn keep_rate_and_scale() {
    let n = 200_000;
    let x = vec![1.0f32; n];
    let mut out = vec![0.0f32; n];
    let mask = DropoutMask {
        probability: 0.1,
        seed: 42,
        stream: 7,
    };
    dropout_forward_cpu(&mut out, &x, mask).unwrap();
    let kept = out.iter().filter(|&&v| v != 0.0).count();
    // Binomial(n, 0.9): std = sqrt(n * 0.9 * 0.1) ~ 134; 5 std ~ 670 elements.
    assert!(
        (kept as f64 - 0.9 * n as f64).abs() < 670.0,
        "kept {kept} of {n}"
    );
    assert!(
        out.iter().all(|&v| v == 0.0 || v == 1.0 / 0.9),
        "kept values are scaled by 1/(1-p)"
    );
}

#[test]
fn same_seed_same_mask_other_stream_other_mask() {
    let x = random_values(1, 1001, -1.0, 1.0);
    let run = |seed, stream| {
        let mut out = vec![0.0f32; x.len()];
        dropout_forward_cpu(
            &mut out,
            &x,
            DropoutMask {
                probability: 0.5,
                seed,
                stream,
            },
        )
        .unwrap();
        out
    };
    assert_eq!(run(3, 0), run(3, 0));
    assert_ne!(run(3, 0), run(3, 1));
    assert_ne!(run(3, 0), run(4, 0));
    // seeds differing only in the high word give different masks too
    assert_ne!(run(3, 0), run(3 | (1 << 32), 0));
}

#[test]
fn backward_uses_the_forward_mask() {
    // dropout is linear in x, so d(sum w * out)/dx = w * keep * scale exactly: compare with the
    // forward applied to w (same mask). No finite difference needed, the equality is exact.
    let n = 513;
    let w = random_values(2, n, -1.0, 1.0);
    let mask = DropoutMask {
        probability: 0.3,
        seed: 9,
        stream: 2,
    };
    let mut expected = vec![0.0f32; n];
    dropout_forward_cpu(&mut expected, &w, mask).unwrap();
    let mut dx = vec![0.5f32; n];
    dropout_backward_cpu(&mut dx, &w, mask).unwrap();
    for i in 0..n {
        assert_eq!(
            dx[i],
            0.5 + expected[i],
            "element {i}: backward accumulates the masked gradient"
        );
    }
    // and it is a gradient: finite differences on a few coordinates
    let x = random_values(3, n, -1.0, 1.0);
    let numeric = central_difference(&x[..8], 1e-2, |probe| {
        let mut full = x.clone();
        full[..8].copy_from_slice(probe);
        let mut out = vec![0.0f32; n];
        dropout_forward_cpu(&mut out, &full, mask).unwrap();
        weighted_sum(&out, &w)
    });
    let mut dx = vec![0.0f32; n];
    dropout_backward_cpu(&mut dx, &w, mask).unwrap();
    // linear function: the difference quotient is exact up to f32 rounding of the outputs
    // (|out| < 2, 513 terms, ~1e-7 each, divided by 2h = 0.02): 1e-4 is ample.
    assert_close("dropout dx", &dx[..8], &numeric, 1e-4, 1e-4);
}

#[test]
fn edge_cases() {
    let x = random_values(5, 37, -1.0, 1.0);
    let mut out = vec![9.0f32; 37];
    dropout_forward_cpu(
        &mut out,
        &x,
        DropoutMask {
            probability: 0.0,
            seed: 1,
            stream: 0,
        },
    )
    .unwrap();
    assert_eq!(out, x, "p = 0 is the identity");
    dropout_forward_cpu(
        &mut out,
        &x,
        DropoutMask {
            probability: 1.0,
            seed: 1,
            stream: 0,
        },
    )
    .unwrap();
    assert!(
        out.iter().all(|&v| v == 0.0),
        "p = 1 zeroes everything, no inf/nan"
    );
    let mut empty: Vec<f32> = vec![];
    dropout_forward_cpu(
        &mut empty,
        &[],
        DropoutMask {
            probability: 0.5,
            seed: 1,
            stream: 0,
        },
    )
    .unwrap();
    assert!(dropout_forward_cpu(
        &mut out,
        &x,
        DropoutMask {
            probability: 1.5,
            seed: 1,
            stream: 0
        }
    )
    .is_err());
    assert!(dropout_forward_cpu(
        &mut out,
        &x,
        DropoutMask {
            probability: f32::NAN,
            seed: 1,
            stream: 0
        }
    )
    .is_err());
    let mut short = vec![0.0f32; 3];
    let err = dropout_forward_cpu(
        &mut short,
        &x,
        DropoutMask {
            probability: 0.5,
            seed: 1,
            stream: 0,
        },
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("dropout_forward_cpu: out"),
        "{err}"
    );
}

use crate::op_checks;

#[test]
fn gpu_mask_equals_cpu_mask_bit_for_bit() {
    use webnlu::{Device, Tensor};
    let gpu = op_checks::gpu();
    // odd sizes, size 1, an odd element count (the last pair half-used) and empty
    for (n, seed, stream, p) in [
        (1usize, 1u64, 0u32, 0.5f32),
        (1001, 7, 3, 0.1),
        (4097, 1 << 40, 9, 0.9),
        (0, 1, 1, 0.5),
        (33, 2, 2, 1.0),
        // large enough for the CPU version to split over threads (ops/cpu_parallel.rs): each
        // part must draw the mask of its own element indices
        (200_003, 11, 5, 0.1),
    ] {
        let mask = DropoutMask {
            probability: p,
            seed,
            stream,
        };
        let x = random_values(n as u64, n, -1.0, 1.0);
        let mut want = vec![0.0; n];
        dropout_forward_cpu(&mut want, &x, mask).unwrap();
        let xg = Tensor::from_vec(&gpu, &[n], x.clone(), "x").unwrap();
        let mut yg = Tensor::zeros(&gpu, &[n], "y").unwrap();
        dropout_forward(&mut yg, &xg, mask).unwrap();
        // identical integer mask and identical f32 multiply: exact equality
        assert_eq!(yg.to_vec_blocking().unwrap(), want, "forward n={n}");
        let mut dg = Tensor::from_vec(&gpu, &[n], vec![0.25; n], "dx").unwrap();
        dropout_backward(&mut dg, &xg, mask).unwrap();
        let mut dwant = vec![0.25; n];
        dropout_backward_cpu(&mut dwant, &x, mask).unwrap();
        assert_eq!(dg.to_vec_blocking().unwrap(), dwant, "backward n={n}");
        // and the Tensor API on the CPU device is the same function
        let xc = Tensor::from_vec(&Device::Cpu, &[n], x, "x").unwrap();
        let mut yc = Tensor::zeros(&Device::Cpu, &[n], "y").unwrap();
        dropout_forward(&mut yc, &xc, mask).unwrap();
        assert_eq!(yc.to_vec_blocking().unwrap(), want);
    }
}
