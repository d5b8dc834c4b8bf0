//! wasm exports of the BERT tasks: `WasmRuntime` (the device),
//! `WasmModel` (a loaded [`Pipeline`]: fill-mask, embed, similarity, classify, classify-tokens,
//! next-sentence, inspect, word vectors, save, a trainer of a sequence classifier, of a token
//! classifier or of the masked-LM head; the tasks that take texts take pairs `{text, pair}` too)
//! and `WasmTrainer` (one epoch per call, or a few optimizer steps of a sequence classifier's
//! epoch: `run_steps`, so JavaScript drives the loop, shows progress and can stop). Only conversions live here; `web/lib/` wraps them into the documented API.
//!
//! Conversions: results that are records go out as plain JS objects (via JSON), embeddings and
//! similarity matrices as `Float32Array`, saved files as a `Map<string, Uint8Array>`.
//! Calls: `WasmModel.load` is synchronous (weights are uploaded
//! without read-backs; `await` on it still works), `save()` returns a Promise (GPU tensors are
//! read back), and `trainer()` returns at once: the first `run_epoch()` tokenizes and, for
//! head-only training, encodes every example once. One call at a time per model: a second
//! call while one runs is refused with an error saying the model is busy.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Float32Array, Map, Promise, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::inspect::{WasmInspection, WasmWordVectors};
use super::to_js_error;
use crate::device::{DeviceChoice, GpuOptions};
use crate::io::ModelFiles;
use crate::models::Freeze;
use crate::tasks::{
    head_features, parse_word_examples, ClassifierInput, ClassifierTraining, EpochProgress,
    Example, InspectOptions, LayerSelection, LongTexts, MaskedLmEpochProgress, MaskedLmTraining,
    NextSentence, Pipeline, Pooling, ProblemType, StepsProgress, TextPair, TokenClassifierTraining,
    TokenEpochProgress, TokenLabel, TrainOptions, WordExample, WordExampleFormat,
};
use crate::tokenizer::char_offsets_to_utf16;
use crate::train::entities::{EntityScore, EntityScores};
use crate::{Device, Error};

/// A Rust value as a plain JS value (through JSON: records, arrays, numbers, strings).
pub(super) fn to_js<T: serde::Serialize>(value: &T) -> Result<JsValue, JsValue> {
    let text =
        serde_json::to_string(value).map_err(|e| JsValue::from(JsError::new(&e.to_string())))?;
    js_sys::JSON::parse(&text)
}

