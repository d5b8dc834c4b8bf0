//! wasm exports of the tokenizer: `WasmTokenizer` (build, encode, decode); an encoding crosses
//! into JS as one array of numbers (`encodePacked`: its fields and windows, offsets converted
//! to UTF-16 code units).
//! `web/lib/index.js` wraps them into the documented `Tokenizer` class.

use wasm_bindgen::prelude::*;

use super::to_js_error;
use crate::tokenizer::{
    BertProcessing, EncodeBuffers, Encoding, Padding, PaddingStrategy, Tokenizer, Truncation,
    TruncationStrategy, Vocab, VocabOptions,
};
use std::borrow::Cow;
use std::sync::Arc;

#[wasm_bindgen]
pub struct WasmTokenizer {
    tokenizer: Tokenizer,
    /// The token strings of the last `encodePacked`, when they differ from the vocabulary's.
    last_tokens: Vec<String>,
    /// Kept from call to call: an encode then allocates little more than what it returns.
    buffers: EncodeBuffers,
}

impl WasmTokenizer {
    fn new(tokenizer: Tokenizer) -> WasmTokenizer {
        WasmTokenizer {
            tokenizer,
            last_tokens: Vec::new(),
            buffers: EncodeBuffers::default(),
        }
    }
}

#[wasm_bindgen]
impl WasmTokenizer {
    /// A tokenizer from the text of a `vocab.txt`; `strip_accents: undefined` follows `lowercase`.
    #[wasm_bindgen(js_name = fromVocab)]
    pub fn from_vocab(
        text: &str,
        lowercase: bool,
        strip_accents: Option<bool>,
        handle_chinese_chars: bool,
        clean_text: bool,
    ) -> Result<WasmTokenizer, JsError> {
        let options = VocabOptions {
            lowercase,
            strip_accents,
            handle_chinese_chars,
            clean_text,
            ..VocabOptions::default()
        };
        let tokenizer = Tokenizer::from_vocab_str(text, &options).map_err(to_js_error)?;
        Ok(WasmTokenizer::new(tokenizer))
    }

    /// A tokenizer from the text of a Hugging Face `tokenizer.json`.
    #[wasm_bindgen(js_name = fromTokenizerJson)]
    pub fn from_tokenizer_json(json: &str) -> Result<WasmTokenizer, JsError> {
        let tokenizer = Tokenizer::from_tokenizer_json(json).map_err(to_js_error)?;
        Ok(WasmTokenizer::new(tokenizer))
    }

    /// Encodes `text` (and `pair`) for `Tokenizer.encode`, all numbers in one array (one copy
    /// across the boundary, no JS object per call): `[flag, W, T_0 .. T_{W-1}, then per window:
    /// ids (T) | type ids (T) | attention mask (T) | special-tokens mask (T) | offsets (2T)]`;
    /// flag 1 when some token strings are not the vocabulary's for their ids, which
    /// `takeLastTokens()` then returns. Options given here replace the tokenizer's own for this
    /// call only: `max_length` (with `stride`, `truncation`) the truncation, `pad_to_length` the
    /// padding; without `max_length`, `stride` and `truncation` adjust the tokenizer's truncation
    /// if it has one. `no_truncation` / `no_padding` switch them off.
    #[wasm_bindgen(js_name = encodePacked)]
    #[allow(clippy::too_many_arguments)]
    pub fn encode_packed(
        &mut self,
        text: &str,
        pair: Option<String>,
        add_special_tokens: bool,
        max_length: Option<u32>,
        stride: Option<u32>,
        truncation: Option<String>,
        no_truncation: bool,
        pad_to_length: Option<u32>,
        no_padding: bool,
    ) -> Result<Vec<u32>, JsError> {
        let strategy = truncation
            .as_deref()
            .map(TruncationStrategy::parse)
            .transpose()
            .map_err(to_js_error)?;
        let own_truncation = self.tokenizer.truncation().copied();
        let call_truncation = match (max_length, own_truncation) {
            _ if no_truncation => None,
            (Some(max_length), _) => Some(Truncation {
                max_length: max_length as usize,
                stride: stride.unwrap_or(0) as usize,
                strategy: strategy.unwrap_or(TruncationStrategy::LongestFirst),
            }),
            (None, Some(own)) => Some(Truncation {
                stride: stride.map_or(own.stride, |s| s as usize),
                strategy: strategy.unwrap_or(own.strategy),
                ..own
            }),
            (None, None) => None,
        };
        let own_padding = self.tokenizer.padding();
        let call_padding = match pad_to_length {
            _ if no_padding => None,
            Some(length) => Some(Cow::Owned(Padding {
                strategy: PaddingStrategy::Fixed(length as usize),
                ..own_padding.cloned().unwrap_or_default()
            })),
            None => own_padding.map(Cow::Borrowed),
        };

        let encoded = if add_special_tokens {
            self.tokenizer.encode_reusing(
                text,
                pair.as_deref(),
                call_truncation.as_ref(),
                call_padding.as_deref(),
                &mut self.buffers,
            )
        } else {
            // Same pipeline with an empty template: no [CLS]/[SEP], type ids 0 and 1 kept.
            let a = self.tokenizer.tokenize(text);
            let b = pair.as_deref().map(|pair| self.tokenizer.tokenize(pair));
            BertProcessing::none()
                .process(
                    self.tokenizer.vocab(),
                    &a,
                    b.as_ref(),
                    call_truncation.as_ref(),
                )
                .map(|mut encoding| {
                    if let Some(padding) = &call_padding {
                        padding.pad_batch(std::slice::from_mut(&mut encoding));
                    }
                    encoding
                })
        };
        let encoding = encoded.map_err(to_js_error)?;
        let strings = tokens_unless_vocab(self.tokenizer.vocab(), &encoding);
        let all = pack_encoding(&encoding, strings.is_some(), text, pair.as_deref());
        self.last_tokens = strings.unwrap_or_default();
        Ok(all)
    }

