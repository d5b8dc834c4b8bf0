//! The unit of loading: the files of one model (config.json, weights, vocabulary), read from a
//! directory natively or handed over in memory by the browser. Picks the weight format that is
//! there (model.safetensors first, else pytorch_model.bin) and finds tensors by their Hugging Face
//! names whatever the checkpoint's spelling: with or without the `bert.` / `distilbert.` prefix,
//! and with the old LayerNorm names `gamma` / `beta` for `weight` / `bias` (as transformers'
//! `_fix_key` in `modeling_utils.py` renames them).

use std::collections::BTreeMap;

use super::config::ModelConfig;
use super::pytorch::PytorchFile;
use super::safetensors::SafeTensors;
use super::tensor_view::TensorView;
use crate::{Error, Result};

/// The file names a model directory may hold that webnlu reads.
pub const KNOWN_FILES: [&str; 7] = [
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// Named files of one model, in memory.
pub struct ModelFiles {
    /// Where they came from (a directory, a Hub id), for error messages.
    pub source: String,
    files: BTreeMap<String, Vec<u8>>,
}

impl ModelFiles {
    pub fn new(source: impl Into<String>) -> Self {
        ModelFiles {
            source: source.into(),
            files: BTreeMap::new(),
        }
    }

    /// Reads the [`KNOWN_FILES`] that exist in `dir` (native only).
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::invalid(format!(
                "model directory {} does not exist",
                dir.display()
            )));
        }
        let mut files = ModelFiles::new(dir.display().to_string());
        for name in KNOWN_FILES {
            let path = dir.join(name);
            if path.is_file() {
                files.insert(name, super::read_file(&path)?);
            }
        }
        Ok(files)
    }

    /// Adds (or replaces) a file, e.g. bytes fetched by the browser.
    pub fn insert(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.files.insert(name.into(), bytes);
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    pub fn names(&self) -> Vec<&str> {
        self.files.keys().map(String::as_str).collect()
    }

    fn missing(&self, what: &str) -> Error {
        Error::invalid(format!(
            "{}: no {what} (files present: {:?})",
            self.source,
            self.names()
        ))
    }

    pub fn config(&self) -> Result<ModelConfig> {
        let bytes = self
            .get("config.json")
            .ok_or_else(|| self.missing("config.json"))?;
        let what = format!("{}/config.json", self.source);
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::format(&what, "config.json is not UTF-8"))?;
        ModelConfig::from_json(&what, text)
    }

    /// The weights: model.safetensors if present, else pytorch_model.bin.
    pub fn weights(&self) -> Result<WeightFile<'_>> {
        if let Some(bytes) = self.get("model.safetensors") {
            let what = format!("{}/model.safetensors", self.source);
            return Ok(WeightFile::SafeTensors(SafeTensors::parse(&what, bytes)?));
        }
        if let Some(bytes) = self.get("pytorch_model.bin") {
            let what = format!("{}/pytorch_model.bin", self.source);
            return Ok(WeightFile::Pytorch(PytorchFile::parse(&what, bytes)?));
        }
        Err(self.missing("model.safetensors or pytorch_model.bin"))
    }
}

/// A parsed weight file of either format.
pub enum WeightFile<'a> {
    SafeTensors(SafeTensors<'a>),
    Pytorch(PytorchFile<'a>),
}

impl<'a> WeightFile<'a> {
    pub fn file(&self) -> &str {
        match self {
            WeightFile::SafeTensors(f) => &f.file,
            WeightFile::Pytorch(f) => &f.file,
        }
    }

    pub fn tensors(&self) -> &[TensorView<'a>] {
        match self {
            WeightFile::SafeTensors(f) => &f.tensors,
            WeightFile::Pytorch(f) => &f.tensors,
        }
    }

    /// The tensor with this Hugging Face name (written without a model prefix, e.g.
    /// `encoder.layer.0.attention.self.query.weight`, or with it), whatever the file's spelling.
    pub fn find(&self, name: &str) -> Option<&TensorView<'a>> {
        let wanted = canonical_name(name);
        let tensors = self.tensors();
        tensors
            .iter()
            .find(|t| t.name == name)
            .or_else(|| tensors.iter().find(|t| canonical_name(&t.name) == wanted))
    }

    /// Like [`find`](Self::find), and checks the shape: errors name the file, the tensor and
    /// the expected and found shapes.
    pub fn require(&self, name: &str, shape: &[usize]) -> Result<&TensorView<'a>> {
        let tensor = self.find(name).ok_or_else(|| {
            Error::format(
                self.file(),
                format!("no tensor {name} (nor a gamma/beta or prefixed spelling)"),
            )
        })?;
        if tensor.shape != shape {
            return Err(Error::shape(
                format!("{}: tensor {}", self.file(), tensor.name),
                shape,
                &tensor.shape,
            ));
        }
        Ok(tensor)
    }
}

/// `bert.embeddings.LayerNorm.gamma` -> `embeddings.LayerNorm.weight`.
fn canonical_name(name: &str) -> String {
    let name = name
        .strip_prefix("bert.")
        .or_else(|| name.strip_prefix("distilbert."))
        .unwrap_or(name);
    if let Some(stem) = name.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = name.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        name.to_string()
    }
}
