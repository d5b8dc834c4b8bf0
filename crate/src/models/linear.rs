//! A fully connected layer as `torch.nn.Linear`: `y = x W^T + b`, W stored (out, in) as in
//! PyTorch checkpoints, with its backward next to it, and the initialisation transformers gives
//! a new layer (`BertPreTrainedModel._init_weights`: W ~ normal(0, initializer_range), b = 0).

use crate::device::Device;
use crate::ops::dropout::threefry2x32;
use crate::ops::matmul::{matmul_backward, matmul_forward_packed, MatmulOptions, PackedWeight};
use crate::tensor::Tensor;
use crate::Result;

use super::gradients::Gradients;
use super::weight_loader::WeightLoader;

#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor, // (out, in)
    pub bias: Tensor,   // (out)
    /// The CPU matmul's packed panels of `weight`, made on first use (and after it changes).
    packed: PackedWeight,
}

const WEIGHT_IS_OUT_BY_IN: MatmulOptions = MatmulOptions {
    trans_a: false,
    trans_b: true,
    alpha: 1.0,
    accumulate: false,
};

impl Linear {
    /// `<module>.weight` (out, in) and `<module>.bias` (out), named `<prefix><module>.*`.
    pub fn load(
        weights: &WeightLoader,
        prefix: &str,
        module: &str,
        out: usize,
        inp: usize,
    ) -> Result<Self> {
        let w = format!("{module}.weight");
        let b = format!("{module}.bias");
        Ok(Linear {
            weight: weights.load(&w, &format!("{prefix}{w}"), &[out, inp])?,
            bias: weights.load(&b, &format!("{prefix}{b}"), &[out])?,
            packed: PackedWeight::default(),
        })
    }

    /// A new layer named `<name>.weight` / `<name>.bias`: W ~ normal(0, std), b = 0.
    pub fn new_random(
        device: &Device,
        name: &str,
        out: usize,
        inp: usize,
        std: f32,
        seed: u64,
    ) -> Result<Self> {
        Ok(Linear {
            weight: Tensor::from_vec(
                device,
                &[out, inp],
                normal_values(out * inp, std, seed),
                &format!("{name}.weight"),
            )?,
            bias: Tensor::zeros(device, &[out], &format!("{name}.bias"))?,
            packed: PackedWeight::default(),
        })
    }

    pub fn out_features(&self) -> usize {
        self.weight.shape()[0]
    }

    pub fn in_features(&self) -> usize {
        self.weight.shape()[1]
    }

    /// y (.., out) = x (.., in) W^T + b
    pub fn forward(&self, y: &mut Tensor, x: &Tensor) -> Result<()> {
        matmul_forward_packed(
            y,
            x,
            &self.weight,
            Some(&self.bias),
            WEIGHT_IS_OUT_BY_IN,
            &self.packed,
        )
    }

    /// A new output tensor (.., out) for input x (.., in), computed.
    pub fn apply(&self, x: &Tensor, name: &str) -> Result<Tensor> {
        let mut shape = x.shape().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = self.out_features();
        }
        let mut y = Tensor::uninit(&x.device(), &shape, name)?;
        self.forward(&mut y, x)?;
        Ok(y)
    }

    /// dx (.., in) += dy W; with `grads`, dW (out, in) += dy^T x and db (out) += sum of dy.
    pub fn backward(
        &self,
        dx: Option<&mut Tensor>,
        dy: &Tensor,
        x: &Tensor,
        grads: Option<&mut Gradients>,
    ) -> Result<()> {
        match grads {
            None => matmul_backward(dx, None, None, dy, x, &self.weight, WEIGHT_IS_OUT_BY_IN),
            Some(grads) => grads.with_weight_and_bias(&self.weight, &self.bias, |dw, db| {
                matmul_backward(
                    dx,
                    Some(dw),
                    Some(db),
                    dy,
                    x,
                    &self.weight,
                    WEIGHT_IS_OUT_BY_IN,
                )
            }),
        }
    }

    pub fn parameters(&self) -> [&Tensor; 2] {
        [&self.weight, &self.bias]
    }

    pub fn parameters_mut(&mut self) -> [&mut Tensor; 2] {
        [&mut self.weight, &mut self.bias]
    }
}

/// `n` values of normal(0, std) from a seeded counter-based generator (Threefry-2x32 + the
/// Box-Muller transform): the same seed gives the same weights on every platform.
pub fn normal_values(n: usize, std: f32, seed: u64) -> Vec<f32> {
    let key = [seed as u32, (seed >> 32) as u32];
    let mut out = Vec::with_capacity(n);
    let mut counter = 0u32;
    while out.len() < n {
        let [a, b] = threefry2x32(key, [counter, 0x6e6f_726d]); // stream "norm"
        counter += 1;
        // u1 in (0, 1], u2 in [0, 1)
        let u1 = (a as f64 + 1.0) / 4_294_967_296.0;
        let u2 = b as f64 / 4_294_967_296.0;
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        out.push((r * theta.cos()) as f32 * std);
        if out.len() < n {
            out.push((r * theta.sin()) as f32 * std);
        }
    }
    out
}
