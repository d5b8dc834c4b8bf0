//! BERT (Devlin et al. 2019) and DistilBERT encoders with their task heads, loaded from Hugging
//! Face checkpoints ([`ModelFiles`]), forward and backward on the CPU or the GPU. One struct,
//! [`BertModel`], serves both families: their layers are the same post-LN block
//! (`encoder_layer.rs`), only names and dropout sites differ (`distilbert.rs`).
//!
//! ```text
//! ids, type_ids (B*T)  -> Embeddings (embeddings.rs)                  h0 (B, T, C)
//!                      -> L x EncoderLayer (encoder_layer.rs)         hL (B, T, C) = last_hidden_state
//!                      -> heads (heads.rs): pooler, MLM, NSP, classifiers    logits
//! ```
//!
//! Matches transformers' `BertModel` / `DistilBertModel` in fp32 (`modeling_bert.py`,
//! `modeling_distilbert.py`). Parameters carry their canonical HF names: the encoder's with the
//! `bert.` / `distilbert.` prefix of the task models (`bert.encoder.layer.0.attention.self.query.weight`),
//! the heads' as transformers names them (`cls.predictions.bias`, `classifier.weight`, ...).
//!
//! Training: [`BertModel::encode`] keeps activations only for the layers the [`Freeze`] policy
//! trains (none for `Freeze::Head` or inference), and [`BertModel::encode_backward`] stops at
//! the lowest trained layer. Task-level forward/backward with the losses: `task_step.rs`.
//!
//! Freezing (as the PyTorch fixtures do it): `Freeze::Head` trains the task head only (the
//! pooler is part of the encoder, `bert.pooler.*`, and stays frozen; a tied MLM decoder is the
//! word embeddings and stays frozen; an untied one is a head parameter); `Top(k)` adds the top k
//! layers and the pooler; `All` adds everything, embeddings included.
//!
//! The API's shape:
//! - `RunMode` has a fourth field `backward` (false = pure inference, nothing kept) and the
//!   constructors `RunMode::inference()`, `RunMode::training(seed, freeze)`,
//!   `RunMode::gradients_without_dropout(freeze)`.
//! - The heads are fields of `BertModel` (`masked_lm`, `next_sentence`, `sequence_classifier`,
//!   `token_classifier`, `pooler`); a new head is added with `add_sequence_classifier` /
//!   `add_token_classifier` (seeded, transformers' initialisation). Gradients are a
//!   [`Gradients`] map keyed by canonical parameter name.
//! - Task level (task_step.rs): `forward_task(input, Task, mode)` -> `TaskOutput` (logits) and
//!   `backward_task(out, Targets, grads)` -> loss (1), covering every head and loss.
//! - `save()` is async (GPU tensors are read back); `save_blocking()` natively. It writes what
//!   transformers' `save_pretrained` writes for the architecture named in the saved config
//!   ([`BertModel::architecture`]: an added task head wins over loaded pretraining heads, as
//!   `AutoModelForSequenceClassification.from_pretrained` + `save_pretrained` would do), so a
//!   classifier trained from an MLM checkpoint is saved without its MLM / NSP heads.
//! - q/k/v stay three separate projections (no fused qkv): the checkpoint's tensors are the
//!   parameters, and the attention-probability dropout lives in the attention op
//!   (`ops/attention.rs`).

pub mod distilbert;
pub mod embeddings;
pub mod encoder_input;
pub mod encoder_layer;
pub mod encoder_states;
pub mod heads;
pub mod task_step;

mod load;
mod save;

pub use save::SavedModel;

use crate::device::Device;
use crate::io::ModelConfig;
use crate::ops::matmul::WeightDtype;
use crate::tensor::Tensor;
use crate::{Error, Result};