/// A JS value read as `T` (through JSON.stringify).
pub(super) fn from_js<T: serde::de::DeserializeOwned>(
    value: &JsValue,
    what: &str,
) -> Result<T, JsError> {
    let text: String = js_sys::JSON::stringify(value)
        .map_err(|_| JsError::new(&format!("{what}: not serialisable to JSON")))?
        .into();
    serde_json::from_str(&text).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

fn js_error(error: Error) -> JsValue {
    to_js_error(error).into()
}

/// The device tasks run on, and why it was chosen.
#[wasm_bindgen]
pub struct WasmRuntime {
    pub(super) device: Device,
    reason: String,
}

#[wasm_bindgen]
impl WasmRuntime {
    /// Opens "auto" (the GPU unless WebGPU is missing or a software fallback), "gpu" or "cpu".
    /// The package's `device: 'auto'` decides in JavaScript instead, by calibration
    /// (`web/lib/device-choice.js`), and opens "gpu" or "cpu" here.
    pub async fn create(device: String) -> Result<WasmRuntime, JsError> {
        let choice: DeviceChoice = device.parse().map_err(to_js_error)?;
        let opened = Device::new(choice, &GpuOptions::default())
            .await
            .map_err(to_js_error)?;
        let reason = match (choice, &opened) {
            (DeviceChoice::Cpu, _) => "the CPU was asked for".to_string(),
            (DeviceChoice::Gpu, _) => "the GPU was asked for".to_string(),
            (DeviceChoice::Auto, Device::Gpu(_)) => "a hardware WebGPU adapter".to_string(),
            (DeviceChoice::Auto, Device::Cpu) => "no hardware WebGPU adapter (none, or a \
                software fallback such as SwiftShader, where the CPU kernels are faster)"
                .to_string(),
        };
        Ok(WasmRuntime {
            device: opened,
            reason,
        })
    }

    /// `Promise<number>`: runs the calibration workload of `device: 'auto'` `repeats` times on
    /// this runtime's device (see `calibration.rs`); JavaScript times the promise.
    pub fn run_calibration_workload(&self, repeats: usize) -> Promise {
        let device = self.device.clone();
        future_to_promise(async move {
            let checksum = super::calibration::run_calibration_workload(&device, repeats)
                .await
                .map_err(js_error)?;
            Ok(JsValue::from_f64(checksum))
        })
    }

    /// `{kind: "gpu" | "cpu", adapter: string | null, reason: string}`.
    pub fn device_info(&self) -> Result<JsValue, JsValue> {
        let adapter = match &self.device {
            Device::Gpu(ctx) => Some(ctx.info().name.clone()),
            Device::Cpu => None,
        };
        to_js(&serde_json::json!({
            "kind": self.device.kind(),
            "adapter": adapter,
            "reason": self.reason,
        }))
    }
}

type SharedPipeline = Rc<RefCell<Option<Pipeline>>>;

/// The pipeline taken out of its cell for one call, put back when dropped (also on errors).
struct Lease {
    cell: SharedPipeline,
    pipeline: Option<Pipeline>,
}

impl Lease {
    fn take(cell: &SharedPipeline) -> Result<Lease, JsValue> {
        let pipeline = cell.borrow_mut().take().ok_or_else(|| {
            JsValue::from(JsError::new(
                "the model is busy with another call (await it first) or was freed",
            ))
        })?;
        Ok(Lease {
            cell: cell.clone(),
            pipeline: Some(pipeline),
        })
    }

    fn pipeline(&mut self) -> &mut Pipeline {
        self.pipeline.as_mut().expect("present until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *self.cell.borrow_mut() = self.pipeline.take();
    }
}

/// One item of a task: a string (a text), or `{text, pair}` (a pair when `pair` is a string;
/// `runtime.js` turns `[text, pair]` tuples into this).
fn item(value: &JsValue, what: &str) -> Result<TextPair, JsError> {
    if let Some(text) = value.as_string() {
        return Ok(TextPair::single(text));
    }
    if !value.is_object() || Array::is_array(value) {
        return Err(JsError::new(&format!(
            "{what} is not a string or a {{ text, pair }} object"
        )));
    }
    let field = |name: &str| js_sys::Reflect::get(value, &JsValue::from_str(name));
    let text = field("text")
        .ok()
        .and_then(|t| t.as_string())
        .ok_or_else(|| JsError::new(&format!("{what}.text is not a string")))?;
    let pair = match field("pair") {
        Ok(p) if p.is_undefined() || p.is_null() => None,
        Ok(p) => Some(
            p.as_string()
                .ok_or_else(|| JsError::new(&format!("{what}.pair is not a string")))?,
        ),
        Err(_) => None,
    };
    Ok(TextPair { text, pair })
}

fn items(values: &Array, what: &str) -> Result<Vec<TextPair>, JsError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| item(&v, &format!("{what}[{i}]")))
        .collect()
}

fn strings(texts: &Array, what: &str) -> Result<Vec<String>, JsError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.as_string()
                .ok_or_else(|| JsError::new(&format!("{what}[{i}] is not a string")))
        })
        .collect()
}

/// Runs `task` on the pipeline with long texts and pairs cut (`LongTexts::Truncate`: a text's
/// first window, a pair cut `longest_first`) when `truncate`, else read as the pipeline reads
/// them (windows; a long pair refused); the read options are restored afterwards.
async fn with_truncation<T, F>(pipeline: &mut Pipeline, truncate: bool, task: F) -> crate::Result<T>
where
    F: AsyncFnOnce(&Pipeline) -> crate::Result<T>,
{
    let read = pipeline.read;
    if truncate {
        pipeline.read.long_texts = LongTexts::Truncate;
    }
    let result = task(pipeline).await;
    pipeline.read = read;
    result
}