    /// The token strings of the last `encodePacked` whose flag was 1 (then empty).
    #[wasm_bindgen(js_name = takeLastTokens)]
    pub fn take_last_tokens(&mut self) -> Vec<String> {
        std::mem::take(&mut self.last_tokens)
    }

    /// Ids back to text.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, JsError> {
        self.tokenizer
            .decode(ids, skip_special_tokens)
            .map_err(to_js_error)
    }

    #[wasm_bindgen(js_name = vocabSize)]
    pub fn vocab_size(&self) -> u32 {
        self.tokenizer.vocab().len() as u32
    }

    #[wasm_bindgen(js_name = tokenToId)]
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// Every token of the vocabulary, by id (JS keeps a copy to name the tokens of encodings).
    #[wasm_bindgen(js_name = vocabTokens)]
    pub fn vocab_tokens(&self) -> Vec<String> {
        self.tokenizer
            .vocab()
            .tokens()
            .iter()
            .map(|token| token.to_string())
            .collect()
    }

    #[wasm_bindgen(js_name = idToToken)]
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id).map(str::to_string)
    }
}

/// Window 0 (`encoding` itself), then its overflow windows in order.
fn windows_of(encoding: &Encoding) -> impl Iterator<Item = &Encoding> {
    std::iter::once(encoding).chain(&encoding.overflowing)
}

/// `[flag, W, T_0 .. T_{W-1}, then per window: ids (T) | type ids (T) | attention mask (T) |
/// special-tokens mask (T) | offsets (2T)]` for `encoding` and its overflow windows, in one
/// array (one copy into JS). Offsets are converted to UTF-16 code units: a token of type id 1
/// points into `pair`, any other into `text`; special and padding tokens keep (0, 0).
fn pack_encoding(encoding: &Encoding, flag: bool, text: &str, pair: Option<&str>) -> Vec<u32> {
    let text_table = utf16_position_of_char(text);
    let pair_table = pair.and_then(utf16_position_of_char); // (type id 1 only with a pair)
    let total: usize = windows_of(encoding).map(|w| 6 * w.len() + 1).sum();
    let mut all = Vec::with_capacity(2 + total);
    all.push(flag as u32);
    all.push(windows_of(encoding).count() as u32);
    all.extend(windows_of(encoding).map(|w| w.len() as u32));
    for w in windows_of(encoding) {
        all.extend_from_slice(&w.ids);
        all.extend_from_slice(&w.type_ids);
        all.extend_from_slice(&w.attention_mask);
        all.extend_from_slice(&w.special_tokens_mask);
        for i in 0..w.len() {
            let (start, end) = w.offsets[i];
            let table = match (w.special_tokens_mask[i], w.type_ids[i]) {
                (1, _) => None,
                (_, 1) => pair_table.as_deref(),
                _ => text_table.as_deref(),
            };
            match table {
                None => all.extend([start as u32, end as u32]),
                Some(table) => {
                    let at = |k: usize| table.get(k).or(table.last()).copied().unwrap_or(0);
                    all.extend([at(start), at(end)]);
                }
            }
        }
    }
    all
}

/// The token strings of all windows, one after another, or `None` when every one is the
/// vocabulary's token for its id (the usual case; JS then names them from its copy of the
/// vocabulary, much faster than sending strings). They differ only where a padding token's
/// text is not the vocabulary's entry for the pad id. A token taken from the vocabulary shares
/// its string, so comparing the pointers settles most tokens without reading the text.
fn tokens_unless_vocab(vocab: &Vocab, encoding: &Encoding) -> Option<Vec<String>> {
    let mut tokens = windows_of(encoding).flat_map(|w| w.ids.iter().zip(&w.tokens));
    if tokens.all(|(&id, token)| {
        vocab
            .token(id)
            .is_some_and(|v| Arc::ptr_eq(v, token) || **v == **token)
    }) {
        return None;
    }
    Some(
        windows_of(encoding)
            .flat_map(|w| w.tokens.iter().map(|t| t.to_string()))
            .collect(),
    )
}

/// (C+1,) the UTF-16 position of every code-point boundary of `text`: entry k is the number
/// of UTF-16 code units before code point k (astral characters count two). `None` for an
/// ASCII text, where each entry would be k itself.
fn utf16_position_of_char(text: &str) -> Option<Vec<u32>> {
    if text.is_ascii() {
        return None;
    }
    let mut table = Vec::with_capacity(text.len() + 1);
    let mut position = 0u32;
    table.push(0);
    for c in text.chars() {
        position += c.len_utf16() as u32;
        table.push(position);
    }
    Some(table)
}
