//! What a fine-tuning run needs in memory, estimated before its first step, and the refusal
//! of a run that cannot fit (every BERT-family trainer calls [`check_training_fits`] once its
//! input is read, before it widens a layer or runs the encoder).
//!
//! The estimate is meant as an upper bound on the tensors the run holds at its peak (the
//! backward of its top trained layer, every kept activation still alive), in f32 bytes. On
//! lavapipe the GPU buffers a one-step run held (live and pooled) were 0.96x and 0.93x of it
//! (`tests/rust/tasks/training_memory.rs`); it is not a bound on a process's memory (natively
//! the peak RSS above a tiny model's run was 1.07x-1.14x of it: the CPU pool's parked buffers,
//! the tokenizer and the allocator are not counted; README, big models).
//!
//! ```text
//! weights        the model as held (BertModel::weight_bytes: 16-bit / int8 matrices at their bytes)
//! master copies  4 bytes a value for the compressed matrices of the layers the run trains
//!                (widen_what_trains makes them fp32)
//! gradients + moments  3 x 4 bytes a trained value: one gradient (Gradients) and AdamW's m and v
//! activations    at batch B x T tokens (N = B*T, S = B*NH*T*T):
//!   kept, per trained layer      8 N C + 2 N I + S + 4 N   (input; attention q, k, v; context;
//!                                residual1; h1; residual2 | FFN before and after the activation |
//!                                attention probabilities | the two LayerNorms' mean and rstd)
//!   kept by the embeddings (all) N C + 5 N                 (sum before the LayerNorm, its mean and
//!                                rstd, ids, positions, token types)
//!   the encoder's output and its gradient  2 N C
//!   one layer's backward         18 N C + 2 N I + 4 S      (its d_ tensors live until it returns:
//!                                11 + a dropout's scratch; attention's dy, dvh, dqh, dkh; the
//!                                layer's dx and dy | du, di | datt, dscores, and under dropout
//!                                the dropped probabilities and their gradient). It also bounds
//!                                one layer's forward (3 S at most: probabilities, scores, dropped)
//!   the head's                   given by the trainer (classifier logits; masked-LM: the
//!                                selection (n, N), logits, their gradient and softmax (n, V))
//! cached features  head-only training's (windows or tokens, C)
//! packed panels  on the CPU: the matmul's packed copy of every f32 layer matrix (as large as
//!                the matrix; made on its first product, again after each step)
//! ```
//!
//! Head-only runs keep no layer: B x T is then the encoder's inference batch (the features are
//! computed once, in batches of the pipeline's batch size). A classifier's validation runs the
//! encoder in inference on batches of max(batchSize, 32) examples: their input, output and one
//! layer's working set (2 N C + 18 N C + 2 N I + 4 S at that batch) count instead of the
//! training step's activations when larger.
//!
//! The limit: [`memory_limit::model_bytes_limit`] on the CPU (wasm's 4 GiB by default, lowered
//! by [`memory_limit::set_model_bytes_limit`] in tests; natively none). On a GPU the tensors
//! live in GPU memory, whose size WebGPU does not tell (no adapter reports it): only a limit
//! set with `set_model_bytes_limit` applies there, and the per-buffer limit
//! ([`memory_limit::check_gpu_buffer`]) for the largest activations of one batch.

use std::fmt::Write;

use crate::memory_limit::{self, check_gpu_buffer, mib};
use crate::models::{BertModel, Freeze};
use crate::ops::matmul::WeightDtype;
use crate::tensor::Tensor;
use crate::{Device, Error, Result};

/// The largest batch a run feeds the encoder, and what its head adds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchShape {
    /// B: sequences (windows) in the largest micro-batch.
    pub sequences: usize,
    /// T: tokens of the longest sequence (batches are padded to their longest).
    pub tokens: usize,
    /// f32 values the head's forward and backward hold for that batch (logits, their
    /// gradients, ...).
    pub head_values: u64,
    /// f32 values of the head's parameters that train (with BERT's pooler when it trains).
    pub head_parameters: u64,
    /// f32 values of the features cached for head-only training.
    pub cached_features: u64,
    /// The largest batch the validation runs the encoder on in inference (0: none beyond
    /// `sequences`): a classifier's validation batches hold max(batchSize, 32) examples.
    pub validation_sequences: usize,
}

