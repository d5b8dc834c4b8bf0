//! ELMo char-CNN: forward against a direct convolution, backward against finite differences
//! (several widths, both activations), first-max tie rule, TF weight layout, bad sizes, WGSL.

use crate::op_checks::*;
use webnlu::ops::char_cnn::*;

const N: usize = 3;
const W: usize = 6;
const E: usize = 4;
const WIDTHS: [(usize, usize); 3] = [(1, 2), (2, 3), (3, 4)]; // (K, F), like ELMo's [[1,32],[2,32],[3,64],...]
const TOTAL: usize = 9;

struct Weights {
    w: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
}

fn weights(seed: u64) -> Weights {
    Weights {
        w: WIDTHS
            .iter()
            .enumerate()
            .map(|(i, &(k, f))| random_values(seed + i as u64, f * E * k, -0.5, 0.5))
            .collect(),
        b: WIDTHS
            .iter()
            .enumerate()
            .map(|(i, &(_, f))| random_values(seed + 10 + i as u64, f, -0.5, 0.5))
            .collect(),
    }
}

fn filters(w: &Weights) -> Vec<CharConvFilter<'_>> {
    WIDTHS
        .iter()
        .enumerate()
        .map(|(i, &(k, f))| CharConvFilter {
            weight: &w.w[i],
            bias: &w.b[i],
            width: k,
            filters: f,
        })
        .collect()
}

fn forward(chars: &[f32], w: &Weights, act: CharCnnActivation) -> (Vec<f32>, Vec<u32>) {
    let (mut out, mut argmax) = (vec![0.0; N * TOTAL], vec![0u32; N * TOTAL]);
    let filters = filters(w);
    let input = CharCnnInput {
        chars,
        filters: &filters,
        activation: act,
        n: N,
        w: W,
        e: E,
    };
    char_cnn_forward_cpu(&mut out, &mut argmax, &input).unwrap();
    (out, argmax)
}

#[test]
fn forward_matches_a_direct_convolution() {
    let chars = random_values(1, N * W * E, -1.0, 1.0);
    let w = weights(2);
    let (out, _) = forward(&chars, &w, CharCnnActivation::Tanh);
    let mut col = 0;
    for (i, &(k, f)) in WIDTHS.iter().enumerate() {
        for n in 0..N {
            for fi in 0..f {
                let best = (0..=W - k)
                    .map(|p| {
                        let mut acc = w.b[i][fi] as f64;
                        for e in 0..E {
                            for kk in 0..k {
                                acc += w.w[i][(fi * E + e) * k + kk] as f64
                                    * chars[(n * W + p + kk) * E + e] as f64;
                            }
                        }
                        acc
                    })
                    .fold(f64::NEG_INFINITY, f64::max);
                // f32 sums of <= 12 products of size <= 0.5
                assert!(
                    (out[n * TOTAL + col + fi] as f64 - best.tanh()).abs() < 1e-5,
                    "width {k} token {n} filter {fi}"
                );
            }
        }
        col += f;
    }
}

fn check_backward(act: CharCnnActivation, seed: u64) {
    let chars = random_values(seed, N * W * E, -1.0, 1.0);
    let wt = weights(seed + 100);
    let dy = random_values(seed + 200, N * TOTAL, -1.0, 1.0);
    let (out, argmax) = forward(&chars, &wt, act);
    if act == CharCnnActivation::Relu {
        // relu kink at 0 and max switches: make sure no output sits within the probe's reach
        // (a probe of h = 1e-3 moves a conv value by at most h * (E*K*0.5 + 1) < 1e-2)
        assert!(
            out.iter().all(|&y| y == 0.0 || y > 1e-2),
            "test data near the relu kink; change the seed"
        );
    }
    let mut dchars = vec![0.0; N * W * E];
    let mut dws: Vec<Vec<f32>> = wt.w.iter().map(|w| vec![0.0; w.len()]).collect();
    let mut dbs: Vec<Vec<f32>> = wt.b.iter().map(|b| vec![0.0; b.len()]).collect();
    {
        let mut grads: Vec<CharConvFilterGrad> = dws
            .iter_mut()
            .zip(dbs.iter_mut())
            .map(|(dw, db)| CharConvFilterGrad {
                dweight: dw,
                dbias: db,
            })
            .collect();
        let filters = filters(&wt);
        let input = CharCnnInput {
            chars: &chars,
            filters: &filters,
            activation: act,
            n: N,
            w: W,
            e: E,
        };
        char_cnn_backward_cpu(&mut dchars, &mut grads, &dy, &out, &argmax, &input).unwrap();
    }
    let h = 1e-3;
    // The max over positions is piecewise smooth; with random data the runner-up window is far
    // from the max relative to h (a switch would show as an O(1) mismatch). Budget: ~27 outputs
    // of size ~1 rounded at 6e-8, over 2h = 2e-3: ~1e-3 worst case; truncation ~h^2.
    let (abs, rel) = (1e-3, 2e-3);
    let numeric = central_difference(&chars, h, |p| weighted_sum(&forward(p, &wt, act).0, &dy));
    assert_close("char_cnn dchars", &dchars, &numeric, abs, rel);
    for i in 0..WIDTHS.len() {
        let numeric_w = central_difference(&wt.w[i], h, |p| {
            let mut probe = Weights {
                w: wt.w.clone(),
                b: wt.b.clone(),
            };
            probe.w[i] = p.to_vec();
            weighted_sum(&forward(&chars, &probe, act).0, &dy)
        });
        assert_close(
            &format!("char_cnn dweight[{i}]"),
            &dws[i],
            &numeric_w,
            abs,
            rel,
        );
        let numeric_b = central_difference(&wt.b[i], h, |p| {
            let mut probe = Weights {
                w: wt.w.clone(),
                b: wt.b.clone(),
            };
            probe.b[i] = p.to_vec();
            weighted_sum(&forward(&chars, &probe, act).0, &dy)
        });
        assert_close(
            &format!("char_cnn dbias[{i}]"),
            &dbs[i],
            &numeric_b,
            abs,
            rel,
        );
    }
}

