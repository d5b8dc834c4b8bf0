//! `WasmWeightStream`: a model.safetensors pushed in chunks as JavaScript reads it (a fetch
//! body, the Cache API, a Blob), each byte copied into its tensor as it arrives
//! (`io::WeightStream`): the JS side holds a few chunks, never the whole file. On a GPU the f32
//! tensors are written into their buffers as they arrive, and with a compressed `dtype` each
//! layer matrix is converted as soon as it is complete (on either device), so wasm memory holds
//! a block or one matrix, not the weights. `WasmModel.load_streamed` then builds the model from
//! the tensors.

use wasm_bindgen::prelude::*;

use super::model::WasmRuntime;
use super::to_js_error;
use crate::io::{ModelFiles, StreamedWeights, WeightStream};
use crate::models::BertModel;
use crate::ops::matmul::WeightDtype;

/// A model.safetensors being received for a model on `runtime`'s device held in `dtype`.
#[wasm_bindgen]
pub struct WasmWeightStream {
    stream: WeightStream,
}

#[wasm_bindgen]
impl WasmWeightStream {
    /// `total`: the file's length when known (Content-Length, a Blob's size): a stream longer
    /// or shorter is refused. `dtype` as `WasmModel.load`'s: the layer matrices it compresses
    /// are converted as they complete; on a GPU every other f32 tensor is written into its
    /// buffer as it arrives; the rest waits in wasm memory for the load.
    /// `config`: the model's config.json, checked first (an unsupported model is refused before
    /// any weight byte), then against the file's header (the memory budget of the load, as
    /// `WasmModel.load` checks it, before any tensor byte is kept).
    #[wasm_bindgen(constructor)]
    pub fn new(
        runtime: &WasmRuntime,
        config: &[u8],
        dtype: &str,
        total: Option<f64>,
    ) -> Result<WasmWeightStream, JsError> {
        let dtype = WeightDtype::parse(dtype).map_err(to_js_error)?;
        let mut files = ModelFiles::new("model files");
        files.insert("config.json", config.to_vec());
        files.config().map_err(to_js_error)?;
        let total = total.map(|bytes| bytes as u64);
        let device = Some(runtime.device.clone());
        let stream = WeightStream::new("model files/model.safetensors", total, device);
        Ok(WasmWeightStream {
            stream: stream.plan_with(
                dtype,
                Box::new(move |entries| BertModel::plan_streamed_load(&files, entries, dtype)),
            ),
        })
    }

    /// Takes the next chunk of the file (copied into the tensors it holds bytes of).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsError> {
        self.stream.push(chunk).map_err(to_js_error)
    }

    /// Bytes received so far.
    #[wasm_bindgen(getter)]
    pub fn received(&self) -> f64 {
        self.stream.received() as f64
    }
}

impl WasmWeightStream {
    /// The tensors, once the whole file was pushed (an error naming where a short stream ended).
    pub(super) fn finish(self) -> crate::Result<StreamedWeights> {
        self.stream.finish()
    }
}
