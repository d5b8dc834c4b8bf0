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

use crate::device::Device;
use crate::io::{write_safetensors, BertConfig, DistilBertConfig, ModelConfig, ModelFiles};
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::distilbert;
use super::embeddings::{embedding_dropout_mask, Embeddings, EmbeddingsSaved};
use super::encoder_input::{EncoderInput, RunMode};
use super::encoder_layer::{
    op_activation, EncoderLayer, EncoderLayerSaved, LayerDropout, LayerMasks, LayerNames,
    LayerShape,
};
use super::gradients::Gradients;
use super::heads::{
    new_classifier_layer, MaskedLmHead, NextSentenceHead, Pooler, SequenceClassifier,
    TokenClassifier,
};
use super::layer_norm::LayerNorm;
use super::linear::Linear;
use super::weight_loader::WeightLoader;

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

/// What [`BertModel::save`] produces: the two files transformers loads.
pub struct SavedModel {
    pub config_json: String,
    pub safetensors: Vec<u8>,
}

impl BertModel {
    /// Loads config.json and the weights (safetensors or .bin) of a BERT or DistilBERT
    /// checkpoint onto `device`, with every head the checkpoint holds. A tensor whose shape does
    /// not match the config is an error naming it with the expected and found shapes.
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Self> {
        let config = files.config()?;
        let file = files.weights()?;
        let weights = WeightLoader {
            file: &file,
            device,
        };
        let d = dims_of(&config);
        let family = match config {
            ModelConfig::Bert(_) => Family::Bert,
            ModelConfig::DistilBert(_) => Family::DistilBert,
        };
        if let ModelConfig::DistilBert(c) = &config {
            if c.sinusoidal_pos_embds && !weights.has("embeddings.position_embeddings.weight") {
                return Err(Error::unsupported(
                    "DistilBERT with sinusoidal position embeddings and no stored table",
                ));
            }
        }
        let (prefix, names) = match family {
            Family::Bert => (PREFIX, &LAYER_NAMES),
            Family::DistilBert => (distilbert::PREFIX, &distilbert::LAYER_NAMES),
        };
        let activation = op_activation(d.activation)?;
        let c = d.hidden;
        let load =
            |name: &str, shape: &[usize]| weights.load(name, &format!("{prefix}{name}"), shape);
        let embeddings = Embeddings {
            word: load("embeddings.word_embeddings.weight", &[d.vocab, c])?,
            position: load(
                "embeddings.position_embeddings.weight",
                &[d.max_positions, c],
            )?,
            token_type: if d.type_vocab > 0 {
                Some(load(
                    "embeddings.token_type_embeddings.weight",
                    &[d.type_vocab, c],
                )?)
            } else {
                None
            },
            norm: LayerNorm::load(&weights, prefix, "embeddings.LayerNorm", c, d.eps)?,
            dropout: d.hidden_dropout,
        };
        let shape = LayerShape {
            hidden: c,
            intermediate: d.intermediate,
            heads: d.heads,
            eps: d.eps,
        };
        let dropout = LayerDropout {
            attention_probs: d.attention_dropout,
            attention_output: d.attention_output_dropout,
            ffn_output: d.hidden_dropout,
        };
        let mut layers = Vec::with_capacity(d.layers);
        for i in 0..d.layers {
            let layer_prefix = match family {
                Family::Bert => format!("encoder.layer.{i}."),
                Family::DistilBert => distilbert::layer_prefix(i),
            };
            layers.push(EncoderLayer::load(
                &weights,
                prefix,
                &layer_prefix,
                names,
                shape,
                activation,
                dropout,
            )?);
        }
        let pooler = if family == Family::Bert && weights.has("pooler.dense.weight") {
            Some(Pooler {
                dense: Linear::load(&weights, prefix, "pooler.dense", c, c)?,
            })
        } else {
            None
        };
        // ---- heads present in the checkpoint
        let masked_lm = match family {
            Family::Bert if weights.has("cls.predictions.transform.dense.weight") => {
                let bias_name = if weights.has("cls.predictions.bias") {
                    "cls.predictions.bias"
                } else {
                    "cls.predictions.decoder.bias"
                };
                Some(MaskedLmHead {
                    transform: Linear::load(&weights, "", "cls.predictions.transform.dense", c, c)?,
                    activation,
                    norm: LayerNorm::load(
                        &weights,
                        "",
                        "cls.predictions.transform.LayerNorm",
                        c,
                        d.eps,
                    )?,
                    decoder: if d.tie_word_embeddings {
                        None
                    } else {
                        Some(weights.load(
                            "cls.predictions.decoder.weight",
                            "cls.predictions.decoder.weight",
                            &[d.vocab, c],
                        )?)
                    },
                    bias: weights.load(bias_name, "cls.predictions.bias", &[d.vocab])?,
                })
            }
            Family::DistilBert if weights.has("vocab_transform.weight") => Some(MaskedLmHead {
                transform: Linear::load(&weights, "", distilbert::MLM_TRANSFORM, c, c)?,
                activation,
                norm: LayerNorm::load(&weights, "", distilbert::MLM_NORM, c, 1e-12)?,
                decoder: if d.tie_word_embeddings {
                    None
                } else {
                    Some(weights.load(
                        "vocab_projector.weight",
                        "vocab_projector.weight",
                        &[d.vocab, c],
                    )?)
                },
                bias: weights.load("vocab_projector.bias", "vocab_projector.bias", &[d.vocab])?,
            }),
            _ => None,
        };
        let next_sentence = if family == Family::Bert && weights.has("cls.seq_relationship.weight")
        {
            Some(NextSentenceHead {
                seq_relationship: Linear::load(&weights, "", "cls.seq_relationship", 2, c)?,
            })
        } else {
            None
        };
        let num_labels = config.labels().num_labels;
        let is_token_task = config_architectures(&config)
            .iter()
            .any(|a| a.ends_with("ForTokenClassification"));
        let (mut sequence_classifier, mut token_classifier) = (None, None);
        if weights.has("classifier.weight") {
            let classifier = Linear::load(&weights, "", "classifier", num_labels, c)?;
            if is_token_task {
                token_classifier = Some(TokenClassifier {
                    classifier,
                    dropout: d.token_classifier_dropout,
                });
            } else {
                sequence_classifier = Some(match family {
                    Family::Bert => SequenceClassifier::Bert {
                        classifier,
                        dropout: d.sequence_classifier_dropout,
                    },
                    Family::DistilBert => SequenceClassifier::DistilBert {
                        pre_classifier: Linear::load(
                            &weights,
                            "",
                            distilbert::PRE_CLASSIFIER,
                            c,
                            c,
                        )?,
                        classifier,
                        dropout: d.sequence_classifier_dropout,
                    },
                });
            }
        }
        let mut model = BertModel {
            config,
            family,
            device: device.clone(),
            embeddings,
            layers,
            pooler,
            masked_lm,
            next_sentence,
            sequence_classifier,
            token_classifier,
        };
        if model.family == Family::Bert
            && model.pooler.is_none()
            && (model.next_sentence.is_some() || model.sequence_classifier.is_some())
        {
            model.add_random_pooler(0)?;
        }
        Ok(model)
    }

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
        if labels.is_empty() {
            return Err(Error::invalid("a classifier needs at least one label"));
        }
        let d = self.dims();
        let classifier = new_classifier_layer(
            &self.device,
            "classifier",
            labels.len(),
            d.hidden,
            d.initializer_range,
            seed,
        )?;
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
        if labels.is_empty() {
            return Err(Error::invalid("a classifier needs at least one label"));
        }
        let d = self.dims();
        self.token_classifier = Some(TokenClassifier {
            classifier: new_classifier_layer(
                &self.device,
                "classifier",
                labels.len(),
                d.hidden,
                d.initializer_range,
                seed,
            )?,
            dropout: d.token_classifier_dropout,
        });
        self.sequence_classifier = None;
        self.set_labels(labels, "TokenClassification");
        Ok(())
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
            p.extend(pooler.dense.parameters());
        }
        if let Some(head) = &self.masked_lm {
            p.extend(head.parameters());
        }
        if let Some(head) = &self.next_sentence {
            p.extend(head.seq_relationship.parameters());
        }
        if let Some(head) = &self.sequence_classifier {
            p.extend(head.parameters());
        }
        if let Some(head) = &self.token_classifier {
            p.extend(head.classifier.parameters());
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
            p.extend(pooler.dense.parameters_mut());
        }
        if let Some(head) = &mut self.masked_lm {
            p.extend(head.parameters_mut());
        }
        if let Some(head) = &mut self.next_sentence {
            p.extend(head.seq_relationship.parameters_mut());
        }
        if let Some(head) = &mut self.sequence_classifier {
            p.extend(head.parameters_mut());
        }
        if let Some(head) = &mut self.token_classifier {
            p.extend(head.classifier.parameters_mut());
        }
        p
    }

    /// Number of parameter values (a tied decoder counted once).
    pub fn parameter_count(&self) -> usize {
        self.named_parameters().iter().map(|(_, t)| t.numel()).sum()
    }

    // ---- saving -----------------------------------------------------------------------------

    /// config.json + model.safetensors that transformers loads (`from_pretrained` of the
    /// directory holding them) into the architecture named in the config, with neither
    /// missing nor unexpected tensors: [`BertModel::saved_parameters`].
    pub async fn save(&self) -> Result<SavedModel> {
        let mut tensors = Vec::new();
        for (name, t) in self.saved_parameters() {
            tensors.push((name, t.shape().to_vec(), t.to_vec().await?));
        }
        let views: Vec<(&str, &[usize], &[f32])> = tensors
            .iter()
            .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice()))
            .collect();
        Ok(SavedModel {
            config_json: self.config_json(),
            safetensors: write_safetensors(&views)?,
        })
    }

    /// Native only: [`BertModel::save`], blocking.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_blocking(&self) -> Result<SavedModel> {
        pollster::block_on(self.save())
    }

    /// The head the saved model is: a task head (sequence, then token classifier) wins over
    /// the pretraining heads (MLM and NSP), which the task model does not have.
    fn saved_task(&self) -> SavedTask {
        if self.sequence_classifier.is_some() {
            SavedTask::SequenceClassification
        } else if self.token_classifier.is_some() {
            SavedTask::TokenClassification
        } else if self.masked_lm.is_some() && self.next_sentence.is_some() {
            SavedTask::PreTraining
        } else if self.masked_lm.is_some() {
            SavedTask::MaskedLm
        } else if self.next_sentence.is_some() {
            SavedTask::NextSentencePrediction
        } else {
            SavedTask::Base
        }
    }

    /// The transformers class that the saved model is (`saved_task`).
    pub fn architecture(&self) -> String {
        let task = match self.saved_task() {
            SavedTask::SequenceClassification => "ForSequenceClassification",
            SavedTask::TokenClassification => "ForTokenClassification",
            SavedTask::PreTraining => "ForPreTraining",
            SavedTask::MaskedLm => "ForMaskedLM",
            SavedTask::NextSentencePrediction => "ForNextSentencePrediction",
            SavedTask::Base => "Model",
        };
        match self.family {
            Family::Bert => format!("Bert{task}"),
            Family::DistilBert => format!("DistilBert{task}"),
        }
    }

    /// The parameters that transformers' `save_pretrained` writes for [`Self::architecture`],
    /// under its names: the encoder (`bert.` / `distilbert.` prefix; none for the bare
    /// `BertModel` / `DistilBertModel`), the pooler where that class has one
    /// (BertForSequenceClassification, BertForPreTraining, BertForNextSentencePrediction,
    /// BertModel; not BertForMaskedLM or BertForTokenClassification, built without a pooling
    /// layer), and that class's heads only. A tied decoder is the word embeddings (written once).
    pub fn saved_parameters(&self) -> Vec<(String, &Tensor)> {
        let task = self.saved_task();
        let mut p: Vec<&Tensor> = self.embeddings.parameters();
        for layer in &self.layers {
            p.extend(layer.parameters());
        }
        let with_pooler = matches!(
            task,
            SavedTask::SequenceClassification
                | SavedTask::PreTraining
                | SavedTask::NextSentencePrediction
                | SavedTask::Base
        );
        if let (true, Some(pooler)) = (with_pooler, &self.pooler) {
            p.extend(pooler.dense.parameters());
        }
        if let (SavedTask::PreTraining | SavedTask::MaskedLm, Some(head)) = (task, &self.masked_lm)
        {
            p.extend(head.parameters());
        }
        if let (SavedTask::PreTraining | SavedTask::NextSentencePrediction, Some(head)) =
            (task, &self.next_sentence)
        {
            p.extend(head.seq_relationship.parameters());
        }
        if let (SavedTask::SequenceClassification, Some(head)) = (task, &self.sequence_classifier) {
            p.extend(head.parameters());
        }
        if let (SavedTask::TokenClassification, Some(head)) = (task, &self.token_classifier) {
            p.extend(head.classifier.parameters());
        }
        let prefix = self.model_prefix();
        p.into_iter()
            .map(|t| {
                let name = t.name();
                let name = match task {
                    SavedTask::Base => name.strip_prefix(prefix).unwrap_or(name),
                    _ => name,
                };
                (name.to_string(), t)
            })
            .collect()
    }

    /// config.json text for this model (transformers' field names).
    pub fn config_json(&self) -> String {
        let labels = self.config.labels();
        let id2label: serde_json::Map<String, serde_json::Value> = labels
            .id2label
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.clone().into()))
            .collect();
        let label2id: serde_json::Map<String, serde_json::Value> = labels
            .id2label
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i.into()))
            .collect();
        let mut json = match &self.config {
            ModelConfig::Bert(c) => bert_config_json(c),
            ModelConfig::DistilBert(c) => distilbert_config_json(c),
        };
        json.insert("architectures".into(), vec![self.architecture()].into());
        json.insert("id2label".into(), id2label.into());
        json.insert("label2id".into(), label2id.into());
        if labels.num_labels == 1 {
            json.insert("problem_type".into(), "regression".into());
        }
        serde_json::to_string_pretty(&serde_json::Value::Object(json))
            .expect("a JSON map serialises")
    }
}