use self::embeddings::{embedding_dropout_mask, Embeddings, EmbeddingsSaved};
use self::encoder_input::{EncoderInput, Freeze, RunMode};
use self::encoder_layer::{EncoderLayer, EncoderLayerSaved, LayerMasks, LayerNames};
use self::heads::{
    new_classifier_layer, MaskedLmHead, NextSentenceHead, Pooler, SequenceClassifier,
    TokenClassifier,
};
use crate::models::gradients::Gradients;
use crate::models::linear::Linear;

/// The model prefix of BERT task checkpoints (`BertFor*`).
pub const PREFIX: &str = "bert.";

/// `BertLayer`'s modules.
pub const LAYER_NAMES: LayerNames = LayerNames {
    query: "attention.self.query",
    key: "attention.self.key",
    value: "attention.self.value",
    attention_output: "attention.output.dense",
    attention_norm: "attention.output.LayerNorm",
    intermediate: "intermediate.dense",
    output: "output.dense",
    output_norm: "output.LayerNorm",
};

/// Which family the checkpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Bert,
    DistilBert,
}

/// The numbers of a config that the model needs, whatever the family calls them.
#[derive(Clone, Copy, Debug)]
struct Dims {
    vocab: usize,
    hidden: usize,
    layers: usize,
    heads: usize,
    intermediate: usize,
    max_positions: usize,
    type_vocab: usize, // 0 = no token types (DistilBERT)
    eps: f32,
    hidden_dropout: f32,
    attention_dropout: f32,
    attention_output_dropout: f32,
    sequence_classifier_dropout: f32,
    token_classifier_dropout: f32,
    initializer_range: f32,
    tie_word_embeddings: bool,
    activation: crate::io::Activation,
}

fn dims_of(config: &ModelConfig) -> Dims {
    match config {
        ModelConfig::Bert(c) => {
            let classifier_dropout = c.classifier_dropout.unwrap_or(c.hidden_dropout_prob);
            Dims {
                vocab: c.vocab_size,
                hidden: c.hidden_size,
                layers: c.num_hidden_layers,
                heads: c.num_attention_heads,
                intermediate: c.intermediate_size,
                max_positions: c.max_position_embeddings,
                type_vocab: c.type_vocab_size,
                eps: c.layer_norm_eps,
                hidden_dropout: c.hidden_dropout_prob,
                attention_dropout: c.attention_probs_dropout_prob,
                attention_output_dropout: c.hidden_dropout_prob,
                sequence_classifier_dropout: classifier_dropout,
                token_classifier_dropout: classifier_dropout,
                initializer_range: c.initializer_range,
                tie_word_embeddings: c.tie_word_embeddings,
                activation: c.hidden_act,
            }
        }
        ModelConfig::DistilBert(c) => Dims {
            vocab: c.vocab_size,
            hidden: c.dim,
            layers: c.n_layers,
            heads: c.n_heads,
            intermediate: c.hidden_dim,
            max_positions: c.max_position_embeddings,
            type_vocab: 0,
            eps: c.layer_norm_eps,
            hidden_dropout: c.dropout,
            attention_dropout: c.attention_dropout,
            attention_output_dropout: 0.0,
            sequence_classifier_dropout: c.seq_classif_dropout,
            token_classifier_dropout: c.dropout,
            initializer_range: c.initializer_range,
            tie_word_embeddings: c.tie_word_embeddings,
            activation: c.activation,
        },
    }
}

/// A BERT or DistilBERT encoder with the heads its checkpoint has (or that were added).
#[derive(Debug)]
pub struct BertModel {
    pub config: ModelConfig,
    pub family: Family,
    device: Device,
    pub embeddings: Embeddings,
    pub layers: Vec<EncoderLayer>,
    /// BERT's pooler (tanh(dense(h[:, 0]))); None for DistilBERT and pooler-less checkpoints.
    pub pooler: Option<Pooler>,
    pub masked_lm: Option<MaskedLmHead>,
    pub next_sentence: Option<NextSentenceHead>,
    pub sequence_classifier: Option<SequenceClassifier>,
    pub token_classifier: Option<TokenClassifier>,
    /// Parameters the checkpoint did not hold and [`BertModel::load`] initialized randomly
    /// (a pooler that a next-sentence or classification head needs): what transformers warns
    /// about as "newly initialized". Empty for a complete checkpoint.
    pub newly_initialized: Vec<String>,
}

