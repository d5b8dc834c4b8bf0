//! Token-classification training (`tasks::train_tokens`): the example readers (CoNLL, JSON
//! lines) and their errors, seqeval's entity-level scores on hand-made cases, the alignment of
//! word labels to WordPieces and the training itself against PyTorch + transformers
//! (tests/fixtures/tasks/training_reference.json `tokens`, written by
//! tests/tasks/training_reference.py: the token-classification recipe on the committed random
//! BertForTokenClassification, every freezing policy, both devices), then CPU == GPU with
//! dropout, the loss falling on a tiny set, `classify_tokens` and save -> load on the result,
//! and clear errors for bad input.

use crate::op_checks;

use std::collections::BTreeMap;
use std::path::Path;

use op_checks::{assert_close, gpu};
use pollster::block_on;
use serde_json::Value;
use webnlu::io::ModelFiles;
use webnlu::models::Freeze;
use webnlu::tasks::word_examples::check_word_examples;
use webnlu::tasks::{
    parse_word_examples, ClassifierInput, LongTexts, Pipeline, ReadOptions, StepsProgress,
    TokenClassifierTraining, TrainOptions, WordExample, WordExampleFormat,
};
use webnlu::train::entities::{entities, Entity, EntityCounts};
use webnlu::{Device, Tensor};

const REFERENCE: &str = "../tests/fixtures/tasks/training_reference.json";
const NER: &str = "tests/fixtures/bert-reference/random/bert-random-ner";

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

fn words(text: &str, labels: &str) -> WordExample {
    WordExample {
        words: text.split(' ').map(String::from).collect(),
        labels: labels.split(' ').map(String::from).collect(),
    }
}

#[test]
fn conll_and_json_lines_read_as_word_examples() {
    let conll = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\r\n\
                 German JJ B-NP B-MISC\n\n\nPeter B-PER\nBlackburn\tI-PER\n";
    let read = parse_word_examples(conll, WordExampleFormat::Auto, "train.conll").unwrap();
    assert_eq!(
        read,
        vec![
            words("EU rejects German", "B-ORG O B-MISC"),
            words("Peter Blackburn", "B-PER I-PER")
        ]
    );
    let jsonl = "{\"words\": [\"the\", \"cat\"], \"labels\": [\"O\", \"B-ANIMAL\"]}\n\n\
                 {\"words\": [\"Paris\"], \"labels\": [\"B-LOC\"]}\n";
    let read = parse_word_examples(jsonl, WordExampleFormat::Auto, "train.jsonl").unwrap();
    assert_eq!(
        read,
        vec![words("the cat", "O B-ANIMAL"), words("Paris", "B-LOC")]
    );

    let error = |content: &str, format| {
        parse_word_examples(content, format, "ex.txt")
            .unwrap_err()
            .to_string()
    };
    let e = error("EU B-ORG\nrejects\n", WordExampleFormat::Conll);
    assert!(
        e.contains("line 2") && e.contains("word and its label"),
        "{e}"
    );
    let e = error(
        "{\"words\": [\"a\", \"b\"], \"labels\": [\"O\"]}",
        WordExampleFormat::Auto,
    );
    assert!(e.contains("example 0 has 2 words but 1 labels"), "{e}");
    let e = error("{\"words\": [\"a\"]}", WordExampleFormat::JsonLines);
    assert!(e.contains("line 1") && e.contains("labels"), "{e}");
    let e = error("\n\n-DOCSTART- O\n", WordExampleFormat::Conll);
    assert!(e.contains("no examples"), "{e}");
    let e = error(
        "{\"words\": [\"a\", \" \"], \"labels\": [\"O\", \"O\"]}",
        WordExampleFormat::Auto,
    );
    assert!(e.contains("word 1 of example 0 is empty"), "{e}");
    let e = check_word_examples(
        &[WordExample {
            words: vec![],
            labels: vec![],
        }],
        "x",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("example 0 has no words"), "{e}");
    assert!("xml".parse::<WordExampleFormat>().is_err());
}

