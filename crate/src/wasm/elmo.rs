//! wasm exports of ELMo: `WasmElmo` (load an AllenNLP biLM from the text of `options.json` and
//! the bytes of the weights `.hdf5`, then embed tokenized sentences) and `WasmElmoLayers` (the
//! result: one flat `Float32Array` with its shape, sentence boundaries removed).
//!
//! `WasmElmoTrainer` trains a sentence classifier on the biLM's features an epoch or a few
//! optimizer steps per call (`tasks::elmo_training`, as `webnlu elmo-train`) and then
//! classifies sentences.
//!
//! The model sits behind `Rc<RefCell<..>>` so that `embed` can return a `Promise` that owns it
//! (a GPU read-back is asynchronous in the browser); a second call while one is running is
//! refused with an error instead of waiting.

use std::cell::RefCell;
use std::rc::Rc;

use super::promise;
use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::prelude::*;

use super::model::{from_js, to_js};
use super::to_js_error;
use crate::device::{Device, DeviceChoice, GpuOptions};
use crate::models::elmo::ElmoBiLm;
use crate::tasks::elmo_examples::RatedSentence;
use crate::tasks::elmo_training::{ElmoClassifierRun, ElmoEpochReport, ElmoTrainOptions};
use crate::tasks::StepsProgress;

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

/// The biLM for one call; an error while another call holds it (JS did not wait for it).
fn borrow_mut<'a>(
    bilm: &'a Rc<RefCell<ElmoBiLm>>,
    call: &str,
) -> Result<std::cell::RefMut<'a, ElmoBiLm>, JsError> {
    bilm.try_borrow_mut().map_err(|_| {
        JsError::new(&format!(
            "WasmElmo.{call}: another call on this model is still running"
        ))
    })
}

fn u32_of(x: usize, what: &str) -> Result<u32, JsError> {
    u32::try_from(x).map_err(|_| JsError::new(&format!("WasmElmo: {what} {x} exceeds u32")))
}

