//! wasm exports of the BERT tasks: `WasmRuntime` (the device),
//! `WasmModel` (a loaded [`Pipeline`]: fill-mask, embed, similarity, classify, classify-tokens,
//! next-sentence, inspect, word vectors, save, a trainer of a sequence classifier, of a token
//! classifier or of the masked-LM head; the tasks that take texts take pairs `{text, pair}` too)
//! and the makers of a `WasmTrainer` (trainer.rs: one epoch per call, or a few optimizer steps
//! of an epoch of any of the three runs: `run_steps`, so JavaScript drives the loop, shows
//! progress and can stop). Only conversions live here; `web/lib/` wraps them into the documented API.
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

use super::promise;
use js_sys::{Array, Float32Array, Map, Promise, Uint8Array};
use wasm_bindgen::prelude::*;

use super::inspect::{WasmInspection, WasmWordVectors};
use super::to_js_error;
use super::trainer::*;
use super::weight_stream::WasmWeightStream;
use crate::device::{DeviceChoice, GpuOptions};
use crate::io::ModelFiles;
use crate::ops::matmul::WeightDtype;
use crate::tasks::{
    head_features, parse_word_examples, Example, InspectOptions, LayerSelection, LongTexts,
    NextSentence, Pipeline, Pooling, TextPair, TokenLabel, WordExample, WordExampleFormat,
};
use crate::tokenizer::char_offsets_to_utf16;
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

pub(super) fn js_error(error: Error) -> JsValue {
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
    /// (`web/lib/device-choice.js`), and opens "gpu" or "cpu" here. `f16_arithmetic`: fp16
    /// weights multiplied in f16 where the GPU has `shader-f16` (`GpuOptions::f16_arithmetic`).
    pub async fn create(device: String, f16_arithmetic: bool) -> Result<WasmRuntime, JsError> {
        let choice: DeviceChoice = device.parse().map_err(to_js_error)?;
        let options = GpuOptions {
            f16_arithmetic,
            ..GpuOptions::default()
        };
        let opened = Device::new(choice, &options).await.map_err(to_js_error)?;
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
        promise(async move {
            let checksum = super::calibration::run_calibration_workload(&device, repeats)
                .await
                .map_err(js_error)?;
            Ok(JsValue::from_f64(checksum))
        })
    }

    /// `{kind: "gpu" | "cpu", adapter: string | null, reason: string, f16Arithmetic: bool}`.
    pub fn device_info(&self) -> Result<JsValue, JsValue> {
        let (adapter, f16_arithmetic) = match &self.device {
            Device::Gpu(ctx) => (Some(ctx.info().name.clone()), ctx.info().f16_arithmetic),
            Device::Cpu => (None, false),
        };
        to_js(&serde_json::json!({
            "kind": self.device.kind(),
            "adapter": adapter,
            "f16Arithmetic": f16_arithmetic,
            "reason": self.reason,
        }))
    }
}

pub(super) type SharedPipeline = Rc<RefCell<Option<Pipeline>>>;

/// The pipeline taken out of its cell for one call, put back when dropped (also on errors).
pub(super) struct Lease {
    cell: SharedPipeline,
    pipeline: Option<Pipeline>,
}

