//! The input embeddings, as transformers' `BertEmbeddings` / DistilBERT's `Embeddings`:
//!
//! ```text
//! e = word[ids] + position[0..T] (+ token_type[type_ids], BERT only)   (B*T, C)
//! h = dropout(LayerNorm(e))                                             (B, T, C)
//! ```
//!
//! Backward: the LayerNorm, then a scatter-add of de into each table's rows (`ops::embedding`).

use crate::device::Device;
use crate::ops::dropout::{dropout_backward, dropout_forward, DropoutMask};
use crate::ops::embedding::{embedding_backward, embedding_forward};
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::encoder_input::EncoderInput;
use crate::models::gradients::Gradients;
use crate::models::layer_norm::{LayerNorm, LayerNormSaved};

#[derive(Debug)]
pub struct Embeddings {
    pub word: Tensor,               // (V, C)
    pub position: Tensor,           // (P, C)
    pub token_type: Option<Tensor>, // (TV, C), None for DistilBERT
    pub norm: LayerNorm,            // (C)
    pub dropout: f32,
}

/// What the backward needs (kept only when the embeddings train).
pub struct EmbeddingsSaved {
    sum: Tensor,            // (B, T, C) before the LayerNorm
    norm: LayerNormSaved,   // (B*T)
    ids: Tensor<u32>,       // (B*T)
    positions: Tensor<u32>, // (B*T)
    type_ids: Tensor<u32>,  // (B*T)
}

/// The mask of the embedding dropout of a step (stream 0).
pub fn embedding_dropout_mask(probability: f32, seed: u64) -> Option<DropoutMask> {
    (probability > 0.0).then_some(DropoutMask {
        probability,
        seed,
        stream: 0,
    })
}

fn position_ids(device: &Device, batch: usize, seq: usize) -> Result<Tensor<u32>> {
    let ids: Vec<u32> = (0..batch).flat_map(|_| 0..seq as u32).collect();
    Tensor::from_vec(device, &[batch * seq], ids, "position_ids")
}

impl Embeddings {
    pub fn hidden_size(&self) -> usize {
        self.word.shape()[1]
    }

    /// Host-side checks the GPU kernels cannot make: ids inside the tables, T inside the
    /// position table.
    pub fn check_input(&self, input: &EncoderInput) -> Result<()> {
        let (vocab, positions) = (self.word.shape()[0], self.position.shape()[0]);
        if input.seq > positions {
            return Err(Error::invalid(format!(
                "input of {} tokens is longer than the model's {positions} positions (split it into windows or truncate)",
                input.seq
            )));
        }
        if let Some(i) = input.host_ids.iter().position(|&id| id as usize >= vocab) {
            return Err(Error::invalid(format!(
                "token id {} (row {}, position {}) is outside the vocabulary of {vocab}",
                input.host_ids[i],
                i / input.seq,
                i % input.seq
            )));
        }
        if let Some(table) = &self.token_type {
            let types = table.shape()[0];
            if let Some(i) = input
                .host_type_ids
                .iter()
                .position(|&t| t as usize >= types)
            {
                return Err(Error::invalid(format!(
                    "token type id {} (row {}, position {}) is outside the {types} token types",
                    input.host_type_ids[i],
                    i / input.seq,
                    i % input.seq
                )));
            }
        }
        Ok(())
    }

    /// h (B, T, C) from the input; saved activations when `keep`.
    pub fn forward(
        &self,
        input: &EncoderInput,
        dropout: Option<DropoutMask>,
        keep: bool,
    ) -> Result<(Tensor, Option<EmbeddingsSaved>)> {
        self.check_input(input)?;
        let device = input.ids.device();
        let (b, t, c) = (input.batch, input.seq, self.hidden_size());
        let positions = position_ids(&device, b, t)?; // (B*T)
        let mut sum = Tensor::uninit(&device, &[b * t, c], "embeddings.sum")?; // (B*T, C)
        embedding_forward(&mut sum, &self.word, &input.ids, false)?;
        embedding_forward(&mut sum, &self.position, &positions, true)?;
        if let Some(table) = &self.token_type {
            embedding_forward(&mut sum, table, &input.type_ids, true)?;
        }
        sum.reshape(&[b, t, c])?; // (B, T, C)
        let (normed, norm) = self.norm.forward(&sum, "embeddings.output")?; // (B, T, C)
        let h = match dropout {
            None => normed,
            Some(mask) => {
                let mut out = Tensor::uninit(&device, &[b, t, c], "embeddings.output")?;
                dropout_forward(&mut out, &normed, mask)?;
                out
            }
        };
        let saved = if keep {
            Some(EmbeddingsSaved {
                sum,
                norm,
                ids: Tensor::from_vec(&device, &[b * t], input.host_ids.clone(), "input_ids")?,
                positions,
                type_ids: Tensor::from_vec(
                    &device,
                    &[b * t],
                    input.host_type_ids.clone(),
                    "token_type_ids",
                )?,
            })
        } else {
            None
        };
        Ok((h, saved))
    }

    /// Gradients of the tables and the LayerNorm from dh (B, T, C). The word-embedding
    /// gradient adds to what a tied MLM decoder may already have put there.
    pub fn backward(
        &self,
        dh: &Tensor,
        saved: &EmbeddingsSaved,
        dropout: Option<DropoutMask>,
        grads: &mut Gradients,
    ) -> Result<()> {
        let device = dh.device();
        // h = dropout(normed)
        let dropped_grad; // (B, T, C)
        let dnormed = match dropout {
            None => dh,
            Some(mask) => {
                let mut d = Tensor::zeros(&device, dh.shape(), "d_embeddings_normed")?;
                dropout_backward(&mut d, dh, mask)?;
                dropped_grad = d;
                &dropped_grad
            }
        };
        // normed = LayerNorm(sum)
        let mut dsum = Tensor::zeros(&device, dh.shape(), "d_embeddings_sum")?; // (B, T, C)
        self.norm.backward(
            Some(&mut dsum),
            dnormed,
            &saved.sum,
            &saved.norm,
            Some(grads),
        )?;
        let c = self.hidden_size();
        // sum = word[ids] + position[positions] (+ token_type[type_ids]), rows (B*T, C)
        dsum.reshape(&[dh.numel() / c, c])?;
        let mut dword = grads.take(&self.word)?;
        embedding_backward(&mut dword, &dsum, &saved.ids)?;
        grads.put(dword);
        let mut dpos = grads.take(&self.position)?;
        embedding_backward(&mut dpos, &dsum, &saved.positions)?;
        grads.put(dpos);
        if let Some(table) = &self.token_type {
            let mut dtype = grads.take(table)?;
            embedding_backward(&mut dtype, &dsum, &saved.type_ids)?;
            grads.put(dtype);
        }
        Ok(())
    }

    pub fn parameters(&self) -> Vec<&Tensor> {
        let mut p = vec![&self.word, &self.position];
        p.extend(self.token_type.as_ref());
        p.extend(self.norm.parameters());
        p
    }

    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut p = vec![&mut self.word, &mut self.position];
        p.extend(self.token_type.as_mut());
        p.extend(self.norm.parameters_mut());
        p
    }
}
