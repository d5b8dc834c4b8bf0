//! A sentence classifier on ELMo features (Peters et al. 2018, section 3.3: a task model on
//! the scalar-mixed biLM layers):
//!
//! ```text
//! layers_k (B, T, 2P)  k = 0..K, from the biLM
//!  -> pooled_k (B, 2P) = mean over each sentence's words (sentence boundaries excluded)
//!  -> mixed (B, 2P) = gamma * sum_k softmax(s)_k pooled_k     (the scalar mix; it commutes
//!                                                            with the mean, both are linear)
//!  -> logits (B, classes) = mixed @ W^T + b
//!  -> softmax cross-entropy, mean over the batch
//! ```
//!
//! Three ways to train ([`ElmoTraining`]): the head alone (W, b; the biLM and the mix frozen),
//! the head and the mix (s, gamma), or end to end (also every biLM parameter, through
//! [`ElmoBiLm::backward`]). This file is the model: forward and backward of the pooling, the mix
//! and the head ([`ElmoClassifier::gradients`], [`ElmoClassifier::end_to_end_gradients`]); the
//! training (AdamW, the epochs, the split) is the task's, `tasks/elmo_training.rs`.
//! The head, the mix and the pooling are a few thousand numbers per batch and run on the host
//! (CPU tensors); the biLM runs on its own device (CPU or GPU). With a frozen biLM the pooled
//! layers of every sentence are computed once ([`ElmoClassifier::pooled_layers`]) and the
//! epochs reuse them.

use crate::device::Device;
use crate::models::elmo::backward::ElmoActivationGrads;
use crate::models::elmo::scalar_mix::{
    scalar_mix_backward_cpu, scalar_mix_forward_cpu, ScalarMix, ScalarMixGrads,
};
use crate::models::elmo::weights::ElmoWeights;
use crate::models::elmo::{ElmoBiLm, ElmoOutput};
use crate::ops::losses::{cross_entropy_backward, cross_entropy_forward};
use crate::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use crate::tensor::Tensor;
use crate::train::correct_predictions;
use crate::{Error, Result};

/// Which parameters a training step updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElmoTraining {
    /// the linear head only
    Head,
    /// the head and the scalar mix
    Mix,
    /// the head, the mix and the biLM
    EndToEnd,
}

impl ElmoTraining {
    /// Its name: "head", "mix" or "end-to-end" (JS's `training` option, the CLI's output).
    pub fn name(self) -> &'static str {
        match self {
            ElmoTraining::Head => "head",
            ElmoTraining::Mix => "mix",
            ElmoTraining::EndToEnd => "end-to-end",
        }
    }
}

impl std::fmt::Display for ElmoTraining {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ElmoTraining {
    type Err = Error;
    /// "head", "mix" or "end-to-end"; anything else an error naming it.
    fn from_str(name: &str) -> Result<ElmoTraining> {
        [
            ElmoTraining::Head,
            ElmoTraining::Mix,
            ElmoTraining::EndToEnd,
        ]
        .into_iter()
        .find(|training| training.name() == name)
        .ok_or_else(|| {
            Error::invalid(format!(
                "training must be 'head', 'mix' or 'end-to-end', found {name:?}"
            ))
        })
    }
}

/// What one step or one evaluation measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchResult {
    /// summed cross-entropy over the batch (divide by `count` for the mean)
    pub loss_sum: f64,
    pub correct: usize,
    pub count: usize,
}

impl BatchResult {
    pub fn add(&mut self, other: BatchResult) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.count += other.count;
    }
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.count.max(1) as f64
    }
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count.max(1) as f64
    }
}

/// The head and the mix (the trained parameters of the task model on the biLM).
#[derive(Debug)]
pub struct ElmoClassifier {
    pub mix: ScalarMix,
    /// (classes, 2P) on the host, `nn.Linear` layout
    pub weight: Tensor,
    /// (classes)
    pub bias: Tensor,
    training: ElmoTraining,
    /// fixed standardization of the pooled layers, if fitted
    scaling: Option<FeatureScaling>,
}

/// The gradients of the head and the mix of one batch's mean loss.
#[derive(Debug)]
pub struct ElmoHeadGrads {
    /// (classes, 2P)
    pub weight: Tensor,
    /// (classes)
    pub bias: Tensor,
    /// the mix's scalars and gamma (zeros when only the head trains)
    pub mix: ScalarMixGrads,
}