/// A run's estimate, in bytes, part by part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainingMemory {
    /// The model as held.
    pub weights: u64,
    /// fp32 copies of the compressed matrices of the layers that train.
    pub master_copies: u64,
    /// One gradient and AdamW's two moments for each trained value.
    pub gradients_and_moments: u64,
    /// Trained values (those the gradients and moments are for).
    pub trained_values: u64,
    /// Activations of the largest micro-batch (kept for the backward, plus one layer's working
    /// set and the head's).
    pub activations: u64,
    /// Head-only training's cached features.
    pub cached_features: u64,
    /// On the CPU: the matmul's packed panels of every f32 layer matrix (`ops::matmul::
    /// PackedWeight`, as large as the weight; 0 on a GPU).
    pub packed_panels: u64,
    /// Whether the activations are those of a validation batch (larger than a training step's).
    pub validation_dominates: bool,
    /// How the model's layers are held.
    pub dtype: WeightDtype,
    pub freeze: Freeze,
    pub batch: BatchShape,
}

/// f32 values of a tensor of `shape`, as u64.
fn values(shape: &[usize]) -> u64 {
    shape.iter().map(|&d| d as u64).product()
}

impl TrainingMemory {
    /// The estimate for training `model` under `freeze` on batches of `batch` (see the module's
    /// table). Before the run changes the model (`widen_what_trains`).
    pub fn estimate(model: &mut BertModel, freeze: Freeze, batch: BatchShape) -> TrainingMemory {
        let weights = model.weight_bytes();
        let n_layers = model.num_layers();
        let lowest = freeze.lowest_trained_layer(n_layers);
        let mut trained = batch.head_parameters;
        let mut compressed_trained = 0u64;
        // f32 layer matrices once the trained ones are widened: what the CPU matmul packs
        let mut f32_matrix_values = 0u64;
        for (l, layer) in model.layers.iter().enumerate() {
            for linear in layer.linears() {
                if l >= lowest || linear.dtype() == WeightDtype::Fp32 {
                    f32_matrix_values += (linear.out_features() * linear.in_features()) as u64;
                }
            }
        }
        if freeze.trains_embeddings() {
            trained += values_of(&model.embeddings.parameters());
        }
        for layer in &model.layers[lowest..] {
            trained += values_of(&layer.parameters());
            for linear in layer.linears() {
                let (held_values, _) = linear.frozen_weight_held();
                compressed_trained += held_values as u64;
            }
        }
        trained += compressed_trained;

        let (b, t) = (batch.sequences as u64, batch.tokens as u64);
        let c = model.hidden_size() as u64;
        let (nh, i) = model.layers.first().map_or((0, 0), |layer| {
            (layer.heads as u64, layer.intermediate.out_features() as u64)
        });
        let n = b * t; // tokens of the batch
        let s = b * nh * t * t; // attention scores
        let kept_per_layer = 8 * n * c + 2 * n * i + s + 4 * n;
        let kept_layers = (n_layers - lowest) as u64;
        let kept_embeddings = if freeze.trains_embeddings() {
            n * c + 5 * n
        } else {
            0
        };
        let working_set = |n: u64, s: u64| 18 * n * c + 2 * n * i + 4 * s;
        let training_values = kept_layers * kept_per_layer
            + kept_embeddings
            + 2 * n * c
            + working_set(n, s)
            + batch.head_values;
        // a validation batch in inference: its input and output, one layer's working set
        let (bv, nv) = (
            batch.validation_sequences as u64,
            batch.validation_sequences as u64 * t,
        );
        let validation_values = 2 * nv * c + working_set(nv, bv * nh * t * t);
        let validation_dominates = validation_values > training_values;
        let activation_values = training_values.max(validation_values);
        TrainingMemory {
            weights,
            master_copies: 4 * compressed_trained,
            gradients_and_moments: 3 * 4 * trained,
            trained_values: trained,
            activations: 4 * activation_values,
            validation_dominates,
            cached_features: 4 * batch.cached_features,
            packed_panels: match model.device() {
                Device::Cpu => 4 * f32_matrix_values,
                Device::Gpu(_) => 0,
            },
            dtype: model.weight_dtype(),
            freeze,
            batch,
        }
    }

