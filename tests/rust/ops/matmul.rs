//! Matmul: CPU GEMM == float64 reference, GPU == CPU (odd sizes, 1, empty, transposes, batch,
//! broadcast, bias, accumulate), backward == finite differences, shape errors.
#![allow(clippy::needless_range_loop)]

use crate::op_checks;
use op_checks::*;
use webnlu::ops::matmul::*;
use webnlu::{Device, Tensor};

/// float64 reference: out (batch, m, n) = alpha op(a) op(b) + bias [+ out]
fn reference(out: &mut [f32], a: &[f32], b: &[f32], bias: Option<&[f32]>, d: &MatmulDims) {
    for bi in 0..d.batch {
        for i in 0..d.m {
            for j in 0..d.n {
                let mut s = 0.0f64;
                for p in 0..d.k {
                    let av = if d.trans_a {
                        a[bi * d.a_stride + p * d.m + i]
                    } else {
                        a[bi * d.a_stride + i * d.k + p]
                    };
                    let bv = if d.trans_b {
                        b[bi * d.b_stride + j * d.k + p]
                    } else {
                        b[bi * d.b_stride + p * d.n + j]
                    };
                    s += av as f64 * bv as f64;
                }
                let mut v = d.alpha as f64 * s + bias.map_or(0.0, |x| x[j] as f64);
                let at = bi * d.m * d.n + i * d.n + j;
                if d.accumulate {
                    v += out[at] as f64;
                }
                out[at] = v as f32;
            }
        }
    }
}

fn stored(rows: usize, cols: usize, trans: bool) -> [usize; 2] {
    if trans {
        [cols, rows]
    } else {
        [rows, cols]
    }
}

/// One case on both devices against the reference. Tolerance: f32 sums of k products of
/// values in [-1, 1] differ from float64 by about sqrt(k) * 6e-8 * k in the worst order, so
/// 1e-5 * k absolute (plus relative 1e-5) covers k up to a few thousand with margin.
#[allow(clippy::too_many_arguments)]
fn check_case(
    gpu: &Device,
    batch_a: usize,
    batch_b: usize,
    m: usize,
    n: usize,
    k: usize,
    opts: MatmulOptions,
    with_bias: bool,
) {
    let batch = batch_a.max(batch_b);
    let shape_of = |bt: usize, mat: [usize; 2]| -> Vec<usize> {
        if bt == 1 && batch_a != batch_b {
            mat.to_vec()
        } else {
            vec![bt, mat[0], mat[1]]
        }
    };
    let sa = shape_of(batch_a, stored(m, k, opts.trans_a));
    let sb = shape_of(batch_b, stored(k, n, opts.trans_b));
    let so = vec![batch, m, n];
    let a = random(sa.iter().product(), 11);
    let b = random(sb.iter().product(), 12);
    let bias = random(n, 13);
    let start = random(batch * m * n, 14);
    let bias_opt = if with_bias { Some(&bias[..]) } else { None };
    let what = format!("batch {batch_a}/{batch_b} m {m} n {n} k {k} {opts:?} bias {with_bias}");

    let dims = MatmulDims::new(batch_a, batch_b, m, n, k, opts);
    let mut want = start.clone();
    reference(&mut want, &a, &b, bias_opt, &dims);
    let atol = 1e-5 * k.max(1) as f32;

    for device in [&Device::Cpu, gpu] {
        let ta = upload(device, &sa, &a, "a");
        let tb = upload(device, &sb, &b, "b");
        let tbias = upload(device, &[n], &bias, "bias");
        let mut out = upload(device, &so, &start, "out");
        matmul_forward(
            &mut out,
            &ta,
            &tb,
            if with_bias { Some(&tbias) } else { None },
            opts,
        )
        .unwrap();
        assert_close(
            &format!("{} {what}", device.kind()),
            &download(&out),
            &want,
            atol,
            1e-5,
        );
    }
}

