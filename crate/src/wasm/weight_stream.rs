//! `WasmWeightStream`: a model.safetensors pushed in chunks as JavaScript reads it (a fetch
//! body, the Cache API, a Blob), each byte copied into its tensor as it arrives
//! (`io::WeightStream`): the JS side holds a few chunks, never the whole file. A GPU fp32 load
//! uploads every tensor as soon as it is complete. `WasmModel.load_streamed` then builds the
//! model from the tensors.

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
    /// or shorter is refused. `dtype` as `WasmModel.load`'s: in "fp32" on a GPU every tensor
    /// is uploaded as it completes; otherwise the tensors wait in wasm memory for the load.
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
        let upload_to = (dtype == WeightDtype::Fp32).then(|| runtime.device.clone());
        let total = total.map(|bytes| bytes as u64);
        let stream = WeightStream::new("model files/model.safetensors", total, upload_to);
        Ok(WasmWeightStream {
            stream: stream.check_header_with(Box::new(move |entries| {
                BertModel::check_streamed_load_fits(&files, entries, dtype)
            })),
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
