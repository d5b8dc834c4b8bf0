//! wasm-bindgen exports: the thin boundary between the Rust core and JavaScript.
//!
//! Only conversions live here (JS strings and typed arrays in, typed arrays out, `webnlu::Error`
//! to a JS `Error`); the friendly, documented API is the hand-written `web/lib/index.js`.

mod calibration;
mod device_lost;
mod elmo;
mod examples;
mod inspect;
#[cfg(feature = "kernel-check")]
mod kernel_check;
mod memory;
mod model;
mod tokenizer;
mod trainer;
mod weight_stream;

use std::future::Future;
use std::pin::Pin;

use wasm_bindgen::prelude::*;

/// The promise of an async export: `wasm_bindgen_futures::future_to_promise` with the future
/// boxed as a trait object, so that the glue around it (the promise's executor, the task that
/// polls the future and calls resolve or reject) is compiled once for every export instead of
/// once per export's future type.
fn promise(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> js_sys::Promise {
    let future: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>> = Box::pin(future);
    wasm_bindgen_futures::future_to_promise(future)
}

/// A Rust panic is a bug in webnlu: show it in the console with its message instead of the
/// bare "unreachable executed" of an aborting wasm module.
#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The crate version, so that JS can check that glue and module belong together.
#[wasm_bindgen(js_name = webnluVersion)]
pub fn webnlu_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// `webnlu::Error` as a JS `Error` whose message is the Rust error's display text.
fn to_js_error(error: crate::Error) -> JsError {
    // The error's kind crosses as the JS error's `name`, which web/lib/wasm-module.js turns
    // into the class of that name (so JS can `instanceof UnsupportedError`); other kinds stay
    // a plain `WebnluError` there.
    // DeviceLostError and OutOfMemoryError also carry their fields as properties, which
    // wasm-module.js copies onto the class instance.
    let name = match &error {
        crate::Error::Unsupported { .. } => Some("UnsupportedError"),
        crate::Error::Gpu(_) => Some("DeviceError"),
        crate::Error::DeviceLost { .. } => Some("DeviceLostError"),
        crate::Error::OutOfMemory { .. } => Some("OutOfMemoryError"),
        crate::Error::Io { .. } => Some("ModelLoadError"),
        _ => None,
    };
    let js_error = JsError::new(&error.to_string());
    let Some(name) = name else {
        return js_error;
    };
    // The clone is a second handle to the same JS object.
    let object = JsValue::from(js_error.clone());
    // Setting a property of a fresh Error object cannot fail.
    let set = |key: &str, value: JsValue| {
        let _ = js_sys::Reflect::set(&object, &key.into(), &value);
    };
    set("name", name.into());
    match &error {
        crate::Error::DeviceLost { reason, .. } => set("reason", reason.as_str().into()),
        crate::Error::OutOfMemory { what, bytes, .. } => {
            set("what", what.as_str().into());
            set("bytes", JsValue::from_f64(*bytes as f64));
        }
        _ => {}
    }
    js_error
}