/// The scores of seqeval 1.2.2 (`classification_report(y_true, y_pred, output_dict=True)`,
/// default mode) on these sentences, computed with it once and written here.
#[test]
fn entity_scores_are_seqevals() {
    let e = |kind: &str, start, end| Entity {
        kind: kind.to_string(),
        start,
        end,
    };
    // get_entities: B/I chunks, an I- after O starts one, a change of type ends one, BIOES
    assert_eq!(
        entities(&["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]),
        vec![e("PER", 0, 1), e("LOC", 3, 3), e("LOC", 4, 4)]
    );
    assert_eq!(
        entities(&["O", "B-PER", "I-PER", "I-LOC", "I-ORG"]),
        vec![e("PER", 1, 2), e("LOC", 3, 3), e("ORG", 4, 4)]
    );
    assert_eq!(entities(&["I-MISC", "I-MISC", "O"]), vec![e("MISC", 0, 1)]);
    assert_eq!(
        entities(&["S-PER", "O", "B-LOC", "E-LOC", "B-ORG", "I-ORG", "E-ORG"]),
        vec![e("PER", 0, 0), e("LOC", 2, 3), e("ORG", 4, 6)]
    );
    assert_eq!(entities::<&str>(&[]), vec![]);

    let mut counts = EntityCounts::default();
    counts.add(
        &["B-PER", "I-PER", "O", "B-LOC", "O"],
        &["B-PER", "I-PER", "O", "B-LOC", "B-LOC"],
    );
    counts.add(
        &["B-ORG", "I-ORG", "I-ORG", "O", "B-PER"],
        &["B-ORG", "I-ORG", "O", "O", "I-PER"],
    );
    let scores = counts.scores();
    let close = |got: f32, want: f64| assert!((got as f64 - want).abs() < 1e-6, "{got} vs {want}");
    let loc = &scores.per_type["LOC"];
    close(loc.precision, 0.5);
    close(loc.recall, 1.0);
    close(loc.f1, 0.6666666666666666);
    assert_eq!(loc.support, 1);
    let org = &scores.per_type["ORG"];
    close(org.precision, 0.0);
    close(org.recall, 0.0);
    close(org.f1, 0.0);
    let per = &scores.per_type["PER"];
    close(per.f1, 1.0);
    assert_eq!(per.support, 2);
    close(scores.overall.precision, 0.6);
    close(scores.overall.recall, 0.75);
    close(scores.overall.f1, 0.6666666666666665);
    assert_eq!(scores.overall.support, 4);

    // lenient: I- starting an entity matches a B- one of the same span
    let mut counts = EntityCounts::default();
    counts.add(&["B-MISC", "I-MISC", "O"], &["I-MISC", "I-MISC", "O"]);
    close(counts.scores().overall.f1, 1.0);
}

/// The random NER checkpoint with its dropout set to 0 (the torch reference ran without).
fn ner_files(without_dropout: bool) -> ModelFiles {
    let mut files = ModelFiles::from_dir(Path::new("..").join(NER)).unwrap_or_else(|e| {
        panic!("{e}: regenerate with `python tests/models/reference.py` (tests/models/README.md)")
    });
    if without_dropout {
        let mut config: Value = serde_json::from_slice(files.get("config.json").unwrap()).unwrap();
        for key in ["hidden_dropout_prob", "attention_probs_dropout_prob"] {
            config[key] = 0.0.into();
        }
        files.insert("config.json", serde_json::to_vec(&config).unwrap());
    }
    files
}

fn reference_examples(r: &Value) -> Vec<WordExample> {
    serde_json::from_value(r["examples"].clone()).unwrap()
}

fn with_max_length(p: &mut Pipeline, max_length: usize) {
    p.set_read_options(ReadOptions {
        max_length,
        long_texts: LongTexts::Truncate,
        ..p.read
    })
    .unwrap();
}

/// The torch reference (training_reference.py `tokens`): transformers' `is_split_into_words`
/// ids and the first-WordPiece labels with -100 elsewhere are ours; for every freezing policy
/// the first step's loss and gradients and three AdamW steps' losses and parameters are
/// PyTorch's.
fn token_training_matches_torch(device: &Device) {
    let reference = reference();
    let r = &reference["tokens"];
    let files = ner_files(true);
    let examples = reference_examples(r);
    let max_length = r["max_length"].as_u64().unwrap() as usize;
    let steps = r["steps"].as_u64().unwrap() as usize;
    let ids: Vec<Vec<u32>> = serde_json::from_value(r["ids"].clone()).unwrap();
    let targets: Vec<Vec<i64>> = serde_json::from_value(r["targets"].clone()).unwrap();
    let labels: Vec<String> = serde_json::from_value(r["labels"].clone()).unwrap();
    for (policy, expected) in r["policies"].as_object().unwrap() {
        let mut p = Pipeline::load(&files, device).unwrap();
        with_max_length(&mut p, max_length);
        let options = TrainOptions {
            freeze: policy.parse().unwrap(),
            epochs: steps,
            learning_rate: r["lr"].as_f64().unwrap() as f32,
            batch_size: examples.len(),
            accumulation_steps: 1,
            validation_fraction: 0.0,
            seed: 1,
            weight_decay: r["weight_decay"].as_f64().unwrap() as f32,
            warmup_ratio: 0.0,
            max_grad_norm: Some(r["max_norm"].as_f64().unwrap() as f32),
            classifier_input: None,
            long_texts: None,
            problem: Default::default(),
            mlm_probability: None,
        };
        let mut run = block_on(TokenClassifierTraining::new(&mut p, &examples, options)).unwrap();
        assert_eq!(run.labels(), labels.as_slice());
        for (e, aligned) in run.aligned().iter().enumerate() {
            assert_eq!(aligned.encoding.ids, ids[e], "ids of example {e}");
            assert_eq!(aligned.targets, targets[e], "aligned labels of example {e}");
        }
        // the last example is cut by the max length: its later words are left out
        assert!(run.report().words_left_out > 0);
        for value in p.model.parameters_mut() {
            if let Some(want) = r["initial_head"].get(value.name()) {
                let shape = value.shape().to_vec();
                let name = value.name().to_string();
                *value = Tensor::from_vec(device, &shape, floats(want), &name).unwrap();
            }
        }
        let losses = floats(&expected["losses"]);
        let all: Vec<usize> = (0..examples.len()).collect();
        let (loss, grads) = block_on(run.gradients(&p, &all)).unwrap();
        // a mean of ~40 cross-entropies of 5 logits in f32: rounding only
        assert_close(
            &format!("{policy}: first loss"),
            &[loss],
            &losses[..1],
            1e-5,
            1e-5,
        );
        for (name, want) in expected["grads"].as_object().unwrap() {
            let got = grads
                .get(name)
                .unwrap_or_else(|| panic!("{policy}: no gradient of {name}"))
                .to_vec_blocking()
                .unwrap();
            // the 1e-3 relative; the absolute floor covers entries that cancel to ~0
            assert_close(
                &format!("{policy}: gradient of {name}"),
                &got,
                &floats(want),
                1e-6,
                1e-3,
            );
        }
        for step in 0..steps {
            let progress = block_on(run.run_epoch(&mut p)).unwrap();
            // one batch per epoch: the epoch's loss (token mean) is the step's
            assert_close(
                &format!("{policy}: loss of step {step}"),
                &[progress.loss],
                &losses[step..step + 1],
                1e-5,
                1e-4,
            );
        }
        let params: BTreeMap<String, Vec<f32>> = p
            .model
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (n, t.to_vec_blocking().unwrap()))
            .collect();
        for (name, want) in expected["after"].as_object().unwrap() {
            // three AdamW steps of lr 5e-3: rounding of the gradients moves values by far less
            assert_close(
                &format!("{policy}: {name} after {steps} steps"),
                &params[name],
                &floats(want),
                1e-5,
                1e-5,
            );
        }
    }
}

#[test]
fn token_training_matches_torch_on_the_cpu() {
    token_training_matches_torch(&Device::Cpu);
}

#[test]
fn token_training_matches_torch_on_the_gpu() {
    token_training_matches_torch(&gpu());
}

/// 40 sentences of the random vocabulary: people (man, woman, child + "old"/"happy") and places
/// (river, city, house + "big"/"near"), every other word O.
fn tiny_ner_set() -> Vec<WordExample> {
    let people = ["man", "woman", "child"];
    let places = ["river", "city", "house"];
    let verbs = ["saw", "liked", "found"];
    (0..40)
        .map(|i| {
            let person = people[i % 3];
            let place = places[(i / 3) % 3];
            let verb = verbs[(i / 9) % 3];
            if i % 2 == 0 {
                words(
                    &format!("the old {person} {verb} the big {place}"),
                    "O B-PER I-PER O O B-LOC I-LOC",
                )
            } else {
                words(
                    &format!("a {person} {verb} a dog near the {place} ."),
                    "O B-PER O O O O O B-LOC O",
                )
            }
        })
        .collect()
}

/// Three epochs with dropout on the CPU and the lavapipe GPU: the same losses and validation
/// scores (the same Threefry masks; float rounding only), for every policy.
#[test]
fn token_training_agrees_across_devices() {
    let files = ner_files(false);
    let examples = tiny_ner_set();
    let gpu = gpu();
    for freeze in [Freeze::Head, Freeze::Top(1), Freeze::All] {
        let options = TrainOptions {
            freeze,
            epochs: 3,
            learning_rate: 5e-3,
            batch_size: 8,
            accumulation_steps: 2,
            validation_fraction: 0.25,
            seed: 7,
            ..TrainOptions::default()
        };
        let run = |device: &Device| {
            let mut p = Pipeline::load(&files, device).unwrap();
            block_on(p.train_token_classifier(&examples, options.clone(), |_| {})).unwrap()
        };
        let (cpu, gpu) = (run(&Device::Cpu), run(&gpu));
        println!("{freeze}: cpu {:?}\ngpu {:?}", cpu.epochs, gpu.epochs);
        assert_eq!(cpu.validation_examples, 10);
        for (c, g) in cpu.epochs.iter().zip(&gpu.epochs) {
            assert!(
                (c.loss - g.loss).abs() < 1e-4,
                "{freeze}: loss {} vs {}",
                c.loss,
                g.loss
            );
            assert_eq!(c.validation_accuracy, g.validation_accuracy, "{freeze}");
            let (ce, ge) = (
                c.validation_entities.as_ref().unwrap(),
                g.validation_entities.as_ref().unwrap(),
            );
            assert_eq!(ce.overall, ge.overall, "{freeze}");
        }
    }
}

/// An epoch taken a few optimizer steps at a time (`run_steps`, what the browser's engine does
/// so that JavaScript can report progress and stop between calls) is the epoch `run_epoch`
/// runs whole: the same reports and the same token classifier bit for bit, with dropout and
/// gradient accumulation (2 micro-batches a step), head-only and all layers, on the CPU and the
/// GPU. The steps are counted as the epoch has them.
#[test]
fn token_training_in_steps_is_the_epochs_run_whole() {
    let files = ner_files(false);
    let examples = tiny_ner_set();
    let texts = [
        "the old man saw the big river",
        "a child found a dog near the city .",
    ];
    for device in [Device::Cpu, gpu()] {
        for freeze in [Freeze::Head, Freeze::All] {
            let options = TrainOptions {
                freeze,
                epochs: 2,
                learning_rate: 5e-3,
                batch_size: 4,
                accumulation_steps: 2,
                validation_fraction: 0.25,
                seed: 7,
                ..TrainOptions::default()
            };
            // a fresh model and run, the same for both ways of training
            let start = || {
                let mut p = Pipeline::load(&files, &device).unwrap();
                let run = block_on(TokenClassifierTraining::new(
                    &mut p,
                    &examples,
                    options.clone(),
                ))
                .unwrap();
                (p, run)
            };
            let (mut p, mut run) = start();
            let whole: Vec<_> = (0..options.epochs)
                .map(|_| block_on(run.run_epoch(&mut p)).unwrap())
                .collect();
            let whole_labels = block_on(p.classify_tokens(&texts)).unwrap();

            let (mut p, mut run) = start();
            let (mut in_steps, mut seen) = (Vec::new(), Vec::new());
            while in_steps.len() < options.epochs {
                match block_on(run.run_steps(&mut p, 3)).unwrap() {
                    StepsProgress::Running { epoch, done, total } => {
                        seen.push((epoch, done, total))
                    }
                    StepsProgress::EpochDone(progress) => in_steps.push(progress),
                }
            }
            // 30 training examples: 8 micro-batches of up to 4, 4 steps of 2
            assert_eq!(seen, [(1, 3, 4), (2, 3, 4)], "{freeze}");
            assert_eq!(in_steps, whole, "{freeze} on {device:?}");
            assert_eq!(
                block_on(p.classify_tokens(&texts)).unwrap(),
                whole_labels,
                "{freeze} on {device:?}"
            );
        }
    }
}

/// On the tiny set the loss falls epoch after epoch and the held-out entities are found;
/// `classify_tokens` then labels each word's first WordPiece with the trained labels, and the
/// saved model (BertForTokenClassification) loads and labels the same.
#[test]
fn token_training_learns_and_classify_tokens_uses_the_result() {
    let files = ner_files(false);
    let examples = tiny_ner_set();
    let mut p = Pipeline::load(&files, &Device::Cpu).unwrap();
    let options = TrainOptions {
        freeze: Freeze::All,
        epochs: 8,
        learning_rate: 1e-2,
        batch_size: 4,
        validation_fraction: 0.25,
        seed: 3,
        ..TrainOptions::default()
    };
    let report = block_on(p.train_token_classifier(&examples, options, |_| {})).unwrap();
    let losses: Vec<f32> = report.epochs.iter().map(|e| e.loss).collect();
    println!("losses {losses:?}\nlast {:?}", report.epochs.last());
    assert!(
        losses.last().unwrap() < &(losses[0] * 0.5),
        "the loss falls: {losses:?}"
    );
    let last = report.epochs.last().unwrap();
    assert!(last.validation_accuracy.unwrap() > 0.9, "{last:?}");
    let entities = last.validation_entities.as_ref().unwrap();
    assert!(entities.overall.f1 > 0.8, "{entities:?}");
    assert_eq!(
        entities.per_type.keys().collect::<Vec<_>>(),
        ["LOC", "PER"],
        "{entities:?}"
    );
    assert_eq!(report.labels, ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]);

    let text = ["the old woman saw the big city"];
    let tagged = block_on(p.classify_tokens(&text)).unwrap();
    let labels: Vec<&str> = tagged[0].iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["O", "B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"]);

    let saved = block_on(p.save_to_files()).unwrap();
    let config: Value = serde_json::from_slice(saved.get("config.json").unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "BertForTokenClassification");
    assert_eq!(config["id2label"]["1"], "B-PER");
    let reloaded = Pipeline::load(&saved, &Device::Cpu).unwrap();
    assert_eq!(block_on(reloaded.classify_tokens(&text)).unwrap(), tagged);
}