/// The encoder's output and what its backward needs.
pub struct EncoderOutput {
    /// (B, T, C) last_hidden_state
    pub hidden: Tensor,
    pub batch: usize,
    pub seq: usize,
    /// (B, T) additive attention mask: 0 for tokens, f32::MIN for padding
    pub mask: Tensor,
    pub mode: RunMode,
    /// index of the lowest layer that trains (= layers: none)
    lowest_trained: usize,
    /// `layer_inputs[l]`: (B, T, C) input of layer l, kept for trained layers
    layer_inputs: Vec<Option<Tensor>>,
    layer_saved: Vec<Option<EncoderLayerSaved>>,
    embeddings_saved: Option<EmbeddingsSaved>,
}

impl std::fmt::Debug for EncoderOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EncoderOutput {{ hidden: {:?}, layers kept: {}, embeddings kept: {} }}",
            self.hidden,
            self.layers_kept(),
            self.embeddings_kept()
        )
    }
}

impl EncoderOutput {
    /// Whether any encoder parameter trains (then the heads' backward produces dhidden).
    pub fn needs_gradient(&self) -> bool {
        self.lowest_trained < self.layer_inputs.len() || self.embeddings_saved.is_some()
    }

    /// How many encoder layers kept activations for the backward (0 for `Freeze::Head`).
    pub fn layers_kept(&self) -> usize {
        self.layer_saved.iter().filter(|s| s.is_some()).count()
    }

    /// Whether the embeddings kept activations (only `Freeze::All`).
    pub fn embeddings_kept(&self) -> bool {
        self.embeddings_saved.is_some()
    }
}

impl BertModel {
    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn hidden_size(&self) -> usize {
        self.embeddings.hidden_size()
    }

    pub fn max_positions(&self) -> usize {
        self.embeddings.position.shape()[0]
    }

    pub fn vocab_size(&self) -> usize {
        self.embeddings.word.shape()[0]
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn dims(&self) -> Dims {
        dims_of(&self.config)
    }

    fn model_prefix(&self) -> &'static str {
        match self.family {
            Family::Bert => PREFIX,
            Family::DistilBert => distilbert::PREFIX,
        }
    }

    /// A new pooler (BERT), initialised as transformers does; `seed` picks the weights.
    pub fn add_random_pooler(&mut self, seed: u64) -> Result<()> {
        let d = self.dims();
        self.pooler = Some(Pooler {
            dense: Linear::new_random(
                &self.device,
                &format!("{}pooler.dense", self.model_prefix()),
                d.hidden,
                d.hidden,
                d.initializer_range,
                seed ^ 0x706f_6f6c,
            )?,
        });
        Ok(())
    }

    /// A new sequence-classification head with these labels (transformers' initialisation:
    /// normal(0, initializer_range), zero bias; seeded), replacing any other classifier. BERT
    /// gets a new pooler too when the checkpoint has none. `labels.len() == 1` is regression.
    pub fn add_sequence_classifier(&mut self, labels: &[String], seed: u64) -> Result<()> {
        let classifier = self.new_label_classifier(labels, seed)?;
        let d = self.dims();
        self.sequence_classifier = Some(match self.family {
            Family::Bert => {
                if self.pooler.is_none() {
                    self.add_random_pooler(seed)?;
                }
                SequenceClassifier::Bert {
                    classifier,
                    dropout: d.sequence_classifier_dropout,
                }
            }
            Family::DistilBert => SequenceClassifier::DistilBert {
                pre_classifier: Linear::new_random(
                    &self.device,
                    distilbert::PRE_CLASSIFIER,
                    d.hidden,
                    d.hidden,
                    d.initializer_range,
                    seed ^ 0x7072_6563,
                )?,
                classifier,
                dropout: d.sequence_classifier_dropout,
            },
        });
        self.token_classifier = None;
        self.set_labels(labels, "SequenceClassification");
        Ok(())
    }

