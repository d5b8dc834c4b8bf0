//! Bad input gets a clear `webnlu::Error` naming the problem, never a panic.

use webnlu::tokenizer::{Tokenizer, Truncation, TruncationStrategy, VocabOptions};
use webnlu::Error;

const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n";

fn message<T: std::fmt::Debug>(result: Result<T, Error>) -> (Error, String) {
    let error = result.expect_err("expected an error");
    let text = error.to_string();
    (error, text)
}

#[test]
fn vocab_without_unk_is_refused() {
    let (error, text) = message(Tokenizer::from_vocab_str(
        "[CLS]\n[SEP]\nhello\n",
        &VocabOptions::default(),
    ));
    assert!(matches!(error, Error::Format { .. }), "{error:?}");
    assert!(
        text.contains("[UNK]") && text.contains("not in the vocabulary"),
        "{text}"
    );
}

#[test]
fn duplicate_tokens_are_refused() {
    let (_, text) = message(Tokenizer::from_vocab_str(
        "[UNK]\n[CLS]\n[SEP]\nhello\nworld\nhello\n",
        &VocabOptions::default(),
    ));
    assert!(
        text.contains("duplicate token \"hello\"") && text.contains("3") && text.contains("5"),
        "{text}"
    );
}

#[test]
fn empty_vocab_line_is_refused() {
    let (_, text) = message(Tokenizer::from_vocab_str(
        "[UNK]\n\n[CLS]\n[SEP]\n",
        &VocabOptions::default(),
    ));
    assert!(text.contains("line 2") && text.contains("empty"), "{text}");
}

#[test]
fn unreadable_files_are_refused() {
    let (error, text) = message(Tokenizer::from_tokenizer_json_file(
        "/nonexistent/tokenizer.json",
    ));
    assert!(
        matches!(error, Error::Io { .. }) && text.contains("/nonexistent/tokenizer.json"),
        "{text}"
    );
    let (error, _) = message(Tokenizer::from_vocab_file(
        "/nonexistent/vocab.txt",
        &VocabOptions::default(),
    ));
    assert!(matches!(error, Error::Io { .. }));
    let dir = std::env::temp_dir().join(format!("webnlu-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("vocab.txt");
    std::fs::write(&bad, b"[UNK]\n\xff\xfe\n").unwrap();
    let (_, text) = message(Tokenizer::from_vocab_file(&bad, &VocabOptions::default()));
    assert!(text.contains("not UTF-8"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

fn tokenizer_json(
    model_type: &str,
    normalizer: &str,
    pre_tokenizer: &str,
    post_processor: &str,
    decoder: &str,
) -> String {
    format!(
        r###"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
        "normalizer":{normalizer},"pre_tokenizer":{pre_tokenizer},"post_processor":{post_processor},"decoder":{decoder},
        "model":{{"type":"{model_type}","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,
        "vocab":{{"[UNK]":0,"[CLS]":1,"[SEP]":2,"hello":3}}}}}}"###
    )
}

const BERT_NORM: &str = r#"{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}"#;
const BERT_PRE: &str = r#"{"type":"BertPreTokenizer"}"#;
const BERT_POST: &str = r#"{"type":"BertProcessing","sep":["[SEP]",2],"cls":["[CLS]",1]}"#;
const WP_DEC: &str = r###"{"type":"WordPiece","prefix":"##","cleanup":true}"###;

#[test]
fn a_good_minimal_tokenizer_json_loads() {
    let t = Tokenizer::from_tokenizer_json(&tokenizer_json(
        "WordPiece",
        BERT_NORM,
        BERT_PRE,
        BERT_POST,
        WP_DEC,
    ))
    .unwrap();
    let e = t.encode("Hello there").unwrap();
    assert_eq!(e.ids, [1, 3, 0, 2]);
}

#[test]
fn unsupported_tokenizer_json_types_are_named() {
    let cases = [
        (
            tokenizer_json("BPE", BERT_NORM, BERT_PRE, BERT_POST, WP_DEC),
            "\"BPE\"",
        ),
        (
            tokenizer_json(
                "WordPiece",
                r#"{"type":"Lowercase"}"#,
                BERT_PRE,
                BERT_POST,
                WP_DEC,
            ),
            "\"Lowercase\"",
        ),
        (
            tokenizer_json(
                "WordPiece",
                BERT_NORM,
                r#"{"type":"ByteLevel","add_prefix_space":false}"#,
                BERT_POST,
                WP_DEC,
            ),
            "\"ByteLevel\"",
        ),
        (
            tokenizer_json(
                "WordPiece",
                BERT_NORM,
                BERT_PRE,
                r#"{"type":"RobertaProcessing"}"#,
                WP_DEC,
            ),
            "\"RobertaProcessing\"",
        ),
        (
            tokenizer_json(
                "WordPiece",
                BERT_NORM,
                BERT_PRE,
                BERT_POST,
                r#"{"type":"Metaspace"}"#,
            ),
            "\"Metaspace\"",
        ),
    ];
    for (json, name) in cases {
        let (error, text) = message(Tokenizer::from_tokenizer_json(&json));
        assert!(matches!(error, Error::Unsupported { .. }), "{error:?}");
        assert!(text.contains(name), "message {text:?} should name {name}");
    }
}

#[test]
fn malformed_tokenizer_json_is_refused() {
    for (json, expected) in [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ("{}", "no \"model\" section"),
        (
            r#"{"model":{"type":"WordPiece","vocab":{"a":0,"b":0}}}"#,
            "id 0",
        ),
        (
            r#"{"model":{"type":"WordPiece","vocab":{"a":0}},"pre_tokenizer":{"type":"BertPreTokenizer"}}"#,
            "[UNK]",
        ),
    ] {
        let (_, text) = message(Tokenizer::from_tokenizer_json(json));
        assert!(
            text.contains(expected),
            "{json}: message {text:?} should contain {expected:?}"
        );
    }
}

#[test]
fn impossible_truncation_is_an_error_not_a_panic() {
    let mut t = Tokenizer::from_vocab_str(VOCAB, &VocabOptions::default()).unwrap();
    t.set_truncation(Some(Truncation {
        max_length: 4,
        stride: 2,
        strategy: TruncationStrategy::LongestFirst,
    }));
    let (_, text) = message(t.encode("hello world hello world"));
    assert!(text.contains("stride 2"), "{text}");
    t.set_truncation(Some(Truncation {
        max_length: 2,
        stride: 0,
        strategy: TruncationStrategy::LongestFirst,
    }));
    let (_, text) = message(t.encode("hello"));
    assert!(text.contains("max_length 2"), "{text}");
    t.set_truncation(Some(Truncation {
        max_length: 4,
        stride: 0,
        strategy: TruncationStrategy::OnlySecond,
    }));
    let (_, text) = message(t.encode("hello world hello world"));
    assert!(text.contains("only_second"), "{text}");
}

#[test]
fn decoding_an_unknown_id_is_an_error() {
    let t = Tokenizer::from_vocab_str(VOCAB, &VocabOptions::default()).unwrap();
    let (_, text) = message(t.decode(&[5, 999], false));
    assert!(text.contains("999") && text.contains("size 8"), "{text}");
    assert_eq!(t.decode(&[2, 5, 7, 6, 3], true).unwrap(), "hellos world");
}
