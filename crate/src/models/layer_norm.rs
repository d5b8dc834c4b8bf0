//! `torch.nn.LayerNorm` over the hidden dimension with its parameters (`weight` = the old
//! `gamma`, `bias` = `beta`), forward and backward, on top of `ops::layernorm`.

use crate::device::Device;
use crate::ops::layernorm::{layernorm_backward, layernorm_forward};
use crate::tensor::Tensor;
use crate::Result;

use super::gradients::Gradients;
use super::weight_loader::WeightLoader;

#[derive(Debug)]
pub struct LayerNorm {
    pub weight: Tensor, // (C)
    pub bias: Tensor,   // (C)
    pub eps: f32,
}

/// What the backward needs besides the input.
pub struct LayerNormSaved {
    pub mean: Tensor, // (N)
    pub rstd: Tensor, // (N)
}

impl LayerNorm {
    pub fn load(
        weights: &WeightLoader,
        prefix: &str,
        module: &str,
        c: usize,
        eps: f32,
    ) -> Result<Self> {
        let w = format!("{module}.weight");
        let b = format!("{module}.bias");
        Ok(LayerNorm {
            weight: weights.load(&w, &format!("{prefix}{w}"), &[c])?,
            bias: weights.load(&b, &format!("{prefix}{b}"), &[c])?,
            eps,
        })
    }

    /// A new LayerNorm (weight 1, bias 0), as transformers initialises one.
    pub fn new(device: &Device, name: &str, c: usize, eps: f32) -> Result<Self> {
        Ok(LayerNorm {
            weight: Tensor::from_vec(device, &[c], vec![1.0; c], &format!("{name}.weight"))?,
            bias: Tensor::zeros(device, &[c], &format!("{name}.bias"))?,
            eps,
        })
    }

    /// y (.., C) = layernorm(x (.., C)), and the row statistics for the backward.
    pub fn forward(&self, x: &Tensor, name: &str) -> Result<(Tensor, LayerNormSaved)> {
        let device = x.device();
        let rows = x.numel() / x.shape().last().copied().unwrap_or(1).max(1);
        let mut y = Tensor::uninit(&device, x.shape(), name)?;
        let mut saved = LayerNormSaved {
            mean: Tensor::uninit(&device, &[rows], "layernorm.mean")?,
            rstd: Tensor::uninit(&device, &[rows], "layernorm.rstd")?,
        };
        layernorm_forward(
            &mut y,
            &mut saved.mean,
            &mut saved.rstd,
            x,
            &self.weight,
            &self.bias,
            self.eps,
        )?;
        Ok((y, saved))
    }

    /// dx (.., C) += d/dx; with `grads`, dweight and dbias (C) += their gradients.
    pub fn backward(
        &self,
        dx: Option<&mut Tensor>,
        dy: &Tensor,
        x: &Tensor,
        saved: &LayerNormSaved,
        grads: Option<&mut Gradients>,
    ) -> Result<()> {
        match grads {
            None => layernorm_backward(
                dx,
                None,
                None,
                dy,
                x,
                &self.weight,
                &saved.mean,
                &saved.rstd,
            ),
            Some(grads) => grads.with_weight_and_bias(&self.weight, &self.bias, |dw, db| {
                layernorm_backward(
                    dx,
                    Some(dw),
                    Some(db),
                    dy,
                    x,
                    &self.weight,
                    &saved.mean,
                    &saved.rstd,
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