/// A loaded BERT / DistilBERT model with its tokenizer.
#[wasm_bindgen]
pub struct WasmModel {
    pipeline: SharedPipeline,
    hidden_size: usize,
}

#[wasm_bindgen]
impl WasmModel {
    /// Loads a model from its files (`config.json`, `model.safetensors` or `pytorch_model.bin`,
    /// `tokenizer.json` or `vocab.txt`, optional `tokenizer_config.json`, `modules.json`).
    pub fn load(runtime: &WasmRuntime, files: &Map) -> Result<WasmModel, JsError> {
        let mut model_files = ModelFiles::new("model files");
        let mut error = None;
        files.for_each(
            &mut |value, key| match (key.as_string(), value.dyn_into::<Uint8Array>()) {
                (Some(name), Ok(bytes)) => model_files.insert(name, bytes.to_vec()),
                (name, _) => {
                    error.get_or_insert(format!("file {name:?}: expected a Uint8Array"));
                }
            },
        );
        if let Some(error) = error {
            return Err(JsError::new(&error));
        }
        let pipeline = Pipeline::load(&model_files, &runtime.device).map_err(to_js_error)?;
        let hidden_size = pipeline.hidden_size();
        Ok(WasmModel {
            pipeline: Rc::new(RefCell::new(Some(pipeline))),
            hidden_size,
        })
    }

