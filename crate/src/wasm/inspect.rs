//! wasm exports of inspection (`tasks/inspect.rs`): the results of `WasmModel.inspect` and
//! `WasmModel.word_vectors` as objects whose getters give typed arrays with their shapes;
//! offsets in UTF-16 code units. `web/lib/engine.js` copies them into plain objects.

use js_sys::Array;
use wasm_bindgen::prelude::*;

use crate::tasks::{Inspection, WordVectors};
use crate::tokenizer::char_offsets_to_utf16;

fn u32s(values: impl IntoIterator<Item = usize>) -> Vec<u32> {
    values.into_iter().map(|v| v as u32).collect()
}

fn string_array(values: impl IntoIterator<Item = String>) -> Array {
    values.into_iter().map(JsValue::from).collect()
}

/// What `WasmModel.inspect` resolves to.
#[wasm_bindgen]
pub struct WasmInspection {
    tokens: Vec<String>,
    /// (2T) start, end of each token in UTF-16 code units of its own text
    offsets: Vec<u32>,
    type_ids: Vec<u32>,
    special_tokens_mask: Vec<u32>,
    layers: Vec<u32>,
    /// (S, T, C)
    hidden_states: Vec<f32>,
    /// [S, T, C]
    hidden_states_shape: Vec<u32>,
    attention_layers: Vec<u32>,
    /// (A, NH, T, T)
    attentions: Vec<f32>,
    /// [A, NH, T, T]
    attentions_shape: Vec<u32>,
}

impl WasmInspection {
    pub(super) fn new(inspection: Inspection, text: &str, pair: Option<&str>) -> Self {
        let (t, c) = (inspection.seq(), inspection.hidden_size);
        let offsets = inspection
            .offsets_utf16(text, pair)
            .into_iter()
            .flat_map(|(s, e)| [s as u32, e as u32])
            .collect();
        WasmInspection {
            offsets,
            hidden_states_shape: u32s([inspection.layers.len(), t, c]),
            attentions_shape: u32s([inspection.attention_layers.len(), inspection.heads, t, t]),
            layers: u32s(inspection.layers),
            attention_layers: u32s(inspection.attention_layers),
            tokens: inspection.tokens,
            type_ids: inspection.type_ids,
            special_tokens_mask: inspection.special_tokens_mask,
            hidden_states: inspection.hidden_states,
            attentions: inspection.attentions,
        }
    }
}

#[wasm_bindgen]
impl WasmInspection {
    /// `string[]` (T): WordPiece tokens, special tokens included.
    #[wasm_bindgen(getter)]
    pub fn tokens(&self) -> Array {
        string_array(self.tokens.iter().cloned())
    }
    /// (2T) `[start, end, ...]` in UTF-16 code units of the token's own text; 0, 0 for specials.
    #[wasm_bindgen(getter)]
    pub fn offsets(&self) -> Vec<u32> {
        self.offsets.clone()
    }
    #[wasm_bindgen(getter, js_name = typeIds)]
    pub fn type_ids(&self) -> Vec<u32> {
        self.type_ids.clone()
    }
    #[wasm_bindgen(getter, js_name = specialTokensMask)]
    pub fn special_tokens_mask(&self) -> Vec<u32> {
        self.special_tokens_mask.clone()
    }
    /// Indices into the L + 1 hidden states of `hiddenStates`.
    #[wasm_bindgen(getter)]
    pub fn layers(&self) -> Vec<u32> {
        self.layers.clone()
    }
    /// (S, T, C) row-major.
    #[wasm_bindgen(getter, js_name = hiddenStates)]
    pub fn hidden_states(&self) -> Vec<f32> {
        self.hidden_states.clone()
    }
    #[wasm_bindgen(getter, js_name = hiddenStatesShape)]
    pub fn hidden_states_shape(&self) -> Vec<u32> {
        self.hidden_states_shape.clone()
    }
    /// Encoder layers (0-based) of `attentions`.
    #[wasm_bindgen(getter, js_name = attentionLayers)]
    pub fn attention_layers(&self) -> Vec<u32> {
        self.attention_layers.clone()
    }
    /// (A, NH, T, T) row-major post-softmax probabilities (empty unless asked for).
    #[wasm_bindgen(getter)]
    pub fn attentions(&self) -> Vec<f32> {
        self.attentions.clone()
    }
    #[wasm_bindgen(getter, js_name = attentionsShape)]
    pub fn attentions_shape(&self) -> Vec<u32> {
        self.attentions_shape.clone()
    }
}

/// What `WasmModel.word_vectors` resolves to.
#[wasm_bindgen]
pub struct WasmWordVectors {
    words: Vec<String>,
    /// (W) UTF-16 code units of the text
    starts: Vec<u32>,
    ends: Vec<u32>,
    pieces: Vec<u32>,
    /// (W, C)
    vectors: Vec<f32>,
    hidden_size: u32,
    layer: u32,
}

impl WasmWordVectors {
    pub(super) fn new(result: WordVectors, text: &str) -> Self {
        let spans: Vec<(usize, usize)> = result.words.iter().map(|w| (w.start, w.end)).collect();
        let utf16 = char_offsets_to_utf16(text, &spans);
        WasmWordVectors {
            starts: u32s(utf16.iter().map(|&(s, _)| s)),
            ends: u32s(utf16.iter().map(|&(_, e)| e)),
            pieces: u32s(result.words.iter().map(|w| w.pieces)),
            words: result.words.into_iter().map(|w| w.word).collect(),
            vectors: result.vectors,
            hidden_size: result.hidden_size as u32,
            layer: result.layer as u32,
        }
    }
}

#[wasm_bindgen]
impl WasmWordVectors {
    /// `string[]` (W): each word as written in the text.
    #[wasm_bindgen(getter)]
    pub fn words(&self) -> Array {
        string_array(self.words.iter().cloned())
    }
    /// (W) UTF-16 start of each word.
    #[wasm_bindgen(getter)]
    pub fn starts(&self) -> Vec<u32> {
        self.starts.clone()
    }
    /// (W) UTF-16 end of each word.
    #[wasm_bindgen(getter)]
    pub fn ends(&self) -> Vec<u32> {
        self.ends.clone()
    }
    /// (W) WordPiece tokens per word.
    #[wasm_bindgen(getter)]
    pub fn pieces(&self) -> Vec<u32> {
        self.pieces.clone()
    }
    /// (W, C) row-major.
    #[wasm_bindgen(getter)]
    pub fn vectors(&self) -> Vec<f32> {
        self.vectors.clone()
    }
    #[wasm_bindgen(getter, js_name = hiddenSize)]
    pub fn hidden_size(&self) -> u32 {
        self.hidden_size
    }
    /// The hidden state the vectors come from (0 = embeddings, L = last layer).
    #[wasm_bindgen(getter)]
    pub fn layer(&self) -> u32 {
        self.layer
    }
}