/// A fixed standardization of the pooled layers, per layer and feature: `(x - mean) / std`,
/// fitted once on the training sentences ([`FeatureScaling::fit`]) and then a constant part of
/// the model (not trained; the backward divides by `std`). The small biLM's pooled features
/// differ between sentences by a small fraction of their mean, which leaves an unscaled linear
/// head badly conditioned.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureScaling {
    /// K
    pub layers: usize,
    /// 2P
    pub dim: usize,
    /// (K, 2P)
    pub mean: Vec<f32>,
    /// (K, 2P) 1 / max(std, 1e-6)
    pub inv_std: Vec<f32>,
}

impl FeatureScaling {
    /// Mean and standard deviation over all rows of `batches`, each pooled layers
    /// (K, B_i, 2P) with `layers` = K and `dim` = 2P.
    pub fn fit(batches: &[&[f32]], layers: usize, dim: usize) -> Result<FeatureScaling> {
        let mut sum = vec![0.0f64; layers * dim];
        let mut sum_sq = vec![0.0f64; layers * dim];
        let mut rows = 0usize;
        for batch in batches {
            if layers * dim == 0 || batch.len() % (layers * dim) != 0 {
                return Err(Error::shape(
                    "FeatureScaling::fit: pooled layers",
                    format!("({layers}, B, {dim})"),
                    batch.len(),
                ));
            }
            let b = batch.len() / (layers * dim);
            for k in 0..layers {
                for r in 0..b {
                    let row = &batch[(k * b + r) * dim..(k * b + r + 1) * dim];
                    for (j, &x) in row.iter().enumerate() {
                        sum[k * dim + j] += x as f64;
                        sum_sq[k * dim + j] += x as f64 * x as f64;
                    }
                }
            }
            rows += b;
        }
        if rows == 0 {
            return Err(Error::invalid("FeatureScaling::fit: no rows"));
        }
        let n = rows as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let inv_std = sum
            .iter()
            .zip(&sum_sq)
            .map(|(s, q)| {
                let var = (q / n - (s / n) * (s / n)).max(0.0);
                1.0 / (var.sqrt() as f32).max(1e-6)
            })
            .collect();
        Ok(FeatureScaling {
            layers,
            dim,
            mean,
            inv_std,
        })
    }

    /// (K, B, 2P) in place.
    fn apply(&self, pooled: &mut [f32]) {
        self.for_each(pooled, |x, mean, inv| (x - mean) * inv);
    }

    /// d pooled (K, B, 2P) from d scaled, in place.
    fn backward(&self, d: &mut [f32]) {
        self.for_each(d, |g, _, inv| g * inv);
    }

    fn for_each(&self, values: &mut [f32], f: impl Fn(f32, f32, f32) -> f32) {
        let dim = self.dim;
        let b = values.len() / (self.layers * dim).max(1);
        for k in 0..self.layers {
            for r in 0..b {
                let at = (k * b + r) * dim;
                for j in 0..dim {
                    let v = &mut values[at + j];
                    *v = f(*v, self.mean[k * dim + j], self.inv_std[k * dim + j]);
                }
            }
        }
    }
}

/// Mean over the words of each row of every layer: `out[k][b]` (2P) from `output`'s layers
/// with the sentence boundaries (row b's words are positions 1..lengths[b]-1). A row without
/// words pools to zeros. Returns (K, B, 2P).
fn pool_words(output: &ElmoOutput) -> Vec<f32> {
    let (b_count, t_count, d) = (output.batch, output.steps, output.dim);
    let mut out = vec![0.0f32; output.layers.len() * b_count * d];
    for (k, layer) in output.layers.iter().enumerate() {
        for b in 0..b_count {
            let words = output.lengths[b].saturating_sub(2);
            let dst = &mut out[(k * b_count + b) * d..(k * b_count + b + 1) * d];
            for t in 1..=words {
                let src = &layer[(b * t_count + t) * d..(b * t_count + t + 1) * d];
                dst.iter_mut().zip(src).for_each(|(o, &x)| *o += x);
            }
            let scale = 1.0 / words.max(1) as f32;
            dst.iter_mut().for_each(|o| *o *= scale);
        }
    }
    out
}

