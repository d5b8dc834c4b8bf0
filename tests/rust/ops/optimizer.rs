//! AdamW and global-norm clipping: against an f64 transcription of torch's update rules,
//! closed-form cases, bad input, and the WGSL kernels validated by naga.

use crate::op_checks::*;
use webnlu::ops::optimizer::*;

/// torch.optim.AdamW's single-tensor update, transcribed in f64.
fn adamw_reference(
    p: &mut [f64],
    m: &mut [f64],
    v: &mut [f64],
    g: &[f64],
    c: &AdamWConfig,
    step: i32,
) {
    let (lr, b1, b2, eps, wd) = (
        c.lr as f64,
        c.beta1 as f64,
        c.beta2 as f64,
        c.eps as f64,
        c.weight_decay as f64,
    );
    for i in 0..p.len() {
        p[i] *= 1.0 - lr * wd;
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        let bc1 = 1.0 - b1.powi(step);
        let bc2 = 1.0 - b2.powi(step);
        p[i] -= lr / bc1 * m[i] / (v[i].sqrt() / bc2.sqrt() + eps);
    }
}

#[test]
fn adamw_matches_the_torch_update_over_ten_steps() {
    let n = 37;
    let config = AdamWConfig {
        lr: 1e-2,
        weight_decay: 0.1,
        ..Default::default()
    };
    let mut p = random_values(1, n, -1.0, 1.0);
    let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
    let mut p64: Vec<f64> = p.iter().map(|&x| x as f64).collect();
    let (mut m64, mut v64) = (vec![0.0f64; n], vec![0.0f64; n]);
    for step in 1..=10u64 {
        let g = random_values(100 + step, n, -1.0, 1.0);
        adamw_step_cpu(&mut p, &mut m, &mut v, &g, &config, step).unwrap();
        let g64: Vec<f64> = g.iter().map(|&x| x as f64).collect();
        adamw_reference(&mut p64, &mut m64, &mut v64, &g64, &config, step as i32);
    }
    // f32 vs f64 over 10 steps of size ~lr = 1e-2 on parameters ~1: a few ulps of 1 per step,
    // amplified where v is tiny (the update is m / sqrt(v)); 1e-5 absolute is ~100 ulps.
    assert_close("adamw params", &p, &p64, 1e-5, 0.0);
    assert_close("adamw m", &m, &m64, 1e-6, 1e-5);
    assert_close("adamw v", &v, &v64, 1e-7, 1e-5);
}

