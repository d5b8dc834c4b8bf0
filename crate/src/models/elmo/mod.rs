//! ELMo's bidirectional language model (Peters et al., "Deep contextualized word
//! representations", NAACL 2018), as AllenNLP 0.9.0's `_ElmoBiLm` (`allennlp/modules/elmo.py`)
//! and `ElmoLstm` (`allennlp/modules/elmo_lstm.py`) compute it, from the files AllenNLP loads
//! (`options.json` + the TensorFlow-trained weights `.hdf5`), on the CPU or the GPU.
//!
//! ```text
//! char ids (B, T, W)          T counts <S> and </S>; W = max_characters_per_token
//!  -> char embedding (B*T, W, E)                 (table with a zero row 0 for padding)
//!  -> per filter width: conv + max over positions + activation -> (B*T, D), D = sum of filters
//!  -> n_highway highway layers (B*T, D)
//!  -> projection (B*T, P) = token layer
//!  -> n_layers x {forward LSTM, backward LSTM} with projection and clipping; layer >= 1 adds
//!     its input (skip connection)
//!  -> layers: [token||token masked, fwd_1||bwd_1, ..., fwd_L||bwd_L], each (B, T, 2P)
//! ```
//!
//! Training: [`ElmoBiLm::forward_traced`] keeps the intermediate activations, the backward
//! through every layer is in `elmo_backward.rs`, the parameters (named as AllenNLP names them)
//! in `elmo_weights.rs`, a sentence classifier on the features in `elmo_classifier.rs`.
//!
//! Stateless by default (every call starts the LSTMs from zeros). In stateful mode each batch
//! row's final LSTM states are kept and start the same row of the next call, as AllenNLP's
//! `_EncoderBase` (`allennlp/modules/encoder_base.py`) does for its always-stateful `ElmoLstm`:
//! states are stored per batch row (AllenNLP sorts rows by length for the computation and
//! restores the order before storing), a larger batch extends them with zeros, a smaller one
//! uses and updates only its first rows and leaves the others as they were, and a row of
//! length 0 keeps its state. (AllenNLP detects unused rows by an all-zero state; here a row is
//! unused iff its length is 0, which only differs if a used row's state sums to exactly 0.)

pub mod backward;
pub mod classifier;
pub mod scalar_mix;
pub mod weights;

mod load;
pub use load::parameter_count;

use crate::device::Device;
use crate::io::elmo_options::ElmoOptions;
use crate::io::hdf5::Hdf5File;
use crate::models::elmo::backward::ElmoTrace;
use crate::models::elmo::weights::{CharConvolution, ElmoWeights, HighwayLayer, LstmDirection};
use crate::ops::char_cnn::{
    char_conv_max_forward, char_conv_weight_from_tensorflow, CharCnnActivation,
};
use crate::ops::elementwise::add_forward;
use crate::ops::embedding::embedding_forward;
use crate::ops::highway::{highway_forward, highway_weights_from_tensorflow};
use crate::ops::lstm::{lstm_forward, lstm_weights_from_tensorflow, LstmOptions, LstmSaved};
use crate::ops::matmul::{matmul_forward, MatmulOptions};
use crate::tensor::Tensor;
use crate::tokenizer::elmo_chars::sentence_char_ids;
use crate::{Error, Result};

/// One tensor per layer and direction: `[layer][0 = forward, 1 = backward]`.
type PerDirection = Vec<[Tensor; 2]>;

/// The LSTM states kept between calls in stateful mode, per batch row.
#[derive(Clone, Debug, PartialEq)]
pub struct ElmoLstmState {
    /// rows kept (the largest batch seen so far)
    pub rows: usize,
    /// `hidden[layer][direction]`: (rows, P); direction 0 = forward, 1 = backward
    pub hidden: Vec<[Vec<f32>; 2]>,
    /// `memory[layer][direction]`: (rows, C)
    pub memory: Vec<[Vec<f32>; 2]>,
}

