//! The parameters of ELMo's biLM in AllenNLP's layouts, and the same structure for their
//! gradients and for optimizer moments. Every tensor is named as AllenNLP names the parameter of
//! `_ElmoBiLm` (`allennlp/modules/elmo.py`: `_ElmoCharacterEncoder` registers `char_conv_{i}`,
//! `_highways` (a `Highway` with `_layers.{k}`), `_projection` and the `_char_embedding_weights`
//! parameter; `ElmoLstm` (`elmo_lstm.py`) registers `forward_layer_{l}` / `backward_layer_{l}`,
//! each an `LstmCellWithProjection` with `input_linearity`, `state_linearity` and
//! `state_projection`), so a state dict, a gradient check or an optimizer can address them by
//! the names a PyTorch user knows.

use crate::device::Device;
use crate::ops::lstm::LstmWeights;
use crate::tensor::Tensor;
use crate::Result;

/// One filter width of the character CNN (`char_conv_{i}`, an `nn.Conv1d`).
#[derive(Debug)]
pub struct CharConvolution {
    pub weight: Tensor, // (F, E, K), PyTorch Conv1d layout
    pub bias: Tensor,   // (F)
}

/// One highway layer (`_highways._layers.{k}`), AllenNLP's convention (see `ops::highway`).
#[derive(Debug)]
pub struct HighwayLayer {
    pub weight: Tensor, // (2D, D)
    pub bias: Tensor,   // (2D)
}

/// One direction of one LSTM layer, AllenNLP's layout and gate order (see `ops::lstm`).
#[derive(Debug)]
pub struct LstmDirection {
    pub w_input: Tensor, // (4C, I) input_linearity.weight
    pub w_state: Tensor, // (4C, P) state_linearity.weight
    pub bias: Tensor,    // (4C) state_linearity.bias, forget block includes TF's +1
    pub w_proj: Tensor,  // (P, C) state_projection.weight
}

impl LstmDirection {
    pub fn tensors(&self) -> LstmWeights<'_> {
        LstmWeights {
            w_input: &self.w_input,
            w_state: &self.w_state,
            bias: &self.bias,
            w_proj: &self.w_proj,
        }
    }
}

/// All parameters of the biLM (or their gradients, or an optimizer's moments: same shapes).
#[derive(Debug)]
pub struct ElmoWeights {
    /// (n_chars + 1, E): `_token_embedder._char_embedding_weights`, row 0 = padding
    pub char_embedding: Tensor,
    /// `_token_embedder.char_conv_{i}`
    pub convolutions: Vec<CharConvolution>,
    /// `_token_embedder._highways._layers.{k}`
    pub highways: Vec<HighwayLayer>,
    /// (P, D) `_token_embedder._projection.weight` (`nn.Linear` layout)
    pub projection_weight: Tensor,
    /// (P) `_token_embedder._projection.bias`
    pub projection_bias: Tensor,
    /// `lstm[layer] = [forward_layer_{layer}, backward_layer_{layer}]` of `_elmo_lstm`
    pub lstm: Vec<[LstmDirection; 2]>,
}

const DIRECTION_NAMES: [&str; 2] = ["forward", "backward"];

impl ElmoWeights {
    /// Every tensor with its AllenNLP name, in a fixed order.
    pub fn named(&self) -> Vec<(String, &Tensor)> {
        let mut out: Vec<(String, &Tensor)> = vec![(
            "_token_embedder._char_embedding_weights".into(),
            &self.char_embedding,
        )];
        for (i, conv) in self.convolutions.iter().enumerate() {
            out.push((
                format!("_token_embedder.char_conv_{i}.weight"),
                &conv.weight,
            ));
            out.push((format!("_token_embedder.char_conv_{i}.bias"), &conv.bias));
        }
        for (k, layer) in self.highways.iter().enumerate() {
            let base = format!("_token_embedder._highways._layers.{k}");
            out.push((format!("{base}.weight"), &layer.weight));
            out.push((format!("{base}.bias"), &layer.bias));
        }
        out.push((
            "_token_embedder._projection.weight".into(),
            &self.projection_weight,
        ));
        out.push((
            "_token_embedder._projection.bias".into(),
            &self.projection_bias,
        ));
        for (l, directions) in self.lstm.iter().enumerate() {
            for (name, dir) in DIRECTION_NAMES.iter().zip(directions) {
                let base = format!("_elmo_lstm.{name}_layer_{l}");
                out.push((format!("{base}.input_linearity.weight"), &dir.w_input));
                out.push((format!("{base}.state_linearity.weight"), &dir.w_state));
                out.push((format!("{base}.state_linearity.bias"), &dir.bias));
                out.push((format!("{base}.state_projection.weight"), &dir.w_proj));
            }
        }
        out
    }