    #[wasm_bindgen(getter)]
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// `Promise<Array<Array<{token, id, score}>>>`: the top-k tokens of every [MASK] of `text`
    /// (a string, or `{text, pair}`: the masks of both texts, the first text's first).
    pub fn fill_mask(&self, text: JsValue, top_k: usize) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let text = item(&text, "text")?;
            let mut lease = Lease::take(&cell)?;
            let masks = lease
                .pipeline()
                .fill_mask(&text, top_k)
                .await
                .map_err(js_error)?;
            to_js(&masks)
        })
    }

    /// `Promise<Float32Array>`: `texts.length * hidden_size` values, row-major.
    pub fn embed(&self, texts: Array, pooling: String, normalize: bool) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let texts = strings(&texts, "texts")?;
            let pooling: Pooling = pooling.parse().map_err(js_error)?;
            let mut lease = Lease::take(&cell)?;
            let values = lease
                .pipeline()
                .embed(&texts, pooling, normalize)
                .await
                .map_err(js_error)?;
            Ok(Float32Array::from(values.as_slice()).into())
        })
    }

    /// `Promise<Float32Array>`: cosine similarities `a.length * b.length`, row-major.
    pub fn similarity(&self, a: Array, b: Array) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let a = strings(&a, "a")?;
            let b = strings(&b, "b")?;
            let mut lease = Lease::take(&cell)?;
            let values = lease
                .pipeline()
                .similarity(&a, &b)
                .await
                .map_err(js_error)?;
            Ok(Float32Array::from(values.as_slice()).into())
        })
    }

    /// `Promise<Array<{label, score, scores}>>`; `texts`: strings or `{text, pair}` pairs;
    /// `truncate`: cut long texts and pairs instead of windows / an error.
    pub fn classify(&self, texts: Array, truncate: bool) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let texts = items(&texts, "texts")?;
            let mut lease = Lease::take(&cell)?;
            let results = with_truncation(lease.pipeline(), truncate, async |p| {
                p.classify(&texts).await
            })
            .await
            .map_err(js_error)?;
            to_js(&results)
        })
    }

    /// `Promise<Array<Array<{token, start, end, label, score}>>>`: per text, every WordPiece
    /// token with its most likely label and that label's probability (see
    /// [`Pipeline::classify_tokens`]). `start`/`end` are UTF-16 code units of the text (what
    /// `String.prototype.slice` takes), converted from the pipeline's code-point offsets. For a
    /// `{text, pair}` item each token has `sequence` (0 or 1), its offsets in that text.
    /// `truncate`: cut long texts and pairs instead of windows / an error.
    pub fn classify_tokens(&self, texts: Array, truncate: bool) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let texts = items(&texts, "texts")?;
            let mut lease = Lease::take(&cell)?;
            let mut results = with_truncation(lease.pipeline(), truncate, async |p| {
                p.classify_tokens(&texts).await
            })
            .await
            .map_err(js_error)?;
            for (tokens, item) in results.iter_mut().zip(&texts) {
                // each sequence's tokens converted against its own text
                for (sequence, text) in [(0, Some(item.text.as_str())), (1, item.pair.as_deref())] {
                    let Some(text) = text else { continue };
                    let of_text = |t: &TokenLabel| t.sequence.unwrap_or(0) == sequence;
                    let offsets: Vec<(usize, usize)> = tokens
                        .iter()
                        .filter(|t| of_text(t))
                        .map(|t| (t.start, t.end))
                        .collect();
                    let converted = char_offsets_to_utf16(text, &offsets);
                    for (token, (start, end)) in
                        tokens.iter_mut().filter(|t| of_text(t)).zip(converted)
                    {
                        token.start = start;
                        token.end = end;
                    }
                }
            }
            to_js(&results)
        })
    }

    /// `Promise<Array<{isNext, scores, logits}>>`: for each pair (`{text, pair}`), the
    /// probability that `pair` follows `text`, `[p_is_next, p_not_next]` and the head's logits
    /// (a checkpoint with the next-sentence head, see [`Pipeline::next_sentence`]).
    /// `truncate`: cut a long pair (`longest_first`) instead of an error.
    pub fn next_sentence(&self, pairs: Array, truncate: bool) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let pairs = items(&pairs, "pairs")?;
            let mut lease = Lease::take(&cell)?;
            let results = with_truncation(lease.pipeline(), truncate, async |p| {
                p.next_sentence(&pairs).await
            })
            .await
            .map_err(js_error)?;
            let results: Vec<JsNextSentence> = results.into_iter().map(Into::into).collect();
            to_js(&results)
        })
    }

    /// `Promise<WasmInspection>`: tokens, hidden states and (with `attentions`) attention
    /// probabilities of `text` or of the pair (`text`, `pair`); `layers`: indices into the
    /// L + 1 hidden states (undefined = all). See [`Pipeline::inspect`].
    pub fn inspect(
        &self,
        text: String,
        pair: Option<String>,
        attentions: bool,
        layers: Option<Vec<u32>>,
    ) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let options = InspectOptions {
                layers: match layers {
                    None => LayerSelection::All,
                    Some(indices) => {
                        LayerSelection::Only(indices.into_iter().map(|i| i as usize).collect())
                    }
                },
                attentions,
            };
            let mut lease = Lease::take(&cell)?;
            let inspection = lease
                .pipeline()
                .inspect(&text, pair.as_deref(), &options)
                .await
                .map_err(js_error)?;
            Ok(WasmInspection::new(inspection, &text, pair.as_deref()).into())
        })
    }

    /// `Promise<WasmWordVectors>`: one vector per word of `text`, the mean of its WordPiece
    /// vectors at hidden state `layer` (undefined = the last). See [`Pipeline::word_vectors`].
    pub fn word_vectors(&self, text: String, layer: Option<u32>) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let mut lease = Lease::take(&cell)?;
            let result = lease
                .pipeline()
                .word_vectors(&text, layer.map(|l| l as usize))
                .await
                .map_err(js_error)?;
            Ok(WasmWordVectors::new(result, &text).into())
        })
    }

    /// A training run over `examples` (`[{text, pair?, label}]`, label a string or number, or for
    /// multi-label an array of strings) with `options` `{freeze: "head" | "top:K" | "all",
    /// epochs, learningRate, batchSize, validation?: fraction held out (default 0.1), seed?,
    /// pooling?: "cls" | "mean", accumulation?, weightDecay?, warmupRatio?, maxGradNorm?:
    /// number | null, truncate?: boolean, task?: "classification" | "regression" |
    /// "multi_label"}`. A long example is read in windows whose logits are averaged (as
    /// `classify` reads it) unless `truncate` is true (its first window only).
    pub fn trainer(&self, examples: JsValue, options: JsValue) -> Result<WasmTrainer, JsError> {
        let raw: Vec<RawExample> = from_js(&examples, "examples")?;
        let examples: Vec<Example> = raw
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                Ok(Example {
                    text: e.text,
                    pair: e.pair,
                    label: match e.label {
                        serde_json::Value::String(s) => s,
                        // multi-label: the labels joined by commas (problem.rs splits them)
                        serde_json::Value::Array(items) => items
                            .iter()
                            .map(|item| match item.as_str() {
                                Some(l) if !l.contains(',') => Ok(l.to_string()),
                                _ => Err(JsError::new(&format!(
                                    "examples[{i}].label: a list of labels holds strings without commas, found {item}"
                                ))),
                            })
                            .collect::<Result<Vec<String>, JsError>>()?
                            .join(","),
                        other => other.to_string(),
                    },
                })
            })
            .collect::<Result<_, JsError>>()?;
        let raw: RawTrainOptions = from_js(&options, "options")?;
        let options = raw.into_options().map_err(to_js_error)?;
        Ok(WasmTrainer {
            pipeline: self.pipeline.clone(),
            state: Rc::new(RefCell::new(TrainerState::PendingSequence {
                examples,
                options,
                features: None,
            })),
        })
    }

    /// A token-classification training run (see `tasks/train_tokens.rs`) over `examples`:
    /// `[{words: string[], labels: string[]}]`, or one string of CoNLL columns (word first,
    /// label last, a blank line between sentences) or of JSON lines of such objects. `options`
    /// as `trainer`'s, without `pooling` and `truncate` (refused: examples are cut to the max
    /// length). Each epoch reports the held-out entity-level scores too.
    pub fn token_trainer(
        &self,
        examples: JsValue,
        options: JsValue,
    ) -> Result<WasmTrainer, JsError> {
        let examples: Vec<WordExample> = match examples.as_string() {
            Some(text) => parse_word_examples(&text, WordExampleFormat::Auto, "examples")
                .map_err(to_js_error)?,
            None => from_js(&examples, "examples")?,
        };
        let raw: RawTrainOptions = from_js(&options, "options")?;
        let options = raw.into_options().map_err(to_js_error)?;
        Ok(WasmTrainer {
            pipeline: self.pipeline.clone(),
            state: Rc::new(RefCell::new(TrainerState::PendingTokens {
                examples,
                options,
            })),
        })
    }

    /// A masked-LM fine-tuning run (see `tasks/train_masked_lm.rs`) on `texts` (strings) with
    /// `options` as `trainer`'s (without `pooling`, `truncate`, `task`) and `mlmProbability`
    /// (the share of tokens chosen, default 0.15). The model needs its masked-LM head. Each
    /// epoch reports the held-out loss and perplexity.
    pub fn mlm_trainer(&self, texts: Array, options: JsValue) -> Result<WasmTrainer, JsError> {
        let texts = strings(&texts, "texts")?;
        let raw: RawTrainOptions = from_js(&options, "options")?;
        let probability = raw.mlm_probability.unwrap_or(0.15);
        let options = raw.into_options().map_err(to_js_error)?;
        Ok(WasmTrainer {
            pipeline: self.pipeline.clone(),
            state: Rc::new(RefCell::new(TrainerState::PendingMaskedLm {
                texts,
                options,
                probability,
            })),
        })
    }

    /// `Promise<Float32Array>`: the cached features head-only training with `options` (those
    /// of `trainer`) computes for examples with these `texts` (strings or `{text, pair}`), `(windows, hidden_size)`
    /// row-major in example order. The browser's worker pool splits this pass among its
    /// workers and gives the joined rows to `WasmTrainer.set_features`.
    pub fn head_features(&self, texts: Array, options: JsValue) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let texts = items(&texts, "texts")?;
            let raw: RawTrainOptions = from_js(&options, "options")?;
            let options = raw.into_options().map_err(js_error)?;
            let lease = Lease::take(&cell)?;
            let pipeline = lease.pipeline.as_ref().expect("present until dropped");
            let rows = head_features(pipeline, &texts, &options)
                .await
                .map_err(js_error)?;
            Ok(Float32Array::from(rows.as_slice()).into())
        })
    }

    /// `Promise<Map<string, Uint8Array>>`: config.json, model.safetensors and the tokenizer
    /// files, loadable by `WasmModel.load` and by transformers.
    pub fn save(&self) -> Promise {
        let cell = self.pipeline.clone();
        future_to_promise(async move {
            let mut lease = Lease::take(&cell)?;
            let files = lease.pipeline().save().await.map_err(js_error)?;
            let map = Map::new();
            for (name, bytes) in files {
                map.set(&name.into(), &Uint8Array::from(bytes.as_slice()).into());
            }
            Ok(map.into())
        })
    }
}

