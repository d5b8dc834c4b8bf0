//! One post-LN Transformer encoder layer, shared by BERT (`BertLayer`: `BertAttention` +
//! `BertIntermediate` + `BertOutput` in transformers' `modeling_bert.py`) and DistilBERT
//! (`TransformerBlock` in `modeling_distilbert.py`); only the parameter names and the dropout
//! sites differ.
//!
//! ```text
//! x (B, T, C)
//! q, k, v = query(x), key(x), value(x)              (B, T, C)
//! ctx     = attention(q, k, v, mask)                (B, T, C)   ops/attention.rs (+ its dropout)
//! r1      = dropout(attention_output(ctx)) + x      (B, T, C)   DistilBERT: no dropout here
//! h1      = attention_norm(r1)                      (B, T, C)
//! u       = act(intermediate(h1))                   (B, T, I)
//! r2      = dropout(output(u)) + h1                 (B, T, C)
//! y       = output_norm(r2)                         (B, T, C)
//! ```

use crate::io::Activation as ConfigActivation;
use crate::ops::attention::{attention_backward, attention_forward_keeping, AttentionSaved};
use crate::ops::dropout::{dropout_backward, dropout_forward, DropoutMask};
use crate::ops::elementwise::{
    activation_backward, activation_forward, add_backward, add_forward, Activation,
};
use crate::ops::matmul::WeightDtype;
use crate::tensor::Tensor;
use crate::{Error, Result};

use crate::models::gradients::Gradients;
use crate::models::layer_norm::{LayerNorm, LayerNormSaved};
use crate::models::linear::Linear;
use crate::models::weight_loader::WeightLoader;

/// The module names of one layer's parameters, relative to the layer's prefix.
pub struct LayerNames {
    pub query: &'static str,
    pub key: &'static str,
    pub value: &'static str,
    pub attention_output: &'static str,
    pub attention_norm: &'static str,
    pub intermediate: &'static str,
    pub output: &'static str,
    pub output_norm: &'static str,
}

impl LayerNames {
    /// The six linear layers' modules with their weights' shapes (out, in) for hidden size `c`
    /// and FFN size `i`: attention query, key, value, output, then the FFN's two.
    pub fn matrices(&self, c: usize, i: usize) -> [(&'static str, [usize; 2]); 6] {
        [
            (self.query, [c, c]),
            (self.key, [c, c]),
            (self.value, [c, c]),
            (self.attention_output, [c, c]),
            (self.intermediate, [i, c]),
            (self.output, [c, i]),
        ]
    }
}

/// Dropout probabilities of the layer's three sites (0 = no dropout there).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerDropout {
    pub attention_probs: f32,
    pub attention_output: f32,
    pub ffn_output: f32,
}

/// The sizes of a layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerShape {
    pub hidden: usize,       // C
    pub intermediate: usize, // I
    pub heads: usize,        // NH
    pub eps: f32,
}

/// The op-level activation for a config activation (SiLU has no kernel yet).
pub fn op_activation(act: ConfigActivation) -> Result<Activation> {
    Ok(match act {
        ConfigActivation::Gelu => Activation::Gelu,
        ConfigActivation::GeluTanh => Activation::GeluTanh,
        ConfigActivation::Relu => Activation::Relu,
        ConfigActivation::Tanh => Activation::Tanh,
        ConfigActivation::Silu => {
            return Err(Error::unsupported("activation silu in a BERT layer"))
        }
    })
}

#[derive(Debug)]
pub struct EncoderLayer {
    pub query: Linear,             // (C, C)
    pub key: Linear,               // (C, C)
    pub value: Linear,             // (C, C)
    pub attention_output: Linear,  // (C, C)
    pub attention_norm: LayerNorm, // (C)
    pub intermediate: Linear,      // (I, C)
    pub output: Linear,            // (C, I)
    pub output_norm: LayerNorm,    // (C)
    pub heads: usize,
    pub activation: Activation,
    pub dropout: LayerDropout,
}

/// Everything the backward of one layer needs besides its input.
pub struct EncoderLayerSaved {
    attention: AttentionSaved,
    context: Tensor,          // (B, T, C) input of attention_output
    residual1: Tensor,        // (B, T, C) input of attention_norm
    norm1: LayerNormSaved,    // (B*T)
    h1: Tensor,               // (B, T, C) output of attention_norm
    intermediate_pre: Tensor, // (B, T, I) before the activation
    intermediate_act: Tensor, // (B, T, I) after it
    residual2: Tensor,        // (B, T, C) input of output_norm
    norm2: LayerNormSaved,    // (B*T)
}