/// What [`ElmoBiLm::forward_tensors`] leaves on the device.
#[derive(Debug)]
pub struct ElmoActivations {
    pub batch: usize,
    /// T, with the sentence boundaries
    pub steps: usize,
    /// tokens per row, with the sentence boundaries (AllenNLP's `mask.sum(-1)`)
    pub lengths: Vec<usize>,
    /// (B, T, P) projection of the char CNN, not masked (padded positions hold the
    /// representation of an all-padding token, as in AllenNLP before its mask)
    pub token: Tensor,
    /// `lstm[layer] = [forward, backward]`, each (B, T, P), skip connection included, zero at
    /// padded positions
    pub lstm: Vec<[Tensor; 2]>,
    /// final states `[layer][direction]`: hidden (B, P), memory (B, C)
    pub final_hidden: Vec<[Tensor; 2]>,
    pub final_memory: Vec<[Tensor; 2]>,
}

impl ElmoActivations {
    /// The layers on the host, with the sentence boundaries (AllenNLP's `_ElmoBiLm.forward`
    /// `activations`): layer 0 is `[token, token]` masked, layer k `[forward_k, backward_k]`.
    pub async fn read_back(&self) -> Result<ElmoOutput> {
        let p = self.token.shape()[2];
        let dim = 2 * p;
        let (steps, rows) = (self.steps, self.batch * self.steps);
        let concat = |fwd: &[f32], bwd: &[f32], masked: bool| {
            let mut out = vec![0.0f32; rows * dim];
            for r in 0..rows {
                let (b, t) = (r / steps, r % steps);
                if masked && t >= self.lengths[b] {
                    continue;
                }
                out[r * dim..r * dim + p].copy_from_slice(&fwd[r * p..(r + 1) * p]);
                out[r * dim + p..(r + 1) * dim].copy_from_slice(&bwd[r * p..(r + 1) * p]);
            }
            out
        };
        let token = self.token.to_vec().await?;
        // `torch.cat([type_representation, type_representation], -1) * mask`
        let mut layers = vec![concat(&token, &token, true)];
        for [fwd, bwd] in &self.lstm {
            layers.push(concat(&fwd.to_vec().await?, &bwd.to_vec().await?, false));
        }
        Ok(ElmoOutput {
            batch: self.batch,
            steps,
            dim,
            lengths: self.lengths.clone(),
            layers,
        })
    }
}

/// The biLM's layers on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct ElmoOutput {
    pub batch: usize,
    /// T (with or without the boundaries, see [`ElmoOutput::without_sentence_boundaries`])
    pub steps: usize,
    /// 2P
    pub dim: usize,
    /// tokens per row
    pub lengths: Vec<usize>,
    /// `layers[k]`: (B, T, 2P), forward half then backward half (the token layer twice), zero
    /// at padded positions
    pub layers: Vec<Vec<f32>>,
}

impl ElmoOutput {
    /// AllenNLP's `remove_sentence_boundaries` (`allennlp/nn/util.py`): row `b` keeps positions
    /// `1..lengths[b]-1`, moved to the front; T and the lengths shrink by 2.
    pub fn without_sentence_boundaries(&self) -> ElmoOutput {
        let steps = self.steps.saturating_sub(2);
        let d = self.dim;
        let lengths: Vec<usize> = self.lengths.iter().map(|&l| l.saturating_sub(2)).collect();
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                let mut out = vec![0.0f32; self.batch * steps * d];
                for (b, &len) in lengths.iter().enumerate() {
                    let src = (b * self.steps + 1) * d;
                    let dst = b * steps * d;
                    out[dst..dst + len * d].copy_from_slice(&layer[src..src + len * d]);
                }
                out
            })
            .collect();
        ElmoOutput {
            batch: self.batch,
            steps,
            dim: d,
            lengths,
            layers,
        }
    }

    /// The vector (2P) of token `t` of row `b` in layer `k`.
    pub fn vector(&self, k: usize, b: usize, t: usize) -> &[f32] {
        let at = (b * self.steps + t) * self.dim;
        &self.layers[k][at..at + self.dim]
    }
}

