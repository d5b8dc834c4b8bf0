//! Loading a BERT or DistilBERT checkpoint: config.json and the weights onto a device, the
//! encoder and every head the checkpoint holds, one function per part, each tensor checked
//! against the shape the config implies (an error names the tensor, expected and found shape).

use crate::device::Device;
use crate::io::safetensors::HeaderEntry;
use crate::io::{DType, ModelConfig, ModelFiles, WeightSource};
use crate::memory_limit::check_model_fits;
use crate::models::layer_norm::LayerNorm;
use crate::models::linear::Linear;
use crate::models::weight_loader::WeightLoader;
use crate::ops::elementwise::Activation;
use crate::ops::matmul::WeightDtype;
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::embeddings::Embeddings;
use super::encoder_layer::{op_activation, EncoderLayer, LayerDropout, LayerShape};
use super::heads::{MaskedLmHead, NextSentenceHead, Pooler, SequenceClassifier, TokenClassifier};
use super::{dims_of, distilbert, BertModel, Dims, Family, LAYER_NAMES, PREFIX};

/// What every part's loader reads: the weights, the config's numbers and the family's names.
struct Checkpoint<'w, 'f, 'a> {
    weights: &'w WeightLoader<'f, 'a>,
    d: Dims,
    family: Family,
    /// The encoder's prefix in task checkpoints (`bert.` / `distilbert.`).
    prefix: &'static str,
    activation: Activation,
    /// How the encoder layers' weight matrices are held.
    dtype: WeightDtype,
}

impl BertModel {
    /// Loads config.json and the weights (safetensors or .bin) of a BERT or DistilBERT
    /// checkpoint onto `device`, with every head the checkpoint holds. A tensor whose shape does
    /// not match the config is an error naming it with the expected and found shapes.
    ///
    /// A BERT checkpoint with a next-sentence or a sequence-classification head but no pooler
    /// gets a new, randomly initialized pooler (those heads read it); its parameter names are
    /// listed in [`BertModel::newly_initialized`], as transformers warns about such weights.
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Self> {
        BertModel::load_as(files, device, WeightDtype::Fp32)
    }

    /// [`BertModel::load`] with the encoder layers' weight matrices (attention q, k, v,
    /// output and the FFN's two: most of the encoder's bytes) held in `dtype`: an fp16 (bf16)
    /// checkpoint loaded as fp16 (bf16) is read without widening, other combinations are
    /// converted (rounding to nearest even); int8 is quantized at load from any float
    /// checkpoint (a scale per output channel, `ops/matmul/int8.rs`). Embeddings, LayerNorms,
    /// biases and heads stay f32. A compressed model runs inference and head-only training;
    /// training its layers is refused.
    pub fn load_as(files: &ModelFiles, device: &Device, dtype: WeightDtype) -> Result<Self> {
        let config = files.config()?;
        let file = files.weight_source()?;
        let weights = WeightLoader {
            file: &file,
            device,
        };
        let d = dims_of(&config);
        check_load_fits(&files.source, &file, &d, dtype)?;
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
        let checkpoint = Checkpoint {
            weights: &weights,
            d,
            family,
            prefix: match family {
                Family::Bert => PREFIX,
                Family::DistilBert => distilbert::PREFIX,
            },
            activation: op_activation(d.activation)?,
            dtype,
        };
        let is_token_task = config_architectures(&config)
            .iter()
            .any(|a| a.ends_with("ForTokenClassification"));
        let (sequence_classifier, token_classifier) =
            checkpoint.classifiers(config.labels().num_labels, is_token_task)?;
        let mut model = BertModel {
            embeddings: checkpoint.embeddings()?,
            layers: checkpoint.layers()?,
            pooler: checkpoint.pooler()?,
            masked_lm: checkpoint.masked_lm()?,
            next_sentence: checkpoint.next_sentence()?,
            sequence_classifier,
            token_classifier,
            config,
            family,
            device: device.clone(),
            newly_initialized: Vec::new(),
        };
        if model.family == Family::Bert
            && model.pooler.is_none()
            && (model.next_sentence.is_some() || model.sequence_classifier.is_some())
        {
            model.add_random_pooler(0)?;
            let names: Vec<String> = (model.pooler.iter())
                .flat_map(|pooler| pooler.dense.parameters())
                .map(|t| t.name().to_string())
                .collect();
            model.newly_initialized = names;
        }
        Ok(model)
    }
}

/// Refuses, before any tensor is read, a load whose weights (as `dtype` holds them) and the
/// file's bytes in memory would be over the memory limit (`memory_limit::check_model_fits`:
/// wasm's 4 GiB by default), naming the need and what to try.
fn check_load_fits(source: &str, file: &WeightSource, d: &Dims, dtype: WeightDtype) -> Result<()> {
    check_fits(
        source,
        file.float_bytes_as_f32(),
        file.bytes_in_memory(),
        d,
        dtype,
    )
}

