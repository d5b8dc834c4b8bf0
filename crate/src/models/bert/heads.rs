//! The task heads on top of the encoder, each with forward and backward, matching
//! transformers' modules (`modeling_bert.py`, `modeling_distilbert.py`):
//!
//! ```text
//! Pooler              pooled = tanh(dense(h[:, 0]))                               (B, C)
//! MaskedLmHead        logits = decoder(LayerNorm(act(transform(h)))) + bias       (N, V)
//!                     decoder = the word embeddings (tied) or its own weight
//! NextSentenceHead    logits = seq_relationship(pooled)                           (B, 2)
//! SequenceClassifier  BERT:       logits = classifier(dropout(pooled))            (B, L)
//!                     DistilBERT: logits = classifier(dropout(relu(pre_classifier(h[:, 0]))))
//! TokenClassifier     logits = classifier(dropout(h))                             (B*T, L)
//! ```
//!
//! The pooler belongs to the encoder (`bert.pooler.*`, as in transformers): `Freeze::Head` keeps
//! it frozen, `Top(k)` (k >= 1) and `All` train it.
//! Backward: `d<input> += ...` and the head's parameter gradients into [`Gradients`].
//! Dropout sites of the heads use streams from [`HEAD_DROPOUT_STREAM`] up.

use crate::device::Device;
use crate::ops::dropout::{dropout_backward, dropout_forward, DropoutMask};
use crate::ops::elementwise::{activation_backward, activation_forward, Activation};
use crate::ops::matmul::MatmulOptions;
use crate::ops::pooling::{cls_pooling_backward, cls_pooling_forward};
use crate::ops::row_sharded::{matmul_backward_row_sharded, matmul_forward_row_sharded};
use crate::tensor::Tensor;
use crate::{Error, Result};

use crate::models::gradients::Gradients;
use crate::models::layer_norm::{LayerNorm, LayerNormSaved};
use crate::models::linear::Linear;

/// First dropout stream of the heads (the encoder uses 0 ..= 3 * layers).
pub const HEAD_DROPOUT_STREAM: u32 = 1 << 20;

/// `x` on a new tensor, with dropout when `mask` is given.
fn maybe_dropout(x: &Tensor, mask: Option<DropoutMask>, name: &str) -> Result<Option<Tensor>> {
    match mask {
        None => Ok(None),
        Some(mask) => {
            let mut out = Tensor::uninit(&x.device(), x.shape(), name)?;
            dropout_forward(&mut out, x, mask)?;
            Ok(Some(out))
        }
    }
}

/// h[:, 0] (B, C) of hidden (B, T, C).
fn cls_rows(hidden: &Tensor) -> Result<Tensor> {
    let s = hidden.shape();
    let mut cls = Tensor::uninit(&hidden.device(), &[s[0], s[2]], "cls")?;
    cls_pooling_forward(&mut cls, hidden)?;
    Ok(cls)
}

/// A linear layer over a (possibly dropped-out) input: forward keeps the input it used.
struct DroppedInput {
    used: Option<Tensor>, // the dropped-out input; None = the original input was used
}

fn linear_over_dropout(
    linear: &Linear,
    x: &Tensor,
    mask: Option<DropoutMask>,
    name: &str,
) -> Result<(Tensor, DroppedInput)> {
    let used = maybe_dropout(x, mask, "dropped")?;
    let y = linear.apply(used.as_ref().unwrap_or(x), name)?;
    Ok((y, DroppedInput { used }))
}

/// dx += gradient through `linear(dropout(x))`.
fn linear_over_dropout_backward(
    linear: &Linear,
    dx: Option<&mut Tensor>,
    dy: &Tensor,
    x: &Tensor,
    saved: &DroppedInput,
    mask: Option<DropoutMask>,
    grads: &mut Gradients,
) -> Result<()> {
    let input = saved.used.as_ref().unwrap_or(x);
    match (dx, mask) {
        (None, _) => linear.backward(None, dy, input, Some(grads)),
        (Some(dx), None) => linear.backward(Some(dx), dy, input, Some(grads)),
        (Some(dx), Some(mask)) => {
            let mut d_dropped = Tensor::zeros(&dy.device(), x.shape(), "d_dropped")?;
            linear.backward(Some(&mut d_dropped), dy, input, Some(grads))?;
            dropout_backward(dx, &d_dropped, mask)
        }
    }
}

