//! `config.json` of Hugging Face BERT and DistilBERT checkpoints, with the defaults that
//! transformers' `BertConfig` / `DistilBertConfig` / `PretrainedConfig` constructors apply when a
//! field is missing (old configs, such as rxnfp's, have neither `model_type` nor `architectures`).
//! Defaults from transformers `models/bert/configuration_bert.py`,
//! `models/distilbert/configuration_distilbert.py` and `configuration_utils.py`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, Serializer};

use crate::{Error, Result};

/// Hidden activations by their transformers `ACT2FN` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// "gelu": exact, 0.5 x (1 + erf(x / sqrt 2)).
    Gelu,
    /// "gelu_new" / "gelu_pytorch_tanh": the tanh approximation.
    GeluTanh,
    Relu,
    /// "silu" / "swish".
    Silu,
    Tanh,
}

impl Activation {
    /// The transformers name this activation is saved under (the first of its names).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_new",
            Activation::Relu => "relu",
            Activation::Silu => "silu",
            Activation::Tanh => "tanh",
        }
    }

    pub fn from_name(name: &str) -> Result<Activation> {
        Ok(match name {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            "tanh" => Activation::Tanh,
            other => return Err(Error::unsupported(format!("activation function {other:?}"))),
        })
    }
}

impl Serialize for Activation {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Fields common to every transformers config (`PretrainedConfig`).
#[derive(Clone, Debug, PartialEq)]
pub struct Labels {
    pub num_labels: usize,
    /// Label names by class index; transformers makes "LABEL_i" when none are given.
    pub id2label: Vec<String>,
}

/// Serialized (`BertModel::save`) under transformers' field names; the labels and architectures
/// are written by the saver, which knows the head.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub hidden_dropout_prob: f32,
    pub attention_probs_dropout_prob: f32,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub initializer_range: f32,
    pub layer_norm_eps: f32,
    pub pad_token_id: usize,
    /// None means "use hidden_dropout_prob", as in `BertForSequenceClassification`.
    pub classifier_dropout: Option<f32>,
    pub tie_word_embeddings: bool,
    #[serde(skip)]
    pub labels: Labels,
    #[serde(skip)]
    pub architectures: Vec<String>,
}

/// Serialized like [`BertConfig`]; `layer_norm_eps` is not a DistilBERT config field.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DistilBertConfig {
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub sinusoidal_pos_embds: bool,
    pub n_layers: usize,
    pub n_heads: usize,
    pub dim: usize,
    pub hidden_dim: usize,
    pub dropout: f32,
    pub attention_dropout: f32,
    pub activation: Activation,
    pub initializer_range: f32,
    pub qa_dropout: f32,
    pub seq_classif_dropout: f32,
    pub pad_token_id: usize,
    /// DistilBERT's LayerNorms use a fixed eps of 1e-12 (`modeling_distilbert.py`).
    #[serde(skip)]
    pub layer_norm_eps: f32,
    pub tie_word_embeddings: bool,
    #[serde(skip)]
    pub labels: Labels,
    #[serde(skip)]
    pub architectures: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ModelConfig {
    Bert(BertConfig),
    DistilBert(DistilBertConfig),
}

/// config.json as written, every field optional.
#[derive(Deserialize, Default)]
struct RawConfig {
    model_type: Option<String>,
    architectures: Option<Vec<String>>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    hidden_act: Option<String>,
    hidden_dropout_prob: Option<f32>,
    attention_probs_dropout_prob: Option<f32>,
    max_position_embeddings: Option<usize>,
    position_embedding_type: Option<String>,
    type_vocab_size: Option<usize>,
    initializer_range: Option<f32>,
    layer_norm_eps: Option<f32>,
    pad_token_id: Option<usize>,
    classifier_dropout: Option<f32>,
    tie_word_embeddings: Option<bool>,
    num_labels: Option<usize>,
    id2label: Option<BTreeMap<String, String>>,
    // DistilBERT names
    sinusoidal_pos_embds: Option<bool>,
    n_layers: Option<usize>,
    n_heads: Option<usize>,
    dim: Option<usize>,
    hidden_dim: Option<usize>,
    dropout: Option<f32>,
    attention_dropout: Option<f32>,
    activation: Option<String>,
    qa_dropout: Option<f32>,
    seq_classif_dropout: Option<f32>,
}