    /// A new token-classification head (NER) with these labels, replacing any classifier.
    pub fn add_token_classifier(&mut self, labels: &[String], seed: u64) -> Result<()> {
        self.token_classifier = Some(TokenClassifier {
            classifier: self.new_label_classifier(labels, seed)?,
            dropout: self.dims().token_classifier_dropout,
        });
        self.sequence_classifier = None;
        self.set_labels(labels, "TokenClassification");
        Ok(())
    }

    /// A new `classifier` layer: hidden size -> one logit per label, random as transformers
    /// initialises it.
    fn new_label_classifier(&self, labels: &[String], seed: u64) -> Result<Linear> {
        if labels.is_empty() {
            return Err(Error::invalid("a classifier needs at least one label"));
        }
        let d = self.dims();
        new_classifier_layer(
            &self.device,
            "classifier",
            labels.len(),
            d.hidden,
            d.initializer_range,
            seed,
        )
    }

    fn set_labels(&mut self, labels: &[String], task: &str) {
        let (l, architectures) = match &mut self.config {
            ModelConfig::Bert(c) => (&mut c.labels, &mut c.architectures),
            ModelConfig::DistilBert(c) => (&mut c.labels, &mut c.architectures),
        };
        l.num_labels = labels.len();
        l.id2label = labels.to_vec();
        let family = match self.family {
            Family::Bert => "Bert",
            Family::DistilBert => "DistilBert",
        };
        *architectures = vec![format!("{family}For{task}")];
    }

    // ---- encoder forward and backward -------------------------------------------------------

    /// The additive mask (B, T): 0 for tokens, f32::MIN for padding.
    pub(crate) fn additive_mask(&self, input: &EncoderInput) -> Result<Tensor> {
        let values = input
            .attention_mask
            .iter()
            .map(|&m| if m != 0 { 0.0 } else { f32::MIN })
            .collect();
        Tensor::from_vec(
            &self.device,
            &[input.batch, input.seq],
            values,
            "attention_mask",
        )
    }

    fn layer_masks(&self, mode: &RunMode, index: usize) -> LayerMasks {
        if mode.train {
            LayerMasks::for_layer(self.layers[index].dropout, mode.seed, index)
        } else {
            LayerMasks::none()
        }
    }

    /// An input whose attention scores (B, NH, T, T) are over what one tensor may hold is
    /// refused before any op (see `memory_limit.rs`); on a GPU so is one whose largest
    /// activations, which a kernel binds whole (the scores, the FFN's (B, T, I)), are over
    /// one storage binding, before anything is encoded.
    pub(crate) fn check_attention_fits(&self, input: &EncoderInput) -> Result<()> {
        let heads = self.layers.first().map_or(0, |layer| layer.heads);
        let (b, t) = (input.batch, input.seq);
        crate::memory_limit::check_attention_scores(b, heads, t)?;
        self.check_activation_buffers(b, t)
    }