// ---- Pooler -------------------------------------------------------------------------------

/// `BertPooler`: tanh(dense(h[:, 0])).
#[derive(Debug)]
pub struct Pooler {
    pub dense: Linear, // (C, C)
}

pub struct PoolerSaved {
    cls: Tensor,        // (B, C)
    pub pooled: Tensor, // (B, C)
}

impl Pooler {
    /// pooled (B, C) from hidden (B, T, C).
    pub fn forward(&self, hidden: &Tensor) -> Result<PoolerSaved> {
        let cls = cls_rows(hidden)?; // (B, C)
        let pre = self.dense.apply(&cls, "pooler.dense")?; // (B, C)
        let mut pooled = Tensor::uninit(&hidden.device(), pre.shape(), "pooled")?;
        activation_forward(&mut pooled, &pre, Activation::Tanh)?;
        Ok(PoolerSaved { cls, pooled })
    }

    /// dhidden (B, T, C) += (at [CLS]) the gradient of dpooled (B, C), when wanted; the
    /// pooler's gradients into `grads` when given (it trains).
    pub fn backward(
        &self,
        dhidden: Option<&mut Tensor>,
        dpooled: &Tensor,
        saved: &PoolerSaved,
        grads: Option<&mut Gradients>,
    ) -> Result<()> {
        if dhidden.is_none() && grads.is_none() {
            return Ok(()); // frozen pooler over a frozen encoder: nothing to do
        }
        let device = dpooled.device();
        let mut dpre = Tensor::zeros(&device, dpooled.shape(), "d_pooler_pre")?; // (B, C)
        activation_backward(&mut dpre, &saved.pooled, dpooled, Activation::Tanh)?;
        match dhidden {
            None => self.dense.backward(None, &dpre, &saved.cls, grads),
            Some(dhidden) => {
                let mut dcls = Tensor::zeros(&device, saved.cls.shape(), "d_cls")?; // (B, C)
                self.dense
                    .backward(Some(&mut dcls), &dpre, &saved.cls, grads)?;
                cls_pooling_backward(dhidden, &dcls)
            }
        }
    }
}

// ---- masked LM ----------------------------------------------------------------------------

/// `BertLMPredictionHead` / DistilBERT's vocab_transform + vocab_layer_norm + vocab_projector.
#[derive(Debug)]
pub struct MaskedLmHead {
    pub transform: Linear, // (C, C)
    pub activation: Activation,
    pub norm: LayerNorm, // (C)
    /// (V, C) an untied decoder; None = tied to the word embeddings.
    pub decoder: Option<Tensor>,
    pub bias: Tensor, // (V)
}

pub struct MaskedLmSaved {
    pre: Tensor,          // (N, C) transform output
    act: Tensor,          // (N, C) after the activation
    norm: LayerNormSaved, // (N)
    normed: Tensor,       // (N, C) decoder input
}

const DECODER: MatmulOptions = MatmulOptions {
    trans_a: false,
    trans_b: true,
    alpha: 1.0,
    accumulate: false,
};

/// The logits (.., V) of one pass must fit one storage binding on a GPU (they are not split
/// into shards, unlike the decoder weight): refuse more positions than that, saying how many fit.
/// Called by the head's forward, and by fill-mask and masked-LM training before any work.
pub(crate) fn check_logits_fit(device: &Device, shape: &[usize]) -> Result<()> {
    let Device::Gpu(ctx) = device else {
        return Ok(());
    };
    let vocab = *shape.last().unwrap_or(&1);
    let positions: usize = shape[..shape.len().saturating_sub(1)].iter().product();
    let limit = ctx.max_binding_bytes();
    let bytes = (positions * vocab * 4) as u64;
    if bytes > limit {
        return Err(Error::out_of_memory(
            format!("GPU tensor \"mlm.logits\" of shape {shape:?}"),
            bytes,
            format!(
                "masked-LM logits for {positions} positions x {vocab} vocabulary entries are over \
                 this GPU's {:.1} MiB per storage binding: at most {} positions fit in one pass \
                 (use fewer or shorter texts per batch, or fewer [MASK]s per text)",
                limit as f64 / 1048576.0,
                limit / (vocab as u64 * 4).max(1)
            ),
        ));
    }
    Ok(())
}

