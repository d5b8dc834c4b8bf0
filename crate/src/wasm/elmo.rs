//! wasm exports of ELMo: `WasmElmo` (load an AllenNLP biLM from the text of `options.json` and
//! the bytes of the weights `.hdf5`, then embed tokenized sentences) and `WasmElmoLayers` (the
//! result: one flat `Float32Array` with its shape, sentence boundaries removed).
//!
//! The model sits behind `Rc<RefCell<..>>` so that `embed` can return a `Promise` that owns it
//! (a GPU read-back is asynchronous in the browser); a second `embed` while one is running is
//! refused with an error instead of waiting.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::to_js_error;
use crate::device::{Device, DeviceChoice, GpuOptions};
use crate::models::elmo::ElmoBiLm;

#[wasm_bindgen]
pub struct WasmElmo {
    bilm: Rc<RefCell<ElmoBiLm>>,
    device: &'static str,
}

/// The layers of one `embed` call.
#[wasm_bindgen]
pub struct WasmElmoLayers {
    /// (K, B, T, 2P), zero beyond each sentence's length
    layers: Vec<f32>,
    /// [K, B, T, 2P]
    shape: Vec<u32>,
    /// (B) words per sentence
    lengths: Vec<u32>,
}

#[wasm_bindgen]
impl WasmElmoLayers {
    /// All layers as one array, (layers, sentences, max words, 2 * projection_dim) row-major;
    /// forward half then backward half of each vector (the token layer twice).
    #[wasm_bindgen(getter)]
    pub fn layers(&self) -> Vec<f32> {
        self.layers.clone()
    }
    /// `[layers, sentences, max words, dim]`
    #[wasm_bindgen(getter)]
    pub fn shape(&self) -> Vec<u32> {
        self.shape.clone()
    }
    /// Words of each sentence (positions beyond are zeros).
    #[wasm_bindgen(getter)]
    pub fn lengths(&self) -> Vec<u32> {
        self.lengths.clone()
    }
}

fn u32_of(x: usize, what: &str) -> Result<u32, JsError> {
    u32::try_from(x).map_err(|_| JsError::new(&format!("WasmElmo: {what} {x} exceeds u32")))
}

/// `sentences` as `Vec<Vec<String>>`: an array of arrays of strings, else an error naming the
/// offending entry.
fn sentences_from_js(sentences: &Array) -> Result<Vec<Vec<String>>, JsError> {
    let mut out = Vec::with_capacity(sentences.length() as usize);
    for (i, sentence) in sentences.iter().enumerate() {
        let words = sentence.dyn_ref::<Array>().ok_or_else(|| {
            JsError::new(&format!(
                "WasmElmo.embed: sentence {i} is not an array of words"
            ))
        })?;
        let mut tokens = Vec::with_capacity(words.length() as usize);
        for (j, word) in words.iter().enumerate() {
            tokens.push(word.as_string().ok_or_else(|| {
                JsError::new(&format!(
                    "WasmElmo.embed: word {j} of sentence {i} is not a string"
                ))
            })?);
        }
        out.push(tokens);
    }
    Ok(out)
}

#[wasm_bindgen]
impl WasmElmo {
    /// Loads a biLM: `options_json` is the text of AllenNLP's `options.json`, `weights` the
    /// bytes of the `.hdf5` weights, `device` "cpu", "gpu" or "auto" (WebGPU if present).
    /// Resolves to a `WasmElmo`.
    pub fn load(options_json: String, weights: Vec<u8>, device: String) -> Promise {
        future_to_promise(async move {
            let choice: DeviceChoice = device.parse().map_err(to_js_error)?;
            let device = Device::new(choice, &GpuOptions::default())
                .await
                .map_err(to_js_error)?;
            let bilm = ElmoBiLm::load(&options_json, "weights.hdf5", &weights, &device)
                .map_err(to_js_error)?;
            Ok(JsValue::from(WasmElmo {
                bilm: Rc::new(RefCell::new(bilm)),
                device: device.kind(),
            }))
        })
    }

    /// "cpu" or "gpu": where the model runs.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> String {
        self.device.to_string()
    }

    /// Number of layers (token layer + one per LSTM layer).
    #[wasm_bindgen(getter, js_name = numLayers)]
    pub fn num_layers(&self) -> u32 {
        self.bilm.borrow().num_layers() as u32
    }

    /// Width of each vector: 2 * projection_dim.
    #[wasm_bindgen(getter, js_name = outputDim)]
    pub fn output_dim(&self) -> u32 {
        self.bilm.borrow().output_dim() as u32
    }

    /// Embeds tokenized sentences (`string[][]`), stateless; resolves to a `WasmElmoLayers`.
    pub fn embed(&self, sentences: Array) -> Promise {
        let bilm = self.bilm.clone();
        let sentences = sentences_from_js(&sentences);
        future_to_promise(async move {
            let sentences = sentences?;
            let mut bilm = bilm.try_borrow_mut().map_err(|_| {
                JsError::new("WasmElmo.embed: another embed call on this model is still running")
            })?;
            let words: Vec<Vec<&str>> = sentences
                .iter()
                .map(|s| s.iter().map(String::as_str).collect())
                .collect();
            let output = bilm.embed_sentences(&words).await.map_err(to_js_error)?;
            let k = output.layers.len();
            let shape = vec![
                u32_of(k, "layers")?,
                u32_of(output.batch, "sentences")?,
                u32_of(output.steps, "words")?,
                u32_of(output.dim, "dim")?,
            ];
            let lengths = output
                .lengths
                .iter()
                .map(|&l| u32_of(l, "length"))
                .collect::<Result<_, _>>()?;
            Ok(JsValue::from(WasmElmoLayers {
                layers: output.layers.concat(),
                shape,
                lengths,
            }))
        })
    }
}