#[test]
fn backward_matches_finite_differences_tanh() {
    check_backward(CharCnnActivation::Tanh, 10);
}

#[test]
fn backward_matches_finite_differences_relu() {
    check_backward(CharCnnActivation::Relu, 20);
}

#[test]
fn ties_go_to_the_first_position() {
    // identical windows everywhere (all characters equal): the max is attained at every
    // position; the forward must record position 0 and the backward must use only that window.
    let s = CharConvShape {
        n: 1,
        chars: 4,
        embed: 1,
        width: 2,
        filters: 1,
        out_stride: 1,
        out_col: 0,
    };
    let chars = [0.5f32; 4];
    let weight = [1.0f32, 2.0];
    let (mut out, mut argmax) = (vec![0.0; 1], vec![9u32; 1]);
    char_conv_max_forward_cpu(
        &mut out,
        &mut argmax,
        &chars,
        &weight,
        &[0.0],
        CharCnnActivation::Relu,
        &s,
    )
    .unwrap();
    assert_eq!(argmax, [0]);
    assert_eq!(out, [1.5]);
    let (mut dchars, mut dw, mut db) = (vec![0.0; 4], vec![0.0; 2], vec![0.0; 1]);
    char_conv_max_backward_cpu(
        &mut dchars,
        &mut dw,
        &mut db,
        &[1.0],
        &out,
        &argmax,
        &chars,
        &weight,
        CharCnnActivation::Relu,
        &s,
    )
    .unwrap();
    assert_eq!(dchars, [1.0, 2.0, 0.0, 0.0]);
    assert_eq!(dw, [0.5, 0.5]);
    assert_eq!(db, [1.0]);
}

#[test]
fn tensorflow_weight_layout() {
    let (k, e, f) = (2, 3, 4);
    let tf: Vec<f32> = (0..k * e * f).map(|i| i as f32).collect(); // (1, K, E, F)
    let w = char_conv_weight_from_tensorflow(&tf, k, e, f).unwrap(); // (F, E, K)
    for kk in 0..k {
        for ee in 0..e {
            for ff in 0..f {
                assert_eq!(w[(ff * e + ee) * k + kk], tf[(kk * e + ee) * f + ff]);
            }
        }
    }
    assert!(char_conv_weight_from_tensorflow(&tf[1..], k, e, f).is_err());
}

#[test]
fn bad_sizes_and_options() {
    assert_eq!(
        CharCnnActivation::from_options("relu").unwrap(),
        CharCnnActivation::Relu
    );
    assert!(CharCnnActivation::from_options("sigmoid").is_err());
    let s = CharConvShape {
        n: 1,
        chars: 2,
        embed: 1,
        width: 3,
        filters: 1,
        out_stride: 1,
        out_col: 0,
    };
    let err = char_conv_max_forward_cpu(
        &mut [0.0],
        &mut [0],
        &[0.0; 2],
        &[0.0; 3],
        &[0.0],
        CharCnnActivation::Tanh,
        &s,
    )
    .unwrap_err();
    assert!(err.to_string().contains("width 3"), "{err}");
    let s = CharConvShape {
        n: 0,
        chars: 5,
        embed: 2,
        width: 3,
        filters: 2,
        out_stride: 2,
        out_col: 0,
    };
    char_conv_max_forward_cpu(
        &mut [],
        &mut [],
        &[],
        &[0.0; 12],
        &[0.0; 2],
        CharCnnActivation::Tanh,
        &s,
    )
    .unwrap();
    let s = CharConvShape { out_col: 1, ..s };
    assert!(char_conv_max_forward_cpu(
        &mut [],
        &mut [],
        &[],
        &[0.0; 12],
        &[0.0; 2],
        CharCnnActivation::Tanh,
        &s
    )
    .is_err());
}