#[test]
fn forward_matches_reference_on_both_devices() {
    let gpu = gpu();
    let plain = MatmulOptions::default();
    // Odd sizes around the 64-tile and the 6x16 microkernel, 1, and empty dimensions.
    for &(m, n, k) in &[
        (1, 1, 1),
        (7, 13, 5),
        (65, 63, 17),
        (70, 33, 300),
        (0, 5, 3),
        (4, 0, 3),
        (4, 5, 0),
    ] {
        for &(ta, tb) in &[(false, false), (true, false), (false, true), (true, true)] {
            let opts = MatmulOptions {
                trans_a: ta,
                trans_b: tb,
                ..plain
            };
            check_case(&gpu, 1, 1, m, n, k, opts, false);
        }
        check_case(&gpu, 1, 1, m, n, k, plain, true);
        check_case(
            &gpu,
            1,
            1,
            m,
            n,
            k,
            MatmulOptions {
                alpha: 0.5,
                accumulate: true,
                ..plain
            },
            true,
        );
    }
    // Batched (attention QK^T and AV shapes, small), shared weights, empty batch.
    check_case(
        &gpu,
        3,
        3,
        9,
        9,
        8,
        MatmulOptions {
            trans_b: true,
            alpha: 0.35,
            ..plain
        },
        false,
    );
    check_case(&gpu, 3, 3, 9, 8, 9, plain, false);
    check_case(
        &gpu,
        2,
        1,
        10,
        24,
        16,
        MatmulOptions {
            trans_b: true,
            ..plain
        },
        true,
    );
    check_case(
        &gpu,
        2,
        1,
        10,
        24,
        16,
        MatmulOptions {
            trans_a: true,
            ..plain
        },
        false,
    );
    check_case(&gpu, 1, 3, 5, 6, 7, plain, false);
    check_case(&gpu, 0, 0, 5, 6, 7, plain, true);
}

#[test]
fn threaded_and_large_cpu_matches_reference() {
    // Big enough for several KC/MC blocks and for the threaded split (both directions).
    for &(m, n, k) in &[(150, 130, 600), (3, 500, 270)] {
        for threads in [1, 2, 3] {
            set_cpu_threads(threads);
            check_cpu_only(m, n, k);
        }
    }
    set_cpu_threads(0);
}

#[test]
fn threaded_splits_are_bit_identical_to_one_thread() {
    // The threads take row or column blocks of C (cpu_gemm::split_by_rows: the split that
    // packs fewer values twice); either way each element is the same products in the same
    // depth blocks. Shapes of the backward's products: A read in place and B packed per call
    // (columns), A transposed and packed with a wider B (columns) or a taller A (rows), and
    // depths over two KC blocks (k 300).
    for &(m, n, k, trans_a) in &[
        (200, 300, 100, false),
        (72, 300, 100, true),
        (300, 130, 100, true),
        (100, 260, 300, false),
    ] {
        let a = random(m * k, 31);
        let b = random(k * n, 32);
        let d = MatmulDims {
            batch: 1,
            m,
            n,
            k,
            a_stride: 0,
            b_stride: 0,
            trans_a,
            trans_b: false,
            alpha: 0.5,
            accumulate: false,
        };
        let run = |threads| {
            set_cpu_threads(threads);
            let mut out = vec![0.0; m * n];
            matmul_cpu(&mut out, &a, &b, None, &d);
            out
        };
        let one = run(1);
        for threads in [2, 3] {
            assert_eq!(
                run(threads),
                one,
                "{m}x{n}x{k} trans_a {trans_a} on {threads} threads"
            );
        }
    }
    set_cpu_threads(0);
}

fn check_cpu_only(m: usize, n: usize, k: usize) {
    let a = random(m * k, 21);
    let b = random(k * n, 22);
    let d = MatmulDims {
        batch: 1,
        m,
        n,
        k,
        a_stride: 0,
        b_stride: 0,
        trans_a: false,
        trans_b: false,
        alpha: 1.0,
        accumulate: false,
    };
    let mut want = vec![0.0; m * n];
    reference(&mut want, &a, &b, None, &d);
    let mut got = vec![0.0; m * n];
    matmul_cpu(&mut got, &a, &b, None, &d);
    assert_close(
        &format!("cpu {m}x{n}x{k} on {} threads", cpu_threads()),
        &got,
        &want,
        1e-5 * k as f32,
        1e-5,
    );
    let mut portable = vec![0.0; m * n];
    cpu_gemm::gemm_portable_for_tests(&mut portable, &a, &b, m, n, k);
    assert_close(
        "portable microkernel",
        &portable,
        &want,
        1e-5 * k as f32,
        1e-5,
    );
}