/// The dropout masks of one layer in one step: one stream per site.
#[derive(Clone, Copy)]
pub struct LayerMasks {
    pub attention_probs: Option<DropoutMask>,
    pub attention_output: Option<DropoutMask>,
    pub ffn_output: Option<DropoutMask>,
}

impl LayerMasks {
    /// No dropout (eval).
    pub fn none() -> Self {
        LayerMasks {
            attention_probs: None,
            attention_output: None,
            ffn_output: None,
        }
    }

    /// Layer `index`'s masks of a training step with key `seed` (streams 1 + 3 * index ..).
    pub fn for_layer(dropout: LayerDropout, seed: u64, index: usize) -> Self {
        let site = |probability: f32, k: u32| {
            (probability > 0.0).then_some(DropoutMask {
                probability,
                seed,
                stream: 1 + 3 * index as u32 + k,
            })
        };
        LayerMasks {
            attention_probs: site(dropout.attention_probs, 0),
            attention_output: site(dropout.attention_output, 1),
            ffn_output: site(dropout.ffn_output, 2),
        }
    }
}

/// out = dropout(x) (a new tensor), or x moved through when there is no mask.
fn dropout_or_identity(x: Tensor, mask: Option<DropoutMask>) -> Result<Tensor> {
    match mask {
        None => Ok(x),
        Some(mask) => {
            let mut out = Tensor::uninit(&x.device(), x.shape(), x.name())?;
            dropout_forward(&mut out, &x, mask)?;
            Ok(out)
        }
    }
}