/// The gradient of the layers (with boundaries, (B, T, 2P) each) from that of [`pool_words`].
fn unpool_words(output: &ElmoOutput, d_pooled: &[f32]) -> Vec<Vec<f32>> {
    let (b_count, t_count, d) = (output.batch, output.steps, output.dim);
    (0..output.layers.len())
        .map(|k| {
            let mut layer = vec![0.0f32; b_count * t_count * d];
            for b in 0..b_count {
                let words = output.lengths[b].saturating_sub(2);
                let scale = 1.0 / words.max(1) as f32;
                let src = &d_pooled[(k * b_count + b) * d..(k * b_count + b + 1) * d];
                for t in 1..=words {
                    let dst = &mut layer[(b * t_count + t) * d..(b * t_count + t + 1) * d];
                    dst.iter_mut().zip(src).for_each(|(o, &g)| *o = g * scale);
                }
            }
            layer
        })
        .collect()
}

fn check_labels(labels: &[u32], classes: usize) -> Result<()> {
    match labels.iter().find(|&&l| l as usize >= classes) {
        Some(l) => Err(Error::invalid(format!(
            "ElmoClassifier: label {l} is not one of the {classes} classes"
        ))),
        None => Ok(()),
    }
}

impl ElmoClassifier {
    /// A head for `classes` classes on `bilm`'s features, initialised as `nn.Linear` (uniform
    /// in +-1/sqrt(2P), from `seed`), the mix at AllenNLP's defaults (equal weights, gamma 1).
    pub fn new(
        bilm: &ElmoBiLm,
        classes: usize,
        training: ElmoTraining,
        seed: u64,
    ) -> Result<ElmoClassifier> {
        if classes < 2 {
            return Err(Error::invalid("ElmoClassifier needs at least 2 classes"));
        }
        if training == ElmoTraining::EndToEnd && bilm.is_stateful() {
            return Err(Error::invalid(
                "ElmoClassifier: end-to-end training needs a stateless biLM (set_stateful(false))",
            ));
        }
        let d = bilm.output_dim();
        let bound = 1.0 / (d as f32).sqrt();
        let mut state = seed ^ 0x5DEE_CE66_D1CE_4E5B;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * bound
        };
        let host = Device::Cpu;
        let weight: Vec<f32> = (0..classes * d).map(|_| uniform()).collect();
        let bias: Vec<f32> = (0..classes).map(|_| uniform()).collect();
        let weight = Tensor::from_vec(&host, &[classes, d], weight, "elmo_classifier.weight")?;
        let bias = Tensor::from_vec(&host, &[classes], bias, "elmo_classifier.bias")?;
        let mix = ScalarMix::new(bilm.num_layers())?;
        Ok(ElmoClassifier {
            mix,
            weight,
            bias,
            training,
            scaling: None,
        })
    }

    /// Standardize the pooled layers with `scaling` from now on (fit it on the training
    /// sentences: [`FeatureScaling::fit`]).
    pub fn set_scaling(&mut self, scaling: FeatureScaling) -> Result<()> {
        let (k, d) = (self.mix.scalars.len(), self.weight.shape()[1]);
        if scaling.layers != k || scaling.dim != d || scaling.mean.len() != k * d {
            return Err(Error::shape(
                "ElmoClassifier::set_scaling",
                [k, d],
                [scaling.layers, scaling.dim],
            ));
        }
        self.scaling = Some(scaling);
        Ok(())
    }

    pub fn training(&self) -> ElmoTraining {
        self.training
    }
    pub fn classes(&self) -> usize {
        self.bias.shape()[0]
    }

    /// The pooled layers (K, B, 2P) of tokenized sentences (see the module doc), the biLM's
    /// current weights, stateless.
    pub async fn pooled_layers(bilm: &ElmoBiLm, sentences: &[Vec<&str>]) -> Result<Vec<f32>> {
        let (ids, steps) = ElmoBiLm::char_ids_with_boundaries(sentences);
        let acts = bilm.forward_tensors(&ids, sentences.len(), steps)?;
        Ok(pool_words(&acts.read_back().await?))
    }

    /// Head forward: (stack of the pooled layers, mixed (B, 2P), logits (B, classes)).
    fn head_forward(&self, pooled: &[f32], batch: usize) -> Result<(Tensor, Tensor)> {
        let host = Device::Cpu;
        let d = self.weight.shape()[1];
        let mut mixed = vec![0.0f32; batch * d];
        scalar_mix_forward_cpu(&mut mixed, pooled, &self.mix)?;
        let mixed = Tensor::from_vec(&host, &[batch, d], mixed, "elmo_classifier.mixed")?;
        let mut logits = Tensor::uninit(&host, &[batch, self.classes()], "elmo_classifier.logits")?;
        matmul_forward(
            &mut logits,
            &mixed,
            &self.weight,
            Some(&self.bias),
            MatmulOptions {
                trans_b: true,
                ..MatmulOptions::default()
            },
        )?;
        Ok((mixed, logits))
    }

    /// The pooled layers (K, B, 2P) as the mix sees them: standardized when a scaling is set.
    fn scaled<'a>(&self, pooled: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        match &self.scaling {
            Some(scaling) => {
                let mut copy = pooled.to_vec();
                scaling.apply(&mut copy);
                std::borrow::Cow::Owned(copy)
            }
            None => std::borrow::Cow::Borrowed(pooled),
        }
    }

    /// Refuses pooled layers that are not (K, `batch`, 2P) for this classifier.
    fn check_pooled(&self, pooled: &[f32], batch: usize) -> Result<()> {
        let (k, d) = (self.mix.scalars.len(), self.weight.shape()[1]);
        if pooled.len() != k * batch * d {
            return Err(Error::shape(
                "ElmoClassifier: pooled layers",
                [k, batch, d],
                pooled.len(),
            ));
        }
        Ok(())
    }

    /// Class probabilities (B, classes), softmax of the logits, of a batch of `batch` pooled
    /// layers (K, B, 2P): what the classifier predicts, without labels.
    pub fn probabilities(&self, pooled: &[f32], batch: usize) -> Result<Vec<f32>> {
        self.check_pooled(pooled, batch)?;
        let (_, logits) = self.head_forward(&self.scaled(pooled), batch)?;
        let mut probabilities = logits.cpu()?.to_vec(); // (B, classes)
        for row in probabilities.chunks_mut(self.classes()) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for x in row.iter_mut() {
                *x = (*x - max).exp();
                sum += *x;
            }
            row.iter_mut().for_each(|x| *x /= sum);
        }
        Ok(probabilities)
    }

    /// Loss and accuracy of a batch of pooled layers (K, B, 2P), without training.
    pub fn evaluate(&self, pooled: &[f32], labels: &[u32]) -> Result<BatchResult> {
        let (result, _) = self.loss(pooled, labels)?;
        Ok(result)
    }

    /// Forward + loss: the measurement and (logits, logsumexp, mixed) for the backward.
    #[allow(clippy::type_complexity)]
    fn loss(
        &self,
        pooled: &[f32],
        labels: &[u32],
    ) -> Result<(BatchResult, (Tensor, Tensor, Tensor, Tensor<u32>, Vec<f32>))> {
        let batch = labels.len();
        self.check_pooled(pooled, batch)?;
        check_labels(labels, self.classes())?;
        let host = Device::Cpu;
        let pooled = self.scaled(pooled);
        let (mixed, logits) = self.head_forward(&pooled, batch)?;
        let targets = Tensor::from_vec(&host, &[batch], labels.to_vec(), "elmo_classifier.labels")?;
        let mut losses = Tensor::uninit(&host, &[batch], "elmo_classifier.losses")?;
        let mut lse = Tensor::uninit(&host, &[batch], "elmo_classifier.logsumexp")?;
        cross_entropy_forward(&mut losses, &mut lse, &logits, &targets, u32::MAX)?;
        let correct = correct_predictions(logits.cpu()?, labels, self.classes())?;
        let loss_sum = losses.cpu()?.iter().map(|&x| x as f64).sum();
        Ok((
            BatchResult {
                loss_sum,
                correct,
                count: batch,
            },
            (logits, lse, mixed, targets, pooled.into_owned()),
        ))
    }

    /// Forward and backward of one batch of pooled layers (K, B, 2P): the measurement of the
    /// batch, the gradients of its mean loss for the head and (unless only the head trains) the
    /// mix, and, when `want_d_pooled`, the gradient of the pooled layers (K, B, 2P). Nothing
    /// changes.
    pub fn gradients(
        &self,
        pooled: &[f32],
        labels: &[u32],
        want_d_pooled: bool,
    ) -> Result<(BatchResult, ElmoHeadGrads, Option<Vec<f32>>)> {
        let host = Device::Cpu;
        let batch = labels.len();
        // `pooled` from here on: the scaled layers the mix saw
        let (result, (logits, lse, mixed, targets, pooled)) = self.loss(pooled, labels)?;
        let mut d_logits = Tensor::zeros(&host, logits.shape(), "elmo_classifier.dlogits")?; // (B, classes)
        cross_entropy_backward(
            &mut d_logits,
            &logits,
            &lse,
            &targets,
            u32::MAX,
            1.0 / batch.max(1) as f32,
        )?;
        let mut d_weight = Tensor::zeros(&host, self.weight.shape(), "elmo_classifier.dweight")?; // (classes, 2P)
        let mut d_bias = Tensor::zeros(&host, self.bias.shape(), "elmo_classifier.dbias")?; // (classes)
        let mut d_mixed = Tensor::zeros(&host, mixed.shape(), "elmo_classifier.dmixed")?; // (B, 2P)
        matmul_backward(
            Some(&mut d_mixed),
            Some(&mut d_weight),
            Some(&mut d_bias),
            &d_logits,
            &mixed,
            &self.weight,
            MatmulOptions {
                trans_b: true,
                ..MatmulOptions::default()
            },
        )?;
        let mut mix_grads = self.mix.zero_grads();
        let mut d_pooled = want_d_pooled.then(|| vec![0.0f32; pooled.len()]); // (K, B, 2P)
        if self.training != ElmoTraining::Head || want_d_pooled {
            scalar_mix_backward_cpu(
                d_pooled.as_deref_mut(),
                &mut mix_grads,
                d_mixed.cpu()?,
                &pooled,
                &self.mix,
            )?;
        }
        if let (Some(d), Some(scaling)) = (d_pooled.as_mut(), &self.scaling) {
            scaling.backward(d);
        }
        let grads = ElmoHeadGrads {
            weight: d_weight,
            bias: d_bias,
            mix: mix_grads,
        };
        Ok((result, grads, d_pooled))
    }

    /// Forward and backward of one end-to-end batch: the biLM forward with its trace, the
    /// pooling, the mix and the head ([`ElmoClassifier::gradients`]), then the backward through
    /// the pooling, the mix and the whole biLM. Returns the measurement, the head's and mix's
    /// gradients and every biLM parameter's (on the biLM's device). Nothing changes.
    pub async fn end_to_end_gradients(
        &self,
        bilm: &ElmoBiLm,
        sentences: &[Vec<&str>],
        labels: &[u32],
    ) -> Result<(BatchResult, ElmoHeadGrads, ElmoWeights)> {
        if self.training != ElmoTraining::EndToEnd {
            return Err(Error::invalid(
                "ElmoClassifier: not built for end-to-end training",
            ));
        }
        if bilm.is_stateful() {
            return Err(Error::invalid(
                "ElmoClassifier: end-to-end training needs a stateless biLM",
            ));
        }
        if sentences.len() != labels.len() {
            return Err(Error::shape(
                "ElmoClassifier: labels",
                sentences.len(),
                labels.len(),
            ));
        }
        let (ids, steps) = ElmoBiLm::char_ids_with_boundaries(sentences);
        let (acts, trace) = bilm.forward_traced(&ids, sentences.len(), steps, true)?;
        let trace = trace.ok_or_else(|| Error::invalid("ElmoBiLm: no trace kept"))?;
        let output = acts.read_back().await?; // K layers (B, T, 2P)
        let pooled = pool_words(&output); // (K, B, 2P)
        let (result, head_grads, d_pooled) = self.gradients(&pooled, labels, true)?;
        let d_pooled = d_pooled.expect("asked for"); // (K, B, 2P)
        let device = bilm.device().clone();
        let d_layers = unpool_words(&output, &d_pooled); // K layers (B, T, 2P)
        let d = ElmoActivationGrads::from_layer_grads(&device, &acts, &d_layers)?;
        let mut bilm_grads = bilm.weights().zeros_like(&device)?;
        bilm.backward(&mut bilm_grads, d, &acts, &trace)?;
        Ok((result, head_grads, bilm_grads))
    }

    /// The mix's parameters as one tensor (K + 1) on the host: the scalars, then gamma (what
    /// the optimizer steps; [`ElmoClassifier::set_mix_parameters`] puts them back).
    pub fn mix_parameters(&self) -> Result<Tensor> {
        let mut values = self.mix.scalars.clone();
        values.push(self.mix.gamma);
        Tensor::from_vec(&Device::Cpu, &[values.len()], values, "scalar_mix")
    }

    /// Sets the mix from [`ElmoClassifier::mix_parameters`]'s layout (K + 1).
    pub fn set_mix_parameters(&mut self, parameters: &Tensor) -> Result<()> {
        let values = parameters.cpu()?;
        let k = self.mix.scalars.len();
        if values.len() != k + 1 {
            return Err(Error::shape(
                "ElmoClassifier: mix parameters",
                k + 1,
                values.len(),
            ));
        }
        self.mix.scalars.copy_from_slice(&values[..k]);
        self.mix.gamma = values[k];
        Ok(())
    }
}