    /// The sequences of the batch the activations are counted for.
    pub fn activation_sequences(&self) -> usize {
        if self.validation_dominates {
            self.batch.validation_sequences
        } else {
            self.batch.sequences
        }
    }

    /// Bytes of every part together.
    pub fn total(&self) -> u64 {
        self.weights
            + self.master_copies
            + self.gradients_and_moments
            + self.activations
            + self.cached_features
            + self.packed_panels
    }

    /// "12.0 MiB of weights as fp32, ...": every part that is not 0.
    pub fn breakdown(&self) -> String {
        let b = &self.batch;
        let dtype = self.dtype.name();
        let mut parts = format!("{:.1} MiB of weights as {dtype}", mib(self.weights));
        if self.packed_panels > 0 {
            let _ = write!(
                parts,
                ", {:.1} MiB of the CPU matmul's packed copies of the f32 layer matrices",
                mib(self.packed_panels)
            );
        }
        if self.master_copies > 0 {
            let _ = write!(
                parts,
                ", {:.1} MiB of fp32 master copies of the trained layers' {dtype} matrices",
                mib(self.master_copies)
            );
        }
        let _ = write!(
            parts,
            ", {:.1} MiB of gradients + AdamW moments ({} trained values under freeze {}, 12 \
             bytes each), {:.1} MiB of activations at {}batch {} x {} tokens",
            mib(self.gradients_and_moments),
            self.trained_values,
            self.freeze,
            mib(self.activations),
            if self.validation_dominates {
                "validation "
            } else {
                ""
            },
            self.activation_sequences(),
            b.tokens
        );
        if self.cached_features > 0 {
            let _ = write!(
                parts,
                ", {:.1} MiB of cached features",
                mib(self.cached_features)
            );
        }
        parts
    }

