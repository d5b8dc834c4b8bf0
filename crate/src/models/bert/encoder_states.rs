//! The encoder's intermediate results, for looking inside a model (`tasks/inspect.rs`): the
//! hidden state after the embeddings and after every layer, and each layer's attention
//! probabilities, as transformers' `output_hidden_states` / `output_attentions` (eager
//! attention) give them.
//!
//! ```text
//! hidden_states[0]  = embeddings(ids, type_ids)            (B, T, C)
//! hidden_states[l]  = layer l (hidden_states[l - 1])       (B, T, C)   l = 1..L
//! attentions[l - 1] = softmax(q k^T / sqrt(hs) + mask)     (B, NH, T, T) of layer l
//! ```
//!
//! Inference only (no dropout, nothing kept for a backward). Only what is asked for is kept;
//! [`BertModel::encode`], the path of every other task, is not touched by this.

use crate::tensor::Tensor;
use crate::{Error, Result};

use super::encoder_input::EncoderInput;
use super::encoder_layer::LayerMasks;
use super::BertModel;

/// Which intermediate results [`BertModel::encode_states`] keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatesToKeep {
    /// Indices into the L + 1 hidden states (0 = the embeddings' output, l = layer l's output).
    pub hidden_states: Vec<usize>,
    /// Encoder layers (0-based, transformers' index into `attentions`) whose attention
    /// probabilities to keep.
    pub attentions: Vec<usize>,
}

/// What [`BertModel::encode_states`] kept, in increasing index order.
pub struct EncoderStates {
    /// (index into the L + 1 hidden states, (B, T, C)).
    pub hidden_states: Vec<(usize, Tensor)>,
    /// (layer, (B, NH, T, T) post-softmax probabilities).
    pub attentions: Vec<(usize, Tensor)>,
}

impl BertModel {
    /// Runs the encoder over `input` in inference mode and keeps the hidden states and the
    /// attention probabilities that `keep` names. An index beyond the model's layers is an
    /// error naming it and the number of layers.
    pub fn encode_states(
        &self,
        input: &EncoderInput,
        keep: &StatesToKeep,
    ) -> Result<EncoderStates> {
        let n_layers = self.layers.len();
        if let Some(&bad) = keep.hidden_states.iter().find(|&&i| i > n_layers) {
            return Err(Error::invalid(format!(
                "hidden state {bad} does not exist: the model has {n_layers} layers, so hidden \
                 states 0 (embeddings) to {n_layers}"
            )));
        }
        if let Some(&bad) = keep.attentions.iter().find(|&&l| l >= n_layers) {
            return Err(Error::invalid(format!(
                "attention of layer {bad} does not exist: the model has {n_layers} layers (0 to {})",
                n_layers.saturating_sub(1)
            )));
        }
        self.check_attention_fits(input)?;
        let mask = self.additive_mask(input)?; // (B, T)
        let (mut x, _) = self.embeddings.forward(input, None, false)?; // (B, T, C) hidden state 0
        let mut hidden_states = Vec::new();
        let mut attentions = Vec::new();
        for (l, layer) in self.layers.iter().enumerate() {
            let y = if keep.attentions.contains(&l) {
                let (y, probabilities) = layer.forward_with_attention(&x, &mask)?; // (B, T, C), (B, NH, T, T)
                attentions.push((l, probabilities));
                y
            } else {
                layer.forward(&x, &mask, LayerMasks::none(), false)?.0 // (B, T, C)
            };
            let input = std::mem::replace(&mut x, y); // hidden state l, read by layer l only
            if keep.hidden_states.contains(&l) {
                hidden_states.push((l, input));
            }
        }
        if keep.hidden_states.contains(&n_layers) {
            hidden_states.push((n_layers, x));
        }
        Ok(EncoderStates {
            hidden_states,
            attentions,
        })
    }
}