impl MaskedLmHead {
    /// The decoder weight (V, C): its own, or the word embeddings when tied.
    pub fn decoder_weight<'a>(&'a self, word_embeddings: &'a Tensor) -> &'a Tensor {
        self.decoder.as_ref().unwrap_or(word_embeddings)
    }

    /// logits (.., V) from rows (.., C): all positions (B, T, C) or gathered ones (N, C).
    pub fn forward(
        &self,
        rows: &Tensor,
        word_embeddings: &Tensor,
    ) -> Result<(Tensor, MaskedLmSaved)> {
        let device = rows.device();
        let pre = self.transform.apply(rows, "mlm.transform")?; // (.., C)
        let mut act = Tensor::uninit(&device, pre.shape(), "mlm.act")?; // (.., C)
        activation_forward(&mut act, &pre, self.activation)?;
        let (normed, norm) = self.norm.forward(&act, "mlm.normed")?; // (.., C)
        let weight = self.decoder_weight(word_embeddings); // (V, C)
        let mut shape = rows.shape().to_vec();
        *shape.last_mut().expect("rows have a hidden dimension") = weight.shape()[0];
        check_logits_fit(&device, &shape)?;
        let mut logits = Tensor::uninit(&device, &shape, "mlm.logits")?; // (.., V)
        matmul_forward_row_sharded(&mut logits, &normed, weight, Some(&self.bias), DECODER)?;
        Ok((
            logits,
            MaskedLmSaved {
                pre,
                act,
                norm,
                normed,
            },
        ))
    }

    /// drows (.., C) += the input gradient (when wanted); head gradients into `grads`; the
    /// decoder weight's gradient only with `train_decoder` (when tied, it is the word
    /// embeddings' gradient, which a frozen encoder does not train).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        drows: Option<&mut Tensor>,
        dlogits: &Tensor,
        rows: &Tensor,
        saved: &MaskedLmSaved,
        word_embeddings: &Tensor,
        train_decoder: bool,
        grads: &mut Gradients,
    ) -> Result<()> {
        let device = dlogits.device();
        let weight = self.decoder_weight(word_embeddings);
        // logits = normed W^T + bias
        let mut dnormed = Tensor::zeros(&device, saved.normed.shape(), "d_mlm_normed")?;
        let mut dbias = grads.take(&self.bias)?;
        let mut dweight = if train_decoder {
            Some(grads.take(weight)?)
        } else {
            None
        };
        let result = matmul_backward_row_sharded(
            Some(&mut dnormed),
            dweight.as_mut(),
            Some(&mut dbias),
            dlogits,
            &saved.normed,
            weight,
            DECODER,
        );
        grads.put(dbias);
        if let Some(dweight) = dweight {
            grads.put(dweight);
        }
        result?;
        // normed = LayerNorm(act)
        let mut dact = Tensor::zeros(&device, saved.act.shape(), "d_mlm_act")?;
        self.norm.backward(
            Some(&mut dact),
            &dnormed,
            &saved.act,
            &saved.norm,
            Some(grads),
        )?;
        // act = f(pre)
        let mut dpre = Tensor::zeros(&device, saved.pre.shape(), "d_mlm_pre")?;
        let act_saved = if self.activation == Activation::Tanh {
            &saved.act
        } else {
            &saved.pre
        };
        activation_backward(&mut dpre, act_saved, &dact, self.activation)?;
        // pre = transform(rows)
        self.transform.backward(drows, &dpre, rows, Some(grads))
    }

    /// The head's own parameters (a tied decoder is the word embeddings, not listed here).
    pub fn parameters(&self) -> Vec<&Tensor> {
        let mut p: Vec<&Tensor> = self.transform.parameters();
        p.extend(self.norm.parameters());
        p.extend(self.decoder.as_ref());
        p.push(&self.bias);
        p
    }

    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        let mut p: Vec<&mut Tensor> = self.transform.parameters_mut();
        p.extend(self.norm.parameters_mut());
        p.extend(self.decoder.as_mut());
        p.push(&mut self.bias);
        p
    }
}

