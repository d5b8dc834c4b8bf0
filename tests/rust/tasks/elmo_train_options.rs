//! `ElmoTrainOptions`: the one options type of an ELMo classifier's training, read from
//! JavaScript's options object (`from_json`, what the wasm trainer calls) and filled by
//! `webnlu elmo-train`'s flags, both checked by `validate`: defaults for what is left out,
//! camelCase names, `training` by name, and clear errors for a misspelt name, a value of the
//! wrong type and each value out of range; and JS's split by share against the CLI's by counts.

use serde_json::json;
use webnlu::models::elmo::classifier::ElmoTraining;
use webnlu::tasks::elmo_examples::RatedSentence;
use webnlu::tasks::elmo_training::{shuffle_and_split, ElmoTrainOptions};

fn error(options: serde_json::Value) -> String {
    match ElmoTrainOptions::from_json(options) {
        Ok(o) => panic!("expected an error, got {o:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn elmo_options_left_out_take_the_defaults_and_names_are_camel_case() {
    let defaults = ElmoTrainOptions::default();
    assert_eq!(
        defaults,
        ElmoTrainOptions {
            training: ElmoTraining::Head,
            epochs: 10,
            batch_size: 32,
            learning_rate: 3e-3,
            seed: 1,
            validation_fraction: 0.1,
        }
    );
    assert_eq!(ElmoTrainOptions::from_json(json!({})).unwrap(), defaults);
    assert_eq!(
        ElmoTrainOptions::from_json(serde_json::Value::Null).unwrap(),
        defaults
    );
    let options = ElmoTrainOptions::from_json(json!({
        "training": "end-to-end", "epochs": 2, "batchSize": 16, "learningRate": 0.01,
        "seed": 3, "validation": 0.25,
    }))
    .unwrap();
    assert_eq!(
        options,
        ElmoTrainOptions {
            training: ElmoTraining::EndToEnd,
            epochs: 2,
            batch_size: 16,
            learning_rate: 0.01,
            seed: 3,
            validation_fraction: 0.25,
        }
    );
    // one option given: the others keep their defaults
    assert_eq!(
        ElmoTrainOptions::from_json(json!({ "batchSize": 4 })).unwrap(),
        ElmoTrainOptions {
            batch_size: 4,
            ..defaults
        }
    );
    // `validation: 0` holds nothing out
    assert_eq!(
        ElmoTrainOptions::from_json(json!({ "validation": 0 }))
            .unwrap()
            .validation_fraction,
        0.0
    );
}

#[test]
fn elmo_training_is_read_by_name_and_written_the_same() {
    for (name, training) in [
        ("head", ElmoTraining::Head),
        ("mix", ElmoTraining::Mix),
        ("end-to-end", ElmoTraining::EndToEnd),
    ] {
        let options = ElmoTrainOptions::from_json(json!({ "training": name })).unwrap();
        assert_eq!(options.training, training);
        assert_eq!(training.to_string(), name); // the CLI's "training" field
    }
    let e = error(json!({ "training": "all" }));
    assert!(
        e.contains("training option training: training must be 'head', 'mix' or 'end-to-end', found \"all\""),
        "{e}"
    );
    // the CLI's and AllenNLP's spellings are not names here
    let e = error(json!({ "training": "end_to_end" }));
    assert!(e.contains("found \"end_to_end\""), "{e}");
}

#[test]
fn an_unknown_elmo_option_is_named_with_the_valid_ones() {
    let e = error(json!({ "epochs": 2, "batch_size": 4 }));
    assert!(e.contains("unknown training option"), "{e}");
    assert!(e.contains("`batch_size`"), "{e}");
    for valid in [
        "`training`",
        "`epochs`",
        "`batchSize`",
        "`learningRate`",
        "`seed`",
        "`validation`",
    ] {
        assert!(e.contains(valid), "{valid} not listed: {e}");
    }
    // BERT's options are not ELMo's; a callback sent as a text is named too
    assert!(error(json!({ "freeze": "all" })).contains("unknown field `freeze`"));
    assert!(error(json!({ "onEpoch": "a function" })).contains("unknown field `onEpoch`"));
    // not an object
    let e = error(json!([1, 2]));
    assert!(e.contains("the training options must be an object"), "{e}");
}

#[test]
fn an_elmo_option_of_the_wrong_type_names_the_option_and_the_value() {
    let cases = [
        (
            json!({ "seed": 1, "epochs": "3" }),
            "training option epochs",
            "string \"3\"",
        ),
        (
            json!({ "batchSize": 2.5 }),
            "training option batchSize",
            "floating point `2.5`",
        ),
        (
            json!({ "seed": -1 }),
            "training option seed",
            "integer `-1`",
        ),
        (
            json!({ "training": 3 }),
            "training option training",
            "integer `3`",
        ),
        (
            json!({ "validation": "0.2" }),
            "training option validation",
            "string \"0.2\"",
        ),
        (
            json!({ "learningRate": null }),
            "training option learningRate",
            "null",
        ),
    ];
    for (options, option, value) in cases {
        let e = error(options);
        assert!(e.contains(option) && e.contains(value), "{e}");
    }
}

#[test]
fn each_elmo_option_out_of_range_is_named_with_its_value_and_range() {
    let cases = [
        (
            json!({ "epochs": 0 }),
            "epochs must be a positive integer (>= 1), found 0",
        ),
        (
            json!({ "batchSize": 0 }),
            "batchSize must be a positive integer (>= 1), found 0",
        ),
        (
            json!({ "learningRate": 0 }),
            "learningRate must be a finite number > 0, found 0",
        ),
        (
            json!({ "learningRate": -0.5 }),
            "learningRate must be a finite number > 0, found -0.5",
        ),
        (
            json!({ "validation": 1 }),
            "validation must be the fraction of examples to hold out, in [0, 1), found 1",
        ),
        (
            json!({ "validation": -0.1 }),
            "validation must be the fraction of examples to hold out, in [0, 1), found -0.1",
        ),
    ];
    for (options, message) in cases {
        let e = error(options.clone());
        assert!(e.contains(message), "{options}: {e}");
    }
    // what JSON cannot carry, the CLI's flags can: `validate` names them the same way
    for (learning_rate, found) in [(f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let options = ElmoTrainOptions {
            learning_rate,
            ..ElmoTrainOptions::default()
        };
        let e = options.validate().unwrap_err();
        assert_eq!(e.option, "learningRate");
        assert_eq!(
            e.message(),
            format!("learningRate must be a finite number > 0, found {found}")
        );
    }
    assert!(ElmoTrainOptions::default().validate().is_ok());
}

fn rated(count: usize) -> Vec<RatedSentence> {
    (0..count)
        .map(|i| RatedSentence {
            tokens: vec![format!("word{i}")],
            label: (i % 2) as u32,
        })
        .collect()
}

#[test]
fn the_elmo_split_by_share_holds_out_what_the_clis_counts_do() {
    let options = ElmoTrainOptions {
        seed: 9,
        validation_fraction: 0.2,
        ..ElmoTrainOptions::default()
    };
    let (train, held) = options.split(rated(100)).unwrap();
    let (cli_train, cli_held) = shuffle_and_split(rated(100), 80, 20, 9).unwrap();
    assert_eq!((train.len(), held.len()), (80, 20));
    assert_eq!(train, cli_train);
    assert_eq!(held, cli_held);
    // round(0.1 * 45) = 5 held out; validation 0: none
    let (train, held) = ElmoTrainOptions::default().split(rated(45)).unwrap();
    assert_eq!((train.len(), held.len()), (40, 5));
    let none = ElmoTrainOptions {
        validation_fraction: 0.0,
        ..ElmoTrainOptions::default()
    };
    let (train, held) = none.split(rated(7)).unwrap();
    assert_eq!((train.len(), held.len()), (7, 0));
}
