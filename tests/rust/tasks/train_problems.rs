//! Sequence classifiers for the other problems of transformers' `problem_type`: regression
//! (MSE on a number per text) and multi-label classification (BCE with logits on a 0/1 per
//! label), trained with `train_classifier` against PyTorch + transformers
//! (tests/fixtures/tasks/training_reference.json `problems`, written by
//! tests/tasks/training_reference.py: the first step's loss and gradients, three AdamW steps'
//! losses and parameters, head and all, on both devices); the examples' targets and their
//! errors, the validation scores (MAE, Pearson, exact match), and `classify` / save -> load of
//! the trained models (sigmoid scores and `problem_type` for multi-label, the raw value for
//! regression).

use crate::op_checks;

use std::collections::BTreeMap;
use std::path::Path;

use op_checks::{assert_close, gpu};
use pollster::block_on;
use serde_json::Value;
use webnlu::io::ModelFiles;
use webnlu::tasks::problem::{exact_matches, example_targets, regression_scores, ExampleTargets};
use webnlu::tasks::{
    ClassifierInput, ClassifierTraining, Example, Pipeline, ProblemType, TrainOptions,
};
use webnlu::{Device, Tensor};

const REFERENCE: &str = "../tests/fixtures/tasks/training_reference.json";

fn reference() -> Value {
    let text = std::fs::read_to_string(REFERENCE).unwrap_or_else(|e| {
        panic!(
            "{REFERENCE}: {e}; make it with /work/torchenv/bin/python tests/tasks/training_reference.py"
        )
    });
    serde_json::from_str(&text).expect("training_reference.json is JSON")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn example(text: &str, label: &str) -> Example {
    Example {
        text: text.to_string(),
        pair: None,
        label: label.to_string(),
    }
}

/// A committed random checkpoint with its dropout set to 0 (the torch reference ran without).
fn files_without_dropout(model: &str) -> ModelFiles {
    let mut files = ModelFiles::from_dir(Path::new("..").join(model)).unwrap_or_else(|e| {
        panic!("{e}: regenerate with `python tests/models/reference.py` (tests/models/README.md)")
    });
    let mut config: Value = serde_json::from_slice(files.get("config.json").unwrap()).unwrap();
    for key in [
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "classifier_dropout",
    ] {
        config[key] = 0.0.into();
    }
    files.insert("config.json", serde_json::to_vec(&config).unwrap());
    files
}

fn problems_match_torch(device: &Device) {
    let reference = reference();
    for (name, problem) in [
        ("regression", ProblemType::Regression),
        ("multi_label_classification", ProblemType::MultiLabel),
    ] {
        let r = &reference["problems"][name];
        let files = files_without_dropout(r["model"].as_str().unwrap());
        let examples: Vec<Example> = r["examples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| example(e["text"].as_str().unwrap(), e["label"].as_str().unwrap()))
            .collect();
        let steps = r["steps"].as_u64().unwrap() as usize;
        for (policy, expected) in r["policies"].as_object().unwrap() {
            let mut p = Pipeline::load(&files, device).unwrap();
            // torch trains the checkpoint's classifier: give the new head its weights
            let checkpoint_head: Vec<(String, Vec<usize>, Vec<f32>)> = p
                .model
                .named_parameters()
                .into_iter()
                .filter(|(n, _)| n.starts_with("classifier."))
                .map(|(n, t)| (n, t.shape().to_vec(), t.to_vec_blocking().unwrap()))
                .collect();
            let options = TrainOptions {
                freeze: policy.parse().unwrap(),
                epochs: steps,
                learning_rate: r["lr"].as_f64().unwrap() as f32,
                batch_size: examples.len(),
                validation_fraction: 0.0,
                seed: 1,
                weight_decay: r["weight_decay"].as_f64().unwrap() as f32,
                max_grad_norm: Some(r["max_norm"].as_f64().unwrap() as f32),
                problem,
                ..TrainOptions::default()
            };
            let mut run = block_on(ClassifierTraining::new(&mut p, &examples, options)).unwrap();
            for value in p.model.parameters_mut() {
                if let Some((n, shape, data)) =
                    checkpoint_head.iter().find(|(n, ..)| n == value.name())
                {
                    *value = Tensor::from_vec(device, shape, data.clone(), n).unwrap();
                }
            }
            let label = format!("{name}, {policy}");
            let losses = floats(&expected["losses"]);
            let all: Vec<usize> = (0..examples.len()).collect();
            let (loss, grads) = block_on(run.gradients(&p, &all)).unwrap();
            // a mean of 6 (x 3) f32 losses: rounding only
            assert_close(
                &format!("{label}: first loss"),
                &[loss],
                &losses[..1],
                1e-5,
                1e-5,
            );
            for (param, want) in expected["grads"].as_object().unwrap() {
                let got = grads
                    .get(param)
                    .unwrap_or_else(|| panic!("{label}: no gradient of {param}"))
                    .to_vec_blocking()
                    .unwrap();
                // the 1e-3 relative; the absolute floor covers entries that cancel to ~0
                assert_close(
                    &format!("{label}: gradient of {param}"),
                    &got,
                    &floats(want),
                    1e-6,
                    1e-3,
                );
            }
            for step in 0..steps {
                let progress = block_on(run.run_epoch(&mut p)).unwrap();
                assert_close(
                    &format!("{label}: loss of step {step}"),
                    &[progress.loss],
                    &losses[step..step + 1],
                    1e-5,
                    1e-4,
                );
                assert_eq!(
                    progress.accuracy.is_none(),
                    problem == ProblemType::Regression
                );
            }
            let params: BTreeMap<String, Vec<f32>> = p
                .model
                .named_parameters()
                .into_iter()
                .map(|(n, t)| (n, t.to_vec_blocking().unwrap()))
                .collect();
            for (param, want) in expected["after"].as_object().unwrap() {
                // three AdamW steps of lr 5e-3: rounding moves values by far less than 1e-5
                assert_close(
                    &format!("{label}: {param} after {steps} steps"),
                    &params[param],
                    &floats(want),
                    1e-5,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn regression_and_multi_label_training_match_torch_on_the_cpu() {
    problems_match_torch(&Device::Cpu);
}

#[test]
fn regression_and_multi_label_training_match_torch_on_the_gpu() {
    problems_match_torch(&gpu());
}

#[test]
fn targets_scores_and_errors() {
    let examples = [example("a", "1.5"), example("b", " -2 ")];
    let (labels, targets) = example_targets(&examples, ProblemType::Regression).unwrap();
    assert_eq!(labels, ["LABEL_0"]);
    assert_eq!(targets, ExampleTargets::Values(vec![1.5, -2.0]));
    let bad = [example("a", "1.5"), example("b", "high")];
    let e = example_targets(&bad, ProblemType::Regression)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("example 1") && e.contains("\"high\", not a number"),
        "{e}"
    );

    let examples = [
        example("a", "sports, politics"),
        example("b", ""),
        example("c", "art"),
    ];
    let (labels, targets) = example_targets(&examples, ProblemType::MultiLabel).unwrap();
    assert_eq!(labels, ["art", "politics", "sports"]);
    assert_eq!(
        targets,
        ExampleTargets::Values(vec![0., 1., 1., 0., 0., 0., 1., 0., 0.])
    );
    let one = [example("a", "x"), example("b", "x,x")];
    let e = example_targets(&one, ProblemType::MultiLabel)
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 label(s)"), "{e}");
    assert!("ranking".parse::<ProblemType>().is_err());

    // numpy: mean(|p - t|) = 7/3, corrcoef([1,2,3],[2,4,7]) = 0.9933992677987828
    let (mae, pearson) = regression_scores(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]);
    assert!((mae - 7.0 / 3.0).abs() < 1e-6);
    assert!((pearson.unwrap() - 0.993_399_27).abs() < 1e-6);
    assert_eq!(regression_scores(&[1.0, 1.0], &[2.0, 3.0]).1, None);
    // logit > 0 is a predicted label
    assert_eq!(
        exact_matches(&[1.0, -1.0, 2.0, 0.5], &[1.0, 0.0, 1.0, 0.0], 2),
        1
    );
}

/// 30 texts of the random vocabulary: the regression target counts "happy"/"good" minus
/// "sad"/"bad"; the multi-label target names the animals in the text.
fn problem_examples(problem: ProblemType) -> Vec<Example> {
    let animals = ["cat", "dog", "bird"];
    let moods = ["happy", "sad", "good", "bad", "old"];
    (0..30)
        .map(|i| {
            let a = animals[i % 3];
            let b = animals[(i / 3) % 3];
            let mood = moods[i % 5];
            let text = format!("the {mood} {a} saw a {b} near the river");
            let label = match problem {
                ProblemType::Regression => match mood {
                    "happy" | "good" => "1.5",
                    "sad" | "bad" => "-1.5",
                    _ => "0",
                }
                .to_string(),
                _ => format!("{a},{b}"),
            };
            example(&text, &label)
        })
        .collect()
}

#[test]
fn trained_regressors_and_multi_label_classifiers_classify_and_save() {
    let files = ModelFiles::from_dir(Path::new(
        "../tests/fixtures/bert-reference/random/bert-random-classifier",
    ))
    .unwrap();
    for problem in [ProblemType::Regression, ProblemType::MultiLabel] {
        let mut p = Pipeline::load(&files, &Device::Cpu).unwrap();
        let options = TrainOptions {
            freeze: "all".parse().unwrap(),
            epochs: 30,
            learning_rate: 1e-2,
            batch_size: 8,
            validation_fraction: 0.2,
            seed: 4,
            problem,
            // the animals of a text are a bag of its words: the mean of the tokens carries them
            classifier_input: Some(ClassifierInput::MeanPooled),
            ..TrainOptions::default()
        };
        let examples = problem_examples(problem);
        let report = block_on(p.train_classifier(&examples, options, |_| {})).unwrap();
        let first = &report.epochs[0];
        let last = report.epochs.last().unwrap();
        println!("{problem:?}: first {first:?}\nlast {last:?}");
        assert!(last.loss < first.loss * 0.5, "{problem:?}: the loss falls");
        assert_eq!(report.problem_type, problem.name());
        let texts = ["the happy cat saw a dog near the river"];
        let classified = block_on(p.classify(&texts)).unwrap();
        match problem {
            ProblemType::Regression => {
                // the targets are -1.5, 0 and 1.5: the error falls, the ranking is right
                let (mae, pearson) = (last.validation_mae.unwrap(), last.validation_pearson);
                assert!(mae < first.validation_mae.unwrap(), "{first:?} -> {last:?}");
                assert!(pearson.unwrap() > 0.9, "{last:?}");
                assert_eq!(last.validation_accuracy, None);
                assert_eq!(classified[0].scores.len(), 1);
                assert_eq!(classified[0].score, classified[0].scores[0]);
                assert!(classified[0].labels.is_none());
            }
            _ => {
                assert!(last.validation_accuracy.unwrap() >= 0.8, "{last:?}");
                let c = &classified[0];
                assert_eq!(c.scores.len(), 3);
                // sigmoid per label, not a softmax
                assert!((c.scores.iter().sum::<f32>() - 1.0).abs() > 1e-3, "{c:?}");
                assert_eq!(
                    c.labels.as_deref(),
                    Some(&["cat".to_string(), "dog".to_string()][..]),
                    "{c:?}"
                );
            }
        }
        let saved = block_on(p.save_to_files()).unwrap();
        let config: Value = serde_json::from_slice(saved.get("config.json").unwrap()).unwrap();
        assert_eq!(config["problem_type"], problem.name());
        let reloaded = Pipeline::load(&saved, &Device::Cpu).unwrap();
        assert_eq!(reloaded.problem_type, problem);
        assert_eq!(block_on(reloaded.classify(&texts)).unwrap(), classified);
    }
}