// ---- next sentence ------------------------------------------------------------------------

/// `BertOnlyNSPHead`: logits (B, 2) = seq_relationship(pooled).
#[derive(Debug)]
pub struct NextSentenceHead {
    pub seq_relationship: Linear, // (2, C)
}

impl NextSentenceHead {
    pub fn forward(&self, pooled: &Tensor) -> Result<Tensor> {
        self.seq_relationship.apply(pooled, "nsp.logits")
    }

    /// dpooled (B, C) += the gradient of dlogits (B, 2).
    pub fn backward(
        &self,
        dpooled: &mut Tensor,
        dlogits: &Tensor,
        pooled: &Tensor,
        grads: &mut Gradients,
    ) -> Result<()> {
        self.seq_relationship
            .backward(Some(dpooled), dlogits, pooled, Some(grads))
    }
}

// ---- sequence classification ---------------------------------------------------------------

/// What [`sequence_chain_backward`] needs from [`sequence_chain_forward`].
pub struct SequenceChainSaved {
    /// BERT's pooler state, when the chain ran through the pooler (its `pooled` (B, C) is what
    /// the classifier read).
    pub pooler: Option<PoolerSaved>,
    pub classifier: SequenceClassifierSaved,
}

/// The whole sequence-classification chain, written once for the model's task step and the
/// classifier tasks (head-only training reads cached features instead of hidden states):
/// - BERT through its pooler (`pooler` is Some): classifier(dropout(tanh(pooler(x[:, 0])))),
///   `BertForSequenceClassification`; x: (B, T, C) hidden states, or (B, 1, C) features;
/// - BERT without it (mean-pooled features): classifier(dropout(x)), x: (B, C);
/// - DistilBERT: classifier(dropout(relu(pre_classifier(x[:, 0])))), x: (B, T, C) or (B, 1, C).
///
/// Returns logits (B, L).
pub fn sequence_chain_forward(
    pooler: Option<&Pooler>,
    head: &SequenceClassifier,
    x: &Tensor,
    train: bool,
    seed: u64,
) -> Result<(Tensor, SequenceChainSaved)> {
    match pooler {
        Some(pooler) => {
            let saved_pooler = pooler.forward(x)?; // pooled (B, C)
            let (logits, classifier) = head.forward(&saved_pooler.pooled, train, seed)?;
            let saved = SequenceChainSaved {
                pooler: Some(saved_pooler),
                classifier,
            };
            Ok((logits, saved))
        }
        None => {
            let (logits, classifier) = head.forward(x, train, seed)?;
            let saved = SequenceChainSaved {
                pooler: None,
                classifier,
            };
            Ok((logits, saved))
        }
    }
}

/// The chain's backward: the classifier's gradients (and the pooler's when `train_pooler`)
/// into `grads`, and dx (the shape of the forward's x) += the gradient of dlogits (B, L) when
/// `dx` is given (None: head-only training needs no input gradient).
#[allow(clippy::too_many_arguments)]
pub fn sequence_chain_backward(
    pooler: Option<&Pooler>,
    head: &SequenceClassifier,
    dx: Option<&mut Tensor>,
    dlogits: &Tensor,
    x: &Tensor,
    saved: &SequenceChainSaved,
    train: bool,
    seed: u64,
    train_pooler: bool,
    grads: &mut Gradients,
) -> Result<()> {
    let Some(saved_pooler) = &saved.pooler else {
        return head.backward(dx, dlogits, x, &saved.classifier, train, seed, grads);
    };
    let pooler =
        pooler.ok_or_else(|| Error::invalid("the classifier read the pooler, which is gone"))?;
    let pooled = &saved_pooler.pooled; // (B, C)
    let mut dpooled = Tensor::zeros(&dlogits.device(), pooled.shape(), "d_pooled")?; // (B, C)
    head.backward(
        Some(&mut dpooled),
        dlogits,
        pooled,
        &saved.classifier,
        train,
        seed,
        grads,
    )?;
    pooler.backward(dx, &dpooled, saved_pooler, train_pooler.then_some(grads))
}