    /// On a GPU: refuses a batch of `batch` sequences of `tokens` tokens whose attention scores
    /// (B, NH, T, T) or FFN activations (B, T, I) are over one storage binding (see
    /// `memory_limit::check_gpu_buffer`), saying how many sequences of that length would fit.
    pub(crate) fn check_activation_buffers(&self, batch: usize, tokens: usize) -> Result<()> {
        let Some(layer) = self.layers.first() else {
            return Ok(());
        };
        let (nh, i) = (layer.heads, layer.intermediate.out_features());
        let limit = match &self.device {
            Device::Gpu(ctx) => ctx.max_binding_bytes(),
            Device::Cpu => return Ok(()),
        };
        // the most sequences of `tokens` tokens whose scores and FFN rows fit one binding
        let per_sequence = 4 * (nh * tokens * tokens).max(tokens * i).max(1) as u64;
        let fit = limit / per_sequence;
        let advice = if fit >= 1 {
            format!(
                "use fewer texts per batch (batchSize: at most {fit} of {tokens} tokens fit) or \
                 shorter texts"
            )
        } else {
            format!(
                "use shorter texts: not one text of {tokens} tokens fits (open the GPU with \
                 larger limits where the adapter offers them)"
            )
        };
        for (name, shape) in [
            ("attention.scores", vec![batch, nh, tokens, tokens]), // (B, NH, T, T)
            ("intermediate", vec![batch, tokens, i]),              // (B, T, I)
        ] {
            crate::memory_limit::check_gpu_buffer(&self.device, name, &shape, &advice)?;
        }
        Ok(())
    }

    /// Refuses to train layers `lowest_trained..` when a weight of theirs is held compressed
    /// (16 bits or int8; the trainers widen them first: [`BertModel::widen_trained_layers`]).
    fn check_layers_can_train(&self, lowest_trained: usize) -> Result<()> {
        let held = self.layers.iter().skip(lowest_trained);
        match held
            .flat_map(|layer| layer.linears())
            .find_map(Linear::half_weight)
        {
            None => Ok(()),
            Some(half) => Err(half.dtype().refuse_training("encoder layers")),
        }
    }

    /// last_hidden_state (B, T, C) of the input; keeps the activations of the layers that
    /// `mode.freeze` trains when `mode.backward` (none for `Freeze::Head`).
    pub fn encode(&self, input: &EncoderInput, mode: &RunMode) -> Result<EncoderOutput> {
        let n_layers = self.layers.len();
        let lowest_trained = if mode.backward {
            mode.freeze.lowest_trained_layer(n_layers)
        } else {
            n_layers
        };
        let train_embeddings = mode.backward && mode.freeze.trains_embeddings();
        self.check_layers_can_train(lowest_trained)?;
        self.check_attention_fits(input)?;
        let mask = self.additive_mask(input)?; // (B, T)
        let emb_dropout = if mode.train {
            embedding_dropout_mask(self.embeddings.dropout, mode.seed)
        } else {
            None
        };
        let (mut x, embeddings_saved) =
            self.embeddings
                .forward(input, emb_dropout, train_embeddings)?; // (B, T, C)
        let mut layer_inputs = Vec::with_capacity(n_layers);
        let mut layer_saved = Vec::with_capacity(n_layers);
        for (l, layer) in self.layers.iter().enumerate() {
            let keep = l >= lowest_trained;
            let (y, saved) = layer.forward(&x, &mask, self.layer_masks(mode, l), keep)?;
            layer_inputs.push(keep.then_some(x));
            layer_saved.push(saved);
            x = y;
        }
        Ok(EncoderOutput {
            hidden: x,
            batch: input.batch,
            seq: input.seq,
            mask,
            mode: *mode,
            lowest_trained,
            layer_inputs,
            layer_saved,
            embeddings_saved,
        })
    }

