//! Reading a Hugging Face `tokenizer.json` (the format `tokenizers` saves): the sections
//! `normalizer`, `pre_tokenizer`, `model`, `post_processor`, `decoder`, `truncation`, `padding`
//! and `added_tokens`. Supported: BertNormalizer, BertPreTokenizer, WordPiece, BertProcessing or
//! a TemplateProcessing of special tokens around A / B, the WordPiece decoder, right-side
//! truncation, padding. Anything else is refused with `Error::Unsupported` naming the section
//! and the type, so a RoBERTa or GPT-2 tokenizer.json fails loudly instead of tokenizing wrongly.

use serde_json::{Map, Value};

use super::added_tokens::{AddedToken, AddedTokens};
use super::decoder::WordPieceDecoder;
use super::normalizer::BertNormalizer;
use super::post_processor::{
    BertProcessing, Padding, PaddingDirection, PaddingStrategy, Piece, Truncation,
    TruncationStrategy,
};
use super::pre_tokenizer::BertPreTokenizer;
use super::vocab::Vocab;
use super::wordpiece::WordPiece;
use super::Tokenizer;
use crate::error::{Error, Result};

fn type_of(section: &Map<String, Value>) -> Option<&str> {
    section.get("type").and_then(Value::as_str)
}

fn bool_or(section: &Map<String, Value>, key: &str, default: bool) -> bool {
    section.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn usize_of(
    section: &Map<String, Value>,
    key: &str,
    what: &str,
    name: &str,
) -> Result<Option<usize>> {
    match section.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
            Error::format(
                what,
                format!("{name}.{key} must be a non-negative integer, found {v}"),
            )
        }),
    }
}

