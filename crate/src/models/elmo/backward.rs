//! The backward pass of ELMo's biLM, layer by layer in the reverse order of
//! [`ElmoBiLm::forward_traced`]:
//!
//! ```text
//! d layers (B, T, 2P) -> d token (B, T, P) (both halves of layer 0, masked), d fwd_l, d bwd_l
//!  -> LSTM layers from the top: skip connection (layer >= 1: d input += d output), then the
//!     backward through time of each direction (clips, projection, lengths) into d input
//!  -> projection (matmul backward) -> highway layers (reversed) -> char CNN (gradient to the
//!     first arg-max position of each filter) -> char embedding (scatter-add by char id)
//! ```
//!
//! Parameter gradients accumulate into an [`ElmoWeights`] of zeros
//! ([`ElmoWeights::zeros_like`]), named as AllenNLP names the parameters. The gradient of the
//! LSTMs' initial states is not returned (AllenNLP detaches the carried state too), and the
//! final states get no gradient. Runs on the device the model lives on.

use crate::models::elmo::weights::ElmoWeights;
use crate::models::elmo::{ElmoActivations, ElmoBiLm};
use crate::ops::char_cnn::char_conv_max_backward;
use crate::ops::elementwise::add_forward;
use crate::ops::embedding::embedding_backward;
use crate::ops::highway::highway_backward;
use crate::ops::lstm::{lstm_backward, LstmInputGrads, LstmSaved, LstmWeightGrads};
use crate::ops::matmul::{matmul_backward, MatmulOptions};
use crate::tensor::Tensor;
use crate::{Device, Error, Result};

/// What [`ElmoBiLm::forward_traced`] keeps for the backward (on the model's device).
#[derive(Debug)]
pub struct ElmoTrace {
    /// (N*W) character ids, N = B*T
    pub(crate) ids: Tensor<u32>,
    /// (N, W, E) character embeddings
    pub(crate) chars: Tensor,
    /// per filter width (N, F): the position of each filter's max
    pub(crate) argmaxes: Vec<Tensor<u32>>,
    /// n_highway + 1 tensors (N, D): [0] is the char-CNN output, [k] the input of highway k,
    /// the last the input of the projection
    pub(crate) highway_inputs: Vec<Tensor>,
    /// per highway layer (N, 2D): its linear part before the activations
    pub(crate) highway_projs: Vec<Tensor>,
    /// `[layer][direction]`
    pub(crate) lstm_saved: Vec<[LstmSaved; 2]>,
    /// `[layer][direction]` (B, P) and (B, C): the states the LSTMs started from
    pub(crate) initial_hidden: Vec<[Tensor; 2]>,
    pub(crate) initial_memory: Vec<[Tensor; 2]>,
}

/// Gradients of the loss with respect to the biLM's activations ([`ElmoActivations`]).
#[derive(Debug)]
pub struct ElmoActivationGrads {
    /// (B, T, P) the token layer (the projection output)
    pub token: Tensor,
    /// `lstm[layer] = [forward, backward]`, each (B, T, P), skip connection included
    pub lstm: Vec<[Tensor; 2]>,
}

impl ElmoActivationGrads {
    /// Zeros shaped like `acts`, on `device`.
    pub fn zeros(device: &Device, acts: &ElmoActivations) -> Result<ElmoActivationGrads> {
        let z = |t: &Tensor| Tensor::zeros(device, t.shape(), "elmo.grad");
        Ok(ElmoActivationGrads {
            token: z(&acts.token)?,
            lstm: acts
                .lstm
                .iter()
                .map(|[f, b]| Ok([z(f)?, z(b)?]))
                .collect::<Result<_>>()?,
        })
    }

    /// From the gradients of the layers as [`ElmoActivations::read_back`] lays them out:
    /// `d_layers[k]` (B, T, 2P) on the host, with the sentence boundaries. Layer 0 is
    /// `[token, token] * mask`, so the token gets the sum of both halves at real positions.
    pub fn from_layer_grads(
        device: &Device,
        acts: &ElmoActivations,
        d_layers: &[Vec<f32>],
    ) -> Result<ElmoActivationGrads> {
        let (b, t, p) = (acts.batch, acts.steps, acts.token.shape()[2]);
        let n = b * t;
        if d_layers.len() != acts.lstm.len() + 1 {
            return Err(Error::shape(
                "ElmoActivationGrads: number of layer gradients",
                acts.lstm.len() + 1,
                d_layers.len(),
            ));
        }
        for (k, layer) in d_layers.iter().enumerate() {
            if layer.len() != n * 2 * p {
                return Err(Error::shape(
                    format!("ElmoActivationGrads: gradient of layer {k}"),
                    [b, t, 2 * p],
                    layer.len(),
                ));
            }
        }
        let half = |layer: &[f32], right: bool| -> Vec<f32> {
            let offset = if right { p } else { 0 };
            (0..n)
                .flat_map(|r| {
                    layer[r * 2 * p + offset..r * 2 * p + offset + p]
                        .iter()
                        .copied()
                })
                .collect()
        };
        let mut token = vec![0.0f32; n * p];
        for r in 0..n {
            if r % t < acts.lengths[r / t] {
                for j in 0..p {
                    token[r * p + j] = d_layers[0][r * 2 * p + j] + d_layers[0][r * 2 * p + p + j];
                }
            }
        }
        let upload = |v: Vec<f32>| Tensor::from_vec(device, &[b, t, p], v, "elmo.grad");
        Ok(ElmoActivationGrads {
            token: upload(token)?,
            lstm: d_layers[1..]
                .iter()
                .map(|layer| Ok([upload(half(layer, false))?, upload(half(layer, true))?]))
                .collect::<Result<_>>()?,
        })
    }
}

