//! The sequence classifier as the tasks run it: which encoder features it reads, and its
//! forward and backward from those features.
//!
//! ```text
//! hidden (B, T, C) ─ features (B, C):  ClsToken:   h[:, 0]                 (transformers' heads)
//!                                      MeanPooled: masked mean over tokens (sentence-transformers)
//!                  ─ head ─ logits (B, L):
//!     BERT, ClsToken:   classifier(dropout(tanh(pooler(features))))  = BertForSequenceClassification
//!     BERT, MeanPooled: classifier(dropout(features))
//!     DistilBERT:       classifier(dropout(relu(pre_classifier(features))))
//! ```
//!
//! Head-only training caches the features (one encoder pass per example); the other policies
//! run the backward from dfeatures into dhidden and through the encoder. The pooler, where it is
//! used, is part of the encoder (`bert.pooler`): frozen under `Freeze::Head`, as in
//! transformers when `bert.*` is frozen, trained under the other policies. A mean-pooled BERT classifier is saved with
//! `"classifier_pooling": "mean"` in config.json: transformers loads the weights as
//! `BertForSequenceClassification` but would read them through its pooler, so use webnlu (or
//! mean pooling) to run it.

use crate::io::ModelFiles;
use crate::models::bert::heads::{
    sequence_chain_backward, sequence_chain_forward, Pooler, SequenceChainSaved, SequenceClassifier,
};
use crate::models::{BertModel, Gradients};
use crate::ops::pooling::{
    cls_pooling_backward, cls_pooling_forward, mean_pooling_backward, mean_pooling_forward,
};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// The config.json key that records a mean-pooled classifier.
pub const CLASSIFIER_POOLING_KEY: &str = "classifier_pooling";

/// Which encoder features the classifier reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassifierInput {
    ClsToken,
    MeanPooled,
}

impl std::str::FromStr for ClassifierInput {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cls" => Ok(ClassifierInput::ClsToken),
            "mean" => Ok(ClassifierInput::MeanPooled),
            other => Err(Error::invalid(format!(
                "classifier pooling must be cls or mean, found {other:?}"
            ))),
        }
    }
}

impl ClassifierInput {
    /// `"classifier_pooling": "mean"` in config.json, else the [CLS] token.
    pub fn from_config(files: &ModelFiles) -> Result<Self> {
        let Some(bytes) = files.get("config.json") else {
            return Ok(ClassifierInput::ClsToken);
        };
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::format(format!("{}/config.json", files.source), e.to_string()))?;
        match value.get(CLASSIFIER_POOLING_KEY).and_then(|v| v.as_str()) {
            None => Ok(ClassifierInput::ClsToken),
            Some(name) => name.parse(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ClassifierInput::ClsToken => "cls",
            ClassifierInput::MeanPooled => "mean",
        }
    }

    /// features (B, C) from hidden (B, T, C) and the (B, T) attention mask.
    pub fn features(self, hidden: &Tensor, mask: &Tensor<u32>) -> Result<Tensor> {
        let s = hidden.shape();
        let mut out = Tensor::uninit(&hidden.device(), &[s[0], s[2]], "classifier.features")?;
        match self {
            ClassifierInput::ClsToken => cls_pooling_forward(&mut out, hidden)?,
            ClassifierInput::MeanPooled => mean_pooling_forward(&mut out, hidden, mask)?,
        }
        Ok(out)
    }

    /// dhidden (B, T, C) += the gradient of dfeatures (B, C).
    pub fn features_backward(
        self,
        dhidden: &mut Tensor,
        dfeatures: &Tensor,
        mask: &Tensor<u32>,
    ) -> Result<()> {
        match self {
            ClassifierInput::ClsToken => cls_pooling_backward(dhidden, dfeatures),
            ClassifierInput::MeanPooled => mean_pooling_backward(dhidden, dfeatures, mask),
        }
    }
}

/// What [`head_backward`] needs from [`head_forward`].
pub struct HeadSaved {
    /// the features as the head read them: (B, 1, C) as "hidden states" for the pooler and the
    /// DistilBERT head, (B, C) for a mean-pooled BERT classifier
    features: Tensor,
    input: ClassifierInput,
    chain: SequenceChainSaved,
}

fn classifier_of(model: &BertModel) -> Result<&SequenceClassifier> {
    model.sequence_classifier.as_ref().ok_or_else(|| {
        Error::invalid(
            "the model has no sequence classifier: load a fine-tuned classifier or train one",
        )
    })
}

/// The pooler the head reads through: BERT's on the [CLS] token; none for mean-pooled features
/// or DistilBERT.
fn chain_pooler(model: &BertModel, input: ClassifierInput) -> Result<Option<&Pooler>> {
    match (classifier_of(model)?, input) {
        (SequenceClassifier::Bert { .. }, ClassifierInput::ClsToken) => {
            let pooler = model.pooler.as_ref().ok_or_else(|| {
                Error::invalid("a BERT classifier on the [CLS] token needs the model's pooler")
            })?;
            Ok(Some(pooler))
        }
        _ => Ok(None),
    }
}

/// logits (B, L) from features (B, C).
pub fn head_forward(
    model: &BertModel,
    input: ClassifierInput,
    mut features: Tensor,
    train: bool,
    seed: u64,
) -> Result<(Tensor, HeadSaved)> {
    let head = classifier_of(model)?;
    let pooler = chain_pooler(model, input)?;
    let (b, c) = (features.shape()[0], features.shape()[1]);
    // The pooler and the DistilBERT head read position 0 of hidden states: (B, 1, C).
    if pooler.is_some() || matches!(head, SequenceClassifier::DistilBert { .. }) {
        features.reshape(&[b, 1, c])?;
    }
    let (logits, chain) = sequence_chain_forward(pooler, head, &features, train, seed)?;
    let saved = HeadSaved {
        features,
        input,
        chain,
    };
    Ok((logits, saved))
}

/// The head's gradients (and the pooler's when `train_pooler`) into `grads`; returns
/// dfeatures (B, C) when `input_gradient` (the encoder trains).
#[allow(clippy::too_many_arguments)]
pub fn head_backward(
    model: &BertModel,
    input_gradient: bool,
    train_pooler: bool,
    dlogits: &Tensor,
    saved: &HeadSaved,
    train: bool,
    seed: u64,
    grads: &mut Gradients,
) -> Result<Option<Tensor>> {
    let head = classifier_of(model)?;
    let shape = saved.features.shape().to_vec();
    let mut dfeatures = match input_gradient {
        true => Some(Tensor::zeros(&dlogits.device(), &shape, "d_features")?),
        false => None,
    };
    sequence_chain_backward(
        chain_pooler(model, saved.input)?,
        head,
        dfeatures.as_mut(),
        dlogits,
        &saved.features,
        &saved.chain,
        train,
        seed,
        train_pooler,
        grads,
    )?;
    if let Some(d) = dfeatures.as_mut() {
        let (b, c) = (shape[0], *shape.last().expect("features have a width"));
        d.reshape(&[b, c])?;
    }
    Ok(dfeatures)
}