/// `BertForSequenceClassification` / `DistilBertForSequenceClassification` heads.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per model: the size does not matter
pub enum SequenceClassifier {
    /// logits (B, L) = classifier(dropout(pooled)); the pooler is the model's.
    Bert { classifier: Linear, dropout: f32 },
    /// logits (B, L) = classifier(dropout(relu(pre_classifier(h[:, 0])))).
    DistilBert {
        pre_classifier: Linear, // (C, C)
        classifier: Linear,     // (L, C)
        dropout: f32,
    },
}

/// What the classifier's backward needs.
pub struct SequenceClassifierSaved {
    cls: Option<Tensor>,   // (B, C) DistilBERT: h[:, 0]
    pre: Option<Tensor>,   // (B, C) DistilBERT: pre_classifier output
    relu: Option<Tensor>,  // (B, C) DistilBERT: after the ReLU
    dropped: DroppedInput, // the classifier's dropped-out input
}

impl SequenceClassifier {
    pub fn classifier(&self) -> &Linear {
        match self {
            SequenceClassifier::Bert { classifier, .. } => classifier,
            SequenceClassifier::DistilBert { classifier, .. } => classifier,
        }
    }

    pub fn num_labels(&self) -> usize {
        self.classifier().out_features()
    }

    fn dropout_mask(&self, train: bool, seed: u64) -> Option<DropoutMask> {
        let p = match self {
            SequenceClassifier::Bert { dropout, .. } => *dropout,
            SequenceClassifier::DistilBert { dropout, .. } => *dropout,
        };
        (train && p > 0.0).then_some(DropoutMask {
            probability: p,
            seed,
            stream: HEAD_DROPOUT_STREAM,
        })
    }

    /// logits (B, L). `input` is the pooled output (B, C) for BERT, the hidden states
    /// (B, T, C) for DistilBERT.
    pub fn forward(
        &self,
        input: &Tensor,
        train: bool,
        seed: u64,
    ) -> Result<(Tensor, SequenceClassifierSaved)> {
        let mask = self.dropout_mask(train, seed);
        match self {
            SequenceClassifier::Bert { classifier, .. } => {
                let (logits, dropped) = linear_over_dropout(classifier, input, mask, "logits")?;
                let saved = SequenceClassifierSaved {
                    cls: None,
                    pre: None,
                    relu: None,
                    dropped,
                };
                Ok((logits, saved))
            }
            SequenceClassifier::DistilBert {
                pre_classifier,
                classifier,
                ..
            } => {
                let cls = cls_rows(input)?; // (B, C)
                let pre = pre_classifier.apply(&cls, "pre_classifier")?; // (B, C)
                let mut relu = Tensor::uninit(&input.device(), pre.shape(), "relu")?;
                activation_forward(&mut relu, &pre, Activation::Relu)?;
                let (logits, dropped) = linear_over_dropout(classifier, &relu, mask, "logits")?;
                let saved = SequenceClassifierSaved {
                    cls: Some(cls),
                    pre: Some(pre),
                    relu: Some(relu),
                    dropped,
                };
                Ok((logits, saved))
            }
        }
    }

