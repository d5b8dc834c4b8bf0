//! What an ELMo classifier's training run needs in memory, estimated before anything of it is
//! computed, and the refusal of a run that cannot fit (`ElmoClassifierRun::start` calls
//! [`ElmoTrainingMemory::check`] first). The BERT family's counterpart is `training_memory.rs`;
//! the limit is the same (on the CPU wasm's 4 GiB by default, on a GPU only one set on purpose).
//!
//! The estimate is meant as an upper bound on what the run holds at its peak, in f32 bytes:
//! its live tensors and the buffers its device's pool keeps for reuse (checked against the GPU
//! memory a run held on lavapipe, `tests/rust/models/elmo_memory.rs`). The largest batch: B sentences, T tokens with `<S>`
//! and `</S>`, N = B T; the biLM's sizes from options.json: W characters a token, E the
//! character embedding, D the filters of the char CNN together, Hw highway layers, P the
//! projection, C the LSTM cell, L LSTM layers, K = L + 1 representation layers.
//!
//! ```text
//! weights        the biLM's parameters (f32) and the head's (classes x 2P + classes + the mix)
//! gradients + moments  3 x 4 bytes a trained value: the head's (and the mix's); end to end
//!                also every biLM parameter (ElmoWeights of gradients, AdamW's m and v)
//! activations    the largest of:
//!   a forward (the feature pass, held-out batches): ids and embedded characters N W (1 + E),
//!     the CNN's arg-maxes N D, the highway inputs and projections (3 Hw + 1) N D, the token
//!     and LSTM outputs (1 + 2L) N P, one layer's LSTM gates, cells and projections in both
//!     directions 2 (5 N C + N P), a skip sum N P
//!   an end-to-end step: that forward keeping every layer's LSTM trace 2L (5 N C + N P) (and
//!     the outputs the skip sums replaced, 2 (L - 1) N P, back in the device's pool), the
//!     layers' gradients (1 + 2L) N P, and the backward's two phases, whose buffers differ in
//!     size so that the pool keeps both: an LSTM direction's (previous h, r, their gradients,
//!     the gates') N (2P + 5C) + a skip sum N P, then the highways' and the char CNN's (d
//!     features, a highway's input and projection gradients, the characters') 4 N D + N W E
//!   on the host: the layers read back and their gradients, K N 2P each, and the pooled
//!     layers (K, B, 2P)
//! cached features  the pooled layers of every training sentence (K x 2P each), computed to fit
//!                the scaling (an end-to-end run drops them after), and with a frozen biLM the
//!                held-out sentences' too
//! ```

use super::training_memory::{run_over_limit, training_bytes_limit};
use crate::memory_limit::mib;
use crate::models::elmo::classifier::ElmoTraining;
use crate::models::elmo::ElmoBiLm;
use crate::{Device, Result};

/// The largest batch of a run: sentences and tokens with the boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElmoBatchShape {
    /// B: sentences in the largest batch.
    pub sentences: usize,
    /// T: tokens of its longest sentence, `<S>` and `</S>` included.
    pub tokens: usize,
}

/// A run's estimate, in bytes, part by part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ElmoTrainingMemory {
    /// The biLM's and the head's parameters.
    pub weights: u64,
    /// One gradient and AdamW's two moments for each trained value.
    pub gradients_and_moments: u64,
    /// Trained values (those the gradients and moments are for).
    pub trained_values: u64,
    /// The largest batch's activations (see the module's table).
    pub activations: u64,
    /// The pooled layers kept for the epochs (and to fit the scaling).
    pub cached_features: u64,
    pub training: ElmoTraining,
    pub batch: ElmoBatchShape,
}