/// Parses `json`; `what` names the file in error messages.
pub fn parse(json: &str, what: &str) -> Result<Tokenizer> {
    let root: Value = serde_json::from_str(json)
        .map_err(|e| Error::format(what, format!("not valid JSON: {e}")))?;
    let root = root
        .as_object()
        .ok_or_else(|| Error::format(what, "the top level is not a JSON object"))?;

    // model: WordPiece
    let model = root
        .get("model")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::format(what, "no \"model\" section"))?;
    match type_of(model) {
        Some("WordPiece") => {}
        Some(other) => {
            return Err(Error::unsupported(format!(
                "model type {other:?} in {what} (webnlu reads WordPiece)"
            )))
        }
        None if model.contains_key("max_input_chars_per_word") => {}
        None => return Err(Error::format(what, "the model section has no \"type\"")),
    }
    let vocab_map = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::format(what, "model.vocab is missing or not an object"))?;
    let mut entries = Vec::with_capacity(vocab_map.len());
    for (token, id) in vocab_map {
        let id = id
            .as_u64()
            .filter(|&id| id <= u32::MAX as u64)
            .ok_or_else(|| {
                Error::format(
                    what,
                    format!("model.vocab[{token:?}] is not a token id: {id}"),
                )
            })?;
        entries.push((token.clone(), id as u32));
    }
    let vocab = Vocab::from_entries(entries, what)?;
    let unk = model
        .get("unk_token")
        .and_then(Value::as_str)
        .unwrap_or("[UNK]");
    let prefix = model
        .get("continuing_subword_prefix")
        .and_then(Value::as_str)
        .unwrap_or("##");
    let max_chars = usize_of(model, "max_input_chars_per_word", what, "model")?.unwrap_or(100);
    let wordpiece = WordPiece::new(&vocab, unk, prefix, max_chars).map_err(|e| match e {
        Error::Format { detail, .. } => Error::format(what, detail),
        other => other,
    })?;

    // normalizer: BertNormalizer (null = no normalization at all)
    let normalizer = match root.get("normalizer") {
        None | Some(Value::Null) => BertNormalizer::new(false, false, Some(false), false),
        Some(Value::Object(n)) => match type_of(n) {
            Some("BertNormalizer") => BertNormalizer::new(
                bool_or(n, "clean_text", true),
                bool_or(n, "handle_chinese_chars", true),
                n.get("strip_accents").and_then(Value::as_bool),
                bool_or(n, "lowercase", true),
            ),
            other => {
                return Err(Error::unsupported(format!(
                    "normalizer type {:?} in {what} (webnlu reads BertNormalizer)",
                    other.unwrap_or("?")
                )))
            }
        },
        Some(other) => {
            return Err(Error::format(
                what,
                format!("normalizer is not an object: {other}"),
            ))
        }
    };

    // pre_tokenizer: BertPreTokenizer
    match root.get("pre_tokenizer") {
        Some(Value::Object(p)) if type_of(p) == Some("BertPreTokenizer") => {}
        Some(Value::Object(p)) => {
            return Err(Error::unsupported(format!(
                "pre_tokenizer type {:?} in {what} (webnlu reads BertPreTokenizer)",
                type_of(p).unwrap_or("?")
            )))
        }
        _ => {
            return Err(Error::unsupported(format!(
                "a missing pre_tokenizer in {what} (webnlu reads BertPreTokenizer)"
            )))
        }
    }

    // post_processor: BertProcessing | TemplateProcessing | null
    let post_processor = match root.get("post_processor") {
        None | Some(Value::Null) => BertProcessing::none(),
        Some(Value::Object(p)) => match type_of(p) {
            Some("BertProcessing") => {
                let special = |key: &str| -> Result<u32> {
                    p.get(key)
                        .and_then(Value::as_array)
                        .and_then(|a| a.get(1))
                        .and_then(Value::as_u64)
                        .map(|id| id as u32)
                        .ok_or_else(|| {
                            Error::format(what, format!("post_processor.{key} must be [token, id]"))
                        })
                };
                BertProcessing::bert(special("cls")?, special("sep")?)
            }
            Some("TemplateProcessing") => parse_template(p, what)?,
            other => {
                return Err(Error::unsupported(format!(
                    "post_processor type {:?} in {what}",
                    other.unwrap_or("?")
                )))
            }
        },
        Some(other) => {
            return Err(Error::format(
                what,
                format!("post_processor is not an object: {other}"),
            ))
        }
    };
    for template in [&post_processor.single, &post_processor.pair] {
        for piece in template {
            if let Piece::Special { ids, .. } = piece {
                if let Some(&bad) = ids.iter().find(|&&id| vocab.token(id).is_none()) {
                    return Err(Error::format(
                        what,
                        format!("post_processor special token id {bad} is outside the vocabulary"),
                    ));
                }
            }
        }
    }

    // decoder: WordPiece | null
    let decoder = match root.get("decoder") {
        None | Some(Value::Null) => WordPieceDecoder {
            prefix: prefix.to_string(),
            cleanup: true,
        },
        Some(Value::Object(d)) => match type_of(d) {
            Some("WordPiece") => WordPieceDecoder {
                prefix: d
                    .get("prefix")
                    .and_then(Value::as_str)
                    .unwrap_or("##")
                    .to_string(),
                cleanup: bool_or(d, "cleanup", true),
            },
            other => {
                return Err(Error::unsupported(format!(
                    "decoder type {:?} in {what}",
                    other.unwrap_or("?")
                )))
            }
        },
        Some(other) => {
            return Err(Error::format(
                what,
                format!("decoder is not an object: {other}"),
            ))
        }
    };

    // truncation
    let truncation = match root.get("truncation") {
        None | Some(Value::Null) => None,
        Some(Value::Object(t)) => {
            if let Some(direction) = t.get("direction").and_then(Value::as_str) {
                if direction != "Right" {
                    return Err(Error::unsupported(format!(
                        "truncation direction {direction:?} in {what}"
                    )));
                }
            }
            let strategy = match t.get("strategy").and_then(Value::as_str) {
                None => TruncationStrategy::LongestFirst,
                Some(s) => TruncationStrategy::parse(s)?,
            };
            Some(Truncation {
                max_length: usize_of(t, "max_length", what, "truncation")?.unwrap_or(512),
                stride: usize_of(t, "stride", what, "truncation")?.unwrap_or(0),
                strategy,
            })
        }
        Some(other) => {
            return Err(Error::format(
                what,
                format!("truncation is not an object: {other}"),
            ))
        }
    };

    // padding
    let padding = match root.get("padding") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => {
            let strategy = match p.get("strategy") {
                None => PaddingStrategy::BatchLongest,
                Some(Value::String(s)) if s == "BatchLongest" => PaddingStrategy::BatchLongest,
                Some(Value::Object(s)) if s.get("Fixed").and_then(Value::as_u64).is_some() => {
                    PaddingStrategy::Fixed(s["Fixed"].as_u64().unwrap_or(0) as usize)
                }
                Some(other) => {
                    return Err(Error::unsupported(format!(
                        "padding strategy {other} in {what}"
                    )))
                }
            };
            let direction = match p.get("direction").and_then(Value::as_str) {
                None | Some("Right") => PaddingDirection::Right,
                Some("Left") => PaddingDirection::Left,
                Some(other) => {
                    return Err(Error::unsupported(format!(
                        "padding direction {other:?} in {what}"
                    )))
                }
            };
            Some(Padding {
                strategy,
                direction,
                pad_to_multiple_of: usize_of(p, "pad_to_multiple_of", what, "padding")?,
                pad_id: usize_of(p, "pad_id", what, "padding")?.unwrap_or(0) as u32,
                pad_type_id: usize_of(p, "pad_type_id", what, "padding")?.unwrap_or(0) as u32,
                pad_token: p
                    .get("pad_token")
                    .and_then(Value::as_str)
                    .unwrap_or("[PAD]")
                    .to_string(),
            })
        }
        Some(other) => {
            return Err(Error::format(
                what,
                format!("padding is not an object: {other}"),
            ))
        }
    };

    // added_tokens
    let mut added = Vec::new();
    if let Some(list) = root.get("added_tokens") {
        let list = list
            .as_array()
            .ok_or_else(|| Error::format(what, "added_tokens is not a list"))?;
        for t in list {
            let t = t
                .as_object()
                .ok_or_else(|| Error::format(what, "an added token is not an object"))?;
            let content = t
                .get("content")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::format(what, "an added token has no content"))?;
            let id =
                t.get("id").and_then(Value::as_u64).ok_or_else(|| {
                    Error::format(what, format!("added token {content:?} has no id"))
                })? as u32;
            if vocab.token(id).map(|s| &**s) != Some(content) {
                return Err(Error::unsupported(format!(
                    "added token {content:?} (id {id}) that is not the vocab's token {id} in {what}"
                )));
            }
            for option in ["normalized", "lstrip", "rstrip", "single_word"] {
                if bool_or(t, option, false) {
                    return Err(Error::unsupported(format!(
                        "added token {content:?} with {option}: true in {what}"
                    )));
                }
            }
            added.push(AddedToken {
                content: content.to_string(),
                id,
                special: bool_or(t, "special", false),
            });
        }
    }

    // the stages, as tokenizer.json names them (a child module builds its parent's struct)
    Ok(Tokenizer {
        vocab,
        normalizer,
        pre_tokenizer: BertPreTokenizer::default(),
        model: wordpiece,
        post_processor,
        decoder,
        added_tokens: AddedTokens::new(added),
        truncation,
        padding,
    })
}

