//! The package's side of a tensor-parallel call (`models/bert/tensor_parallel.rs`): the worker
//! pool runs one small call (fewer texts than workers) in every worker at once, each computing
//! its shard of every layer; the swaps of parts go through a JS function that posts this
//! worker's part to the others and resolves to every shard's part (`web/lib/shard-peers.js`).

use std::future::Future;
use std::pin::Pin;

use js_sys::{Array, Float32Array, Function, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::model::{js_error, Lease, WasmModel};
use crate::models::bert::tensor_parallel::{ShardExchange, ShardPlan};
use crate::{Error, Result};

/// The swaps through `gather(part: Float32Array) => Promise<Float32Array[]>`.
struct JsExchange {
    gather: Function,
}

/// A failed swap: a peer failed (the gather function's promise rejected with an Error
/// naming it), or the gather function broke its contract.
fn exchange_error(value: JsValue) -> Error {
    let message = (value.dyn_ref::<js_sys::Error>())
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| "the gather function did not give a list of Float32Array".into());
    Error::invalid(format!("tensor-parallel swap: {message}"))
}

impl ShardExchange for JsExchange {
    fn all_gather(
        &self,
        part: Vec<f32>,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>>> + '_>> {
        Box::pin(async move {
            let own = Float32Array::from(part.as_slice());
            let answer = self
                .gather
                .call1(&JsValue::NULL, &own)
                .map_err(exchange_error)?;
            let promise: Promise = answer.dyn_into().map_err(exchange_error)?;
            let parts = JsFuture::from(promise).await.map_err(exchange_error)?;
            let parts: Array = parts.dyn_into().map_err(exchange_error)?;
            (parts.iter())
                .map(|p| {
                    Ok(p.dyn_into::<Float32Array>()
                        .map_err(exchange_error)?
                        .to_vec())
                })
                .collect()
        })
    }
}

#[wasm_bindgen]
impl WasmModel {
    /// Until `leave_shards`, this model's inference calls compute shard `index` of `count` of
    /// every layer and swap parts through `gather(part: Float32Array) => Promise<Float32Array[]>`
    /// (every shard's part, in shard order). The shard's rows of the weights are made on the
    /// first call and kept (1/count of the layer weights) until the weights change. Refused on
    /// the GPU, for 16-bit or int8 layers, and for more shards than attention heads.
    pub fn join_shards(
        &self,
        index: usize,
        count: usize,
        gather: Function,
    ) -> std::result::Result<(), JsValue> {
        let mut lease = Lease::take(&self.pipeline)?;
        let pipeline = lease.pipeline();
        let plan = ShardPlan::new(index, count).map_err(js_error)?;
        pipeline.model.prepare_shards(plan).map_err(js_error)?;
        pipeline.exchange = Some(Box::new(JsExchange { gather }));
        Ok(())
    }

    /// Back to whole forwards (the shards' weights are kept for the next tensor-parallel call).
    pub fn leave_shards(&self) -> std::result::Result<(), JsValue> {
        let mut lease = Lease::take(&self.pipeline)?;
        lease.pipeline().exchange = None;
        Ok(())
    }
}