impl ElmoTrainingMemory {
    /// The estimate for training a head of `classes` classes on `bilm` under `training`, on
    /// batches of at most `batch`, `train` sentences to train on and `held_out` to evaluate.
    pub fn estimate(
        bilm: &ElmoBiLm,
        classes: usize,
        training: ElmoTraining,
        batch: ElmoBatchShape,
        train: usize,
        held_out: usize,
    ) -> ElmoTrainingMemory {
        let o = bilm.options();
        let u = |x: usize| x as u64;
        let (w, e, d) = (
            u(o.char_cnn.max_characters_per_token),
            u(o.char_cnn.embedding.dim),
            u(o.n_filters()),
        );
        let (hw, p, c, l) = (
            u(o.char_cnn.n_highway),
            u(o.lstm.projection_dim),
            u(o.lstm.dim),
            u(bilm.num_layers() - 1),
        );
        let k = l + 1;
        let (b, n) = (u(batch.sentences), u(batch.sentences) * u(batch.tokens));
        let bilm_values: u64 = (bilm.weights().named().iter())
            .map(|(_, t)| t.numel() as u64)
            .sum();
        // the head (classes, 2P) + (classes) and the mix's K scalars and gamma
        let (head_values, mix_values) = (u(classes) * 2 * p + u(classes), k + 1);
        let trained = head_values
            + match training {
                ElmoTraining::Head => 0,
                ElmoTraining::Mix => mix_values,
                ElmoTraining::EndToEnd => mix_values + bilm_values,
            };

        let characters = n * w * (1 + e) + n * d;
        let highways = (3 * hw + 1) * n * d;
        let outputs = (1 + 2 * l) * n * p;
        let one_layer_trace = 2 * (5 * n * c + n * p);
        let forward = characters + highways + outputs + one_layer_trace + n * p;
        let host = 2 * k * n * 2 * p + k * b * 2 * p;
        let activation_values = match training {
            ElmoTraining::EndToEnd => {
                // the skip connections' sums replace outputs, which go back to the pool
                let replaced = 2 * l.saturating_sub(1) * n * p;
                let kept = characters + highways + outputs + replaced + l * one_layer_trace;
                let lstm_phase = n * (2 * p + 5 * c) + n * p;
                // d features, a highway's input gradient and its projection's (2D)
                let cnn_phase = 4 * n * d + n * w * e;
                // the two phases' buffers differ in size: the pool keeps both
                kept + outputs + lstm_phase + cnn_phase
            }
            ElmoTraining::Head | ElmoTraining::Mix => forward,
        } + host;
        let cached_sentences = match training {
            ElmoTraining::EndToEnd => train,
            ElmoTraining::Head | ElmoTraining::Mix => train + held_out,
        };
        ElmoTrainingMemory {
            weights: 4 * (bilm_values + head_values + mix_values),
            gradients_and_moments: 3 * 4 * trained,
            trained_values: trained,
            activations: 4 * activation_values,
            cached_features: 4 * u(cached_sentences) * k * 2 * p,
            training,
            batch,
        }
    }

    /// This estimate, or (when its total is over the limit of a run on `device`: on the CPU
    /// wasm's 4 GiB by default, on a GPU only one set on purpose) an [`Error::OutOfMemory`]
    /// naming the need, its parts and what to try.
    pub fn check(self, device: &Device) -> Result<ElmoTrainingMemory> {
        let needed = self.total();
        match training_bytes_limit(device) {
            Some(limit) if needed > limit => Err(run_over_limit(
                format!("ELMo training (training '{}')", self.training),
                needed,
                limit,
                &self.breakdown(),
                &self.advice(),
            )),
            _ => Ok(self),
        }
    }

    /// Bytes of every part together.
    pub fn total(&self) -> u64 {
        self.weights + self.gradients_and_moments + self.activations + self.cached_features
    }

    /// "1.7 MiB of weights, ...": every part.
    pub fn breakdown(&self) -> String {
        format!(
            "{:.1} MiB of weights, {:.1} MiB of gradients + AdamW moments ({} trained values \
             under training '{}', 12 bytes each), {:.1} MiB of activations at batch {} x {} \
             tokens (with <S> and </S>), {:.1} MiB of cached features",
            mib(self.weights),
            mib(self.gradients_and_moments),
            self.trained_values,
            self.training,
            mib(self.activations),
            self.batch.sentences,
            self.batch.tokens,
            mib(self.cached_features)
        )
    }

    /// What to try, the part it shrinks largest first: a smaller batch or shorter sentences
    /// for the activations and features, training less than end to end for the gradients and
    /// moments, a smaller biLM for the weights.
    pub fn advice(&self) -> String {
        let b = self.batch;
        let batch = if b.sentences > 1 {
            format!(
                "a smaller batchSize (now {} sentences per step) or shorter sentences (now {} \
                 tokens), or fewer sentences (the features of each are kept)",
                b.sentences, b.tokens
            )
        } else {
            format!(
                "shorter sentences (now {} tokens), or fewer sentences (the features of each \
                 are kept)",
                b.tokens
            )
        };
        let less = (self.training == ElmoTraining::EndToEnd).then(|| {
            "training 'mix' or 'head' instead of 'end-to-end' (no gradients or moments for \
             the biLM)"
                .to_string()
        });
        let mut tips = vec![
            (self.activations + self.cached_features, Some(batch)),
            (self.gradients_and_moments, less),
            (self.weights, Some("a smaller biLM".to_string())),
        ];
        crate::sort::sort_by(&mut tips, |x, y| y.0.cmp(&x.0));
        let tips: Vec<String> = tips.into_iter().filter_map(|(_, tip)| tip).collect();
        format!("try, in this order: {}", tips.join("; then "))
    }
}