impl ModelConfig {
    /// Parses config.json text. `file` names it in errors.
    pub fn from_json(file: &str, text: &str) -> Result<ModelConfig> {
        let raw: RawConfig = serde_json::from_str(text)
            .map_err(|e| Error::format(file, format!("not a valid config.json: {e}")))?;
        let architectures = raw.architectures.clone().unwrap_or_default();
        // model_type decides when present; else the first architecture's class name; else the
        // fields that are there (old BERT configs carry only hidden_size & co).
        let family = match raw.model_type.as_deref() {
            Some("bert") => "bert",
            Some("distilbert") => "distilbert",
            Some(other) => {
                return Err(Error::unsupported(format!(
                    "{file}: model_type {other:?} (webnlu loads bert and distilbert)"
                )))
            }
            None => match architectures.first() {
                Some(a) if a.starts_with("DistilBert") => "distilbert",
                Some(a) if a.starts_with("Bert") => "bert",
                Some(other) => {
                    return Err(Error::unsupported(format!(
                        "{file}: architecture {other:?} without a model_type (webnlu loads BERT and DistilBERT)"
                    )))
                }
                None if raw.dim.is_some() || raw.n_layers.is_some() => "distilbert",
                None => "bert",
            },
        };
        let labels = labels(file, &raw)?;
        let f = |name: &str, v: Option<f32>, default: f32| -> Result<f32> {
            let v = v.unwrap_or(default);
            if v.is_finite() && v >= 0.0 {
                Ok(v)
            } else {
                Err(Error::format(
                    file,
                    format!("{name} = {v} is not a non-negative number"),
                ))
            }
        };
        // transformers' BertEmbeddings also knows "relative_key" and "relative_key_query"
        // (Shaw et al. 2018; Huang et al. 2020), which add learned distance embeddings inside
        // self-attention: webnlu computes absolute positions only, so refuse the others by name.
        if let Some(kind) = raw.position_embedding_type.as_deref() {
            if kind != "absolute" {
                return Err(Error::unsupported(format!(
                    "{file}: position_embedding_type {kind:?} (webnlu computes \"absolute\" positions only)"
                )));
            }
        }
        Ok(if family == "bert" {
            let config = BertConfig {
                vocab_size: raw.vocab_size.unwrap_or(30522),
                hidden_size: raw.hidden_size.unwrap_or(768),
                num_hidden_layers: raw.num_hidden_layers.unwrap_or(12),
                num_attention_heads: raw.num_attention_heads.unwrap_or(12),
                intermediate_size: raw.intermediate_size.unwrap_or(3072),
                hidden_act: activation(file, "hidden_act", raw.hidden_act.as_deref())?,
                hidden_dropout_prob: f("hidden_dropout_prob", raw.hidden_dropout_prob, 0.1)?,
                attention_probs_dropout_prob: f(
                    "attention_probs_dropout_prob",
                    raw.attention_probs_dropout_prob,
                    0.1,
                )?,
                max_position_embeddings: raw.max_position_embeddings.unwrap_or(512),
                type_vocab_size: raw.type_vocab_size.unwrap_or(2),
                initializer_range: f("initializer_range", raw.initializer_range, 0.02)?,
                layer_norm_eps: f("layer_norm_eps", raw.layer_norm_eps, 1e-12)?,
                pad_token_id: raw.pad_token_id.unwrap_or(0),
                classifier_dropout: raw.classifier_dropout,
                tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(true),
                labels,
                architectures,
            };
            check_heads(file, config.hidden_size, config.num_attention_heads)?;
            ModelConfig::Bert(config)
        } else {
            let config = DistilBertConfig {
                vocab_size: raw.vocab_size.unwrap_or(30522),
                max_position_embeddings: raw.max_position_embeddings.unwrap_or(512),
                sinusoidal_pos_embds: raw.sinusoidal_pos_embds.unwrap_or(false),
                n_layers: raw.n_layers.unwrap_or(6),
                n_heads: raw.n_heads.unwrap_or(12),
                dim: raw.dim.unwrap_or(768),
                hidden_dim: raw.hidden_dim.unwrap_or(3072),
                dropout: f("dropout", raw.dropout, 0.1)?,
                attention_dropout: f("attention_dropout", raw.attention_dropout, 0.1)?,
                activation: activation(file, "activation", raw.activation.as_deref())?,
                initializer_range: f("initializer_range", raw.initializer_range, 0.02)?,
                qa_dropout: f("qa_dropout", raw.qa_dropout, 0.1)?,
                seq_classif_dropout: f("seq_classif_dropout", raw.seq_classif_dropout, 0.2)?,
                pad_token_id: raw.pad_token_id.unwrap_or(0),
                layer_norm_eps: 1e-12,
                tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(true),
                labels,
                architectures,
            };
            check_heads(file, config.dim, config.n_heads)?;
            ModelConfig::DistilBert(config)
        })
    }

