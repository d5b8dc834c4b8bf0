//! [`Pipeline`]: a loaded model, its tokenizer, and how the tasks read texts with it (window
//! length, what to do with long texts, batch size). Every task (`fill_mask`, `embed`,
//! `similarity`, `classify`, `classify_tokens`, `train_classifier`) is a method of it, in its own file.

use crate::device::Device;
use crate::io::ModelFiles;
use crate::models::{BertModel, EncoderInput, EncoderOutput, Family, RunMode};
use crate::ops::matmul::WeightDtype;
use crate::tensor::Tensor;
use crate::tokenizer::{Tokenizer, VocabOptions};
use crate::{Error, Result};

use super::classifier::ClassifierInput;
use super::problem::ProblemType;
use super::save::TOKENIZER_FILES;
use super::text_pairs::TaskText;
use super::windows::{encode_windows, length_sorted_batches, LongTexts, Window};

/// How texts are cut into what the model reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReadOptions {
    /// Tokens per window, special tokens included (at most the model's positions).
    pub max_length: usize,
    pub long_texts: LongTexts,
    /// Windows per forward pass.
    pub batch_size: usize,
}

pub struct Pipeline {
    pub model: BertModel,
    pub tokenizer: Tokenizer,
    pub read: ReadOptions,
    /// What the sequence classifier (when there is one) reads from the encoder.
    pub classifier_input: ClassifierInput,
    /// What the sequence classifier predicts (config.json `problem_type`, else one label is a
    /// regression): how `classify` turns its logits into scores.
    pub problem_type: ProblemType,
    /// Sentence-transformers model (the files have `modules.json`): mean pooling is its
    /// embedding, and a new classifier reads mean-pooled features by default.
    pub sentence_embedding_model: bool,
    /// The tokenizer files of the loaded model, carried into a saved directory.
    pub tokenizer_files: Vec<(String, Vec<u8>)>,
}

/// Windows of one forward pass, with what the poolers need.
pub(crate) struct EncodedBatch {
    /// Indices into the windows list, one per row.
    pub windows: Vec<usize>,
    pub input: EncoderInput,
    pub output: EncoderOutput,
}

impl Pipeline {
    /// The model of `files` on `device`, with its tokenizer (tokenizer.json, else vocab.txt
    /// with tokenizer_config.json's `do_lower_case`).
    pub fn load(files: &ModelFiles, device: &Device) -> Result<Pipeline> {
        Pipeline::load_as(files, device, WeightDtype::Fp32)
    }

    /// [`Pipeline::load`] with the encoder layers' weight matrices held in `dtype`
    /// ([`BertModel::load_as`]).
    pub fn load_as(files: &ModelFiles, device: &Device, dtype: WeightDtype) -> Result<Pipeline> {
        let tokenizer = load_tokenizer(files)?;
        let model = BertModel::load_as(files, device, dtype)?;
        let max_length = model.max_positions();
        let classifier_input = ClassifierInput::from_config(files)?;
        let problem_type = ProblemType::from_config(files, model.config.labels().num_labels)?;
        let sentence_embedding_model = files.get("modules.json").is_some();
        let mut tokenizer_files: Vec<(String, Vec<u8>)> = TOKENIZER_FILES
            .iter()
            .filter_map(|name| files.get(name).map(|b| (name.to_string(), b.to_vec())))
            .collect();
        if sentence_embedding_model {
            tokenizer_files.push((
                "modules.json".to_string(),
                files.get("modules.json").unwrap_or_default().to_vec(),
            ));
        }
        Ok(Pipeline {
            model,
            tokenizer,
            read: ReadOptions {
                max_length,
                long_texts: LongTexts::default_windows(max_length),
                batch_size: 32,
            },
            classifier_input,
            problem_type,
            sentence_embedding_model,
            tokenizer_files,
        })
    }