/// TemplateProcessing: `single` / `pair` lists of {"SpecialToken": {id, type_id}} and
/// {"Sequence": {id: "A"|"B", type_id}}, special tokens resolved through `special_tokens`.
fn parse_template(p: &Map<String, Value>, what: &str) -> Result<BertProcessing> {
    let specials = p.get("special_tokens").and_then(Value::as_object);
    let parse_list = |key: &str| -> Result<Vec<Piece>> {
        let list = p
            .get(key)
            .and_then(Value::as_array)
            .ok_or_else(|| Error::format(what, format!("post_processor.{key} is not a list")))?;
        let mut pieces = Vec::new();
        for item in list {
            let bad = || Error::format(what, format!("post_processor.{key}: cannot read {item}"));
            let item = item.as_object().ok_or_else(bad)?;
            if let Some(s) = item.get("SpecialToken").and_then(Value::as_object) {
                let name = s.get("id").and_then(Value::as_str).ok_or_else(bad)?;
                let type_id = s.get("type_id").and_then(Value::as_u64).unwrap_or(0) as u32;
                let ids = specials
                    .and_then(|m| m.get(name))
                    .and_then(|t| t.get("ids"))
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        Error::format(
                            what,
                            format!(
                                "post_processor: special token {name:?} is not in special_tokens"
                            ),
                        )
                    })?
                    .iter()
                    .map(|v| v.as_u64().map(|x| x as u32).ok_or_else(bad))
                    .collect::<Result<Vec<u32>>>()?;
                pieces.push(Piece::Special { ids, type_id });
            } else if let Some(s) = item.get("Sequence").and_then(Value::as_object) {
                let type_id = s.get("type_id").and_then(Value::as_u64).unwrap_or(0) as u32;
                match s.get("id").and_then(Value::as_str) {
                    Some("A") => pieces.push(Piece::A { type_id }),
                    Some("B") => pieces.push(Piece::B { type_id }),
                    _ => return Err(bad()),
                }
            } else {
                return Err(bad());
            }
        }
        Ok(pieces)
    };
    let single = parse_list("single")?;
    let pair = parse_list("pair")?;
    let count = |t: &[Piece], a: bool| {
        t.iter()
            .filter(|p| matches!(p, Piece::A { .. }) == a && !matches!(p, Piece::Special { .. }))
            .count()
    };
    if count(&single, true) != 1
        || count(&single, false) != 0
        || count(&pair, true) != 1
        || count(&pair, false) != 1
    {
        return Err(Error::unsupported(format!(
            "a TemplateProcessing in {what} whose single template does not hold A once, or whose pair template does not hold A and B once each"
        )));
    }
    Ok(BertProcessing { single, pair })
}
