//! `parseExamples(text, format)`: the labelled-examples parser of the tasks
//! (`tasks/examples.rs`) for JavaScript, so that the package and the demo read examples exactly
//! as the CLI does. The friendly wrapper (options object, error class) is in web/lib/examples.js.

use wasm_bindgen::prelude::*;

use crate::tasks::examples::{parse_examples as parse, ExampleFormat};

/// The examples of `text` as a JS array of `{ text, pair?, label }`; `format` is auto, rated,
/// tsv, csv or lines. A bad line is an error naming it.
#[wasm_bindgen(js_name = parseExamples)]
pub fn parse_examples(text: &str, format: &str) -> Result<JsValue, JsError> {
    let format: ExampleFormat = format.parse().map_err(super::to_js_error)?;
    let examples = parse(text, format, "examples").map_err(super::to_js_error)?;
    let json = serde_json::to_string(&examples).map_err(|e| JsError::new(&e.to_string()))?;
    js_sys::JSON::parse(&json).map_err(|_| JsError::new("examples: not valid JSON"))
}