    /// Adds the gradients of the trained encoder parameters, given d_hidden (B, T, C), the
    /// gradient of the last hidden state. Goes down only to the lowest trained layer.
    pub fn encode_backward(
        &self,
        out: &EncoderOutput,
        d_hidden: &Tensor,
        grads: &mut Gradients,
    ) -> Result<()> {
        d_hidden.expect_shape("encode_backward", out.hidden.shape())?;
        let n_layers = self.layers.len();
        let train_embeddings = out.embeddings_saved.is_some();
        let mut current: Option<Tensor> = None; // gradient of the current layer's output
        for l in (out.lowest_trained..n_layers).rev() {
            let (x, saved) = match (&out.layer_inputs[l], &out.layer_saved[l]) {
                (Some(x), Some(saved)) => (x, saved),
                _ => {
                    return Err(Error::invalid(format!(
                        "encode_backward: layer {l} kept no activations (forward ran with {:?})",
                        out.mode
                    )))
                }
            };
            let dy = current.as_ref().unwrap_or(d_hidden);
            let mut dx = if l > out.lowest_trained || train_embeddings {
                Some(Tensor::zeros(&self.device, x.shape(), "d_layer_input")?)
            } else {
                None
            };
            self.layers[l].backward(
                dx.as_mut(),
                dy,
                x,
                saved,
                self.layer_masks(&out.mode, l),
                Some(grads),
            )?;
            current = dx;
        }
        if let Some(saved) = &out.embeddings_saved {
            let dh = current.as_ref().unwrap_or(d_hidden);
            let dropout = if out.mode.train {
                embedding_dropout_mask(self.embeddings.dropout, out.mode.seed)
            } else {
                None
            };
            self.embeddings.backward(dh, saved, dropout, grads)?;
        }
        Ok(())
    }

    // ---- parameters -------------------------------------------------------------------------

    /// Every parameter with its canonical HF name (a tied decoder appears once, as the word
    /// embeddings), in checkpoint order: embeddings, layers, pooler, heads.
    pub fn named_parameters(&self) -> Vec<(String, &Tensor)> {
        let mut p: Vec<&Tensor> = self.embeddings.parameters();
        for layer in &self.layers {
            p.extend(layer.parameters());
        }
        if let Some(pooler) = &self.pooler {
            pooler.dense.push_parameters(&mut p);
        }
        if let Some(head) = &self.masked_lm {
            p.extend(head.parameters());
        }
        if let Some(head) = &self.next_sentence {
            head.seq_relationship.push_parameters(&mut p);
        }
        if let Some(head) = &self.sequence_classifier {
            p.extend(head.parameters());
        }
        if let Some(head) = &self.token_classifier {
            head.classifier.push_parameters(&mut p);
        }
        p.into_iter().map(|t| (t.name().to_string(), t)).collect()
    }

