//! AdamW over a model's named parameters, as the Hugging Face `Trainer` sets it up: two
//! parameter groups, weight decay on every weight except biases and LayerNorm parameters
//! (`Trainer.get_decay_parameter_names`: names containing "bias" and the parameters of LayerNorm
//! modules get `weight_decay = 0`). The update itself is `ops::optimizer::adamw_step`
//! (`torch.optim.AdamW`), run on the parameter's device; the moments live next to it.

use std::collections::BTreeMap;

use crate::device::Device;
use crate::models::Gradients;
use crate::ops::optimizer::{adamw_step, clip_grad_norm, AdamWConfig};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Whether the Hugging Face Trainer would apply weight decay to this parameter
/// (`Trainer.get_decay_parameter_names`): not to parameters of LayerNorm modules, nor to names
/// that, lowercased, contain "bias", "layernorm", "rmsnorm", a segment "norm" or a "_norm"
/// suffix (DistilBERT's `sa_layer_norm`, `output_layer_norm`). Old TensorFlow names `gamma` /
/// `beta` are LayerNorm parameters.
pub fn decays(name: &str) -> bool {
    let lower = name.to_lowercase();
    let segments: Vec<&str> = lower.split('.').collect();
    let norm_segment = segments
        .iter()
        .any(|s| *s == "norm" || s.ends_with("_norm"));
    let old_layer_norm = matches!(segments.last(), Some(&"gamma") | Some(&"beta"));
    !(lower.contains("bias")
        || lower.contains("layernorm")
        || lower.contains("rmsnorm")
        || norm_segment
        || old_layer_norm)
}

/// First and second moments of one parameter, shaped like it: (same as the parameter).
struct Moments {
    m: Tensor,
    v: Tensor,
}

/// AdamW state for named parameters; moments are created on the first step of each parameter.
pub struct AdamW {
    /// lr here is ignored: each step gets its own from the schedule.
    pub config: AdamWConfig,
    moments: BTreeMap<String, Moments>,
    /// Optimizer steps taken so far (the next step is `steps + 1`).
    steps: u64,
}

/// One parameter (named by its tensor's name, the HF parameter name) and its gradient, for
/// [`AdamW::step`].
pub struct ParameterUpdate<'a> {
    pub value: &'a mut Tensor,
    pub grad: &'a Tensor,
}

impl AdamW {
    pub fn new(config: AdamWConfig) -> Self {
        AdamW {
            config,
            moments: BTreeMap::new(),
            steps: 0,
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Bytes of optimizer state (two moments per trained parameter).
    pub fn state_bytes(&self) -> u64 {
        self.moments
            .values()
            .map(|s| s.m.bytes() + s.v.bytes())
            .sum()
    }

    /// One step with learning rate `lr` on every parameter given (each name once), each named
    /// by its tensor's name.
    pub fn step(&mut self, lr: f32, parameters: &mut [ParameterUpdate<'_>]) -> Result<()> {
        let names: Vec<String> = parameters
            .iter()
            .map(|p| p.value.name().to_string())
            .collect();
        self.step_named(lr, &names, parameters)
    }

    /// [`AdamW::step`] with `names[i]` naming `parameters[i]` (its moments and its decay group)
    /// instead of its tensor's name: for a model whose tensors' names are not unique (ELMo's
    /// biLM names them by kind; its parameter names are `ElmoWeights::named`'s).
    pub fn step_named(
        &mut self,
        lr: f32,
        names: &[String],
        parameters: &mut [ParameterUpdate<'_>],
    ) -> Result<()> {
        if names.len() != parameters.len() {
            return Err(Error::shape(
                "adamw: parameter names",
                parameters.len(),
                names.len(),
            ));
        }
        self.steps += 1;
        let step = self.steps;
        for (p, name) in parameters.iter_mut().zip(names) {
            let config = AdamWConfig {
                lr,
                weight_decay: if decays(name) {
                    self.config.weight_decay
                } else {
                    0.0
                },
                ..self.config
            };
            if !self.moments.contains_key(name) {
                let device = p.value.device();
                let shape = p.value.shape().to_vec();
                let moments = Moments {
                    m: Tensor::zeros(&device, &shape, &format!("adamw.m.{name}"))?,
                    v: Tensor::zeros(&device, &shape, &format!("adamw.v.{name}"))?,
                };
                self.moments.insert(name.clone(), moments);
            }
            let moments = self.moments.get_mut(name).expect("inserted above");
            if moments.m.shape() != p.value.shape() {
                return Err(Error::shape(
                    format!("adamw: parameter {name} changed shape"),
                    moments.m.shape(),
                    p.value.shape(),
                ));
            }
            adamw_step(
                p.value,
                &mut moments.m,
                &mut moments.v,
                p.grad,
                &config,
                step,
            )?;
        }
        Ok(())
    }
}

/// One optimizer step of a model, as the HF Trainer takes it: the gradients clipped to
/// `max_grad_norm` (global norm; `None`: not clipped), then AdamW at `lr` on every parameter of
/// `parameters` that has a gradient in `grads` (the frozen ones have none). Returns how many
/// values were updated. Nothing is read back.
pub fn clip_and_step(
    optimizer: &mut AdamW,
    device: &Device,
    parameters: Vec<&mut Tensor>,
    grads: &mut Gradients,
    max_grad_norm: Option<f32>,
    lr: f32,
) -> Result<usize> {
    let mut norm = Tensor::zeros(device, &[2], "grad_norm")?; // (2) [total norm, coefficient]
    {
        let mut tensors: Vec<&mut Tensor> = grads.iter_mut().map(|(_, g)| g).collect();
        clip_gradients(&mut norm, &mut tensors, max_grad_norm)?;
    }
    let mut updates: Vec<ParameterUpdate> = parameters
        .into_iter()
        .filter_map(|value| {
            let grad = grads.get(value.name())?;
            Some(ParameterUpdate { value, grad })
        })
        .collect();
    let updated = updates.iter().map(|u| u.value.numel()).sum();
    optimizer.step(lr, &mut updates)?;
    Ok(updated)
}

/// `clip_grad_norm_` over all gradients together; `norm_out (2)` receives
/// `[total norm, coefficient]` on the gradients' device (no read-back). `max_norm = None`
/// leaves the gradients as they are.
pub fn clip_gradients(
    norm_out: &mut Tensor,
    grads: &mut [&mut Tensor],
    max_norm: Option<f32>,
) -> Result<()> {
    match max_norm {
        None => Ok(()),
        Some(max_norm) => clip_grad_norm(norm_out, grads, max_norm),
    }
}