    /// What to try, the part it shrinks largest first: a smaller batch or shorter texts for
    /// the activations, training fewer layers for the gradients, moments and master copies, a
    /// compressed `dtype` (or a smaller model) for the weights.
    pub fn advice(&self) -> String {
        let b = &self.batch;
        let batch = if self.validation_dominates {
            format!(
                "fewer held-out examples per validation batch (now {} sequences: they hold \
                 max(batchSize, 32) examples; a smaller `validation` share, or 0) or shorter \
                 texts (now {} tokens: the attention scores grow with its square)",
                b.validation_sequences, b.tokens
            )
        } else if b.sequences > 1 {
            format!(
                "a smaller batchSize (now {} sequences per step: halving it about halves the \
                 activations; `accumulation` keeps the examples per optimizer step) or shorter \
                 texts (now {} tokens: the attention scores grow with its square)",
                b.sequences, b.tokens
            )
        } else {
            format!(
                "shorter texts (now {} tokens: the attention scores grow with its square)",
                b.tokens
            )
        };
        let fewer = match self.freeze {
            Freeze::Head => None,
            Freeze::Top(1) => Some("'head' (the head alone)".to_string()),
            Freeze::Top(k) => Some(format!("'top:{}' or less, or 'head'", k - 1)),
            Freeze::All => Some("'top:K', or 'head'".to_string()),
        };
        let freeze = fewer.map(|fewer| {
            format!(
                "training fewer layers (freeze {fewer} instead of '{}': gradients and moments \
                 for fewer values)",
                self.freeze
            )
        });
        let dtype = if self.dtype == WeightDtype::Fp32 {
            "loading the model with dtype 'fp16', 'bf16' or 'int8' (the frozen layers' matrices \
             in 2 or 1 bytes a value), or a smaller model"
        } else {
            "a smaller model"
        };
        // the three tips by the size of the part each shrinks, largest first (ties: this order)
        let mut tips = [
            (self.activations + self.cached_features, Some(batch)),
            (self.gradients_and_moments + self.master_copies, freeze),
            (self.weights + self.packed_panels, Some(dtype.to_string())),
        ];
        for i in 1..tips.len() {
            let mut j = i;
            while j > 0 && tips[j - 1].0 < tips[j].0 {
                tips.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut advice = String::from("try, in this order: ");
        for (i, tip) in tips.iter().filter_map(|(_, tip)| tip.as_ref()).enumerate() {
            if i > 0 {
                advice.push_str("; then ");
            }
            advice.push_str(tip);
        }
        advice
    }
}

/// The limit a run on `device` is held to (see the module's notes): the CPU's is the model
/// limit (wasm's 4 GiB by default); a GPU's only one set on purpose.
pub(crate) fn training_bytes_limit(device: &Device) -> Option<u64> {
    match device {
        Device::Cpu => Some(memory_limit::model_bytes_limit()),
        Device::Gpu(_) => memory_limit::model_bytes_limit_set(),
    }
}

/// The refusal of a run (`what`) that needs `needed` bytes over `limit`: an
/// [`Error::OutOfMemory`] naming the need, the limit, the parts (`breakdown`) and `advice`.
pub(crate) fn run_over_limit(
    what: String,
    needed: u64,
    limit: u64,
    breakdown: &str,
    advice: &str,
) -> Error {
    Error::out_of_memory(
        what,
        needed,
        format!(
            "over the limit of {limit} bytes ({:.1} MiB, {}): {breakdown}; {advice}",
            mib(limit),
            memory_limit::limit_origin("run"),
        ),
    )
}

/// Refuses a run (`what`: "train_classifier", ...) whose estimate is over the limit, with an
/// [`Error::OutOfMemory`] naming the need, its parts and what to try, and on a GPU one whose
/// largest activation buffer is over one storage binding. Returns the estimate.
pub fn check_training_fits(
    what: &str,
    model: &mut BertModel,
    freeze: Freeze,
    batch: BatchShape,
) -> Result<TrainingMemory> {
    let estimate = TrainingMemory::estimate(model, freeze, batch);
    if let Some(limit) = training_bytes_limit(model.device()) {
        let needed = estimate.total();
        if needed > limit {
            return Err(run_over_limit(
                format!("{what} (freeze {freeze})"),
                needed,
                limit,
                &estimate.breakdown(),
                &estimate.advice(),
            ));
        }
    }
    let largest = batch.sequences.max(batch.validation_sequences);
    model.check_activation_buffers(largest, batch.tokens)?;
    Ok(estimate)
}

/// Refuses, on a GPU, a head tensor `name` of `shape` that one storage binding cannot hold
/// (the masked-LM selection matrix), before the run's first step.
pub fn check_head_buffer(device: &Device, name: &str, shape: &[usize]) -> Result<()> {
    check_gpu_buffer(
        device,
        name,
        shape,
        "use a smaller batchSize or shorter texts (fewer positions per step)",
    )
}

/// Sums `counts` largest first: the most of `take` of them together.
pub fn largest_sum(mut counts: Vec<usize>, take: usize) -> usize {
    crate::sort::sort_by(&mut counts, |a, b| b.cmp(a));
    counts.into_iter().take(take).sum()
}

/// The f32 values of `tensors` together (the trainers' head parameters).
pub fn values_of(tensors: &[&Tensor]) -> u64 {
    tensors.iter().map(|t| t.numel() as u64).sum()
}

/// `values(shape)`, for the trainers' head terms.
pub fn shape_values(shape: &[usize]) -> u64 {
    values(shape)
}