impl BertModel {
    /// The plan of a model.safetensors that streams in (`io::WeightStream::plan_with`), run on
    /// its header `entries` before any tensor byte is kept. First the memory check of
    /// [`BertModel::load_as`]: the weights as `dtype` holds them, plus the tensors of other
    /// dtypes than F32, which wait as stored until the load converts them. Then the indices of
    /// the entries that [`BertModel::load_as`] holds in `dtype` (the encoder layers' six weight
    /// matrices, found under any spelling and only with the shape the config gives; none in
    /// fp32), for the stream to convert each as soon as it is complete. `files` holds config.json.
    pub fn plan_streamed_load(
        files: &ModelFiles,
        entries: &[HeaderEntry],
        dtype: WeightDtype,
    ) -> Result<Vec<usize>> {
        let config = files.config()?;
        let d = dims_of(&config);
        let as_stored: u64 = (entries.iter())
            .filter(|e| e.dtype != DType::F32)
            .map(|e| e.end - e.begin)
            .sum();
        let as_f32 = crate::io::model_files::float_bytes_as_f32(entries);
        check_fits(&files.source, as_f32, as_stored, &d, dtype)?;
        if dtype == WeightDtype::Fp32 {
            return Ok(Vec::new());
        }
        let (names, family) = match config {
            ModelConfig::Bert(_) => (&LAYER_NAMES, Family::Bert),
            ModelConfig::DistilBert(_) => (&distilbert::LAYER_NAMES, Family::DistilBert),
        };
        let matrices = names.matrices(d.hidden, d.intermediate);
        let mut planned = Vec::with_capacity(d.layers * matrices.len());
        for layer in 0..d.layers {
            let layer_prefix = layer_prefix(family, layer);
            for (module, shape) in matrices {
                let name = format!("{layer_prefix}{module}.weight");
                let found = crate::io::model_files::find_index(entries, &name);
                planned.extend(found.filter(|&at| entries[at].shape == shape));
            }
        }
        Ok(planned)
    }
}

/// Where layer `index`'s parameters are, in the family's names (`encoder.layer.{i}.`).
fn layer_prefix(family: Family, index: usize) -> String {
    match family {
        Family::Bert => format!("encoder.layer.{index}."),
        Family::DistilBert => distilbert::layer_prefix(index),
    }
}

/// [`check_load_fits`] of weights of `as_f32` bytes as f32 and `in_memory` bytes of file.
fn check_fits(
    source: &str,
    as_f32: u64,
    in_memory: u64,
    d: &Dims,
    dtype: WeightDtype,
) -> Result<()> {
    // 16-bit layer matrices: 2 bytes a value instead of 4
    let layer_values =
        d.layers as u64 * (4 * d.hidden * d.hidden + 2 * d.hidden * d.intermediate) as u64;
    let weights = match dtype {
        WeightDtype::Fp32 => as_f32,
        _ => as_f32.saturating_sub(2 * layer_values),
    };
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    let advice = match dtype {
        WeightDtype::Fp32 => {
            "load it with dtype fp16 or bf16 (the encoder layers' weight matrices in half the \
             bytes), or choose a smaller model"
        }
        _ => "choose a smaller model",
    };
    check_model_fits(
        &format!("loading the model {source}"),
        weights + in_memory,
        &format!(
            "{:.1} MiB of weights as {}, {:.1} MiB of the weight file in memory",
            mib(weights),
            dtype.name(),
            mib(in_memory)
        ),
        advice,
    )
}