#[test]
fn adamw_first_step_and_decoupled_decay() {
    // First step from zero moments: the bias-corrected update is lr * g / (|g| + eps) = lr sign(g).
    let config = AdamWConfig {
        lr: 0.5,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut p = vec![1.0f32, 1.0];
    let (mut m, mut v) = (vec![0.0; 2], vec![0.0; 2]);
    adamw_step_cpu(&mut p, &mut m, &mut v, &[3.0, -0.25], &config, 1).unwrap();
    assert!(
        (p[0] - 0.5).abs() < 1e-6 && (p[1] - 1.5).abs() < 1e-6,
        "{p:?}"
    );
    // Zero gradient: only the decoupled decay acts, p *= (1 - lr wd) exactly each step.
    let config = AdamWConfig {
        lr: 0.1,
        weight_decay: 0.5,
        ..Default::default()
    };
    let mut p = vec![2.0f32];
    let (mut m, mut v) = (vec![0.0; 1], vec![0.0; 1]);
    for step in 1..=3 {
        adamw_step_cpu(&mut p, &mut m, &mut v, &[0.0], &config, step).unwrap();
    }
    assert!((p[0] - 2.0 * 0.95f32.powi(3)).abs() < 1e-6, "{}", p[0]);
}

#[test]
fn adamw_rejects_bad_input() {
    let c = AdamWConfig::default();
    let (mut p, mut m, mut v) = (vec![0.0; 2], vec![0.0; 2], vec![0.0; 2]);
    assert!(
        adamw_step_cpu(&mut p, &mut m, &mut v, &[0.0; 2], &c, 0).is_err(),
        "step 0"
    );
    assert!(
        adamw_step_cpu(&mut p, &mut m, &mut v, &[0.0; 3], &c, 1).is_err(),
        "grad size"
    );
    let bad = AdamWConfig { beta1: 1.0, ..c };
    assert!(
        adamw_step_cpu(&mut p, &mut m, &mut v, &[0.0; 2], &bad, 1).is_err(),
        "beta1 = 1"
    );
    adamw_step_cpu(&mut [], &mut [], &mut [], &[], &c, 1).unwrap();
}

#[test]
fn clip_grad_norm_scales_only_above_max() {
    let mut a = vec![3.0f32, 0.0];
    let mut b = vec![0.0f32, 4.0, 0.0];
    let total = clip_grad_norm_cpu(&mut [&mut a, &mut b], 1.0).unwrap();
    assert_eq!(total, 5.0, "the norm of all gradients together");
    let k = 1.0 / (5.0 + CLIP_EPS);
    assert_eq!(a, [3.0 * k, 0.0]);
    assert_eq!(b, [0.0, 4.0 * k, 0.0]);
    // below the threshold: coefficient clamps to 1, gradients unchanged
    let mut c = vec![0.1f32, -0.2];
    let before = c.clone();
    let total = clip_grad_norm_cpu(&mut [&mut c], 10.0).unwrap();
    assert!((total - (0.05f32).sqrt()).abs() < 1e-7);
    assert_eq!(c, before);
    // no gradients at all: norm 0
    assert_eq!(clip_grad_norm_cpu(&mut [], 1.0).unwrap(), 0.0);
    assert!(clip_grad_norm_cpu(&mut [], -1.0).is_err());
    assert!(clip_grad_norm_cpu(&mut [], f32::NAN).is_err());
    assert_eq!(partial_sums_for(0), 0);
    assert_eq!(partial_sums_for(4097), 2);
}

use crate::op_checks;

#[test]
fn gpu_matches_cpu() {
    use webnlu::Tensor;
    let gpu = op_checks::gpu();
    let config = AdamWConfig {
        lr: 1e-2,
        weight_decay: 0.1,
        ..Default::default()
    };
    for n in [1usize, 1000, 4097, 0] {
        let mut p = random_values(n as u64, n, -1.0, 1.0);
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        let mut pg = Tensor::from_vec(&gpu, &[n], p.clone(), "p").unwrap();
        let (mut mg, mut vg) = (
            Tensor::zeros(&gpu, &[n], "m").unwrap(),
            Tensor::zeros(&gpu, &[n], "v").unwrap(),
        );
        for step in 1..=3 {
            let g = random_values(100 + step, n, -1.0, 1.0);
            adamw_step_cpu(&mut p, &mut m, &mut v, &g, &config, step).unwrap();
            let gg = Tensor::from_vec(&gpu, &[n], g, "g").unwrap();
            adamw_step(&mut pg, &mut mg, &mut vg, &gg, &config, step).unwrap();
        }
        // same operations in the same order; only sqrt/division rounding may differ (1 ulp)
        op_checks::assert_close("adamw params", &op_checks::download(&pg), &p, 1e-6, 1e-6);
        op_checks::assert_close("adamw m", &op_checks::download(&mg), &m, 1e-7, 1e-6);
        op_checks::assert_close("adamw v", &op_checks::download(&vg), &v, 1e-8, 1e-6);
    }
    // clipping over several tensors (odd sizes, one of them empty, one spanning 2 partials)
    for max_norm in [0.5f32, 1e6] {
        let sizes = [1usize, 0, 5000, 37];
        let data: Vec<Vec<f32>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| random_values(i as u64 + 9, n, -0.1, 0.1))
            .collect();
        let mut cpu: Vec<Vec<f32>> = data.clone();
        let total = {
            let mut views: Vec<&mut [f32]> = cpu.iter_mut().map(|v| v.as_mut_slice()).collect();
            clip_grad_norm_cpu(&mut views, max_norm).unwrap()
        };
        let mut tensors: Vec<Tensor> = data
            .iter()
            .zip(sizes)
            .map(|(d, n)| Tensor::from_vec(&gpu, &[n], d.clone(), "g").unwrap())
            .collect();
        let mut norm = Tensor::zeros(&gpu, &[2], "norm").unwrap();
        {
            let mut refs: Vec<&mut Tensor> = tensors.iter_mut().collect();
            clip_grad_norm(&mut norm, &mut refs, max_norm).unwrap();
        }
        let got = op_checks::download(&norm);
        // f32 tree sums vs an f64 sum of ~5000 squares: relative 1e-6
        op_checks::assert_close("total norm", &got[..1], &[total], 1e-7, 1e-5);
        op_checks::assert_close(
            "coefficient",
            &got[1..],
            &[clip_coefficient(total, max_norm)],
            1e-7,
            1e-5,
        );
        for (t, want) in tensors.iter().zip(&cpu) {
            op_checks::assert_close("clipped grads", &op_checks::download(t), want, 1e-8, 1e-5);
        }
    }
}