impl Lease {
    pub(super) fn take(cell: &SharedPipeline) -> Result<Lease, JsValue> {
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

    pub(super) fn pipeline(&mut self) -> &mut Pipeline {
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
pub(super) fn item(value: &JsValue, what: &str) -> Result<TextPair, JsError> {
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

pub(super) fn items(values: &Array, what: &str) -> Result<Vec<TextPair>, JsError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| item(&v, &format!("{what}[{i}]")))
        .collect()
}

pub(super) fn strings(texts: &Array, what: &str) -> Result<Vec<String>, JsError> {
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
    /// Parameters the checkpoint lacked and the load initialized randomly.
    newly_initialized: Vec<String>,
    /// Bytes of the parameters as held on the device.
    weight_bytes: u64,
}

#[wasm_bindgen]
impl WasmModel {
    /// Loads a model from its files (`config.json`, `model.safetensors` or `pytorch_model.bin`,
    /// `tokenizer.json` or `vocab.txt`, optional `tokenizer_config.json`, `modules.json`), the
    /// encoder layers' weight matrices held in `dtype` ("fp32", "fp16", "bf16" or "int8").
    /// With `pack_weights`, on the CPU, fp32 layer matrices are held as the CPU GEMM's packed
    /// panels only, made now in the plain tensors' buffers (`BertModel::pack_for_inference`:
    /// once, not a plain copy and a cache of panels beside it after the first forward; the same
    /// results bit for bit).
    pub fn load(
        runtime: &WasmRuntime,
        files: &Map,
        dtype: &str,
        pack_weights: bool,
    ) -> Result<WasmModel, JsError> {
        WasmModel::load_with(runtime, files, dtype, pack_weights, None)
    }

    /// [`WasmModel::load`] with model.safetensors received as `weights` (a stream pushed to
    /// its end: see `weight_stream.rs`) instead of a file in `files`.
    pub fn load_streamed(
        runtime: &WasmRuntime,
        files: &Map,
        weights: WasmWeightStream,
        dtype: &str,
        pack_weights: bool,
    ) -> Result<WasmModel, JsError> {
        WasmModel::load_with(runtime, files, dtype, pack_weights, Some(weights))
    }
}

impl WasmModel {
    fn load_with(
        runtime: &WasmRuntime,
        files: &Map,
        dtype: &str,
        pack_weights: bool,
        weights: Option<WasmWeightStream>,
    ) -> Result<WasmModel, JsError> {
        let dtype = WeightDtype::parse(dtype).map_err(to_js_error)?;
        let mut model_files = ModelFiles::new("model files");
        if let Some(weights) = weights {
            let weights = weights.finish().map_err(to_js_error)?;
            model_files.insert_streamed("model.safetensors", weights);
        }
        let mut error = None;
        files.for_each(
            &mut |value, key| match (key.as_string(), value.dyn_into::<Uint8Array>()) {
                // the weights stay in JS memory, read tensor by tensor while the model loads:
                // no copy of the whole file in wasm memory beside the tensors made from it
                (Some(name), Ok(bytes)) if name == "model.safetensors" => {
                    model_files.insert_js(name, bytes)
                }
                (Some(name), Ok(bytes)) => match super::device_lost::bytes_from_js(&name, &bytes) {
                    Ok(copy) => model_files.insert(name, copy),
                    Err(refused) => {
                        error.get_or_insert(to_js_error(refused));
                    }
                },
                (name, _) => {
                    error.get_or_insert(JsError::new(&format!(
                        "file {name:?}: expected a Uint8Array"
                    )));
                }
            },
        );
        if let Some(error) = error {
            return Err(error);
        }
        let mut pipeline =
            Pipeline::load_as(&model_files, &runtime.device, dtype).map_err(to_js_error)?;
        if pack_weights {
            // a GPU or 16-bit / int8 model is left as it is
            pipeline.model.pack_for_inference().map_err(to_js_error)?;
        }
        let hidden_size = pipeline.hidden_size();
        let newly_initialized = pipeline.model.newly_initialized.clone();
        let weight_bytes = pipeline.model.weight_bytes();
        Ok(WasmModel {
            pipeline: Rc::new(RefCell::new(Some(pipeline))),
            hidden_size,
            newly_initialized,
            weight_bytes,
        })
    }
}

#[wasm_bindgen]
impl WasmModel {
    /// Bytes of the parameters as held on the device (16-bit weights at 2 bytes a value).
    #[wasm_bindgen(getter)]
    pub fn weight_bytes(&self) -> f64 {
        self.weight_bytes as f64
    }

    /// How many of the encoder layers' weight matrices are held packed only now (`load`'s
    /// `pack_weights`; a training run unpacks those it trains, for good).
    pub fn packed_weight_matrices(&self) -> Result<usize, JsValue> {
        let lease = Lease::take(&self.pipeline)?;
        let pipeline = lease.pipeline.as_ref().expect("present until dropped");
        Ok(pipeline.model.packed_only_weight_count())
    }

    #[wasm_bindgen(getter)]
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// The parameters the checkpoint did not hold and the load initialized randomly (a pooler
    /// that a next-sentence or classification head reads), as transformers warns about them.
    #[wasm_bindgen(getter)]
    pub fn newly_initialized(&self) -> Vec<String> {
        self.newly_initialized.clone()
    }

    /// `Promise<Array<Array<{token, id, score}>>>`: the top-k tokens of every [MASK] of `text`
    /// (a string, or `{text, pair}`: the masks of both texts, the first text's first).
    pub fn fill_mask(&self, text: JsValue, top_k: usize) -> Promise {
        let cell = self.pipeline.clone();
        promise(async move {
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
        promise(async move {
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
        promise(async move {
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
        promise(async move {
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
        promise(async move {
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
        promise(async move {
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
        promise(async move {
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
        promise(async move {
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
    /// multi-label an array of strings) with `options`, the training options object (read by
    /// `TrainOptions::from_json`: `freeze`, `epochs`, `learningRate`, `batchSize`,
    /// `accumulation`, `validation`, `seed`, `weightDecay`, `warmupRatio`, `maxGradNorm`,
    /// `pooling`, `truncate`, `task`; each left out takes its default). A long example is read
    /// in windows whose logits are averaged (as `classify` reads it) unless `truncate` is true
    /// (its first window only).
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
        let options = train_options(&options)?;
        // refused now, not after a head-only run's feature pass
        options
            .refuse_masked_lm_options("train_classifier")
            .map_err(to_js_error)?;
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
        let options = train_options(&options)?;
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
        let options = train_options(&options)?;
        Ok(WasmTrainer {
            pipeline: self.pipeline.clone(),
            state: Rc::new(RefCell::new(TrainerState::PendingMaskedLm {
                texts,
                options,
            })),
        })
    }

    /// `Promise<Float32Array>`: the cached features head-only training with `options` (those
    /// of `trainer`) computes for examples with these `texts` (strings or `{text, pair}`), `(windows, hidden_size)`
    /// row-major in example order. The browser's worker pool splits this pass among its
    /// workers and gives the joined rows to `WasmTrainer.set_features`.
    pub fn head_features(&self, texts: Array, options: JsValue) -> Promise {
        let cell = self.pipeline.clone();
        promise(async move {
            let texts = items(&texts, "texts")?;
            let options = train_options(&options)?;
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
        promise(async move {
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