/// `sentences` as `Vec<Vec<String>>`: an array of arrays of strings, else an error naming the
/// offending entry.
fn sentences_from_js(sentences: &Array, what: &str) -> Result<Vec<Vec<String>>, JsError> {
    let mut out = Vec::with_capacity(sentences.length() as usize);
    for (i, sentence) in sentences.iter().enumerate() {
        let words = sentence.dyn_ref::<Array>().ok_or_else(|| {
            JsError::new(&format!("{what}: sentence {i} is not an array of words"))
        })?;
        let mut tokens = Vec::with_capacity(words.length() as usize);
        for (j, word) in words.iter().enumerate() {
            tokens.push(word.as_string().ok_or_else(|| {
                JsError::new(&format!("{what}: word {j} of sentence {i} is not a string"))
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
    pub fn load(options_json: String, weights: &Uint8Array, device: String) -> Promise {
        // copied in fallibly: an out-of-memory error naming the file, not an abort
        let weights = match super::device_lost::bytes_from_js("weights.hdf5", weights) {
            Ok(weights) => weights,
            Err(refused) => return Promise::reject(&to_js_error(refused).into()),
        };
        promise(async move {
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

    /// Embeds tokenized sentences (`string[][]`); resolves to a `WasmElmoLayers`. Stateless
    /// (`stateful` false) every sentence starts from zero LSTM states; stateful, row b starts
    /// from the final states of row b of the previous stateful call (AllenNLP's `Elmo`), and a
    /// stateless call in between forgets them.
    pub fn embed(&self, sentences: Array, stateful: bool) -> Promise {
        let bilm = self.bilm.clone();
        let sentences = sentences_from_js(&sentences, "WasmElmo.embed");
        promise(async move {
            let sentences = sentences?;
            let mut bilm = borrow_mut(&bilm, "embed")?;
            if bilm.is_stateful() != stateful {
                bilm.set_stateful(stateful);
            }
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

/// One labelled sentence from JS: its words and its label (a string or a number).
#[derive(serde::Deserialize)]
struct RawElmoExample {
    words: Vec<String>,
    label: serde_json::Value,
}

/// The training options of a JS options object, read and checked by
/// `ElmoTrainOptions::from_json` (the type `webnlu elmo-train`'s flags fill).
fn elmo_train_options(options: &JsValue) -> Result<ElmoTrainOptions, JsError> {
    let value: serde_json::Value = from_js(options, "trainClassifier: options")?;
    ElmoTrainOptions::from_json(value).map_err(to_js_error)
}

/// The labels of `examples` as classes: the distinct labels sorted (class i is `labels[i]`).
fn classes_of(examples: Vec<RawElmoExample>) -> (Vec<String>, Vec<RatedSentence>) {
    let label = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut labels: Vec<String> = examples.iter().map(|e| label(&e.label)).collect();
    crate::sort::sort_dedup(&mut labels);
    let sentences = examples
        .into_iter()
        .map(|e| RatedSentence {
            label: labels.binary_search(&label(&e.label)).expect("listed") as u32,
            tokens: e.words,
        })
        .collect();
    (labels, sentences)
}

#[wasm_bindgen]
impl WasmElmo {
    /// Starts training a classifier on the biLM's features: `examples` `[{words, label}]`,
    /// `options` `{training: "head" | "mix" | "end-to-end", epochs, batchSize, learningRate,
    /// seed, validation}` (`ElmoTrainOptions::from_json`: defaults for what is left out; an
    /// unknown name, a wrong type or a value out of range is an error naming it). The examples
    /// are shuffled with `seed`; the last `round(validation * n)` of the shuffled order are held
    /// out (as `webnlu elmo-train --train N --test M` on the same sentences). Leaves stateful
    /// mode. Resolves to a `WasmElmoTrainer` (its `epochs`: the options') once the features of
    /// the training sentences are computed.
    pub fn trainer(&self, examples: JsValue, options: JsValue) -> Promise {
        let bilm = self.bilm.clone();
        let parsed = from_js::<Vec<RawElmoExample>>(&examples, "trainClassifier: examples")
            .and_then(|e| elmo_train_options(&options).map(|o| (e, o)));
        promise(async move {
            let (examples, options) = parsed?;
            let (labels, sentences) = classes_of(examples);
            if labels.len() < 2 {
                return Err(JsError::new(&format!(
                    "trainClassifier: the examples have {} distinct label(s); a classifier needs at least 2",
                    labels.len()
                ))
                .into());
            }
            let (train, held) = options.split(sentences).map_err(to_js_error)?;
            let run = {
                let mut model = borrow_mut(&bilm, "trainClassifier")?;
                model.set_stateful(false);
                ElmoClassifierRun::start(&model, labels.len(), train, held, options)
                    .await
                    .map_err(to_js_error)?
            };
            Ok(JsValue::from(WasmElmoTrainer {
                bilm,
                run: Rc::new(RefCell::new(run)),
                labels,
                epochs: options.epochs,
            }))
        })
    }

    /// Forgets the LSTM states kept by stateful `embed` calls (AllenNLP's `reset_states()`).
    #[wasm_bindgen(js_name = resetState)]
    pub fn reset_state(&self) -> Result<(), JsError> {
        borrow_mut(&self.bilm, "resetState")?.reset_state();
        Ok(())
    }
}

/// An epoch's report as JS sees it (camelCase keys).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsElmoEpoch<'a> {
    #[serde(flatten)]
    report: &'a ElmoEpochReport,
    train_sentences: usize,
    held_out_sentences: usize,
}

/// A classifier being trained on a `WasmElmo`'s features (and, end to end, the biLM itself).
#[wasm_bindgen]
pub struct WasmElmoTrainer {
    bilm: Rc<RefCell<ElmoBiLm>>,
    run: Rc<RefCell<ElmoClassifierRun>>,
    labels: Vec<String>,
    /// the options' `epochs` (JS runs them)
    epochs: usize,
}

#[wasm_bindgen]
impl WasmElmoTrainer {
    /// The class names, in class order.
    #[wasm_bindgen(getter)]
    pub fn labels(&self) -> Vec<String> {
        self.labels.clone()
    }

    /// The epochs to run: the options' `epochs` (10 when left out).
    #[wasm_bindgen(getter)]
    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// `Promise<{epoch, trainLoss, trainAccuracy, testLoss, testAccuracy, testChance,
    /// mixWeights, mixGamma, trainSentences, heldOutSentences}>` of the next epoch: every
    /// step of it in one call.
    #[wasm_bindgen(js_name = runEpoch)]
    pub fn run_epoch(&self) -> Promise {
        self.run_steps(usize::MAX)
    }

    /// Up to `max_steps` optimizer steps (at least one; one per batch) of the epoch under way:
    /// `Promise<{phase: "training", epoch, done, total}>` while it goes on, the epoch's report
    /// (as `runEpoch`'s) after its last step. The same training as whole epochs.
    #[wasm_bindgen(js_name = runSteps)]
    pub fn run_steps(&self, max_steps: usize) -> Promise {
        let bilm = self.bilm.clone();
        let run = self.run.clone();
        promise(async move {
            let mut model = borrow_mut(&bilm, "trainClassifier")?;
            model.set_stateful(false);
            let mut run = run
                .try_borrow_mut()
                .map_err(|_| JsError::new("trainClassifier: an epoch is already running"))?;
            match run
                .run_steps(&mut model, max_steps)
                .await
                .map_err(to_js_error)?
            {
                StepsProgress::EpochDone(report) => to_js(&JsElmoEpoch {
                    report: &report,
                    train_sentences: run.train_sentences(),
                    held_out_sentences: run.held_out_sentences(),
                }),
                running => super::trainer::step_report(&running),
            }
        })
    }

    /// `Promise<Float32Array>`: class probabilities (sentences, classes) row-major of
    /// tokenized sentences, under the trained head (and biLM).
    pub fn classify(&self, sentences: Array) -> Promise {
        let bilm = self.bilm.clone();
        let run = self.run.clone();
        let sentences = sentences_from_js(&sentences, "classify");
        promise(async move {
            let sentences = sentences?;
            let mut model = borrow_mut(&bilm, "classify")?;
            model.set_stateful(false);
            let run = run
                .try_borrow()
                .map_err(|_| JsError::new("classify: an epoch is still running"))?;
            let words: Vec<Vec<&str>> = sentences
                .iter()
                .map(|s| s.iter().map(String::as_str).collect())
                .collect();
            let probabilities = run.predict(&model, &words).await.map_err(to_js_error)?;
            Ok(js_sys::Float32Array::from(probabilities.as_slice()).into())
        })
    }
}