use crate::bert_reference;

/// Two steps of `torch.optim.AdamW` after `clip_grad_norm_` on real gradients (the DistilBERT
/// classifier head of tests/fixtures/bert-reference/adamw.*), through the device ops
/// `clip_grad_norm` + `adamw_step`, on the CPU and on the GPU.
#[test]
fn adamw_and_clipping_reproduce_torch_on_each_device() {
    use webnlu::device::Device;
    use webnlu::Tensor;
    let case = bert_reference::load_case("adamw");
    let number = |key: &str| case.field(key).as_f64().unwrap() as f32;
    let betas = case.field("betas").as_array().unwrap();
    let config = AdamWConfig {
        lr: number("lr"),
        beta1: betas[0].as_f64().unwrap() as f32,
        beta2: betas[1].as_f64().unwrap() as f32,
        eps: number("eps"),
        weight_decay: number("weight_decay"),
    };
    let max_norm = number("max_norm");
    assert_eq!(
        case.trainable.len(),
        4,
        "pre_classifier + classifier weight/bias"
    );
    for device in [Device::Cpu, op_checks::gpu()] {
        let upload = |name: &str| {
            let t = case.tensor(name);
            Tensor::from_vec(&device, &t.shape, t.data.clone(), name).unwrap()
        };
        let mut params: Vec<Tensor> = case
            .trainable
            .iter()
            .map(|p| upload(&format!("adamw.before.{p}")))
            .collect();
        let zeros = |p: &Tensor| Tensor::zeros(&device, p.shape(), "moment").unwrap();
        let mut m: Vec<Tensor> = params.iter().map(zeros).collect();
        let mut v: Vec<Tensor> = params.iter().map(zeros).collect();
        for step in 1..=2u64 {
            let mut grads: Vec<Tensor> = case
                .trainable
                .iter()
                .map(|p| upload(&format!("adamw.step{step}.grad.{p}")))
                .collect();
            let mut norm = Tensor::zeros(&device, &[2], "norm").unwrap();
            {
                let mut refs: Vec<&mut Tensor> = grads.iter_mut().collect();
                clip_grad_norm(&mut norm, &mut refs, max_norm).unwrap();
            }
            let got_norm = op_checks::download(&norm);
            let want_norm = case.tensor(&format!("adamw.step{step}.grad_norm")).data[0];
            // f32 sums of ~1100 squares in another order than torch's: a few ulps.
            op_checks::assert_close("total norm", &got_norm[..1], &[want_norm], 0.0, 1e-5);
            assert!(got_norm[1] < 1.0, "step {step}: clipping must be active");
            for i in 0..params.len() {
                adamw_step(
                    &mut params[i],
                    &mut m[i],
                    &mut v[i],
                    &grads[i],
                    &config,
                    step,
                )
                .unwrap();
                let name = &case.trainable[i];
                let want = &case.tensor(&format!("adamw.step{step}.after.{name}")).data;
                let got = op_checks::download(&params[i]);
                // torch computes the same f32 operations (clip coefficient, decay, lerp, sqrt);
                // our clip coefficient comes from an f64 (CPU) or tree-summed (GPU) norm, so
                // clipped gradients may differ by an ulp. Measured: <= 6e-8 (1 ulp at |p| ~ 0.5)
                // on both devices. 2.5e-7 (4 ulps at |p| ~ 1) still catches a misplaced eps
                // (eps = 1e-6 against sqrt(v) ~ 0.05 moves the step by ~lr * 2e-5 = 2e-7).
                let what = format!("{device:?} step {step} {name}");
                let worst = bert_reference::max_abs_diff(&got, want);
                println!("{what}: max abs diff {worst:e}");
                assert!(worst <= 2.5e-7, "{what}: max abs diff {worst:e}");
            }
        }
    }
}