    /// [`ElmoWeights::named`], mutable (same order).
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out: Vec<(String, &mut Tensor)> = vec![(
            "_token_embedder._char_embedding_weights".into(),
            &mut self.char_embedding,
        )];
        for (i, conv) in self.convolutions.iter_mut().enumerate() {
            out.push((
                format!("_token_embedder.char_conv_{i}.weight"),
                &mut conv.weight,
            ));
            out.push((
                format!("_token_embedder.char_conv_{i}.bias"),
                &mut conv.bias,
            ));
        }
        for (k, layer) in self.highways.iter_mut().enumerate() {
            let base = format!("_token_embedder._highways._layers.{k}");
            out.push((format!("{base}.weight"), &mut layer.weight));
            out.push((format!("{base}.bias"), &mut layer.bias));
        }
        out.push((
            "_token_embedder._projection.weight".into(),
            &mut self.projection_weight,
        ));
        out.push((
            "_token_embedder._projection.bias".into(),
            &mut self.projection_bias,
        ));
        for (l, directions) in self.lstm.iter_mut().enumerate() {
            for (name, dir) in DIRECTION_NAMES.iter().zip(directions.iter_mut()) {
                let base = format!("_elmo_lstm.{name}_layer_{l}");
                out.push((format!("{base}.input_linearity.weight"), &mut dir.w_input));
                out.push((format!("{base}.state_linearity.weight"), &mut dir.w_state));
                out.push((format!("{base}.state_linearity.bias"), &mut dir.bias));
                out.push((format!("{base}.state_projection.weight"), &mut dir.w_proj));
            }
        }
        out
    }

    /// The same structure filled with zeros on `device` (gradients, optimizer moments).
    pub fn zeros_like(&self, device: &Device) -> Result<ElmoWeights> {
        let z = |t: &Tensor| Tensor::zeros(device, t.shape(), &format!("{}.grad", t.name()));
        Ok(ElmoWeights {
            char_embedding: z(&self.char_embedding)?,
            convolutions: self
                .convolutions
                .iter()
                .map(|c| {
                    Ok(CharConvolution {
                        weight: z(&c.weight)?,
                        bias: z(&c.bias)?,
                    })
                })
                .collect::<Result<_>>()?,
            highways: self
                .highways
                .iter()
                .map(|h| {
                    Ok(HighwayLayer {
                        weight: z(&h.weight)?,
                        bias: z(&h.bias)?,
                    })
                })
                .collect::<Result<_>>()?,
            projection_weight: z(&self.projection_weight)?,
            projection_bias: z(&self.projection_bias)?,
            lstm: self
                .lstm
                .iter()
                .map(|pair| {
                    let dir = |d: &LstmDirection| -> Result<LstmDirection> {
                        Ok(LstmDirection {
                            w_input: z(&d.w_input)?,
                            w_state: z(&d.w_state)?,
                            bias: z(&d.bias)?,
                            w_proj: z(&d.w_proj)?,
                        })
                    };
                    Ok([dir(&pair[0])?, dir(&pair[1])?])
                })
                .collect::<Result<_>>()?,
        })
    }

    /// Total number of parameters.
    pub fn numel(&self) -> usize {
        self.named().iter().map(|(_, t)| t.numel()).sum()
    }
}