    /// The same parameters, mutable (for the optimizer; names via `Tensor::name`).
    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut p: Vec<&mut Tensor> = self.embeddings.parameters_mut();
        for layer in &mut self.layers {
            p.extend(layer.parameters_mut());
        }
        if let Some(pooler) = &mut self.pooler {
            pooler.dense.push_parameters_mut(&mut p);
        }
        if let Some(head) = &mut self.masked_lm {
            p.extend(head.parameters_mut());
        }
        if let Some(head) = &mut self.next_sentence {
            head.seq_relationship.push_parameters_mut(&mut p);
        }
        if let Some(head) = &mut self.sequence_classifier {
            p.extend(head.parameters_mut());
        }
        if let Some(head) = &mut self.token_classifier {
            head.classifier.push_parameters_mut(&mut p);
        }
        p
    }

    /// Number of parameter values (a tied decoder counted once), compressed weights included.
    pub fn parameter_count(&self) -> usize {
        let f32_values: usize = self.named_parameters().iter().map(|(_, t)| t.numel()).sum();
        f32_values + self.half_weights_held().0
    }

    /// Bytes of every parameter as held on the device: f32 tensors at 4 bytes a value, 16-bit
    /// weights at 2, int8 weights at 1 plus a 4-byte scale per output channel (with the
    /// padding of their packed layout). `&mut` only because it walks
    /// the parameters as the optimizer does ([`BertModel::parameters_mut`]), which the wasm
    /// module has anyway (`named_parameters` it does not need otherwise).
    pub fn weight_bytes(&mut self) -> u64 {
        let f32_bytes: u64 = self.parameters_mut().iter().map(|t| t.bytes()).sum();
        f32_bytes + self.half_weights_held().1
    }

    /// (values, bytes held) of the encoder layers' weight matrices that are not parameters:
    /// compressed ones (16-bit, int8), or packed-only ones ([`BertModel::pack_for_inference`]); (0, 0) without.
    pub fn half_weights_held(&self) -> (usize, u64) {
        let mut held = (0, 0);
        for linear in self.layers.iter().flat_map(|layer| layer.linears()) {
            let (values, bytes) = linear.frozen_weight_held();
            held = (held.0 + values, held.1 + bytes);
        }
        held
    }

    /// Packs the encoder layers' f32 weight matrices on the CPU for the CPU GEMM now and drops
    /// their plain copies (`Linear::pack_for_inference`): an inference-only model then holds
    /// them once (without it, the first forward caches packed copies next to them: bert-base
    /// 340 MB more). Outputs are bit-identical, and saving writes the same values. The layers
    /// are frozen (their backward is refused) until [`BertModel::unpack_weights`], or until a
    /// training run unpacks those it trains ([`BertModel::widen_trained_layers`]). Nothing
    /// changes on the GPU or for 16-bit weights. Packing costs what the first forward's packing
    /// costs otherwise. The CLI's inference commands and the package's CPU path (fp32) pack at
    /// load.
    pub fn pack_for_inference(&mut self) -> Result<()> {
        let mut scratch = Vec::new(); // the values of the matrix being packed
        for layer in &mut self.layers {
            for linear in layer.linears_mut() {
                linear.pack_for_inference(&mut scratch)?;
            }
        }
        Ok(())
    }

    /// Gives packed-only layer weights their plain f32 tensors back (value for value), so
    /// that the layers can train and the model can be saved.
    pub fn unpack_weights(&mut self) -> Result<()> {
        for layer in &mut self.layers {
            for linear in layer.linears_mut() {
                linear.unpack_weight()?;
            }
        }
        Ok(())
    }

    /// Whether some layer weight is held packed only ([`BertModel::pack_for_inference`]).
    pub fn has_packed_only_weights(&self) -> bool {
        self.packed_only_weight_count() > 0
    }

    /// How many layer weight matrices are held packed only ([`BertModel::pack_for_inference`]).
    pub fn packed_only_weight_count(&self) -> usize {
        (self.layers.iter())
            .flat_map(|layer| layer.linears())
            .filter(|linear| linear.is_packed_only())
            .count()
    }

    /// How the encoder layers' weight matrices are held: `dtype` at load (fp32 by default) while
    /// any of them is still held so; fp32 once a training run has widened them all
    /// ([`BertModel::widen_trained_layers`] with `Freeze::All`).
    pub fn weight_dtype(&self) -> WeightDtype {
        self.layers
            .iter()
            .flat_map(|layer| layer.linears())
            .map(Linear::dtype)
            .find(|&dtype| dtype != WeightDtype::Fp32)
            .unwrap_or(WeightDtype::Fp32)
    }

    /// Widens to f32 the compressed (16-bit or int8) weight matrices of the encoder layers that
    /// `freeze` trains (layers `lowest_trained_layer..`), and unpacks the packed-only ones
    /// ([`BertModel::pack_for_inference`]): a training run keeps fp32 master
    /// weights for what it updates, and those layers stay f32 after it (their values exact: the
    /// f32 the forward already computed with). The other layers stay as loaded
    /// ([`BertModel::weight_bytes`] grows by what the widened matrices take beyond their stored
    /// bytes: 2 a value from 16 bits, about 3 from int8). How many matrices were widened or
    /// unpacked (0 for an fp32 model held plain).
    pub async fn widen_trained_layers(&mut self, freeze: Freeze) -> Result<usize> {
        let lowest = freeze.lowest_trained_layer(self.layers.len());
        let mut widened = 0;
        for layer in self.layers.iter_mut().skip(lowest) {
            for linear in layer.linears_mut() {
                widened += usize::from(linear.widen_to_f32().await?);
            }
        }
        Ok(widened)
    }
}
