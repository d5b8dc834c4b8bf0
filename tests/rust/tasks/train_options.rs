//! `TrainOptions::from_json`: JavaScript's options object read into the one options type (the
//! wasm trainers read it so): defaults for what is left out, camelCase names, and clear errors
//! for a misspelt name, a value of the wrong type and a value out of range.

use serde_json::json;
use webnlu::models::Freeze;
use webnlu::tasks::{ClassifierInput, LongTexts, ProblemType, TrainOptions};

fn error(options: serde_json::Value) -> String {
    match TrainOptions::from_json(options) {
        Ok(o) => panic!("expected an error, got {o:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn left_out_options_take_the_defaults_and_names_are_camel_case() {
    assert_eq!(
        TrainOptions::from_json(json!({})).unwrap(),
        TrainOptions::default()
    );
    assert_eq!(
        TrainOptions::from_json(serde_json::Value::Null).unwrap(),
        TrainOptions::default()
    );
    let options = TrainOptions::from_json(json!({
        "freeze": "top:2", "epochs": 5, "learningRate": 0.02, "batchSize": 4, "accumulation": 3,
        "validation": 0.25, "seed": 7, "weightDecay": 0.05, "warmupRatio": 0.2,
        "maxGradNorm": null, "pooling": "mean", "truncate": true, "task": "multi_label",
        "mlmProbability": 0.3,
    }))
    .unwrap();
    assert_eq!(
        options,
        TrainOptions {
            freeze: Freeze::Top(2),
            epochs: 5,
            learning_rate: 0.02,
            batch_size: 4,
            accumulation_steps: 3,
            validation_fraction: 0.25,
            seed: 7,
            weight_decay: 0.05,
            warmup_ratio: 0.2,
            max_grad_norm: None,
            classifier_input: Some(ClassifierInput::MeanPooled),
            long_texts: Some(LongTexts::Truncate),
            problem: ProblemType::MultiLabel,
            mlm_probability: Some(0.3),
        }
    );
    // a number sets the norm; `truncate: false` reads as the pipeline reads
    let options =
        TrainOptions::from_json(json!({ "maxGradNorm": 0.5, "truncate": false })).unwrap();
    assert_eq!(options.max_grad_norm, Some(0.5));
    assert_eq!(options.long_texts, None);
}

#[test]
fn an_unknown_option_is_named_with_the_valid_ones() {
    let e = error(json!({ "epochs": 2, "learning_rate": 0.1 }));
    assert!(e.contains("unknown training option"), "{e}");
    assert!(e.contains("`learning_rate`"), "{e}");
    for valid in [
        "`learningRate`",
        "`batchSize`",
        "`maxGradNorm`",
        "`mlmProbability`",
    ] {
        assert!(e.contains(valid), "{valid} not listed: {e}");
    }
}

#[test]
fn a_value_of_the_wrong_type_names_the_option_and_the_value() {
    let e = error(json!({ "seed": 1, "epochs": "3" }));
    assert!(
        e.contains("training option epochs") && e.contains("string \"3\""),
        "{e}"
    );
    let e = error(json!({ "truncate": "yes" }));
    assert!(
        e.contains("training option truncate") && e.contains("expected a boolean"),
        "{e}"
    );
    let e = error(json!({ "freeze": "top" }));
    assert!(
        e.contains("training option freeze") && e.contains("head, top:K"),
        "{e}"
    );
    let e = error(json!({ "task": "clustering" }));
    assert!(
        e.contains("training option task") && e.contains("\"clustering\""),
        "{e}"
    );
    let e = error(json!({ "batchSize": 2.5 }));
    assert!(e.contains("training option batchSize"), "{e}");
    let e = error(json!([1, 2]));
    assert!(e.contains("must be an object"), "{e}");
}

#[test]
fn a_value_out_of_range_names_the_option_the_value_and_the_range() {
    for (options, want) in [
        (
            json!({ "epochs": 0 }),
            "epochs must be a positive integer (>= 1), found 0",
        ),
        (
            json!({ "batchSize": 0 }),
            "batchSize must be a positive integer (>= 1), found 0",
        ),
        (
            json!({ "accumulation": 0 }),
            "accumulation must be a positive integer (>= 1), found 0",
        ),
        (
            json!({ "validation": 1 }),
            "validation must be the fraction of examples to hold out, in [0, 1), found 1",
        ),
        (json!({ "validation": -0.1 }), "in [0, 1), found -0.1"),
        (
            json!({ "learningRate": -1 }),
            "learningRate must be a finite number >= 0, found -1",
        ),
        (
            json!({ "weightDecay": -0.5 }),
            "weightDecay must be a finite number >= 0, found -0.5",
        ),
        (
            json!({ "warmupRatio": 1.5 }),
            "warmupRatio must be in [0, 1], found 1.5",
        ),
        (
            json!({ "maxGradNorm": 0 }),
            "maxGradNorm must be a positive number, or null (CLI: none) for no clipping, found 0",
        ),
        (
            json!({ "mlmProbability": 1 }),
            "mlmProbability must be in (0, 1), found 1",
        ),
        (
            json!({ "freeze": "top:0" }),
            "freeze top:K must open at least one layer (K >= 1)",
        ),
    ] {
        let e = error(options.clone());
        assert!(e.contains(want), "{options}: {e}");
    }
}