/// Which transformers class a saved model is (the `*For...` part of its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SavedTask {
    SequenceClassification,
    TokenClassification,
    PreTraining,
    MaskedLm,
    NextSentencePrediction,
    Base,
}

fn config_architectures(config: &ModelConfig) -> &[String] {
    match config {
        ModelConfig::Bert(c) => &c.architectures,
        ModelConfig::DistilBert(c) => &c.architectures,
    }
}

fn activation_name(a: crate::io::Activation) -> &'static str {
    use crate::io::Activation::*;
    match a {
        Gelu => "gelu",
        GeluTanh => "gelu_new",
        Relu => "relu",
        Silu => "silu",
        Tanh => "tanh",
    }
}

fn bert_config_json(c: &BertConfig) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "model_type": "bert",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "intermediate_size": c.intermediate_size,
        "hidden_act": activation_name(c.hidden_act),
        "hidden_dropout_prob": c.hidden_dropout_prob,
        "attention_probs_dropout_prob": c.attention_probs_dropout_prob,
        "max_position_embeddings": c.max_position_embeddings,
        "type_vocab_size": c.type_vocab_size,
        "initializer_range": c.initializer_range,
        "layer_norm_eps": c.layer_norm_eps,
        "pad_token_id": c.pad_token_id,
        "classifier_dropout": c.classifier_dropout,
        "tie_word_embeddings": c.tie_word_embeddings,
        "position_embedding_type": "absolute",
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("json! of an object literal"),
    }
}

fn distilbert_config_json(c: &DistilBertConfig) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "model_type": "distilbert",
        "vocab_size": c.vocab_size,
        "max_position_embeddings": c.max_position_embeddings,
        "sinusoidal_pos_embds": c.sinusoidal_pos_embds,
        "n_layers": c.n_layers,
        "n_heads": c.n_heads,
        "dim": c.dim,
        "hidden_dim": c.hidden_dim,
        "dropout": c.dropout,
        "attention_dropout": c.attention_dropout,
        "activation": activation_name(c.activation),
        "initializer_range": c.initializer_range,
        "qa_dropout": c.qa_dropout,
        "seq_classif_dropout": c.seq_classif_dropout,
        "pad_token_id": c.pad_token_id,
        "tie_word_embeddings": c.tie_word_embeddings,
    });
    match v {
        serde_json::Value::Object(m) => m,
        _ => unreachable!("json! of an object literal"),
    }
}
