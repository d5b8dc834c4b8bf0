//! add / GELU (erf, tanh) / tanh / ReLU: GPU == CPU, backward == finite differences, accumulation.

use crate::op_checks;
use op_checks::*;
use webnlu::ops::elementwise::*;
use webnlu::{Device, Tensor};

const ACTIVATIONS: [Activation; 4] = [
    Activation::Gelu,
    Activation::GeluTanh,
    Activation::Tanh,
    Activation::Relu,
];

#[test]
fn gpu_matches_cpu_forward_and_backward() {
    let gpu = gpu();
    // Odd sizes, a single element, an empty tensor, and one above 65535 workgroups * 256 to
    // exercise the 2-D split of the dispatch.
    for &n in &[0usize, 1, 7, 1000, 256 * 65535 + 3] {
        let x: Vec<f32> = random(n, 1).iter().map(|v| v * 6.0).collect(); // spans the GELU knee
        let dy = random(n, 2);
        // The huge case only checks that the 2-D split covers every element (one kernel).
        let acts: &[Activation] = if n > 100_000 {
            &[Activation::Tanh]
        } else {
            &ACTIVATIONS
        };
        for &act in acts {
            let mut y_cpu = vec![0.0; n];
            activation_forward_cpu(&mut y_cpu, &x, act);
            let xg = upload(&gpu, &[n], &x, "x");
            let mut yg = Tensor::uninit(&gpu, &[n], "y").unwrap();
            activation_forward(&mut yg, &xg, act).unwrap();
            // Same formula on both sides; lavapipe's exp differs from Rust's by a few ulp.
            assert_close(
                &format!("{act:?} forward n={n}"),
                &download(&yg),
                &y_cpu,
                1e-6,
                1e-5,
            );

            let saved = if act == Activation::Tanh { &y_cpu } else { &x };
            let start = random(n, 3); // accumulate onto non-zero gradients
            let mut dx_cpu = start.clone();
            activation_backward_cpu(&mut dx_cpu, saved, &dy, act);
            let saved_g = upload(&gpu, &[n], saved, "saved");
            let dyg = upload(&gpu, &[n], &dy, "dy");
            let mut dxg = upload(&gpu, &[n], &start, "dx");
            activation_backward(&mut dxg, &saved_g, &dyg, act).unwrap();
            assert_close(
                &format!("{act:?} backward n={n}"),
                &download(&dxg),
                &dx_cpu,
                1e-6,
                1e-5,
            );
        }
        if n > 100_000 {
            continue; // the add kernel is the same 1-D pattern; keep the test quick
        }
        let b = random(n, 4);
        let mut out_cpu = vec![0.0; n];
        add_forward_cpu(&mut out_cpu, &x, &b);
        let mut out = Tensor::uninit(&gpu, &[n], "out").unwrap();
        add_forward(
            &mut out,
            &upload(&gpu, &[n], &x, "a"),
            &upload(&gpu, &[n], &b, "b"),
        )
        .unwrap();
        assert_eq!(download(&out), out_cpu, "add is exact");
        let mut da = upload(&gpu, &[n], &x, "da");
        let mut db = upload(&gpu, &[n], &b, "db");
        add_backward(&mut da, &mut db, &upload(&gpu, &[n], &dy, "dout")).unwrap();
        let (mut da_cpu, mut db_cpu) = (x.clone(), b.clone());
        add_backward_cpu(&mut da_cpu, &mut db_cpu, &dy);
        assert_eq!(download(&da), da_cpu);
        assert_eq!(download(&db), db_cpu);
    }
}

#[test]
fn backward_matches_finite_differences() {
    let n = 41;
    let x: Vec<f32> = random(n, 5).iter().map(|v| v * 3.0).collect();
    let w = random(n, 6);
    for act in ACTIVATIONS {
        let forward = |x: &[f32]| {
            let mut y = vec![0.0; x.len()];
            activation_forward_cpu(&mut y, x, act);
            y
        };
        let saved = if act == Activation::Tanh {
            forward(&x)
        } else {
            x.clone()
        };
        let mut dx = vec![0.0; n];
        activation_backward_cpu(&mut dx, &saved, &w, act);
        check_gradient(&format!("{act:?}"), &x, &dx, forward, &w);
    }
}

#[test]
fn gelu_matches_exact_erf_values() {
    // Reference: gelu(x) = x * Phi(x) with Phi from the normal table (float64 values from
    // Python's math.erf): gelu(1) = 0.8413447460685429, gelu(-0.5) = -0.15426876936299347.
    let mut y = [0.0f32; 2];
    activation_forward_cpu(&mut y, &[1.0, -0.5], Activation::Gelu);
    assert!((y[0] - 0.841_344_7).abs() < 2e-7, "{}", y[0]);
    assert!((y[1] + 0.154_268_8).abs() < 2e-7, "{}", y[1]);
}

#[test]
fn shape_mismatch_is_an_error() {
    let cpu = Device::Cpu;
    let a = Tensor::zeros(&cpu, &[3], "a").unwrap();
    let b = Tensor::zeros(&cpu, &[4], "b").unwrap();
    let mut out = Tensor::zeros(&cpu, &[3], "out").unwrap();
    let err = add_forward(&mut out, &a, &b).unwrap_err();
    assert!(matches!(err, webnlu::Error::Shape { .. }), "{err}");
    assert!(err.to_string().contains("add_forward"), "{err}");
}

#[test]
fn the_cpu_version_split_over_threads_equals_one_element_at_a_time() {
    // 100,003 elements: over the size at which the CPU version splits the work between threads
    // (ops/cpu_parallel.rs); every part must compute the elements at its own offset.
    let n = 100_003;
    let x: Vec<f32> = random(n, 3).iter().map(|v| v * 6.0).collect();
    let dy = random(n, 4);
    for act in ACTIVATIONS {
        let mut y = vec![0.0; n];
        activation_forward_cpu(&mut y, &x, act);
        let want: Vec<f32> = x.iter().map(|&v| act.apply(v)).collect();
        assert_eq!(y, want, "{act:?} forward");
        let mut dx = vec![0.5; n];
        activation_backward_cpu(&mut dx, &x, &dy, act);
        let want: Vec<f32> = x
            .iter()
            .zip(&dy)
            .map(|(&v, &g)| 0.5 + act.derivative(v) * g)
            .collect();
        assert_eq!(dx, want, "{act:?} backward");
    }
}