#[test]
fn backward_matches_finite_differences_and_gpu() {
    let gpu = gpu();
    // (batch_a, batch_b, m, n, k, trans_a, trans_b): a linear layer with a shared weight in
    // PyTorch layout, and a per-head batched product with transposes.
    for &(batch_a, batch_b, m, n, k, ta, tb) in &[
        (2, 1, 3, 4, 5, false, true),
        (2, 2, 3, 4, 5, true, false),
        (1, 1, 4, 3, 2, true, true),
    ] {
        let batch = usize::max(batch_a, batch_b);
        let opts = MatmulOptions {
            trans_a: ta,
            trans_b: tb,
            alpha: 0.7,
            accumulate: false,
        };
        let shape_of = |bt: usize, mat: [usize; 2]| -> Vec<usize> {
            if bt == 1 {
                mat.to_vec()
            } else {
                vec![bt, mat[0], mat[1]]
            }
        };
        let sa = shape_of(batch_a, stored(m, k, ta));
        let sb = shape_of(batch_b, stored(k, n, tb));
        let so = if batch == 1 {
            vec![m, n]
        } else {
            vec![batch, m, n]
        };
        let a = random(sa.iter().product(), 31);
        let b = random(sb.iter().product(), 32);
        let bias = random(n, 33);
        let w = random(so.iter().product(), 34);
        let forward = |a: &[f32], b: &[f32], bias: &[f32]| -> Vec<f32> {
            let cpu = Device::Cpu;
            let mut out = Tensor::zeros(&cpu, &so, "out").unwrap();
            matmul_forward(
                &mut out,
                &upload(&cpu, &sa, a, "a"),
                &upload(&cpu, &sb, b, "b"),
                Some(&upload(&cpu, &[n], bias, "bias")),
                opts,
            )
            .unwrap();
            download(&out)
        };
        let mut grads: Vec<Vec<Vec<f32>>> = Vec::new();
        for device in [Device::Cpu, gpu.clone()] {
            let mut da = Tensor::zeros(&device, &sa, "da").unwrap();
            let mut db = Tensor::zeros(&device, &sb, "db").unwrap();
            let mut dbias = Tensor::zeros(&device, &[n], "dbias").unwrap();
            let dout = upload(&device, &so, &w, "dout");
            matmul_backward(
                Some(&mut da),
                Some(&mut db),
                Some(&mut dbias),
                &dout,
                &upload(&device, &sa, &a, "a"),
                &upload(&device, &sb, &b, "b"),
                opts,
            )
            .unwrap();
            grads.push(vec![download(&da), download(&db), download(&dbias)]);
        }
        let case = format!("{sa:?} x {sb:?} {opts:?}");
        check_gradient(
            &format!("da {case}"),
            &a,
            &grads[0][0],
            |x| forward(x, &b, &bias),
            &w,
        );
        check_gradient(
            &format!("db {case}"),
            &b,
            &grads[0][1],
            |x| forward(&a, x, &bias),
            &w,
        );
        check_gradient(
            &format!("dbias {case}"),
            &bias,
            &grads[0][2],
            |x| forward(&a, &b, x),
            &w,
        );
        for i in 0..3 {
            // Same sums in another order: a few ulp of values of size ~1.
            assert_close(
                &format!("gpu grad {i} {case}"),
                &grads[1][i],
                &grads[0][i],
                1e-5,
                1e-5,
            );
        }
    }
}