#[test]
fn bad_token_training_input_gets_clear_errors() {
    let files = ner_files(false);
    let mut p = Pipeline::load(&files, &Device::Cpu).unwrap();
    let mut error = |examples: &[WordExample], options: TrainOptions| match block_on(
        TokenClassifierTraining::new(&mut p, examples, options),
    ) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    };
    let good = tiny_ner_set();
    let options = TrainOptions::default();
    let e = error(&[], options.clone());
    assert!(e.contains("no examples"), "{e}");
    let mut mismatched = good.clone();
    mismatched[2].labels.pop();
    let e = error(&mismatched, options.clone());
    assert!(e.contains("example 2 has 7 words but 6 labels"), "{e}");
    let e = error(&[words("the cat", "O O")], options.clone());
    assert!(e.contains("1 label(s)"), "{e}");
    let e = error(
        &good,
        TrainOptions {
            classifier_input: Some(ClassifierInput::MeanPooled),
            ..options.clone()
        },
    );
    assert!(e.contains("pooling does not apply"), "{e}");
    let e = error(
        &good,
        TrainOptions {
            freeze: Freeze::Top(3),
            ..options.clone()
        },
    );
    assert!(e.contains("top:3") && e.contains("2 layers"), "{e}");
    let e = error(
        &good,
        TrainOptions {
            epochs: 0,
            ..options.clone()
        },
    );
    assert!(
        e.contains("epochs must be a positive integer (>= 1), found 0"),
        "{e}"
    );
    // a word of characters the tokenizer drops (control characters) leaves the example without tokens
    let e = error(&[words("\u{1}", "O"), words("a b", "B-X O")], options);
    assert!(e.contains("no word of example 0 has a token"), "{e}");
}
