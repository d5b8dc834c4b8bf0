//! ELMo's learned scalar mix (Peters et al. 2018, eq. 1; AllenNLP `allennlp/modules/scalar_mix.py`
//! `ScalarMix` without layer norm, as `Elmo` uses it):
//!
//! ```text
//! w = softmax(s)                      s: K scalar parameters (AllenNLP initialises them to 0)
//! out = gamma * sum_k w_k layer_k     gamma: one scalar (initialised to 1)
//! ```
//! Backward, with `g_k = <dout, layer_k>`:
//! `dlayer_k += gamma w_k dout`, `dgamma += sum_k w_k g_k`, `dw_k = gamma g_k`,
//! `ds_j += w_j (dw_j - sum_k w_k dw_k)` (softmax backward).
//!
//! The K + 1 parameters live on the host (a handful of numbers); the layers and gradients of
//! size N live on the device, and the device version is two matmuls against the (1, K) weight
//! row, so it runs on the CPU and the GPU alike.

use crate::ops::matmul::{matmul_forward, MatmulOptions};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The parameters of a scalar mix of K layers.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarMix {
    /// s (K), before the softmax
    pub scalars: Vec<f32>,
    pub gamma: f32,
}

/// Their gradients, accumulated.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalarMixGrads {
    pub scalars: Vec<f32>, // (K)
    pub gamma: f32,
}

impl ScalarMix {
    /// AllenNLP's defaults: all scalars 0 (equal weights), gamma 1.
    pub fn new(layers: usize) -> Result<ScalarMix> {
        if layers == 0 {
            return Err(Error::invalid("scalar mix of 0 layers"));
        }
        Ok(ScalarMix {
            scalars: vec![0.0; layers],
            gamma: 1.0,
        })
    }

    /// Zero gradients of the right size.
    pub fn zero_grads(&self) -> ScalarMixGrads {
        ScalarMixGrads {
            scalars: vec![0.0; self.scalars.len()],
            gamma: 0.0,
        }
    }

    /// w = softmax(s), computed with the max subtracted.
    pub fn weights(&self) -> Vec<f32> {
        let max = self
            .scalars
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = self.scalars.iter().map(|&s| (s - max).exp()).collect();
        let sum: f32 = exps.iter().sum();
        exps.iter().map(|e| e / sum).collect()
    }

    /// Adds the parameter gradients from `g_k = <dout, layer_k>`.
    fn accumulate_parameter_grads(&self, grads: &mut ScalarMixGrads, g: &[f32]) {
        let w = self.weights();
        let dw: Vec<f32> = g.iter().map(|&gk| self.gamma * gk).collect();
        let weighted: f32 = w.iter().zip(&dw).map(|(a, b)| a * b).sum();
        grads.gamma += w.iter().zip(g).map(|(a, b)| a * b).sum::<f32>();
        for j in 0..w.len() {
            grads.scalars[j] += w[j] * (dw[j] - weighted);
        }
    }
}

fn check(op: &str, mix: &ScalarMix, layers: usize, n: usize) -> Result<()> {
    if layers != mix.scalars.len() * n {
        return Err(Error::shape(
            format!("{op}: layers"),
            format!("({}, {n})", mix.scalars.len()),
            layers,
        ));
    }
    Ok(())
}

/// softmax(s) (K), once `layers` is checked to hold K rows of N.
fn checked_weights(op: &str, mix: &ScalarMix, layers: usize, n: usize) -> Result<Vec<f32>> {
    check(op, mix, layers, n)?;
    Ok(mix.weights())
}

/// out (N) = gamma * sum_k softmax(s)_k layers[k] (N)
pub fn scalar_mix_forward_cpu(
    out: &mut [f32], // (N)
    layers: &[f32],  // (K, N)
    mix: &ScalarMix,
) -> Result<()> {
    let n = out.len();
    let w = checked_weights("scalar_mix_forward_cpu", mix, layers.len(), n)?;
    out.fill(0.0);
    for (k, wk) in w.iter().enumerate() {
        for (o, x) in out.iter_mut().zip(&layers[k * n..(k + 1) * n]) {
            *o += wk * x;
        }
    }
    for o in out.iter_mut() {
        *o *= mix.gamma;
    }
    Ok(())
}

