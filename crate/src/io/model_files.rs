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
use super::tensor_view::{DType, TensorView};
use crate::ops::matmul::{HalfWeight, WeightDtype};
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::safetensors::HeaderEntry;
use super::safetensors_file::SafeTensorsFile;
use super::weight_stream::StreamedWeights;

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
    /// Weight files not copied here, read tensor by tensor when the model loads: left on disk
    /// ([`ModelFiles::open_dir`]) or, in the browser, in JS memory ([`ModelFiles::insert_js`]).
    ranged: BTreeMap<String, RangedFile>,
}

/// Where a weight file read tensor by tensor is.
enum RangedFile {
    #[cfg(not(target_arch = "wasm32"))]
    OnDisk(std::path::PathBuf),
    #[cfg(target_arch = "wasm32")]
    InJs(js_sys::Uint8Array),
    /// Received as a stream, its tensors already in their final form or their own buffers.
    Streamed(StreamedWeights),
}

impl ModelFiles {
    pub fn new(source: impl Into<String>) -> Self {
        ModelFiles {
            source: source.into(),
            files: BTreeMap::new(),
            ranged: BTreeMap::new(),
        }
    }

    /// Reads the [`KNOWN_FILES`] that exist in `dir` (native only).
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::read_dir(dir.as_ref(), false)
    }

    /// Like [`ModelFiles::from_dir`], but `model.safetensors` stays on disk: the model's
    /// loader reads it tensor by tensor ([`ModelFiles::weight_source`]), so the whole file is
    /// never in memory next to the tensors made from it (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_dir(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::read_dir(dir.as_ref(), true)
    }

    /// The [`KNOWN_FILES`] of `dir`, read, or `model.safetensors` left on disk when
    /// `safetensors_on_disk`.
    fn read_dir(dir: &std::path::Path, safetensors_on_disk: bool) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::invalid(format!(
                "model directory {} does not exist",
                dir.display()
            )));
        }
        let mut files = ModelFiles::new(dir.display().to_string());
        for name in KNOWN_FILES {
            let path = dir.join(name);
            if !path.is_file() {
                continue;
            }
            #[cfg(not(target_arch = "wasm32"))]
            if safetensors_on_disk && name == "model.safetensors" {
                (files.ranged).insert(name.to_string(), RangedFile::OnDisk(path));
                continue;
            }
            files.insert(name, super::read_file(&path)?);
        }
        let _ = safetensors_on_disk; // read only natively
        Ok(files)
    }

    /// Adds (or replaces) a file, e.g. bytes fetched by the browser.
    pub fn insert(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        let name = name.into();
        self.ranged.remove(&name);
        self.files.insert(name, bytes);
    }

    /// Adds (or replaces) a `model.safetensors` the browser fetched without copying it into
    /// wasm memory: the model's loader reads it tensor by tensor out of the JS array
    /// ([`ModelFiles::weight_source`]), which must stay unchanged while these files are used.
    #[cfg(target_arch = "wasm32")]
    pub fn insert_js(&mut self, name: impl Into<String>, bytes: js_sys::Uint8Array) {
        let name = name.into();
        self.files.remove(&name);
        self.ranged.insert(name, RangedFile::InJs(bytes));
    }

    /// Adds (or replaces) a `model.safetensors` received as a stream
    /// ([`super::weight_stream::WeightStream`]): the model's loader takes its tensors by name.
    pub fn insert_streamed(&mut self, name: impl Into<String>, weights: StreamedWeights) {
        let name = name.into();
        self.files.remove(&name);
        self.ranged.insert(name, RangedFile::Streamed(weights));
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// The files' names, in memory or read tensor by tensor, in name order.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.files.keys().map(String::as_str).collect();
        names.extend(self.ranged.keys().map(String::as_str));
        names.sort_unstable();
        names
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

    /// The weights, for loading: the model.safetensors left on disk by
    /// [`ModelFiles::open_dir`] (read tensor by tensor), else [`ModelFiles::weights`].
    pub fn weight_source(&self) -> Result<WeightSource<'_>> {
        if !self.files.contains_key("model.safetensors") {
            match self.ranged.get("model.safetensors") {
                #[cfg(not(target_arch = "wasm32"))]
                Some(RangedFile::OnDisk(path)) => {
                    return Ok(WeightSource::Ranged(SafeTensorsFile::open(path)?));
                }
                #[cfg(target_arch = "wasm32")]
                Some(RangedFile::InJs(bytes)) => {
                    let what = format!("{}/model.safetensors", self.source);
                    let file = SafeTensorsFile::from_ranges(what, Box::new(bytes.clone()))?;
                    return Ok(WeightSource::Ranged(file));
                }
                Some(RangedFile::Streamed(weights)) => return Ok(WeightSource::Streamed(weights)),
                None => {}
            }
        }
        self.weights().map(WeightSource::InMemory)
    }

    /// The weights held in memory: model.safetensors if present, else pytorch_model.bin (a
    /// model.safetensors left on disk by [`ModelFiles::open_dir`] is not read here: see
    /// [`ModelFiles::weight_source`]).
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
        let tensors = self.tensors();
        find_by_name(tensors.iter().map(|t| t.name.as_str()), name).map(|i| &tensors[i])
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

