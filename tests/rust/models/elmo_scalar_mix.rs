//! ELMo's scalar mix (`webnlu::models::elmo::scalar_mix`): forward against the formula, backward
//! against central finite differences (CPU), device against CPU (lavapipe GPU).

use crate::op_checks;

use op_checks::{assert_close, check_gradient, random};
use webnlu::device::Device;
use webnlu::models::elmo::scalar_mix::{
    scalar_mix_backward, scalar_mix_backward_cpu, scalar_mix_forward, scalar_mix_forward_cpu,
    ScalarMix,
};
use webnlu::Tensor;

fn mix() -> ScalarMix {
    ScalarMix {
        scalars: vec![0.5, -1.0, 2.0],
        gamma: 1.7,
    }
}

#[test]
fn forward_is_gamma_times_the_softmax_weighted_sum() {
    let m = mix();
    let e: Vec<f64> = m.scalars.iter().map(|&s| (s as f64).exp()).collect();
    let z: f64 = e.iter().sum();
    let layers = random(3 * 5, 1);
    let mut out = vec![0.0f32; 5];
    scalar_mix_forward_cpu(&mut out, &layers, &m).unwrap();
    for i in 0..5 {
        let want: f64 = 1.7
            * (0..3)
                .map(|k| e[k] / z * layers[k * 5 + i] as f64)
                .sum::<f64>();
        assert!(
            (out[i] as f64 - want).abs() < 1e-6,
            "{i}: {} vs {want}",
            out[i]
        );
    }
    // AllenNLP's initial mix is the plain mean.
    let mean = ScalarMix::new(3).unwrap();
    scalar_mix_forward_cpu(&mut out, &layers, &mean).unwrap();
    for i in 0..5 {
        let want = (layers[i] + layers[5 + i] + layers[10 + i]) / 3.0;
        assert!((out[i] - want).abs() < 1e-6);
    }
    assert!(ScalarMix::new(0).is_err());
    assert!(scalar_mix_forward_cpu(&mut out, &layers[..14], &m).is_err());
}

#[test]
fn backward_matches_finite_differences() {
    let n = 7;
    let m = mix();
    let layers = random(3 * n, 2);
    let dout = random(n, 3);
    let mut dlayers = vec![0.0f32; 3 * n];
    let mut grads = m.zero_grads();
    scalar_mix_backward_cpu(Some(&mut dlayers), &mut grads, &dout, &layers, &m).unwrap();
    let forward_with = |layers: &[f32], m: &ScalarMix| {
        let mut out = vec![0.0f32; n];
        scalar_mix_forward_cpu(&mut out, layers, m).unwrap();
        out
    };
    check_gradient("dlayers", &layers, &dlayers, |x| forward_with(x, &m), &dout);
    check_gradient(
        "dscalars",
        &m.scalars,
        &grads.scalars,
        |s| {
            forward_with(
                &layers,
                &ScalarMix {
                    scalars: s.to_vec(),
                    gamma: m.gamma,
                },
            )
        },
        &dout,
    );
    check_gradient(
        "dgamma",
        &[m.gamma],
        &[grads.gamma],
        |g| {
            forward_with(
                &layers,
                &ScalarMix {
                    scalars: m.scalars.clone(),
                    gamma: g[0],
                },
            )
        },
        &dout,
    );
    // Softmax gradients sum to zero (shifting every scalar changes nothing).
    assert!(grads.scalars.iter().sum::<f32>().abs() < 1e-5);
    // Frozen layers: the parameter gradients alone, the same values.
    let mut again = m.zero_grads();
    scalar_mix_backward_cpu(None, &mut again, &dout, &layers, &m).unwrap();
    assert_eq!(again, grads);
}

fn device_matches_cpu(device: &Device, n: usize) {
    let m = mix();
    let layers = random(3 * n, 4);
    let dout = random(n, 5);
    let mut want_out = vec![0.0f32; n];
    scalar_mix_forward_cpu(&mut want_out, &layers, &m).unwrap();
    let mut want_dlayers = random(3 * n, 6);
    let start_dlayers = want_dlayers.clone();
    let mut want_grads = m.zero_grads();
    scalar_mix_backward_cpu(Some(&mut want_dlayers), &mut want_grads, &dout, &layers, &m).unwrap();

    let layers_t = Tensor::from_vec(device, &[3, n], layers, "layers").unwrap();
    let mut out = Tensor::zeros(device, &[1, n], "out").unwrap();
    scalar_mix_forward(&mut out, &layers_t, &m).unwrap();
    // GPU sums of 3 products: a few ulp.
    assert_close(
        "out",
        &out.to_vec_blocking().unwrap(),
        &want_out,
        1e-6,
        1e-6,
    );
    let dout_t = Tensor::from_vec(device, &[1, n], dout, "dout").unwrap();
    let mut dlayers = Tensor::from_vec(device, &[3, n], start_dlayers, "dlayers").unwrap();
    let mut grads = m.zero_grads();
    let backward = scalar_mix_backward(Some(&mut dlayers), &mut grads, &dout_t, &layers_t, &m);
    pollster::block_on(backward).unwrap();
    assert_close(
        "dlayers",
        &dlayers.to_vec_blocking().unwrap(),
        &want_dlayers,
        1e-6,
        1e-6,
    );
    // <dout, layer_k> over n terms in another order: relative 1e-5.
    assert_close("dscalars", &grads.scalars, &want_grads.scalars, 1e-5, 1e-5);
    assert_close("dgamma", &[grads.gamma], &[want_grads.gamma], 1e-5, 1e-5);
    // Wrong shapes are errors.
    let mut wrong = Tensor::zeros(device, &[n], "wrong").unwrap();
    assert!(scalar_mix_forward(&mut wrong, &layers_t, &m).is_err());
}

#[test]
fn cpu_device_path_matches_slices() {
    device_matches_cpu(&Device::Cpu, 1);
    device_matches_cpu(&Device::Cpu, 1000);
}

#[test]
fn gpu_matches_cpu() {
    let gpu = op_checks::gpu();
    device_matches_cpu(&gpu, 1);
    device_matches_cpu(&gpu, 1000);
}