#[test]
fn backward_accumulates() {
    let cpu = Device::Cpu;
    let a = upload(&cpu, &[2, 3], &random(6, 41), "a");
    let b = upload(&cpu, &[3, 2], &random(6, 42), "b");
    let dout = upload(&cpu, &[2, 2], &random(4, 43), "dout");
    let mut once = Tensor::zeros(&cpu, &[2, 3], "da").unwrap();
    matmul_backward(
        Some(&mut once),
        None,
        None,
        &dout,
        &a,
        &b,
        MatmulOptions::default(),
    )
    .unwrap();
    let mut twice = Tensor::zeros(&cpu, &[2, 3], "da").unwrap();
    for _ in 0..2 {
        matmul_backward(
            Some(&mut twice),
            None,
            None,
            &dout,
            &a,
            &b,
            MatmulOptions::default(),
        )
        .unwrap();
    }
    let doubled: Vec<f32> = download(&once).iter().map(|v| 2.0 * v).collect();
    assert_close(
        "da accumulated twice",
        &download(&twice),
        &doubled,
        1e-6,
        1e-6,
    );
}

#[test]
fn shape_mismatches_are_errors() {
    let cpu = Device::Cpu;
    let a = Tensor::zeros(&cpu, &[4, 5], "x").unwrap();
    let b = Tensor::zeros(&cpu, &[6, 7], "w").unwrap();
    let mut out = Tensor::zeros(&cpu, &[4, 7], "y").unwrap();
    let err = matmul_forward(&mut out, &a, &b, None, MatmulOptions::default()).unwrap_err();
    assert!(matches!(err, webnlu::Error::Shape { .. }), "{err}");
    assert!(err.to_string().contains("k = 5"), "{err}");
    let b = Tensor::zeros(&cpu, &[5, 7], "w").unwrap();
    let mut wrong_out = Tensor::zeros(&cpu, &[4, 8], "y").unwrap();
    let err = matmul_forward(&mut wrong_out, &a, &b, None, MatmulOptions::default()).unwrap_err();
    assert!(err.to_string().contains("output y"), "{err}");
    let bias = Tensor::zeros(&cpu, &[6], "bias").unwrap();
    assert!(matmul_forward(&mut out, &a, &b, Some(&bias), MatmulOptions::default()).is_err());
}

/// A weight packed once (`matmul_forward_packed`, what every linear layer uses on the CPU)
/// gives the same bits as packing per call, on shapes with partial tiles, over threads, with
/// 1 row (a single token) and many; and the packed panels are made again after the weight
/// changes (a training step writes it through `cpu_mut`).
#[test]
fn packed_weight_equals_per_call_packing_and_follows_changes() {
    let cpu = Device::Cpu;
    for &(rows, n, k) in &[
        (1, 7, 5),
        (13, 33, 300),
        (64, 70, 45),
        (1024, 384, 384),
        (3, 1536, 384),
    ] {
        let x = upload(&cpu, &[rows, k], &random(rows * k, 1), "x");
        let mut w = upload(&cpu, &[n, k], &random(n * k, 2), "w"); // (out, in), as nn.Linear
        let bias = upload(&cpu, &[n], &random(n, 3), "bias");
        let options = MatmulOptions {
            trans_b: true,
            ..Default::default()
        };
        let packed = PackedWeight::default();
        for round in 0..3 {
            let mut want = Tensor::zeros(&cpu, &[rows, n], "want").unwrap();
            matmul_forward(&mut want, &x, &w, Some(&bias), options).unwrap();
            let mut got = Tensor::zeros(&cpu, &[rows, n], "got").unwrap();
            matmul_forward_packed(&mut got, &x, &w, Some(&bias), options, &packed).unwrap();
            assert_eq!(
                got.cpu().unwrap(),
                want.cpu().unwrap(),
                "({rows}, {k}) x ({n}, {k})^T, round {round}: packed once != packed per call"
            );
            assert_eq!(
                packed.bytes(),
                n.div_ceil(cpu_gemm::NR) * cpu_gemm::NR * k * 4
            );
            // a training step changes the weight: the next product must see the new values
            w.cpu_mut().unwrap()[0] += 1.0;
        }
    }
}