#[derive(Deserialize)]
struct RawExample {
    text: String,
    #[serde(default)]
    pair: Option<String>,
    label: serde_json::Value,
}

/// [`NextSentence`] with JavaScript's names.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsNextSentence {
    is_next: f32,
    scores: Vec<f32>,
    logits: Vec<f32>,
}

impl From<NextSentence> for JsNextSentence {
    fn from(n: NextSentence) -> Self {
        JsNextSentence {
            is_next: n.is_next,
            scores: n.scores,
            logits: n.logits,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrainOptions {
    freeze: Option<String>,
    epochs: Option<usize>,
    learning_rate: Option<f32>,
    batch_size: Option<usize>,
    validation: Option<f32>,
    seed: Option<u64>,
    pooling: Option<String>,
    accumulation: Option<usize>,
    weight_decay: Option<f32>,
    warmup_ratio: Option<f32>,
    #[serde(default, with = "serde_with_null")]
    max_grad_norm: Option<Option<f32>>,
    truncate: Option<bool>,
    task: Option<String>,
    /// `mlm_trainer` only: the share of tokens chosen
    mlm_probability: Option<f32>,
}

/// `maxGradNorm`: absent = the default, null = no clipping, a number = that norm.
mod serde_with_null {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<f32>>, D::Error> {
        Ok(Some(Option::<f32>::deserialize(d)?))
    }
}

impl RawTrainOptions {
    fn into_options(self) -> crate::Result<TrainOptions> {
        let d = TrainOptions::default();
        // `mlm_probability` is read by `mlm_trainer` before this
        Ok(TrainOptions {
            freeze: self
                .freeze
                .as_deref()
                .map_or(Ok(d.freeze), str::parse::<Freeze>)?,
            epochs: self.epochs.unwrap_or(d.epochs),
            learning_rate: self.learning_rate.unwrap_or(d.learning_rate),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            accumulation_steps: self.accumulation.unwrap_or(d.accumulation_steps),
            validation_fraction: self.validation.unwrap_or(d.validation_fraction),
            seed: self.seed.unwrap_or(d.seed),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            warmup_ratio: self.warmup_ratio.unwrap_or(d.warmup_ratio),
            max_grad_norm: self.max_grad_norm.unwrap_or(d.max_grad_norm),
            classifier_input: self
                .pooling
                .as_deref()
                .map(str::parse::<ClassifierInput>)
                .transpose()?,
            long_texts: match self.truncate {
                Some(true) => Some(crate::tasks::LongTexts::Truncate),
                _ => d.long_texts,
            },
            problem: self
                .task
                .as_deref()
                .map_or(Ok(d.problem), str::parse::<ProblemType>)?,
        })
    }
}

enum TrainerState {
    PendingSequence {
        examples: Vec<Example>,
        options: TrainOptions,
        /// head-only: the features computed elsewhere (`set_features`), else computed here
        features: Option<Vec<f32>>,
    },
    PendingTokens {
        examples: Vec<WordExample>,
        options: TrainOptions,
    },
    PendingMaskedLm {
        texts: Vec<String>,
        options: TrainOptions,
        probability: f32,
    },
    Sequence(Box<ClassifierTraining>),
    Tokens(Box<TokenClassifierTraining>),
    MaskedLm(Box<MaskedLmTraining>),
    Finished,
}

/// A training run: JavaScript calls `run_epoch()` (or `run_steps(n)`) until it has the epochs it wants.
#[wasm_bindgen]
pub struct WasmTrainer {
    pipeline: SharedPipeline,
    state: Rc<RefCell<TrainerState>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsEpoch {
    epoch: usize,
    loss: f32,
    accuracy: Option<f32>,
    validation_accuracy: Option<f32>,
    validation_mae: Option<f32>,
    validation_pearson: Option<f32>,
    /// What the run costs, as the engine allocated it (the run's report).
    costs: JsTrainingCosts,
}

/// The parameter values a run trains and the bytes it holds for that: AdamW's state
/// (`optimizer_state_bytes`: its two moments per trained value) and, head-only, the cached
/// encoder features.
#[derive(serde::Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct JsTrainingCosts {
    trained_parameters: usize,
    optimizer_state_bytes: u64,
    feature_cache_bytes: u64,
}

impl JsTrainingCosts {
    fn new(
        trained_parameters: usize,
        optimizer_state_bytes: u64,
        feature_cache_bytes: u64,
    ) -> Self {
        JsTrainingCosts {
            trained_parameters,
            optimizer_state_bytes,
            feature_cache_bytes,
        }
    }
}

/// A token-classification epoch: `JsEpoch`'s fields (accuracy of the words) and the held-out
/// entity-level scores.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsTokenEpoch {
    epoch: usize,
    loss: f32,
    accuracy: f32,
    validation_accuracy: Option<f32>,
    validation_entities: Option<JsEntityScores>,
    /// What the run costs, as the engine allocated it (the run's report).
    costs: JsTrainingCosts,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsEntityScores {
    overall: EntityScore,
    per_type: std::collections::BTreeMap<String, EntityScore>,
}

/// A masked-LM epoch: the training loss and the held-out loss and perplexity.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsMaskedLmEpoch {
    epoch: usize,
    loss: f32,
    validation_loss: Option<f32>,
    validation_perplexity: Option<f32>,
    /// What the run costs, as the engine allocated it (the run's report).
    costs: JsTrainingCosts,
}

impl From<MaskedLmEpochProgress> for JsMaskedLmEpoch {
    fn from(p: MaskedLmEpochProgress) -> Self {
        JsMaskedLmEpoch {
            epoch: p.epoch,
            loss: p.loss,
            validation_loss: p.validation_loss,
            validation_perplexity: p.validation_perplexity,
            costs: JsTrainingCosts::default(),
        }
    }
}

impl From<TokenEpochProgress> for JsTokenEpoch {
    fn from(p: TokenEpochProgress) -> Self {
        JsTokenEpoch {
            epoch: p.epoch,
            loss: p.loss,
            accuracy: p.accuracy,
            validation_accuracy: p.validation_accuracy,
            validation_entities: p.validation_entities.map(|e: EntityScores| JsEntityScores {
                overall: e.overall,
                per_type: e.per_type,
            }),
            costs: JsTrainingCosts::default(),
        }
    }
}

impl From<EpochProgress> for JsEpoch {
    fn from(p: EpochProgress) -> Self {
        JsEpoch {
            epoch: p.epoch,
            loss: p.loss,
            accuracy: p.accuracy,
            validation_accuracy: p.validation_accuracy,
            validation_mae: p.validation_mae,
            validation_pearson: p.validation_pearson,
            costs: JsTrainingCosts::default(),
        }
    }
}

#[wasm_bindgen]
impl WasmTrainer {
    /// `Promise<{epoch, loss, accuracy, validationAccuracy}>` of the next epoch, with
    /// `validationEntities: {overall, perType}` for a token classifier (the first call also
    /// prepares the run: new classifier, tokens, cached features for head-only).
    pub fn run_epoch(&self) -> Promise {
        self.run_steps(usize::MAX)
    }

    /// Up to `max_steps` optimizer steps (at least one) of the epoch under way (sequence
    /// classification; the other runs take the whole epoch): `Promise<{phase: "training",
    /// epoch, done, total}>` (steps of the epoch) while it goes on, the epoch's report (as
    /// `run_epoch`'s) after its last step. The same training as whole epochs.
    pub fn run_steps(&self, max_steps: usize) -> Promise {
        let cell = self.pipeline.clone();
        let state = self.state.clone();
        future_to_promise(async move {
            let mut lease = Lease::take(&cell)?;
            let current = std::mem::replace(&mut *state.borrow_mut(), TrainerState::Finished);
            let running = match current {
                TrainerState::PendingSequence {
                    examples,
                    options,
                    features,
                } => TrainerState::Sequence(Box::new(
                    ClassifierTraining::new_with_features(
                        lease.pipeline(),
                        &examples,
                        options,
                        features,
                    )
                    .await
                    .map_err(js_error)?,
                )),
                TrainerState::PendingMaskedLm {
                    texts,
                    options,
                    probability,
                } => TrainerState::MaskedLm(Box::new(
                    MaskedLmTraining::new(lease.pipeline(), &texts, options, probability)
                        .await
                        .map_err(js_error)?,
                )),
                TrainerState::PendingTokens { examples, options } => {
                    TrainerState::Tokens(Box::new(
                        TokenClassifierTraining::new(lease.pipeline(), &examples, options)
                            .await
                            .map_err(js_error)?,
                    ))
                }
                TrainerState::Finished => {
                    return Err(JsError::new("the training run is finished").into())
                }
                running => running,
            };
            match running {
                TrainerState::Sequence(mut run) => {
                    let result = run.run_steps(lease.pipeline(), max_steps).await;
                    let r = run.report();
                    let costs = JsTrainingCosts::new(
                        r.trained_parameters,
                        r.optimizer_state_bytes,
                        r.feature_cache_bytes,
                    );
                    *state.borrow_mut() = TrainerState::Sequence(run);
                    match result.map_err(js_error)? {
                        StepsProgress::Running { epoch, done, total } => {
                            to_js(&serde_json::json!({
                                "phase": "training", "epoch": epoch, "done": done, "total": total,
                            }))
                        }
                        StepsProgress::EpochDone(progress) => {
                            let epoch = JsEpoch::from(progress);
                            to_js(&JsEpoch { costs, ..epoch })
                        }
                    }
                }
                TrainerState::Tokens(mut run) => {
                    let result = run.run_epoch(lease.pipeline()).await;
                    let r = run.report();
                    let costs = JsTrainingCosts::new(
                        r.trained_parameters,
                        r.optimizer_state_bytes,
                        r.feature_cache_bytes,
                    );
                    *state.borrow_mut() = TrainerState::Tokens(run);
                    let epoch = JsTokenEpoch::from(result.map_err(js_error)?);
                    to_js(&JsTokenEpoch { costs, ..epoch })
                }
                TrainerState::MaskedLm(mut run) => {
                    let result = run.run_epoch(lease.pipeline()).await;
                    let r = run.report();
                    let costs =
                        JsTrainingCosts::new(r.trained_parameters, r.optimizer_state_bytes, 0);
                    *state.borrow_mut() = TrainerState::MaskedLm(run);
                    let epoch = JsMaskedLmEpoch::from(result.map_err(js_error)?);
                    to_js(&JsMaskedLmEpoch { costs, ..epoch })
                }
                _ => unreachable!("a run was prepared above"),
            }
        })
    }

    /// Head-only training: the features of every window (`WasmModel.head_features` of the
    /// examples' texts, possibly computed in parts by other copies of the model, joined in
    /// example order), used by the first `run_epoch` instead of encoding the examples here.
    pub fn set_features(&self, features: Float32Array) -> Result<(), JsError> {
        match &mut *self.state.borrow_mut() {
            TrainerState::PendingSequence { features: slot, .. } => {
                *slot = Some(features.to_vec());
                Ok(())
            }
            TrainerState::PendingTokens { .. } | TrainerState::PendingMaskedLm { .. } => Err(
                JsError::new("set_features: only head-only sequence classification takes features"),
            ),
            _ => Err(JsError::new(
                "set_features: the training run has already started",
            )),
        }
    }

    /// Ends the run (the model keeps what it learned); later `run_epoch` calls are refused.
    pub fn finish(&self) {
        *self.state.borrow_mut() = TrainerState::Finished;
    }
}
