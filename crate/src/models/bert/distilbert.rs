//! DistilBERT (Sanh et al. 2019) as transformers' `modeling_distilbert.py` names it: the same
//! post-LN encoder layer as BERT (see `encoder_layer.rs`) with other parameter names, no
//! token-type embeddings, no pooler, and no dropout after the attention's output projection.
//! `BertModel` (bert/mod.rs, bert/load.rs) loads both families; this file holds what is DistilBERT's own.

use super::encoder_layer::LayerNames;

/// The model prefix of task checkpoints (`DistilBertFor*`).
pub const PREFIX: &str = "distilbert.";

/// `transformer.layer.{i}.`
pub fn layer_prefix(index: usize) -> String {
    format!("transformer.layer.{index}.")
}

/// `TransformerBlock`'s modules.
pub const LAYER_NAMES: LayerNames = LayerNames {
    query: "attention.q_lin",
    key: "attention.k_lin",
    value: "attention.v_lin",
    attention_output: "attention.out_lin",
    attention_norm: "sa_layer_norm",
    intermediate: "ffn.lin1",
    output: "ffn.lin2",
    output_norm: "output_layer_norm",
};

/// `DistilBertForMaskedLM`'s head modules (vocab_projector's weight is tied to the word
/// embeddings; its bias is the head's).
pub const MLM_TRANSFORM: &str = "vocab_transform";
pub const MLM_NORM: &str = "vocab_layer_norm";
pub const MLM_DECODER: &str = "vocab_projector";

/// `DistilBertForSequenceClassification`: pre_classifier (C, C) + ReLU + classifier.
pub const PRE_CLASSIFIER: &str = "pre_classifier";