use crate::op_checks;

#[test]
fn gpu_matches_cpu() {
    use webnlu::Tensor;
    let gpu = op_checks::gpu();
    // (tokens, chars, embed, [(width, filters)]): odd sizes, one token, ELMo-like widths, empty
    type Case = (usize, usize, usize, &'static [(usize, usize)]);
    let cases: [Case; 3] = [
        (1, 5, 1, &[(1, 1), (5, 2)]),
        (7, 50, 16, &[(1, 4), (2, 8), (3, 16), (4, 32), (5, 64)]),
        (0, 6, 3, &[(2, 3)]),
    ];
    for (act, (n, w, e, widths)) in [
        CharCnnActivation::Tanh,
        CharCnnActivation::Relu,
        CharCnnActivation::Tanh,
    ]
    .into_iter()
    .zip(cases)
    {
        let total: usize = widths.iter().map(|&(_, f)| f).sum();
        let chars = random_values(n as u64 + 1, n * w * e, -1.0, 1.0);
        let cg = Tensor::from_vec(&gpu, &[n, w, e], chars.clone(), "chars").unwrap();
        let dy = random_values(5, n * total, -1.0, 1.0);
        let dyg = Tensor::from_vec(&gpu, &[n, total], dy.clone(), "dy").unwrap();
        let mut out = vec![0.0; n * total];
        let mut outg = Tensor::zeros(&gpu, &[n, total], "out").unwrap();
        let mut dchars = vec![0.0; n * w * e];
        let mut dcg = Tensor::zeros(&gpu, &[n, w, e], "dchars").unwrap();
        let mut col = 0;
        let mut per_width = vec![];
        for (i, &(k, f)) in widths.iter().enumerate() {
            let wt = random_values(10 + i as u64, f * e * k, -0.5, 0.5);
            let bias = random_values(20 + i as u64, f, -0.5, 0.5);
            let s = CharConvShape {
                n,
                chars: w,
                embed: e,
                width: k,
                filters: f,
                out_stride: total,
                out_col: col,
            };
            let mut argmax = vec![0u32; n * f];
            char_conv_max_forward_cpu(&mut out, &mut argmax, &chars, &wt, &bias, act, &s).unwrap();
            let wg = Tensor::from_vec(&gpu, &[f, e, k], wt.clone(), "w").unwrap();
            let bg = Tensor::from_vec(&gpu, &[f], bias.clone(), "b").unwrap();
            let mut ag = Tensor::<u32>::zeros(&gpu, &[n, f], "argmax").unwrap();
            char_conv_max_forward(&mut outg, &mut ag, &cg, &wg, &bg, act, col).unwrap();
            // random data: no near-ties, so both pick the same window
            assert_eq!(ag.to_vec_blocking().unwrap(), argmax, "argmax width {k}");
            per_width.push((s, wt, argmax, wg, ag));
            col += f;
        }
        // same arithmetic order per filter (e outer, k inner); tanh may differ by an ulp
        op_checks::assert_close(
            "char_cnn out",
            &op_checks::download(&outg),
            &out,
            1e-5,
            1e-5,
        );
        for (s, wt, argmax, wg, ag) in &per_width {
            let (mut dw, mut db) = (vec![0.0; wt.len()], vec![0.0; s.filters]);
            char_conv_max_backward_cpu(
                &mut dchars,
                &mut dw,
                &mut db,
                &dy,
                &out,
                argmax,
                &chars,
                wt,
                act,
                s,
            )
            .unwrap();
            let (mut dwg, mut dbg) = (
                Tensor::zeros(&gpu, &[s.filters, e, s.width], "dw").unwrap(),
                Tensor::zeros(&gpu, &[s.filters], "db").unwrap(),
            );
            char_conv_max_backward(
                &mut dcg, &mut dwg, &mut dbg, &dyg, &outg, ag, &cg, wg, act, s.out_col,
            )
            .unwrap();
            // sums over up to 7 tokens in the same order
            op_checks::assert_close(
                "char_cnn dweight",
                &op_checks::download(&dwg),
                &dw,
                1e-5,
                1e-4,
            );
            op_checks::assert_close(
                "char_cnn dbias",
                &op_checks::download(&dbg),
                &db,
                1e-5,
                1e-4,
            );
        }
        // dchars: the GPU gathers per position over filters, the CPU scatters filter by filter
        // (another summation order over up to 124 terms)
        op_checks::assert_close(
            "char_cnn dchars",
            &op_checks::download(&dcg),
            &dchars,
            1e-5,
            1e-4,
        );
    }
}