/// Where the weights come from while a model loads: a parsed file in memory (the browser, the
/// tests, pytorch_model.bin) or a safetensors file read tensor by tensor from disk.
pub enum WeightSource<'a> {
    InMemory(WeightFile<'a>),
    /// Read tensor by tensor from disk or from JS memory.
    Ranged(SafeTensorsFile),
    /// Received as a stream: each tensor taken once, in its final form where it has one.
    Streamed(&'a StreamedWeights),
}

impl WeightSource<'_> {
    /// Whether the file holds a tensor of this name (any spelling, see [`WeightFile::find`]).
    pub fn has(&self, name: &str) -> bool {
        match self {
            WeightSource::InMemory(file) => file.find(name).is_some(),
            WeightSource::Ranged(file) => find_entry(file, name).is_some(),
            WeightSource::Streamed(weights) => find_index(&weights.entries, name).is_some(),
        }
    }

    /// The values of tensor `name` as f32, its shape checked as [`WeightFile::require`] does.
    pub fn read_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        match self {
            WeightSource::InMemory(file) => Ok(file.require(name, shape)?.to_f32()?.into_owned()),
            WeightSource::Ranged(file) => file.read_f32(require_entry(file, name, shape)?),
            WeightSource::Streamed(weights) => weights.take_f32(name, shape),
        }
    }

    /// Bytes of every float tensor of the file as f32 (4 a value): an upper bound of what
    /// loading it in f32 holds (a tensor the model does not read counts too).
    pub fn float_bytes_as_f32(&self) -> u64 {
        match self {
            WeightSource::InMemory(file) => (file.tensors().iter())
                .filter(|t| is_float(t.dtype))
                .map(|t| as_f32_bytes(t.dtype, t.data.len() as u64))
                .sum(),
            WeightSource::Ranged(file) => float_bytes_as_f32(&file.entries),
            WeightSource::Streamed(weights) => float_bytes_as_f32(&weights.entries),
        }
    }

    /// Bytes of the file's tensors held in memory while the model loads beside their final
    /// form (0 read tensor by tensor: from disk, or in the browser from JS memory; streamed:
    /// the tensors kept as stored, to be converted).
    pub fn bytes_in_memory(&self) -> u64 {
        match self {
            WeightSource::InMemory(file) => {
                (file.tensors().iter()).map(|t| t.data.len() as u64).sum()
            }
            WeightSource::Ranged(_) => 0,
            WeightSource::Streamed(weights) => weights.bytes_in_memory(),
        }
    }

    /// Tensor `name` as stored (borrowed from memory, or read from disk or JS memory), its shape
    /// checked.
    pub fn read_view(&self, name: &str, shape: &[usize]) -> Result<TensorView<'_>> {
        match self {
            WeightSource::InMemory(file) => {
                let view = file.require(name, shape)?;
                Ok(TensorView {
                    name: view.name.clone(),
                    dtype: view.dtype,
                    shape: view.shape.clone(),
                    data: std::borrow::Cow::Borrowed(&view.data[..]),
                })
            }
            WeightSource::Ranged(file) => file.read_view(require_entry(file, name, shape)?),
            WeightSource::Streamed(weights) => weights.take_view(name, shape),
        }
    }

    /// Tensor `name` when the stream already uploaded it to the GPU as f32, its shape checked;
    /// None for any other source or tensor (an error for a streamed tensor dropped as it held
    /// NaN or infinite values).
    pub fn take_uploaded(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        match self {
            WeightSource::Streamed(weights) => weights.take_uploaded(name, shape),
            _ => Ok(None),
        }
    }

    /// Matrix `name` when the stream already held it in `dtype` (converted as it completed),
    /// its shape checked; None for any other source, tensor or dtype.
    pub fn take_compressed(
        &self,
        name: &str,
        shape: &[usize],
        dtype: WeightDtype,
    ) -> Result<Option<HalfWeight>> {
        match self {
            WeightSource::Streamed(weights) => weights.take_compressed(name, shape, dtype),
            _ => Ok(None),
        }
    }
}

/// Bytes of the float tensors among a safetensors file's `entries` as f32 (4 a value).
pub fn float_bytes_as_f32(entries: &[HeaderEntry]) -> u64 {
    (entries.iter())
        .filter(|e| is_float(e.dtype))
        .map(|e| as_f32_bytes(e.dtype, e.end - e.begin))
        .sum()
}

fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::F64 | DType::F32 | DType::F16 | DType::BF16)
}

fn as_f32_bytes(dtype: DType, bytes: u64) -> u64 {
    bytes / dtype.size_in_bytes() as u64 * 4
}

fn find_entry<'f>(file: &'f SafeTensorsFile, name: &str) -> Option<&'f HeaderEntry> {
    find_index(&file.entries, name).map(|i| &file.entries[i])
}

fn require_entry<'f>(
    file: &'f SafeTensorsFile,
    name: &str,
    shape: &[usize],
) -> Result<&'f HeaderEntry> {
    require_index(&file.file, &file.entries, name, shape).map(|i| &file.entries[i])
}

pub(crate) fn find_index(entries: &[HeaderEntry], name: &str) -> Option<usize> {
    find_by_name(entries.iter().map(|e| e.name.as_str()), name)
}

/// The index of tensor `name` among the `entries` of `file` (any spelling), its shape checked
/// as [`WeightFile::require`] does.
pub(super) fn require_index(
    file: &str,
    entries: &[HeaderEntry],
    name: &str,
    shape: &[usize],
) -> Result<usize> {
    let index = find_index(entries, name).ok_or_else(|| {
        Error::format(
            file,
            format!("no tensor {name} (nor a gamma/beta or prefixed spelling)"),
        )
    })?;
    if entries[index].shape != shape {
        return Err(Error::shape(
            format!("{file}: tensor {}", entries[index].name),
            shape,
            &entries[index].shape,
        ));
    }
    Ok(index)
}

/// The index of the tensor called `name` among `names`: the exact name first, else the first
/// whose canonical spelling is `name`'s.
fn find_by_name<'n>(names: impl Iterator<Item = &'n str> + Clone, name: &str) -> Option<usize> {
    let wanted = canonical_name(name);
    names
        .clone()
        .position(|n| n == name)
        .or_else(|| names.into_iter().position(|n| canonical_name(n) == wanted))
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