/// ELMo's biLM with its weights on one device.
#[derive(Debug)]
pub struct ElmoBiLm {
    options: ElmoOptions,
    device: Device,
    activation: CharCnnActivation,
    /// The char embedding (n_chars + 1, E): `_ElmoCharacterEncoder._load_char_embedding`
    /// prepends a zero row so that id 0 (padding, the ids are shifted by +1) embeds to zeros;
    /// the projection (P, D) in `nn.Linear` layout (AllenNLP transposes `W_proj`).
    weights: ElmoWeights,
    stateful: bool,
    state: Option<ElmoLstmState>,
}

impl ElmoBiLm {
    pub fn options(&self) -> &ElmoOptions {
        &self.options
    }
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// The parameters, named as AllenNLP names them ([`ElmoWeights::named`]).
    pub fn weights(&self) -> &ElmoWeights {
        &self.weights
    }
    /// The parameters, to update them (an optimizer step, a finite-difference probe).
    pub fn weights_mut(&mut self) -> &mut ElmoWeights {
        &mut self.weights
    }
    pub(crate) fn activation(&self) -> CharCnnActivation {
        self.activation
    }
    /// Number of representation layers: the token layer + one per LSTM layer.
    pub fn num_layers(&self) -> usize {
        self.weights.lstm.len() + 1
    }
    /// Width of every layer's vectors: 2P.
    pub fn output_dim(&self) -> usize {
        2 * self.options.lstm.projection_dim
    }

    /// Stateful mode on or off; switching drops any kept state.
    pub fn set_stateful(&mut self, stateful: bool) {
        self.stateful = stateful;
        self.state = None;
    }
    pub fn is_stateful(&self) -> bool {
        self.stateful
    }
    /// The states kept for the next call (stateful mode), if any.
    pub fn state(&self) -> Option<&ElmoLstmState> {
        self.state.as_ref()
    }
    /// Forget the kept states (AllenNLP `reset_states()`).
    pub fn reset_state(&mut self) {
        self.state = None;
    }

    /// Character ids of tokenized sentences with `<S>` and `</S>` around each, as one
    /// (B, T, 50) buffer (rows padded with id 0); returns (ids, T).
    pub fn char_ids_with_boundaries(sentences: &[Vec<&str>]) -> (Vec<u16>, usize) {
        let steps = sentences.iter().map(|s| s.len()).max().unwrap_or(0) + 2;
        let w = crate::tokenizer::elmo_chars::MAX_WORD_LENGTH;
        let mut ids = vec![0u16; sentences.len() * steps * w];
        for (b, sentence) in sentences.iter().enumerate() {
            for (t, word) in sentence_char_ids(sentence, true).iter().enumerate() {
                let at = (b * steps + t) * w;
                ids[at..at + w].copy_from_slice(word);
            }
        }
        (ids, steps)
    }

    /// Lengths from the ids: a token is real iff one of its ids is non-zero (AllenNLP's mask);
    /// real tokens must come first in each row.
    fn lengths(&self, char_ids: &[u16], batch: usize, steps: usize) -> Result<Vec<usize>> {
        let w = self.options.char_cnn.max_characters_per_token;
        let rows = self.weights.char_embedding.shape()[0];
        if char_ids.len() != batch * steps * w {
            return Err(Error::shape(
                "ElmoBiLm: char ids",
                [batch, steps, w],
                char_ids.len(),
            ));
        }
        let mut lengths = Vec::with_capacity(batch);
        for b in 0..batch {
            let mut len = 0;
            for t in 0..steps {
                let token = &char_ids[(b * steps + t) * w..(b * steps + t + 1) * w];
                if let Some(&bad) = token.iter().find(|&&id| id as usize >= rows) {
                    return Err(Error::invalid(format!(
                        "ElmoBiLm: character id {bad} at row {b}, token {t} is outside the {rows}-row character embedding"
                    )));
                }
                if token.iter().any(|&id| id != 0) {
                    if len != t {
                        return Err(Error::invalid(format!(
                            "ElmoBiLm: row {b} has a padding token before token {t}"
                        )));
                    }
                    len += 1;
                }
            }
            lengths.push(len);
        }
        Ok(lengths)
    }