/// Backward of [`scalar_mix_forward_cpu`]: dlayers (K, N) and the parameter gradients
/// accumulated from dout (N).
pub fn scalar_mix_backward_cpu(
    dlayers: Option<&mut [f32]>, // (K, N) accumulated; None when the layers are frozen
    grads: &mut ScalarMixGrads,
    dout: &[f32],   // (N)
    layers: &[f32], // (K, N)
    mix: &ScalarMix,
) -> Result<()> {
    let n = dout.len();
    let w = checked_weights("scalar_mix_backward_cpu", mix, layers.len(), n)?;
    let g: Vec<f32> = (0..w.len())
        .map(|k| {
            layers[k * n..(k + 1) * n]
                .iter()
                .zip(dout)
                .map(|(x, d)| x * d)
                .sum()
        })
        .collect();
    if let Some(dlayers) = dlayers {
        check("scalar_mix_backward_cpu", mix, dlayers.len(), n)?;
        for (k, wk) in w.iter().enumerate() {
            for (dl, d) in dlayers[k * n..(k + 1) * n].iter_mut().zip(dout) {
                *dl += mix.gamma * wk * d;
            }
        }
    }
    mix.accumulate_parameter_grads(grads, &g);
    Ok(())
}

/// (K, N) of a layers tensor; `out`-like tensors must hold N elements.
fn layer_dims(op: &str, layers: &Tensor, mix: &ScalarMix) -> Result<(usize, usize)> {
    let k = mix.scalars.len();
    match layers.shape() {
        &[lk, n] if lk == k => Ok((k, n)),
        other => Err(Error::shape(
            format!("{op}: {}", layers.name()),
            format!("({k}, N)"),
            other,
        )),
    }
}

/// On the tensors' device: out (1, N) = gamma * sum_k w_k layers[k], layers (K, N) (reshape
/// the layers (B, T, 2P) to (1, B*T*2P) rows first: `Tensor::reshape` is free).
pub fn scalar_mix_forward(out: &mut Tensor, layers: &Tensor, mix: &ScalarMix) -> Result<()> {
    let op = "scalar_mix_forward";
    let (k, n) = layer_dims(op, layers, mix)?;
    out.expect_shape(op, &[1, n])?;
    let w = Tensor::from_vec(&out.device(), &[1, k], mix.weights(), "scalar_mix.weights")?;
    // (1, N) = gamma * w (1, K) @ layers (K, N)
    matmul_forward(
        out,
        &w,
        layers,
        None,
        MatmulOptions {
            alpha: mix.gamma,
            ..MatmulOptions::default()
        },
    )
}

/// Backward of [`scalar_mix_forward`] on the tensors' device, dout (1, N): dlayers (K, N) accumulated (None
/// when the layers are frozen), parameter gradients accumulated on the host (async: reads back
/// the K inner products `<dout, layer_k>`).
pub async fn scalar_mix_backward(
    dlayers: Option<&mut Tensor>,
    grads: &mut ScalarMixGrads,
    dout: &Tensor,
    layers: &Tensor,
    mix: &ScalarMix,
) -> Result<()> {
    let op = "scalar_mix_backward";
    let (k, n) = layer_dims(op, layers, mix)?;
    dout.expect_shape(op, &[1, n])?;
    let device = dout.device();
    if let Some(dlayers) = dlayers {
        dlayers.expect_shape(op, &[k, n])?;
        let w = Tensor::from_vec(&device, &[1, k], mix.weights(), "scalar_mix.weights")?;
        // dlayers (K, N) += gamma * w^T (K, 1) @ dout (1, N)
        matmul_forward(
            dlayers,
            &w,
            dout,
            None,
            MatmulOptions {
                trans_a: true,
                alpha: mix.gamma,
                accumulate: true,
                ..MatmulOptions::default()
            },
        )?;
    }
    // g (1, K) = dout (1, N) @ layers^T (N, K)
    let mut g = Tensor::uninit(&device, &[1, k], "scalar_mix.g")?;
    matmul_forward(
        &mut g,
        dout,
        layers,
        None,
        MatmulOptions {
            trans_b: true,
            ..MatmulOptions::default()
        },
    )?;
    let g = g.to_vec().await?;
    mix.accumulate_parameter_grads(grads, &g);
    Ok(())
}