    /// dinput += the gradient of dlogits (B, L): into dpooled (B, C) for BERT, into dhidden
    /// (B, T, C) at [CLS] for DistilBERT (None: head-only training needs no input gradient).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        dinput: Option<&mut Tensor>,
        dlogits: &Tensor,
        input: &Tensor,
        saved: &SequenceClassifierSaved,
        train: bool,
        seed: u64,
        grads: &mut Gradients,
    ) -> Result<()> {
        let mask = self.dropout_mask(train, seed);
        match self {
            SequenceClassifier::Bert { classifier, .. } => linear_over_dropout_backward(
                classifier,
                dinput,
                dlogits,
                input,
                &saved.dropped,
                mask,
                grads,
            ),
            SequenceClassifier::DistilBert {
                pre_classifier,
                classifier,
                ..
            } => {
                let device = dlogits.device();
                let (cls, pre, relu) = match (&saved.cls, &saved.pre, &saved.relu) {
                    (Some(c), Some(p), Some(r)) => (c, p, r),
                    _ => return Err(crate::Error::invalid("classifier state of another model")),
                };
                let mut drelu = Tensor::zeros(&device, relu.shape(), "d_relu")?; // (B, C)
                linear_over_dropout_backward(
                    classifier,
                    Some(&mut drelu),
                    dlogits,
                    relu,
                    &saved.dropped,
                    mask,
                    grads,
                )?;
                let mut dpre = Tensor::zeros(&device, pre.shape(), "d_pre_classifier")?;
                activation_backward(&mut dpre, pre, &drelu, Activation::Relu)?;
                match dinput {
                    None => pre_classifier.backward(None, &dpre, cls, Some(grads)),
                    Some(dhidden) => {
                        let mut dcls = Tensor::zeros(&device, cls.shape(), "d_cls")?;
                        pre_classifier.backward(Some(&mut dcls), &dpre, cls, Some(grads))?;
                        cls_pooling_backward(dhidden, &dcls)
                    }
                }
            }
        }
    }

    pub fn parameters(&self) -> Vec<&Tensor> {
        match self {
            SequenceClassifier::Bert { classifier, .. } => classifier.parameters(),
            SequenceClassifier::DistilBert {
                pre_classifier,
                classifier,
                ..
            } => {
                let mut p: Vec<&Tensor> = pre_classifier.parameters();
                classifier.push_parameters(&mut p);
                p
            }
        }
    }

    pub fn parameters_mut(&mut self) -> Vec<&mut Tensor> {
        match self {
            SequenceClassifier::Bert { classifier, .. } => classifier.parameters_mut(),
            SequenceClassifier::DistilBert {
                pre_classifier,
                classifier,
                ..
            } => {
                let mut p: Vec<&mut Tensor> = pre_classifier.parameters_mut();
                classifier.push_parameters_mut(&mut p);
                p
            }
        }
    }
}

// ---- token classification ------------------------------------------------------------------

/// `BertForTokenClassification` / `DistilBertForTokenClassification`:
/// logits (B, T, L) = classifier(dropout(h)).
#[derive(Debug)]
pub struct TokenClassifier {
    pub classifier: Linear, // (L, C)
    pub dropout: f32,
}

pub struct TokenClassifierSaved {
    dropped: DroppedInput,
}

impl TokenClassifier {
    fn dropout_mask(&self, train: bool, seed: u64) -> Option<DropoutMask> {
        (train && self.dropout > 0.0).then_some(DropoutMask {
            probability: self.dropout,
            seed,
            stream: HEAD_DROPOUT_STREAM + 1,
        })
    }

    pub fn forward(
        &self,
        hidden: &Tensor,
        train: bool,
        seed: u64,
    ) -> Result<(Tensor, TokenClassifierSaved)> {
        let mask = self.dropout_mask(train, seed);
        let (logits, dropped) = linear_over_dropout(&self.classifier, hidden, mask, "logits")?;
        Ok((logits, TokenClassifierSaved { dropped }))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        dhidden: Option<&mut Tensor>,
        dlogits: &Tensor,
        hidden: &Tensor,
        saved: &TokenClassifierSaved,
        train: bool,
        seed: u64,
        grads: &mut Gradients,
    ) -> Result<()> {
        let mask = self.dropout_mask(train, seed);
        linear_over_dropout_backward(
            &self.classifier,
            dhidden,
            dlogits,
            hidden,
            &saved.dropped,
            mask,
            grads,
        )
    }
}

/// A new classification layer as transformers initialises it: normal(0, std) weight, zero bias.
pub fn new_classifier_layer(
    device: &Device,
    name: &str,
    labels: usize,
    hidden: usize,
    std: f32,
    seed: u64,
) -> Result<Linear> {
    Linear::new_random(device, name, labels, hidden, std, seed)
}