    pub fn hidden_size(&self) -> usize {
        match self {
            ModelConfig::Bert(c) => c.hidden_size,
            ModelConfig::DistilBert(c) => c.dim,
        }
    }

    pub fn labels(&self) -> &Labels {
        match self {
            ModelConfig::Bert(c) => &c.labels,
            ModelConfig::DistilBert(c) => &c.labels,
        }
    }
}

/// transformers: `id2label` wins and sets `num_labels`; a `num_labels` that disagrees with it is
/// an error; with neither, 2 labels named LABEL_0, LABEL_1.
fn labels(file: &str, raw: &RawConfig) -> Result<Labels> {
    match &raw.id2label {
        Some(map) => {
            let mut pairs = Vec::with_capacity(map.len());
            for (k, v) in map {
                let index: usize = k.parse().map_err(|_| {
                    Error::format(file, format!("id2label key {k:?} is not a class index"))
                })?;
                pairs.push((index, v.clone()));
            }
            crate::sort::sort(&mut pairs);
            if pairs.iter().enumerate().any(|(i, (index, _))| *index != i) {
                return Err(Error::format(file, "id2label keys are not 0..n-1"));
            }
            if let Some(n) = raw.num_labels {
                if n != pairs.len() {
                    return Err(Error::format(
                        file,
                        format!("num_labels = {n} but id2label has {} entries", pairs.len()),
                    ));
                }
            }
            Ok(Labels {
                num_labels: pairs.len(),
                id2label: pairs.into_iter().map(|p| p.1).collect(),
            })
        }
        None => {
            let n = raw.num_labels.unwrap_or(2);
            if n > 1_000_000 {
                return Err(Error::format(file, format!("num_labels = {n} is absurd")));
            }
            Ok(Labels {
                num_labels: n,
                id2label: (0..n).map(|i| format!("LABEL_{i}")).collect(),
            })
        }
    }
}

/// The activation named by `field` (gelu when absent); an unknown one is refused naming the file.
fn activation(file: &str, field: &str, name: Option<&str>) -> Result<Activation> {
    Activation::from_name(name.unwrap_or("gelu")).map_err(|e| match e {
        Error::Unsupported { what } => Error::unsupported(format!("{file}: {field}: {what}")),
        other => other,
    })
}

fn check_heads(file: &str, hidden: usize, heads: usize) -> Result<()> {
    if heads == 0 || hidden == 0 || !hidden.is_multiple_of(heads) {
        return Err(Error::format(
            file,
            format!(
                "hidden size {hidden} is not a multiple of the number of attention heads {heads}"
            ),
        ));
    }
    Ok(())
}