    /// Initial states for a batch of `batch` rows: zeros (stateless, or a first call) or the
    /// kept states of rows `0..batch` (rows never seen start from zeros).
    fn initial_states(&self, batch: usize) -> Result<(PerDirection, PerDirection)> {
        let (p, c) = (self.options.lstm.projection_dim, self.options.lstm.dim);
        let take = |kept: Option<&Vec<f32>>, rows: usize, width: usize, name: &str| {
            let mut v = vec![0.0f32; batch * width];
            if let Some(kept) = kept {
                let n = rows.min(batch) * width;
                v[..n].copy_from_slice(&kept[..n]);
            }
            Tensor::from_vec(&self.device, &[batch, width], v, name)
        };
        let mut hidden = Vec::with_capacity(self.weights.lstm.len());
        let mut memory = Vec::with_capacity(self.weights.lstm.len());
        for layer in 0..self.weights.lstm.len() {
            let kept = if self.stateful {
                self.state.as_ref()
            } else {
                None
            };
            let rows = kept.map_or(0, |s| s.rows);
            let h = |dir: usize| take(kept.map(|s| &s.hidden[layer][dir]), rows, p, "elmo.lstm.h");
            let m = |dir: usize| take(kept.map(|s| &s.memory[layer][dir]), rows, c, "elmo.lstm.c");
            hidden.push([h(0)?, h(1)?]);
            memory.push([m(0)?, m(1)?]);
        }
        Ok((hidden, memory))
    }

    /// The forward pass on the device, nothing read back. `char_ids`: (B, T, W) with the
    /// sentence boundaries (see [`ElmoBiLm::char_ids_with_boundaries`]). Does not update the
    /// kept state (see [`ElmoBiLm::forward`]).
    pub fn forward_tensors(
        &self,
        char_ids: &[u16],
        batch: usize,
        steps: usize,
    ) -> Result<ElmoActivations> {
        Ok(self.forward_traced(char_ids, batch, steps, false)?.0)
    }

