//! The CPU attention is fused per (batch row, head) (`ops/attention_cpu.rs`); it must give the
//! composed ops' results bit for bit: the head split, the batched products, softmax, dropout
//! and the merge, run one after another on the CPU as the GPU path runs them. Also: the saved
//! tensors of one device refused on the other, a backward without a forward refused.

use crate::op_checks;
use op_checks::*;
use webnlu::ops::attention::*;
use webnlu::ops::dropout::{dropout_backward, dropout_forward, DropoutMask};
use webnlu::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use webnlu::ops::softmax::{softmax_backward, softmax_forward};
use webnlu::{Device, Tensor};

/// out and [dq, dk, dv] by the composed CPU ops (the lines of `ops/attention.rs`'s module doc).
fn composed(
    [q, k, v]: [&Tensor; 3],
    mask: &Tensor,
    dout: &Tensor,
    dropout: Option<DropoutMask>,
    d: AttentionDims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let cpu = Device::Cpu;
    let heads = [d.b, d.nh, d.t, d.hs];
    let square = [d.b, d.nh, d.t, d.t];
    let tokens = [d.b, d.t, d.nh * d.hs];
    let new = |shape: &[usize]| Tensor::zeros(&cpu, shape, "t").unwrap();
    let (mut qh, mut kh, mut vh) = (new(&heads), new(&heads), new(&heads));
    split_heads_forward(&mut qh, &mut kh, &mut vh, q, k, v, &d).unwrap();
    let scores_product = MatmulOptions {
        trans_b: true,
        alpha: 1.0 / (d.hs as f32).sqrt(),
        ..Default::default()
    };
    let plain = MatmulOptions::default();
    let mut scores = new(&square);
    matmul_forward(&mut scores, &qh, &kh, None, scores_product).unwrap();
    let mut att = new(&square);
    softmax_forward(&mut att, &scores, Some(mask)).unwrap();
    let mut att_d = new(&square);
    match dropout {
        Some(dropout) => dropout_forward(&mut att_d, &att, dropout).unwrap(),
        None => att_d = Tensor::from_vec(&cpu, &square, download(&att), "att_d").unwrap(),
    }
    let mut y = new(&heads);
    matmul_forward(&mut y, &att_d, &vh, None, plain).unwrap();
    let mut out = new(&tokens);
    merge_heads_forward(&mut out, &y, &d).unwrap();
    // backward
    let mut dy = new(&heads);
    merge_heads_backward(&mut dy, dout, &d).unwrap();
    let (mut datt_d, mut dvh) = (new(&square), new(&heads));
    matmul_backward(
        Some(&mut datt_d),
        Some(&mut dvh),
        None,
        &dy,
        &att_d,
        &vh,
        plain,
    )
    .unwrap();
    let mut datt = new(&square);
    match dropout {
        Some(dropout) => dropout_backward(&mut datt, &datt_d, dropout).unwrap(),
        None => datt = datt_d,
    }
    let mut dscores = new(&square);
    softmax_backward(&mut dscores, &att, &datt).unwrap();
    let (mut dqh, mut dkh) = (new(&heads), new(&heads));
    matmul_backward(
        Some(&mut dqh),
        Some(&mut dkh),
        None,
        &dscores,
        &qh,
        &kh,
        scores_product,
    )
    .unwrap();
    let [mut dq, mut dk, mut dv] = [0, 1, 2].map(|_| new(&tokens));
    split_heads_backward(&mut dq, &mut dk, &mut dv, &dqh, &dkh, &dvh, &d).unwrap();
    let grads = [&dq, &dk, &dv].into_iter().flat_map(download).collect();
    (download(&out), download(&att), grads)
}

#[test]
fn attention_cpu_fused_equals_composed_ops() {
    let cpu = Device::Cpu;
    // (B, T, C, NH): head size 32 (MiniLM's), T = 300 (two depth blocks of the GEMM: KC is
    // 256) with head size 8 (a partial column tile), T = 1, and B*NH pairs enough to be split
    // over the threads (B 4 x T 128 x hs 32) with a count the threads do not divide (B 3).
    for &(b, t, c, nh) in &[
        (2, 70, 64, 2),
        (3, 300, 24, 3),
        (2, 1, 6, 3),
        (4, 128, 128, 4),
        (3, 33, 96, 3),
    ] {
        let n = b * t * c;
        let [q, k, v, dout] = [1, 2, 3, 4].map(|seed| {
            let values: Vec<f32> = random(n, seed).iter().map(|x| 2.0 * x).collect();
            upload(&cpu, &[b, t, c], &values, "x")
        });
        // the last third of batch row 1's tokens are padding
        let mask_values: Vec<f32> = (0..b * t)
            .map(|i| {
                if i / t == 1 && i % t >= t - t / 3 {
                    f32::MIN
                } else {
                    0.0
                }
            })
            .collect();
        let mask = upload(&cpu, &[b, t], &mask_values, "mask");
        let d = AttentionDims {
            b,
            t,
            nh,
            hs: c / nh,
        };
        for dropout in [
            None,
            Some(DropoutMask {
                probability: 0.25,
                seed: 5,
                stream: 9,
            }),
        ] {
            let case = format!("B {b} T {t} C {c} NH {nh} dropout {}", dropout.is_some());
            let (want_out, want_att, want_grads) = composed([&q, &k, &v], &mask, &dout, dropout, d);
            let mut out = Tensor::zeros(&cpu, &[b, t, c], "out").unwrap();
            let mut saved = AttentionSaved::new(&cpu, b, t, c, nh).unwrap();
            attention_forward(&mut out, &mut saved, &q, &k, &v, Some(&mask), dropout).unwrap();
            let [mut dq, mut dk, mut dv] =
                [0, 1, 2].map(|_| Tensor::zeros(&cpu, &[b, t, c], "d").unwrap());
            attention_backward(&mut dq, &mut dk, &mut dv, &dout, &saved, dropout).unwrap();
            let grads: Vec<f32> = [&dq, &dk, &dv].into_iter().flat_map(download).collect();
            // the same operations in the same order: equal, not close
            assert_eq!(download(&out), want_out, "out, {case}");
            assert_eq!(download(&saved.att), want_att, "probabilities, {case}");
            assert_eq!(grads, want_grads, "dq, dk, dv, {case}");
        }
    }
}

#[test]
fn attention_saved_tensors_of_the_other_device_are_refused() {
    let cpu = Device::Cpu;
    let gpu = gpu();
    let (b, t, c, nh) = (1, 3, 4, 2);
    let x = upload(&cpu, &[b, t, c], &random(b * t * c, 7), "x");
    let mut out = Tensor::zeros(&cpu, &[b, t, c], "out").unwrap();
    // made for the GPU, run on the CPU
    let mut on_gpu = AttentionSaved::new(&gpu, b, t, c, nh).unwrap();
    let err = attention_forward(&mut out, &mut on_gpu, &x, &x, &x, None, None).unwrap_err();
    assert!(err.to_string().contains("made for the GPU"), "{err}");
    // a backward before any forward
    let saved = AttentionSaved::new(&cpu, b, t, c, nh).unwrap();
    let [mut dq, mut dk, mut dv] = [0, 1, 2].map(|_| Tensor::zeros(&cpu, &[b, t, c], "d").unwrap());
    let err = attention_backward(&mut dq, &mut dk, &mut dv, &x, &saved, None).unwrap_err();
    assert!(err.to_string().contains("no forward"), "{err}");
}