impl ElmoBiLm {
    /// Accumulates into `grads` the gradients of every parameter, given the gradients `d` of
    /// the activations of one [`ElmoBiLm::forward_traced`] call (`acts`, `trace`).
    pub fn backward(
        &self,
        grads: &mut ElmoWeights,
        d: ElmoActivationGrads,
        acts: &ElmoActivations,
        trace: &ElmoTrace,
    ) -> Result<()> {
        let op = "ElmoBiLm::backward";
        let dev = self.device();
        let options = self.options();
        let (b, t) = (acts.batch, acts.steps);
        let (p, c) = (options.lstm.projection_dim, options.lstm.dim);
        let (w, e) = (
            options.char_cnn.max_characters_per_token,
            options.char_cnn.embedding.dim,
        );
        let d_width = options.n_filters();
        let n = b * t;
        let weights = self.weights();
        let ElmoActivationGrads {
            token: mut d_token,
            lstm: mut d_lstm,
        } = d;
        d_token.expect_shape(op, &[b, t, p])?;
        if d_lstm.len() != weights.lstm.len() || trace.lstm_saved.len() != weights.lstm.len() {
            return Err(Error::shape(
                format!("{op}: LSTM layers"),
                weights.lstm.len(),
                d_lstm.len(),
            ));
        }
        for pair in &d_lstm {
            for g in pair {
                g.expect_shape(op, &[b, t, p])?;
            }
        }

        // LSTM layers, top first.
        for layer in (0..weights.lstm.len()).rev() {
            let (below, above) = d_lstm.split_at_mut(layer);
            for dir in 0..2 {
                let d_out = &above[0][dir];
                let (input, d_input) = if layer == 0 {
                    (&acts.token, &mut d_token)
                } else {
                    (&acts.lstm[layer - 1][dir], &mut below[layer - 1][dir])
                };
                if layer > 0 {
                    // Skip connection: output = lstm(input) + input.
                    let mut sum = Tensor::uninit(dev, &[b, t, p], "elmo.lstm.dskip")?;
                    add_forward(&mut sum, d_input, d_out)?;
                    *d_input = sum;
                }
                let mut dh_initial = Tensor::zeros(dev, &[b, p], "elmo.lstm.dh0")?;
                let mut dc_initial = Tensor::zeros(dev, &[b, c], "elmo.lstm.dc0")?;
                let dh_final = Tensor::zeros(dev, &[b, p], "elmo.lstm.dh_final")?;
                let dc_final = Tensor::zeros(dev, &[b, c], "elmo.lstm.dc_final")?;
                let g = &mut grads.lstm[layer][dir];
                lstm_backward(
                    LstmInputGrads {
                        inputs: d_input,
                        h_initial: &mut dh_initial,
                        c_initial: &mut dc_initial,
                    },
                    LstmWeightGrads {
                        w_input: &mut g.w_input,
                        w_state: &mut g.w_state,
                        bias: &mut g.bias,
                        w_proj: &mut g.w_proj,
                    },
                    d_out,
                    &dh_final,
                    &dc_final,
                    input,
                    &trace.lstm_saved[layer][dir],
                    &trace.initial_hidden[layer][dir],
                    &trace.initial_memory[layer][dir],
                    &acts.lengths,
                    &weights.lstm[layer][dir].tensors(),
                    &self.lstm_options(dir == 0),
                )?;
            }
        }

        // Projection: token (N, P) = features (N, D) @ W^T + b.
        d_token.reshape(&[n, p])?;
        let projection_input = trace
            .highway_inputs
            .last()
            .ok_or_else(|| Error::invalid(format!("{op}: empty trace")))?;
        let mut d_features = Tensor::zeros(dev, &[n, d_width], "elmo.dfeatures")?;
        matmul_backward(
            Some(&mut d_features),
            Some(&mut grads.projection_weight),
            Some(&mut grads.projection_bias),
            &d_token,
            projection_input,
            &weights.projection_weight,
            MatmulOptions {
                trans_b: true,
                ..MatmulOptions::default()
            },
        )?;

        // Highway layers, last first.
        for k in (0..weights.highways.len()).rev() {
            let mut d_in = Tensor::zeros(dev, &[n, d_width], "elmo.dhighway")?;
            let g = &mut grads.highways[k];
            highway_backward(
                &mut d_in,
                &mut g.weight,
                &mut g.bias,
                &d_features,
                &trace.highway_inputs[k],
                &trace.highway_projs[k],
                &weights.highways[k].weight,
            )?;
            d_features = d_in;
        }

        // Char CNN, one width at a time, into d chars (N, W, E).
        let mut d_chars = Tensor::zeros(dev, &[n, w, e], "elmo.dchars")?;
        let mut col = 0;
        for (i, conv) in weights.convolutions.iter().enumerate() {
            let g = &mut grads.convolutions[i];
            char_conv_max_backward(
                &mut d_chars,
                &mut g.weight,
                &mut g.bias,
                &d_features,
                &trace.highway_inputs[0],
                &trace.argmaxes[i],
                &trace.chars,
                &conv.weight,
                self.activation(),
                col,
            )?;
            col += conv.bias.shape()[0];
        }

        // Char embedding (no padding_idx in AllenNLP's `F.embedding`: row 0 gets gradient too).
        d_chars.reshape(&[n * w, e])?;
        embedding_backward(&mut grads.char_embedding, &d_chars, &trace.ids)
    }
}