    /// [`ElmoBiLm::forward_tensors`] that also keeps what [`ElmoBiLm::backward`] needs (the
    /// intermediate activations of every layer) when `keep` is true.
    pub fn forward_traced(
        &self,
        char_ids: &[u16],
        batch: usize,
        steps: usize,
        keep: bool,
    ) -> Result<(ElmoActivations, Option<ElmoTrace>)> {
        let lengths = self.lengths(char_ids, batch, steps)?;
        let dev = &self.device;
        let cnn = &self.options.char_cnn;
        let (w, e) = (cnn.max_characters_per_token, cnn.embedding.dim);
        let d = self.options.n_filters();
        let p = self.options.lstm.projection_dim;
        let n = batch * steps;

        // (N*W, E) character embeddings, viewed as (N, W, E)
        let ids: Vec<u32> = char_ids.iter().map(|&i| i as u32).collect();
        let ids = Tensor::<u32>::from_vec(dev, &[n * w], ids, "elmo.char_ids")?;
        let mut chars = Tensor::uninit(dev, &[n * w, e], "elmo.chars")?;
        embedding_forward(&mut chars, &self.weights.char_embedding, &ids, false)?;
        chars.reshape(&[n, w, e])?;

        // (N, D) = concatenated max-pooled convolutions
        let mut features = Tensor::zeros(dev, &[n, d], "elmo.char_cnn")?;
        let mut argmaxes = Vec::with_capacity(self.weights.convolutions.len());
        let mut col = 0;
        for conv in &self.weights.convolutions {
            let filters = conv.bias.shape()[0];
            let mut argmax = Tensor::<u32>::uninit(dev, &[n, filters], "elmo.char_cnn.argmax")?;
            char_conv_max_forward(
                &mut features,
                &mut argmax,
                &chars,
                &conv.weight,
                &conv.bias,
                self.activation,
                col,
            )?;
            col += filters;
            argmaxes.push(argmax);
        }

        // highway_inputs[k] (N, D) is the input of highway k; the last entry feeds the
        // projection. highway_projs[k] (N, 2D).
        let mut highway_inputs = Vec::with_capacity(self.weights.highways.len() + 1);
        let mut highway_projs = Vec::with_capacity(self.weights.highways.len());
        for highway in &self.weights.highways {
            let mut out = Tensor::uninit(dev, &[n, d], "elmo.highway")?;
            let mut proj = Tensor::uninit(dev, &[n, 2 * d], "elmo.highway.proj")?;
            highway_forward(
                &mut out,
                &mut proj,
                &features,
                &highway.weight,
                &highway.bias,
            )?;
            highway_inputs.push(std::mem::replace(&mut features, out));
            highway_projs.push(proj);
        }

        // (N, P) = features (N, D) @ W^T + b
        let mut token = Tensor::uninit(dev, &[n, p], "elmo.token")?;
        matmul_forward(
            &mut token,
            &features,
            &self.weights.projection_weight,
            Some(&self.weights.projection_bias),
            MatmulOptions {
                trans_b: true,
                ..MatmulOptions::default()
            },
        )?;
        token.reshape(&[batch, steps, p])?;
        highway_inputs.push(features);

        let (mut final_hidden, mut final_memory) = self.initial_states(batch)?;
        let mut lstm: Vec<[Tensor; 2]> = Vec::with_capacity(self.weights.lstm.len());
        let mut lstm_saved: Vec<[LstmSaved; 2]> = Vec::new();
        for (layer, directions) in self.weights.lstm.iter().enumerate() {
            let mut outputs = Vec::with_capacity(2);
            let mut saved_pair = Vec::with_capacity(2);
            for (dir, weights) in directions.iter().enumerate() {
                // ElmoLstm._lstm_forward: both directions of layer 0 read the token layer,
                // layer l reads the same direction's layer l-1 output.
                let input = if layer == 0 {
                    &token
                } else {
                    &lstm[layer - 1][dir]
                };
                let mut out = Tensor::uninit(dev, &[batch, steps, p], "elmo.lstm.out")?;
                let (h, m) = (&mut final_hidden[layer][dir], &mut final_memory[layer][dir]);
                let saved = lstm_forward(
                    &mut out,
                    h,
                    m,
                    input,
                    &lengths,
                    &weights.tensors(),
                    &self.lstm_options(dir == 0),
                )?;
                if layer > 0 {
                    // Skip connection: `forward_output_sequence += forward_cache`.
                    let mut sum = Tensor::uninit(dev, &[batch, steps, p], "elmo.lstm.skip")?;
                    add_forward(&mut sum, &out, input)?;
                    out = sum;
                }
                outputs.push(out);
                saved_pair.push(saved);
            }
            let backward = outputs.pop().expect("two directions");
            let forward = outputs.pop().expect("two directions");
            lstm.push([forward, backward]);
            if keep {
                let backward = saved_pair.pop().expect("two directions");
                let forward = saved_pair.pop().expect("two directions");
                lstm_saved.push([forward, backward]);
            }
        }
        let trace = if keep {
            // The forward overwrote the state tensors; the backward needs the initial ones.
            let (initial_hidden, initial_memory) = self.initial_states(batch)?;
            Some(ElmoTrace {
                ids,
                chars,
                argmaxes,
                highway_inputs,
                highway_projs,
                lstm_saved,
                initial_hidden,
                initial_memory,
            })
        } else {
            None
        };
        Ok((
            ElmoActivations {
                batch,
                steps,
                lengths,
                token,
                lstm,
                final_hidden,
                final_memory,
            },
            trace,
        ))
    }