    /// Native only: a model directory (the files webnlu reads, plus sentence-transformers'
    /// `modules.json`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir(dir: impl AsRef<std::path::Path>, device: &Device) -> Result<Pipeline> {
        Pipeline::load_dir_as(dir, device, WeightDtype::Fp32)
    }

    /// Native only: [`Pipeline::load_dir`] with the encoder's weight matrices in `dtype`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_dir_as(
        dir: impl AsRef<std::path::Path>,
        device: &Device,
        dtype: WeightDtype,
    ) -> Result<Pipeline> {
        let dir = dir.as_ref();
        let mut files = ModelFiles::open_dir(dir)?;
        let modules = dir.join("modules.json");
        if modules.is_file() {
            files.insert("modules.json", crate::io::read_file(&modules)?);
        }
        Pipeline::load_as(&files, device, dtype)
    }

    pub fn device(&self) -> &Device {
        self.model.device()
    }

    pub fn hidden_size(&self) -> usize {
        self.model.hidden_size()
    }

    /// Sets the window length (checked against the model) and the long-text policy.
    pub fn set_read_options(&mut self, read: ReadOptions) -> Result<()> {
        let positions = self.model.max_positions();
        if read.max_length < 3 || read.max_length > positions {
            return Err(Error::invalid(format!(
                "max length {} must be between 3 and the model's {positions} positions",
                read.max_length
            )));
        }
        if read.batch_size == 0 {
            return Err(Error::invalid("batch size must be at least 1"));
        }
        if let LongTexts::Windows { stride } = read.long_texts {
            if stride + 2 >= read.max_length {
                return Err(Error::invalid(format!(
                    "stride {stride} must be smaller than the max length {} minus the 2 special tokens",
                    read.max_length
                )));
            }
        }
        self.read = read;
        Ok(())
    }

    /// The windows of `items` (texts or pairs) under the read options (an error for no items,
    /// or for a pair the model cannot read): what every task reads, for any task to reuse.
    pub fn windows<S: TaskText>(&self, items: &[S]) -> Result<Vec<Window>> {
        if items.is_empty() {
            return Err(Error::invalid("no texts given"));
        }
        self.check_pairs(items)?;
        encode_windows(
            &self.tokenizer,
            items,
            self.read.max_length,
            self.read.long_texts,
        )
    }

    /// Whether the model can read the pairs among `items`: the second text of a pair has token
    /// type 1, so a BERT needs at least 2 token types. DistilBERT has no token types at all and
    /// reads a pair as transformers does, the texts joined by `[SEP]` (see [`Self::pair_note`]).
    pub fn check_pairs<S: TaskText>(&self, items: &[S]) -> Result<()> {
        match items.iter().position(|item| item.pair().is_some()) {
            Some(index) => self.check_pair(index),
            None => Ok(()),
        }
    }

    /// [`Self::check_pairs`] for item `index`, a pair.
    pub fn check_pair(&self, index: usize) -> Result<()> {
        // (TV, C) the token-type embeddings: TV types
        let types = self
            .model
            .embeddings
            .token_type
            .as_ref()
            .map_or(0, |t| t.shape()[0]);
        if self.model.family == Family::Bert && types < 2 {
            return Err(Error::invalid(format!(
                "item {index} is a pair of texts, but the model has type_vocab_size {types}: the \
                 second text of a pair is read with token type 1, which it has no embedding for"
            )));
        }
        Ok(())
    }

    /// How this model reads a pair, when it is not what BERT does: DistilBERT has no token-type
    /// embeddings, so the two texts are only told apart by the `[SEP]` between them (as in
    /// transformers, whose DistilBERT tokenizer gives no `token_type_ids`).
    pub fn pair_note(&self) -> Option<String> {
        match self.model.family {
            Family::Bert => None,
            Family::DistilBert => Some(
                "DistilBERT has no token type embeddings: a pair is read as [CLS] a [SEP] b [SEP] \
                 with no type ids, the texts told apart by [SEP] only (as transformers does)"
                    .to_string(),
            ),
        }
    }

    /// Runs the encoder over the windows in length-sorted batches; `each` gets every batch.
    pub(crate) async fn encode_windows_in_batches<F>(
        &self,
        windows: &[Window],
        mode: &RunMode,
        mut each: F,
    ) -> Result<()>
    where
        F: FnMut(&EncodedBatch) -> Result<()>,
    {
        for rows in length_sorted_batches(windows, self.read.batch_size)? {
            let encodings: Vec<_> = rows.iter().map(|&w| windows[w].encoding.clone()).collect();
            let input = EncoderInput::from_encodings(self.device(), &encodings)?;
            let output = self.model.encode(&input, mode)?;
            each(&EncodedBatch {
                windows: rows,
                input,
                output,
            })?;
        }
        Ok(())
    }
}

/// (B, T) attention mask as a u32 tensor on `device` (1 = token), for the pooling ops.
pub(crate) fn mask_tensor(device: &Device, input: &EncoderInput) -> Result<Tensor<u32>> {
    let mask = input.attention_mask.iter().map(|&m| m as u32).collect();
    Tensor::from_vec(device, &[input.batch, input.seq], mask, "attention_mask")
}

fn load_tokenizer(files: &ModelFiles) -> Result<Tokenizer> {
    if let Some(bytes) = files.get("tokenizer.json") {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::format(format!("{}/tokenizer.json", files.source), "not UTF-8"))?;
        return Tokenizer::from_tokenizer_json(text);
    }
    if let Some(bytes) = files.get("vocab.txt") {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::format(format!("{}/vocab.txt", files.source), "not UTF-8"))?;
        let mut options = VocabOptions::default();
        if let Some(config) = files.get("tokenizer_config.json") {
            let value: serde_json::Value = serde_json::from_slice(config).map_err(|e| {
                Error::format(
                    format!("{}/tokenizer_config.json", files.source),
                    e.to_string(),
                )
            })?;
            if let Some(lower) = value.get("do_lower_case").and_then(|v| v.as_bool()) {
                options.lowercase = lower;
            }
        }
        return Tokenizer::from_vocab_str(text, &options);
    }
    Err(Error::invalid(format!(
        "{}: no tokenizer.json or vocab.txt (files present: {:?})",
        files.source,
        files.names()
    )))
}