impl EncoderLayer {
    /// Loads the layer whose parameters are named `<prefix><names.*>.{weight,bias}`;
    /// `canonical` is the prefix the tensors get (the model prefix + `prefix`). The six
    /// linear layers' weight matrices are held in `dtype` (LayerNorms and biases in f32).
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        weights: &WeightLoader,
        model_prefix: &str,
        layer_prefix: &str,
        names: &LayerNames,
        shape: LayerShape,
        activation: Activation,
        dropout: LayerDropout,
        dtype: WeightDtype,
    ) -> Result<Self> {
        let (c, i) = (shape.hidden, shape.intermediate);
        let p = |m: &str| format!("{layer_prefix}{m}");
        let [query, key, value, attention_output, intermediate, output] =
            names.matrices(c, i).map(|(module, [out, inp])| {
                Linear::load_as(weights, model_prefix, &p(module), out, inp, dtype)
            });
        let norm = |m: &str| LayerNorm::load(weights, model_prefix, &p(m), c, shape.eps);
        Ok(EncoderLayer {
            query: query?,
            key: key?,
            value: value?,
            attention_output: attention_output?,
            attention_norm: norm(names.attention_norm)?,
            intermediate: intermediate?,
            output: output?,
            output_norm: norm(names.output_norm)?,
            heads: shape.heads,
            activation,
            dropout,
        })
    }

    /// y (B, T, C) from x (B, T, C) and the additive mask (B, T); the saved activations when
    /// `keep` (the layer will be trained or backpropagated through).
    pub fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        masks: LayerMasks,
        keep: bool,
    ) -> Result<(Tensor, Option<EncoderLayerSaved>)> {
        let (y, saved) = self.forward_saving(x, mask, masks)?;
        Ok((y, keep.then_some(saved)))
    }

    /// Inference (no dropout): y (B, T, C) and the attention probabilities (B, NH, T, T) after
    /// the softmax (transformers' `output_attentions` with eager attention). The probabilities
    /// are computed by every forward anyway; this only keeps them (`models/bert/encoder_states.rs`).
    pub fn forward_with_attention(&self, x: &Tensor, mask: &Tensor) -> Result<(Tensor, Tensor)> {
        let (y, saved) = self.forward_saving(x, mask, LayerMasks::none())?;
        Ok((y, saved.attention.att))
    }

    /// y and everything the backward needs. The saved tensors are the forward's own
    /// intermediates (alive until the end of the forward in any case), so dropping them when
    /// nothing is kept costs nothing.
    fn forward_saving(
        &self,
        x: &Tensor,
        mask: &Tensor,
        masks: LayerMasks,
    ) -> Result<(Tensor, EncoderLayerSaved)> {
        let device = x.device();
        let q = self.query.apply(x, "q")?; // (B, T, C)
        let k = self.key.apply(x, "k")?; // (B, T, C)
        let v = self.value.apply(x, "v")?; // (B, T, C)
        let s = x.shape();
        let mut attention = AttentionSaved::new(&device, s[0], s[1], s[2], self.heads)?;
        let mut context = Tensor::uninit(&device, x.shape(), "attention.context")?; // (B, T, C)
                                                                                    // q, k, v move into `attention` (the backward's operands; on the CPU as they are)
        attention_forward_keeping(
            &mut context,
            &mut attention,
            [q, k, v],
            Some(mask),
            masks.attention_probs,
        )?;
        let a = self.attention_output.apply(&context, "attention_output")?; // (B, T, C)
        let a = dropout_or_identity(a, masks.attention_output)?;
        let mut residual1 = Tensor::uninit(&device, x.shape(), "residual1")?; // (B, T, C)
        add_forward(&mut residual1, &a, x)?;
        let (h1, norm1) = self.attention_norm.forward(&residual1, "h1")?; // (B, T, C)
        let intermediate_pre = self.intermediate.apply(&h1, "intermediate")?; // (B, T, I)
        let mut intermediate_act =
            Tensor::uninit(&device, intermediate_pre.shape(), "intermediate_act")?; // (B, T, I)
        activation_forward(&mut intermediate_act, &intermediate_pre, self.activation)?;
        let o = self.output.apply(&intermediate_act, "ffn_output")?; // (B, T, C)
        let o = dropout_or_identity(o, masks.ffn_output)?;
        let mut residual2 = Tensor::uninit(&device, x.shape(), "residual2")?; // (B, T, C)
        add_forward(&mut residual2, &o, &h1)?;
        let (y, norm2) = self.output_norm.forward(&residual2, "layer_output")?; // (B, T, C)
        let saved = EncoderLayerSaved {
            attention,
            context,
            residual1,
            norm1,
            h1,
            intermediate_pre,
            intermediate_act,
            residual2,
            norm2,
        };
        Ok((y, saved))
    }

    /// dx (B, T, C) += gradient of the layer's input (when wanted), given dy (B, T, C); the
    /// parameter gradients into `grads` when given (the layer trains).
    pub fn backward(
        &self,
        dx: Option<&mut Tensor>,
        dy: &Tensor,
        x: &Tensor,
        saved: &EncoderLayerSaved,
        masks: LayerMasks,
        mut grads: Option<&mut Gradients>,
    ) -> Result<()> {
        let device = dy.device();
        let s = saved;
        // y = output_norm(r2)
        let mut dr2 = Tensor::zeros(&device, dy.shape(), "d_residual2")?; // (B, T, C)
        self.output_norm.backward(
            Some(&mut dr2),
            dy,
            &s.residual2,
            &s.norm2,
            grads.as_deref_mut(),
        )?;
        // r2 = dropout(o) + h1
        let mut dh1 = Tensor::zeros(&device, dy.shape(), "d_h1")?; // (B, T, C)
        let mut do_ = Tensor::zeros(&device, dy.shape(), "d_ffn_output")?; // (B, T, C)
        residual_backward(&mut do_, &mut dh1, &dr2, masks.ffn_output)?;
        // o = output(u)
        let mut du = Tensor::zeros(&device, s.intermediate_act.shape(), "d_intermediate_act")?; // (B, T, I)
        self.output.backward(
            Some(&mut du),
            &do_,
            &s.intermediate_act,
            grads.as_deref_mut(),
        )?;
        // u = act(intermediate_pre)
        let mut di = Tensor::zeros(&device, s.intermediate_pre.shape(), "d_intermediate")?; // (B, T, I)
        let act_saved = if self.activation == Activation::Tanh {
            &s.intermediate_act
        } else {
            &s.intermediate_pre
        };
        activation_backward(&mut di, act_saved, &du, self.activation)?;
        // intermediate_pre = intermediate(h1)
        self.intermediate
            .backward(Some(&mut dh1), &di, &s.h1, grads.as_deref_mut())?;
        // h1 = attention_norm(r1)
        let mut dr1 = Tensor::zeros(&device, dy.shape(), "d_residual1")?; // (B, T, C)
        self.attention_norm.backward(
            Some(&mut dr1),
            &dh1,
            &s.residual1,
            &s.norm1,
            grads.as_deref_mut(),
        )?;
        // r1 = dropout(attention_output(ctx)) + x
        let mut da = Tensor::zeros(&device, dy.shape(), "d_attention_output")?; // (B, T, C)
        let mut dx_residual = Tensor::zeros(&device, dy.shape(), "d_x_residual")?; // (B, T, C)
        residual_backward(&mut da, &mut dx_residual, &dr1, masks.attention_output)?;
        let mut dctx = Tensor::zeros(&device, dy.shape(), "d_context")?; // (B, T, C)
        self.attention_output
            .backward(Some(&mut dctx), &da, &s.context, grads.as_deref_mut())?;
        let mut dq = Tensor::zeros(&device, dy.shape(), "d_query")?; // (B, T, C)
        let mut dk = Tensor::zeros(&device, dy.shape(), "d_key")?; // (B, T, C)
        let mut dv = Tensor::zeros(&device, dy.shape(), "d_value")?; // (B, T, C)
        attention_backward(
            &mut dq,
            &mut dk,
            &mut dv,
            &dctx,
            &s.attention,
            masks.attention_probs,
        )?;
        // q, k, v = query(x), key(x), value(x); x also feeds the residual
        match dx {
            Some(dx) => {
                self.query
                    .backward(Some(dx), &dq, x, grads.as_deref_mut())?;
                self.key.backward(Some(dx), &dk, x, grads.as_deref_mut())?;
                self.value
                    .backward(Some(dx), &dv, x, grads.as_deref_mut())?;
                // dx += dx_residual (add_backward adds dout into two tensors; one is scratch)
                let mut scratch = Tensor::zeros(&device, dy.shape(), "scratch")?;
                add_backward(dx, &mut scratch, &dx_residual)?;
            }
            None => {
                self.query.backward(None, &dq, x, grads.as_deref_mut())?;
                self.key.backward(None, &dk, x, grads.as_deref_mut())?;
                self.value.backward(None, &dv, x, grads)?;
            }
        }
        Ok(())
    }

    /// The six linear layers (attention q, k, v, output; FFN in, out).
    pub fn linears_mut(&mut self) -> [&mut Linear; 6] {
        [
            &mut self.query,
            &mut self.key,
            &mut self.value,
            &mut self.attention_output,
            &mut self.intermediate,
            &mut self.output,
        ]
    }

    /// The six linear layers, in the same order.
    pub fn linears(&self) -> [&Linear; 6] {
        [
            &self.query,
            &self.key,
            &self.value,
            &self.attention_output,
            &self.intermediate,
            &self.output,
        ]
    }

    pub fn parameters(&self) -> Vec<&Tensor> {
        let mut p = Vec::with_capacity(16);
        for l in [&self.query, &self.key, &self.value, &self.attention_output] {
            l.push_parameters(&mut p);
        }
        p.extend(self.attention_norm.parameters());
        self.intermediate.push_parameters(&mut p);
        self.output.push_parameters(&mut p);
        p.extend(self.output_norm.parameters());
        p
    }

    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut p = Vec::with_capacity(16);
        for l in [
            &mut self.query,
            &mut self.key,
            &mut self.value,
            &mut self.attention_output,
        ] {
            l.push_parameters_mut(&mut p);
        }
        p.extend(self.attention_norm.parameters_mut());
        self.intermediate.push_parameters_mut(&mut p);
        self.output.push_parameters_mut(&mut p);
        p.extend(self.output_norm.parameters_mut());
        p
    }
}

/// r = dropout(branch) + skip:  dbranch += dropout'(dr), dskip += dr.
pub fn residual_backward(
    dbranch: &mut Tensor,
    dskip: &mut Tensor,
    dr: &Tensor,
    mask: Option<DropoutMask>,
) -> Result<()> {
    match mask {
        None => add_backward(dbranch, dskip, dr),
        Some(mask) => {
            let mut through = Tensor::zeros(&dr.device(), dr.shape(), "d_dropped")?;
            add_backward(&mut through, dskip, dr)?;
            dropout_backward(dbranch, &through, mask)
        }
    }
}