    /// Clipping and direction of the LSTMs, from options.json.
    pub(crate) fn lstm_options(&self, go_forward: bool) -> LstmOptions {
        LstmOptions {
            cell_clip: Some(self.options.lstm.cell_clip),
            proj_clip: Some(self.options.lstm.proj_clip),
            go_forward,
        }
    }

    /// The forward pass, read back: all layers (B, T, 2P) with the sentence boundaries
    /// (AllenNLP's `_ElmoBiLm.forward` `activations`). In stateful mode the final states are
    /// kept for the next call.
    pub async fn forward(
        &mut self,
        char_ids: &[u16],
        batch: usize,
        steps: usize,
    ) -> Result<ElmoOutput> {
        let p = self.options.lstm.projection_dim;
        let dim = 2 * p;
        if batch == 0 || steps == 0 {
            self.lengths(char_ids, batch, steps)?;
            return Ok(ElmoOutput {
                batch,
                steps,
                dim,
                lengths: vec![0; batch],
                layers: vec![Vec::new(); self.num_layers()],
            });
        }
        let acts = self.forward_tensors(char_ids, batch, steps)?;
        let output = acts.read_back().await?;
        if self.stateful {
            self.keep_states(&acts).await?;
        }
        Ok(output)
    }

    /// `_EncoderBase._update_states`: rows `0..B` take the final states of this call (a row
    /// of length 0 ran no step, so its final state is its initial one); rows beyond B keep
    /// theirs.
    async fn keep_states(&mut self, acts: &ElmoActivations) -> Result<()> {
        let (p, c) = (self.options.lstm.projection_dim, self.options.lstm.dim);
        let batch = acts.batch;
        let layers = self.weights.lstm.len();
        let mut state = self.state.take().unwrap_or_else(|| ElmoLstmState {
            rows: 0,
            hidden: vec![[Vec::new(), Vec::new()]; layers],
            memory: vec![[Vec::new(), Vec::new()]; layers],
        });
        let rows = state.rows.max(batch);
        for layer in 0..layers {
            for dir in 0..2 {
                let h = acts.final_hidden[layer][dir].to_vec().await?;
                let m = acts.final_memory[layer][dir].to_vec().await?;
                for (kept, new, width) in [
                    (&mut state.hidden[layer][dir], h, p),
                    (&mut state.memory[layer][dir], m, c),
                ] {
                    kept.resize(rows * width, 0.0);
                    kept[..batch * width].copy_from_slice(&new);
                }
            }
        }
        state.rows = rows;
        self.state = Some(state);
        Ok(())
    }

    /// Tokenized sentences in, layers out with the sentence boundaries removed: `layers[k]`
    /// (B, max words, 2P), `lengths[b]` = words of sentence b.
    pub async fn embed_sentences(&mut self, sentences: &[Vec<&str>]) -> Result<ElmoOutput> {
        let (ids, steps) = Self::char_ids_with_boundaries(sentences);
        Ok(self
            .forward(&ids, sentences.len(), steps)
            .await?
            .without_sentence_boundaries())
    }

    /// Native only: [`ElmoBiLm::embed_sentences`], blocking.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn embed_sentences_blocking(&mut self, sentences: &[Vec<&str>]) -> Result<ElmoOutput> {
        pollster::block_on(self.embed_sentences(sentences))
    }

    /// Native only: [`ElmoBiLm::forward`], blocking.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_blocking(
        &mut self,
        char_ids: &[u16],
        batch: usize,
        steps: usize,
    ) -> Result<ElmoOutput> {
        pollster::block_on(self.forward(char_ids, batch, steps))
    }
}