impl Checkpoint<'_, '_, '_> {
    /// The tensor `name` of the encoder (stored with or without the family's prefix).
    fn encoder_tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.weights
            .load(name, &format!("{}{name}", self.prefix), shape)
    }

    /// Word, position and (BERT) token-type embeddings with their LayerNorm.
    fn embeddings(&self) -> Result<Embeddings> {
        let (d, c) = (&self.d, self.d.hidden);
        Ok(Embeddings {
            word: self.encoder_tensor("embeddings.word_embeddings.weight", &[d.vocab, c])?,
            position: self.encoder_tensor(
                "embeddings.position_embeddings.weight",
                &[d.max_positions, c],
            )?,
            token_type: if d.type_vocab > 0 {
                Some(self.encoder_tensor(
                    "embeddings.token_type_embeddings.weight",
                    &[d.type_vocab, c],
                )?)
            } else {
                None
            },
            norm: LayerNorm::load(self.weights, self.prefix, "embeddings.LayerNorm", c, d.eps)?,
            dropout: d.hidden_dropout,
        })
    }

    /// The encoder layers, under the family's names.
    fn layers(&self) -> Result<Vec<EncoderLayer>> {
        let d = &self.d;
        let names = match self.family {
            Family::Bert => &LAYER_NAMES,
            Family::DistilBert => &distilbert::LAYER_NAMES,
        };
        let shape = LayerShape {
            hidden: d.hidden,
            intermediate: d.intermediate,
            heads: d.heads,
            eps: d.eps,
        };
        let dropout = LayerDropout {
            attention_probs: d.attention_dropout,
            attention_output: d.attention_output_dropout,
            ffn_output: d.hidden_dropout,
        };
        (0..d.layers)
            .map(|i| {
                EncoderLayer::load(
                    self.weights,
                    self.prefix,
                    &layer_prefix(self.family, i),
                    names,
                    shape,
                    self.activation,
                    dropout,
                    self.dtype,
                )
            })
            .collect()
    }

    /// BERT's pooler, when the checkpoint holds one.
    fn pooler(&self) -> Result<Option<Pooler>> {
        if self.family != Family::Bert || !self.weights.has("pooler.dense.weight") {
            return Ok(None);
        }
        let c = self.d.hidden;
        Ok(Some(Pooler {
            dense: Linear::load(self.weights, self.prefix, "pooler.dense", c, c)?,
        }))
    }

    /// The masked-LM head (BERT's `cls.predictions`, DistilBERT's `vocab_*`), when present. A
    /// tied decoder is the word embeddings and is not loaded again.
    fn masked_lm(&self) -> Result<Option<MaskedLmHead>> {
        let (d, c, w) = (&self.d, self.d.hidden, self.weights);
        let untied_decoder = |name: &str| -> Result<Option<Tensor>> {
            if d.tie_word_embeddings {
                Ok(None)
            } else {
                Ok(Some(w.load(name, name, &[d.vocab, c])?))
            }
        };
        Ok(match self.family {
            Family::Bert if w.has("cls.predictions.transform.dense.weight") => {
                let bias_name = if w.has("cls.predictions.bias") {
                    "cls.predictions.bias"
                } else {
                    "cls.predictions.decoder.bias"
                };
                Some(MaskedLmHead {
                    transform: Linear::load(w, "", "cls.predictions.transform.dense", c, c)?,
                    activation: self.activation,
                    norm: LayerNorm::load(w, "", "cls.predictions.transform.LayerNorm", c, d.eps)?,
                    decoder: untied_decoder("cls.predictions.decoder.weight")?,
                    bias: w.load(bias_name, "cls.predictions.bias", &[d.vocab])?,
                })
            }
            Family::DistilBert if w.has("vocab_transform.weight") => Some(MaskedLmHead {
                transform: Linear::load(w, "", distilbert::MLM_TRANSFORM, c, c)?,
                activation: self.activation,
                norm: LayerNorm::load(w, "", distilbert::MLM_NORM, c, 1e-12)?,
                decoder: untied_decoder("vocab_projector.weight")?,
                bias: w.load("vocab_projector.bias", "vocab_projector.bias", &[d.vocab])?,
            }),
            _ => None,
        })
    }

    /// BERT's next-sentence head (`cls.seq_relationship`), when present.
    fn next_sentence(&self) -> Result<Option<NextSentenceHead>> {
        if self.family != Family::Bert || !self.weights.has("cls.seq_relationship.weight") {
            return Ok(None);
        }
        Ok(Some(NextSentenceHead {
            seq_relationship: Linear::load(
                self.weights,
                "",
                "cls.seq_relationship",
                2,
                self.d.hidden,
            )?,
        }))
    }

    /// The checkpoint's `classifier`: a token classifier when its architecture says
    /// `...ForTokenClassification`, else a sequence classifier (DistilBERT's with its
    /// `pre_classifier`).
    fn classifiers(
        &self,
        num_labels: usize,
        is_token_task: bool,
    ) -> Result<(Option<SequenceClassifier>, Option<TokenClassifier>)> {
        let (w, c) = (self.weights, self.d.hidden);
        if !w.has("classifier.weight") {
            return Ok((None, None));
        }
        let classifier = Linear::load(w, "", "classifier", num_labels, c)?;
        if is_token_task {
            let head = TokenClassifier {
                classifier,
                dropout: self.d.token_classifier_dropout,
            };
            return Ok((None, Some(head)));
        }
        let dropout = self.d.sequence_classifier_dropout;
        let head = match self.family {
            Family::Bert => SequenceClassifier::Bert {
                classifier,
                dropout,
            },
            Family::DistilBert => SequenceClassifier::DistilBert {
                pre_classifier: Linear::load(w, "", distilbert::PRE_CLASSIFIER, c, c)?,
                classifier,
                dropout,
            },
        };
        Ok((Some(head), None))
    }
}

fn config_architectures(config: &ModelConfig) -> &[String] {
    match config {
        ModelConfig::Bert(c) => &c.architectures,
        ModelConfig::DistilBert(c) => &c.architectures,
    }
}
