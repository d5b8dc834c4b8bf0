//! Attention (q, k, v over heads, padding mask, with and without attention dropout) and
//! embedding: forward vs a direct float64 reference, GPU == CPU (odd sizes, T = 1, empty
//! batch), backward == finite differences and accumulating, race-free
//! scatter-add with repeated ids, errors.
#![allow(clippy::needless_range_loop)]

use crate::op_checks;
use op_checks::*;
use webnlu::ops::attention::*;
use webnlu::ops::dropout::{dropout_forward_cpu, DropoutMask};
use webnlu::ops::embedding::*;
use webnlu::{Device, Tensor};

/// out (B, T, C) by the textbook loops in float64, from q, k, v (B, T, C); `keep` (B, NH, T, T)
/// multiplies the probabilities (the dropout scale: 0 or 1 / (1 - p); all ones without).
#[allow(clippy::too_many_arguments)]
fn attention_reference(
    [q, k, v]: [&[f32]; 3],
    mask: &[f32],
    keep: &[f32],
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) -> Vec<f32> {
    let hs = c / nh;
    let at = |x: &[f32], bi: usize, ti: usize, h: usize, d: usize| {
        x[(bi * t + ti) * c + h * hs + d] as f64
    };
    let mut out = vec![0.0f32; b * t * c];
    for bi in 0..b {
        for h in 0..nh {
            for i in 0..t {
                let scores: Vec<f64> = (0..t)
                    .map(|j| {
                        (0..hs)
                            .map(|d| at(q, bi, i, h, d) * at(k, bi, j, h, d))
                            .sum::<f64>()
                            / (hs as f64).sqrt()
                            + mask[bi * t + j] as f64
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                let row = ((bi * nh + h) * t + i) * t;
                for d in 0..hs {
                    let y: f64 = (0..t)
                        .map(|j| exps[j] / sum * keep[row + j] as f64 * at(v, bi, j, h, d))
                        .sum();
                    out[(bi * t + i) * c + h * hs + d] = y as f32;
                }
            }
        }
    }
    out
}

/// Padding mask in BERT's additive form: the last `pad` tokens of batch entry 1 are masked.
fn padding_mask(b: usize, t: usize, pad: usize) -> Vec<f32> {
    (0..b * t)
        .map(|i| {
            if i / t == 1 && i % t >= t - pad {
                f32::MIN
            } else {
                0.0
            }
        })
        .collect()
}

/// The attention-probability dropout of the tests (p = 0.3, so some probabilities drop).
const DROPOUT: DropoutMask = DropoutMask {
    probability: 0.3,
    seed: 17,
    stream: 4,
};

/// out (B, T, C) and [dq, dk, dv] (B, T, C) of the op on `device`; `qkv` holds q, k, v one
/// after the other (3 * B*T*C values), so one finite-difference check covers all three.
#[allow(clippy::too_many_arguments)]
fn attention_run(
    device: &Device,
    qkv: &[f32],
    mask: &[f32],
    dout: &[f32],
    dropout: Option<DropoutMask>,
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) -> (Vec<f32>, Vec<f32>) {
    let n = b * t * c;
    let [q, k, v] = [0, 1, 2].map(|i| upload(device, &[b, t, c], &qkv[i * n..(i + 1) * n], "x"));
    let mut out = Tensor::uninit(device, &[b, t, c], "out").unwrap();
    let mut saved = AttentionSaved::new(device, b, t, c, nh).unwrap();
    let mask = upload(device, &[b, t], mask, "mask");
    attention_forward(&mut out, &mut saved, &q, &k, &v, Some(&mask), dropout).unwrap();
    let [mut dq, mut dk, mut dv] =
        [0, 1, 2].map(|_| Tensor::zeros(device, &[b, t, c], "d").unwrap());
    let dout = upload(device, &[b, t, c], dout, "dout");
    attention_backward(&mut dq, &mut dk, &mut dv, &dout, &saved, dropout).unwrap();
    let grads = [dq, dk, dv].iter().flat_map(download).collect();
    (download(&out), grads)
}

#[test]
fn attention_matches_reference_and_gpu() {
    let gpu = gpu();
    // (B, T, C, NH): odd T and head size, T = 1, one head, an empty batch.
    for &(b, t, c, nh) in &[(2, 5, 12, 3), (2, 70, 16, 2), (3, 1, 4, 1), (0, 4, 8, 2)] {
        let n = b * t * c;
        let qkv: Vec<f32> = random(3 * n, 1).iter().map(|v| 2.0 * v).collect();
        let mask = padding_mask(b, t, t / 2);
        let dout = random(n, 2);
        for dropout in [None, Some(DROPOUT)] {
            // the dropout scale of every probability, drawn by the op's own CPU generator
            let ones = vec![1.0f32; b * nh * t * t];
            let mut keep = ones.clone();
            if let Some(mask) = dropout {
                dropout_forward_cpu(&mut keep, &ones, mask).unwrap();
            }
            let parts = [&qkv[..n], &qkv[n..2 * n], &qkv[2 * n..]];
            let want = attention_reference(parts, &mask, &keep, b, t, c, nh);
            let run = |device| attention_run(device, &qkv, &mask, &dout, dropout, b, t, c, nh);
            let (out_cpu, grads_cpu) = run(&Device::Cpu);
            let (out_gpu, grads_gpu) = run(&gpu);
            let case = format!("B {b} T {t} C {c} NH {nh} dropout {}", dropout.is_some());
            // f32 pipeline vs float64 loops: outputs are convex combinations of values in
            // [-2, 2] (times 1 / 0.7 with dropout).
            assert_close(&format!("cpu forward {case}"), &out_cpu, &want, 2e-5, 1e-4);
            assert_close(
                &format!("gpu forward {case}"),
                &out_gpu,
                &out_cpu,
                2e-5,
                1e-4,
            );
            assert_close(
                &format!("gpu backward {case}"),
                &grads_gpu,
                &grads_cpu,
                2e-5,
                1e-4,
            );
        }
    }
}

#[test]
fn attention_backward_matches_finite_differences() {
    let (b, t, c, nh) = (2, 4, 6, 2);
    let qkv = random(3 * b * t * c, 11);
    let mask = padding_mask(b, t, 1);
    let w = random(b * t * c, 12);
    // With a fixed mask, dropout is a constant scale per probability: still differentiable.
    for dropout in [None, Some(DROPOUT)] {
        let run = |x: &[f32]| attention_run(&Device::Cpu, x, &mask, &w, dropout, b, t, c, nh);
        let (_, dqkv) = run(&qkv);
        let what = format!("attention dq, dk, dv (dropout {})", dropout.is_some());
        check_gradient(&what, &qkv, &dqkv, |x| run(x).0, &w);
    }
}

#[test]
fn attention_backward_accumulates() {
    // dq, dk, dv += (the op pattern): a second backward into the same tensors doubles them.
    let (b, t, c, nh) = (1, 3, 4, 2);
    let device = Device::Cpu;
    let qkv = random(3 * b * t * c, 21);
    let x = upload(&device, &[b, t, c], &qkv[..b * t * c], "x");
    let mut out = Tensor::uninit(&device, &[b, t, c], "out").unwrap();
    let mut saved = AttentionSaved::new(&device, b, t, c, nh).unwrap();
    attention_forward(&mut out, &mut saved, &x, &x, &x, None, None).unwrap();
    let dout = upload(&device, &[b, t, c], &random(b * t * c, 22), "dout");
    let [mut dq, mut dk, mut dv] =
        [0, 1, 2].map(|_| Tensor::zeros(&device, &[b, t, c], "d").unwrap());
    attention_backward(&mut dq, &mut dk, &mut dv, &dout, &saved, None).unwrap();
    let once: Vec<Vec<f32>> = [&dq, &dk, &dv].map(download).to_vec();
    attention_backward(&mut dq, &mut dk, &mut dv, &dout, &saved, None).unwrap();
    for (i, g) in [&dq, &dk, &dv].into_iter().enumerate() {
        let twice: Vec<f32> = once[i].iter().map(|v| 2.0 * v).collect();
        assert_eq!(download(g), twice, "gradient {i}");
    }
}

#[test]
fn embedding_gpu_matches_cpu_with_repeated_ids() {
    let gpu = gpu();
    // (V, C, ids): repeated ids (the race a naive scatter would have), C not a multiple of 256,
    // a single id, no ids at all.
    let cases: Vec<(usize, usize, Vec<u32>)> = vec![
        (11, 300, vec![3, 7, 3, 3, 0, 10, 7, 1, 3]),
        (5, 3, vec![4]),
        (6, 4, vec![]),
    ];
    for (v, c, ids) in cases {
        let n = ids.len();
        let table = random(v * c, 21);
        let dout = random(n * c, 22);
        let start_out = random(n * c, 23);
        let start_dtable = random(v * c, 24);
        let mut results = Vec::new();
        for device in [Device::Cpu, gpu.clone()] {
            let tids = Tensor::<u32>::from_vec(&device, &[n], ids.clone(), "ids").unwrap();
            let ttable = upload(&device, &[v, c], &table, "table");
            let mut out = upload(&device, &[n, c], &start_out, "out");
            embedding_forward(&mut out, &ttable, &tids, true).unwrap();
            let mut fresh = Tensor::uninit(&device, &[n, c], "out").unwrap();
            embedding_forward(&mut fresh, &ttable, &tids, false).unwrap();
            let mut dtable = upload(&device, &[v, c], &start_dtable, "dtable");
            embedding_backward(&mut dtable, &upload(&device, &[n, c], &dout, "dout"), &tids)
                .unwrap();
            results.push([download(&out), download(&fresh), download(&dtable)]);
        }
        for i in 0..3 {
            // The gather is exact; the GPU sums a row's gradients first and then adds them to
            // dtable, the CPU adds them one by one: a few ulp of values of size ~4.
            assert_close(
                &format!("embedding result {i}, V {v} C {c} ids {ids:?}"),
                &results[1][i],
                &results[0][i],
                2e-6,
                0.0,
            );
        }
        // The gather itself: row i of `fresh` is table row ids[i].
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(
                &results[0][1][i * c..(i + 1) * c],
                &table[id as usize * c..(id as usize + 1) * c]
            );
        }
    }
}

#[test]
fn embedding_backward_matches_finite_differences() {
    let (v, c) = (4, 3);
    let ids = [2u32, 0, 2, 3];
    let table = random(v * c, 31);
    let w = random(ids.len() * c, 32);
    let forward = |t: &[f32]| {
        let mut out = vec![0.0; ids.len() * c];
        embedding_forward_cpu(&mut out, t, &ids, c, false);
        out
    };
    let mut dtable = vec![0.0; v * c];
    embedding_backward_cpu(&mut dtable, &w, &ids, c);
    check_gradient("embedding dtable", &table, &dtable, forward, &w);
}

#[test]
fn bad_ids_and_shapes_are_errors() {
    let cpu = Device::Cpu;
    let table = Tensor::zeros(&cpu, &[4, 3], "word_embeddings").unwrap();
    let ids = Tensor::<u32>::from_vec(&cpu, &[2], vec![1, 9], "input_ids").unwrap();
    let mut out = Tensor::zeros(&cpu, &[2, 3], "out").unwrap();
    let err = embedding_forward(&mut out, &table, &ids, false).unwrap_err();
    assert!(err.to_string().contains("input_ids[1] = 9"), "{err}");
    let mut wrong = Tensor::zeros(&cpu, &[2, 4], "out").unwrap();
    let ok_ids = Tensor::<u32>::from_vec(&cpu, &[2], vec![1, 2], "input_ids").unwrap();
    assert!(matches!(
        embedding_forward(&mut wrong, &table, &ok_ids, false),
        Err(webnlu::Error::Shape { .. })
    ));
    let x = Tensor::zeros(&cpu, &[1, 2, 3], "x").unwrap();
    let mut o = Tensor::zeros(&cpu, &[1, 2, 3], "o").unwrap();
    assert!(
        AttentionSaved::new(&cpu, 1, 2, 3, 2).is_err(),
        "3 is not divisible by 2 heads"
    );
    let mut saved = AttentionSaved::new(&cpu, 1, 2, 3, 3).unwrap();
    let bad_mask = Tensor::zeros(&cpu, &[1, 3], "mask").unwrap();
    assert!(matches!(
        attention_forward(&mut o, &mut saved, &x, &x, &x, Some(&bad_mask), None),
        Err(webnlu::Error::Shape { .. })
    ));
    let long = Tensor::zeros(&cpu, &[1, 3, 3], "k").unwrap();
    let err = attention_forward(&mut o, &mut saved, &x, &long, &x, None, None).unwrap_err();
    assert!(err.to_string().contains("k"), "{err}");
}
