//! Sentence pairs and next-sentence prediction against transformers (tests/fixtures/bert-reference/
//! pairs.json, written by `tests/models/reference.py --only pairs`), on the CPU and the GPU:
//! pair classification (BERT and DistilBERT), next-sentence probabilities (the random
//! BertForPreTraining and the real rxnfp), pairs cut with `longest_first`, pairs in training,
//! and the errors of bad input.

use crate::op_checks;

use op_checks::gpu;
use pollster::block_on;
use serde_json::Value;
use webnlu::io::ModelFiles;
use webnlu::tasks::*;
use webnlu::train::split::train_validation_split;
use webnlu::Device;

/// Probabilities are compared to transformers' within this: both compute in f32, the softmax of
/// logits that agree to a few 1e-7 (a few hundred sums over a hidden size of 32 or 256).
const PROBABILITY_TOLERANCE: f64 = 1e-5;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/bert-reference/pairs.json"
    );
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{path}: {e}; run `/work/torchenv/bin/python tests/models/reference.py --only pairs`"
        )
    });
    serde_json::from_slice(&bytes).unwrap()
}

fn repo(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The pipeline of a case's model, its tokenizer configured as the case says.
fn case_pipeline(case: &Value, device: &Device) -> Pipeline {
    let dir = repo(case["model"].as_str().unwrap());
    assert!(
        dir.is_dir(),
        "{} is missing: run tests/setup/fetch-assets.sh",
        dir.display()
    );
    let mut files = ModelFiles::from_dir(&dir).unwrap();
    if let Some(config) = case.get("tokenizer_config") {
        files.insert("tokenizer_config.json", config.to_string().into_bytes());
    }
    Pipeline::load(&files, device).unwrap()
}

fn pairs_of(group: &Value) -> Vec<TextPair> {
    group["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| TextPair::new(p[0].as_str().unwrap(), p[1].as_str().unwrap()))
        .collect()
}

fn rows_u32(value: &Value) -> Vec<Vec<u32>> {
    serde_json::from_value(value.clone()).unwrap()
}

/// Sets the group's window: its `max_length` with truncation (the `cut` groups), else the model's.
fn read_group(p: &mut Pipeline, group: &Value) {
    let read = match group["max_length"].as_u64() {
        Some(max_length) => ReadOptions {
            max_length: max_length as usize,
            long_texts: LongTexts::Truncate,
            batch_size: 32,
        },
        None => ReadOptions {
            max_length: p.model.max_positions(),
            long_texts: LongTexts::default_windows(p.model.max_positions()),
            batch_size: 32,
        },
    };
    p.set_read_options(read).unwrap();
}

/// The pipeline reads the group's pairs as transformers' tokenizer did (ids and type ids).
fn check_encodings(p: &Pipeline, group: &Value, what: &str) {
    let windows = p.windows(&pairs_of(group)).unwrap();
    let ids: Vec<Vec<u32>> = windows.iter().map(|w| w.encoding.ids.clone()).collect();
    let types: Vec<Vec<u32>> = windows
        .iter()
        .map(|w| w.encoding.type_ids.clone())
        .collect();
    assert_eq!(ids, rows_u32(&group["ids"]), "{what}: ids");
    assert_eq!(types, rows_u32(&group["type_ids"]), "{what}: type ids");
}

fn assert_close(got: &[f32], expected: &Value, tolerance: f64, what: &str) {
    let expected: Vec<f64> = expected
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()))
        .collect();
    assert_eq!(got.len(), expected.len(), "{what}: values");
    for (i, (&g, &e)) in got.iter().zip(&expected).enumerate() {
        assert!(
            (g as f64 - e).abs() <= tolerance,
            "{what}: value {i} is {g}, transformers {e} (tolerance {tolerance})"
        );
    }
}

fn pair_classification(name: &str, device: &Device) {
    let case = &reference()[name];
    let mut p = case_pipeline(case, device);
    for group_name in ["whole", "cut"] {
        let group = &case[group_name];
        let what = format!("{name} {group_name} on {}", device.kind());
        read_group(&mut p, group);
        check_encodings(&p, group, &what);
        let results = block_on(p.classify(&pairs_of(group))).unwrap();
        let scores: Vec<f32> = results.iter().flat_map(|r| r.scores.clone()).collect();
        assert_close(
            &scores,
            &group["probabilities"],
            PROBABILITY_TOLERANCE,
            &what,
        );
        let logits = block_on(p.classifier_logits(&pairs_of(group))).unwrap();
        // logits are O(1): the same few 1e-7 of f32 sums, with room for the GPU's order of sums
        assert_close(&logits, &group["logits"], 1e-5, &format!("{what} logits"));
    }
}

#[test]
fn bert_pair_classification_matches_transformers_on_the_cpu() {
    pair_classification("bert-random-classifier", &Device::Cpu);
}

#[test]
fn bert_pair_classification_matches_transformers_on_the_gpu() {
    pair_classification("bert-random-classifier", &gpu());
}

#[test]
fn distilbert_pair_classification_matches_transformers_on_the_cpu() {
    pair_classification("distilbert-random-classifier", &Device::Cpu);
}

#[test]
fn distilbert_pair_classification_matches_transformers_on_the_gpu() {
    pair_classification("distilbert-random-classifier", &gpu());
}

fn next_sentence(name: &str, groups: &[&str], device: &Device) {
    let case = &reference()[name];
    let mut p = case_pipeline(case, device);
    for group_name in groups {
        let group = &case[*group_name];
        let what = format!("{name} {group_name} next sentence on {}", device.kind());
        read_group(&mut p, group);
        check_encodings(&p, group, &what);
        let results = block_on(p.next_sentence(&pairs_of(group))).unwrap();
        let scores: Vec<f32> = results.iter().flat_map(|r| r.scores.clone()).collect();
        assert_close(
            &scores,
            &group["probabilities"],
            PROBABILITY_TOLERANCE,
            &what,
        );
        for r in &results {
            assert_eq!(r.is_next, r.scores[0], "{what}: is_next is scores[0]");
        }
        let logits: Vec<f32> = results.iter().flat_map(|r| r.logits.clone()).collect();
        // rxnfp: 12 layers of width 256, logits of a few units: f32 sums agree to ~1e-6
        assert_close(&logits, &group["logits"], 2e-5, &format!("{what} logits"));
    }
}

#[test]
fn next_sentence_matches_transformers_on_the_cpu() {
    next_sentence("bert-random", &["whole", "cut"], &Device::Cpu);
    next_sentence("rxnfp", &["whole"], &Device::Cpu);
}

#[test]
fn next_sentence_matches_transformers_on_the_gpu() {
    let device = gpu();
    next_sentence("bert-random", &["whole", "cut"], &device);
    next_sentence("rxnfp", &["whole"], &device);
}

/// A pair is one window whatever the batch: classifying pairs one by one, mixed with single
/// texts, gives what the batch gave.
#[test]
fn pairs_and_texts_mix_in_one_batch() {
    let case = &reference()["bert-random-classifier"];
    let p = case_pipeline(case, &Device::Cpu);
    let pairs = pairs_of(&case["whole"]);
    let mut mixed = vec![TextPair::single("a very funny movie !")];
    mixed.extend(pairs.iter().cloned());
    let together = block_on(p.classify(&mixed)).unwrap();
    let alone = block_on(p.classify(&["a very funny movie !"])).unwrap();
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    assert!(close(&together[0].scores, &alone[0].scores));
    for (i, pair) in pairs.iter().enumerate() {
        let one = block_on(p.classify(std::slice::from_ref(pair))).unwrap();
        assert!(close(&together[i + 1].scores, &one[0].scores), "pair {i}");
    }
    // the second text is read: the pair is not the first text alone
    let first = block_on(p.classify(&[pairs[1].text.as_str()])).unwrap();
    assert!(!close(&first[0].scores, &together[2].scores));
}

/// fill-mask and classify-tokens read a pair as one window: masks of both texts, tokens of both
/// texts with the text they belong to and offsets in it.
#[test]
fn fill_mask_and_token_labels_of_a_pair() {
    let random = repo("tests/fixtures/bert-reference/random");
    let p = Pipeline::load_dir(random.join("bert-random"), &Device::Cpu).unwrap();
    let pair = TextPair::new("the [MASK] ran .", "it was [MASK] .");
    let masks = block_on(p.fill_mask(&pair, 3)).unwrap();
    assert_eq!(masks.len(), 2, "a mask in each text");
    // the same as the logits of the model at the two masks of [CLS] a [SEP] b [SEP]
    let windows = p.windows(std::slice::from_ref(&pair)).unwrap();
    let encoding = &windows[0].encoding;
    let mask_id = p.tokenizer.token_to_id("[MASK]").unwrap();
    let positions: Vec<usize> = (0..encoding.len())
        .filter(|&t| encoding.ids[t] == mask_id)
        .collect();
    assert_eq!(positions.len(), 2);
    assert_eq!(encoding.type_ids[positions[0]], 0);
    assert_eq!(encoding.type_ids[positions[1]], 1);
    let input =
        webnlu::models::EncoderInput::from_encodings(&Device::Cpu, std::slice::from_ref(encoding))
            .unwrap();
    let out = p
        .model
        .encode(&input, &webnlu::models::RunMode::inference())
        .unwrap();
    let hidden = out.hidden.to_vec_blocking().unwrap();
    let c = p.hidden_size();
    for (k, &t) in positions.iter().enumerate() {
        let row = webnlu::Tensor::from_vec(
            &Device::Cpu,
            &[1, c],
            hidden[t * c..(t + 1) * c].to_vec(),
            "row",
        )
        .unwrap();
        let (logits, _) = p
            .model
            .masked_lm
            .as_ref()
            .unwrap()
            .forward(&row, &p.model.embeddings.word)
            .unwrap();
        let logits = logits.to_vec_blocking().unwrap();
        let best = webnlu::train::argmax(&logits);
        assert_eq!(
            masks[k][0].id, best as u32,
            "mask {k}: the argmax of its logits"
        );
    }

    let ner = Pipeline::load_dir(random.join("bert-random-ner"), &Device::Cpu).unwrap();
    let pair = TextPair::new("the man", "a big city");
    let tokens = block_on(ner.classify_tokens(std::slice::from_ref(&pair))).unwrap();
    let described: Vec<(String, Option<u32>, usize, usize)> = tokens[0]
        .iter()
        .map(|t| (t.token.clone(), t.sequence, t.start, t.end))
        .collect();
    let expected = [
        ("the", 0, 0, 3),
        ("man", 0, 4, 7),
        ("a", 1, 0, 1),
        ("big", 1, 2, 5),
        ("city", 1, 6, 10),
    ];
    let expected: Vec<(String, Option<u32>, usize, usize)> = expected
        .iter()
        .map(|&(t, s, a, b)| (t.to_string(), Some(s), a, b))
        .collect();
    assert_eq!(described, expected);
    let single = block_on(ner.classify_tokens(&["the man"])).unwrap();
    assert!(single[0].iter().all(|t| t.sequence.is_none()));
}

/// Training reads a pair as classify does: after an epoch, classify's accuracy on the
/// held-out pairs is the run's validation accuracy.
#[test]
fn training_on_pairs_validates_as_classify_reads_them() {
    let random = repo("tests/fixtures/bert-reference/random");
    let mut p = Pipeline::load_dir(random.join("bert-random"), &Device::Cpu).unwrap();
    let words = ["good", "bad", "happy", "sad", "funny", "boring"];
    let examples: Vec<Example> = (0..24)
        .map(|i| {
            let word = words[i % words.len()];
            let label = if i % 2 == 0 { "follows" } else { "random" };
            Example::with_pair(
                format!("the film was {word}"),
                format!("a {word} movie"),
                label,
            )
        })
        .collect();
    let options = TrainOptions {
        epochs: 2,
        validation_fraction: 0.25,
        seed: 7,
        ..TrainOptions::default()
    };
    let report = block_on(p.train_classifier(&examples, options, |_| {})).unwrap();
    assert_eq!(report.windows, examples.len(), "one window per pair");
    let split = train_validation_split(examples.len(), 0.25, 7).unwrap();
    let held_out: Vec<&Example> = split.validation.iter().map(|&i| &examples[i]).collect();
    let items: Vec<TextPair> = held_out
        .iter()
        .map(|e| TextPair::new(e.text.as_str(), e.pair.clone().unwrap()))
        .collect();
    let predicted = block_on(p.classify(&items)).unwrap();
    let correct = predicted
        .iter()
        .zip(&held_out)
        .filter(|(r, e)| r.label == e.label)
        .count();
    let accuracy = correct as f32 / held_out.len() as f32;
    assert_eq!(
        report.epochs.last().unwrap().validation_accuracy,
        Some(accuracy)
    );
}

#[test]
fn pair_examples_from_tsv_and_csv() {
    let tsv = "text\ttext_pair\tlabel\nthe dog ran\tit was happy\tyes\nrain\tsnow\tno\n";
    let examples = parse_examples(tsv, ExampleFormat::Auto, "pairs.tsv").unwrap();
    assert_eq!(
        examples,
        [
            Example::with_pair("the dog ran", "it was happy", "yes"),
            Example::with_pair("rain", "snow", "no")
        ]
    );
    let csv = "label,text_pair,text\r\nyes,\"b, quoted\",a\r\n";
    let examples = parse_examples(csv, ExampleFormat::Auto, "pairs.csv").unwrap();
    assert_eq!(examples, [Example::with_pair("a", "b, quoted", "yes")]);
    let plain = parse_examples("a\tpos\n", ExampleFormat::Auto, "plain.tsv").unwrap();
    assert_eq!(plain, [Example::new("a", "pos")]);
    // every line has the columns of the first
    let error = parse_examples("a\tb\tyes\nc\tno\n", ExampleFormat::Tsv, "mixed.tsv").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("mixed.tsv") && message.contains("line 2"),
        "{message}"
    );
    let error = parse_examples("a\tb\tc\td\n", ExampleFormat::Tsv, "four.tsv").unwrap_err();
    assert!(
        error.to_string().contains("4 tab-separated fields"),
        "{error}"
    );
}

#[test]
fn bad_pairs_give_clear_errors() {
    let random = repo("tests/fixtures/bert-reference/random");
    let mut p = Pipeline::load_dir(random.join("bert-random"), &Device::Cpu).unwrap();
    p.set_read_options(ReadOptions {
        max_length: 12,
        long_texts: LongTexts::Windows { stride: 2 },
        batch_size: 8,
    })
    .unwrap();
    let long = TextPair::new(
        "the old man walked near the river and liked the birds .",
        "a very funny movie !",
    );
    // windows are for single texts: a long pair is refused with its lengths
    let message = p
        .windows(&[TextPair::new("a", "b"), long.clone()])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("pair 1 is 22 tokens long (14 + 5")
            && message.contains("at most 12")
            && message.contains("truncation")
            && !message.contains("  "),
        "{message}"
    );
    let message = block_on(p.next_sentence(std::slice::from_ref(&long)))
        .unwrap_err()
        .to_string();
    assert!(message.contains("pair 0 is 22 tokens long"), "{message}");
    // fill-mask never cuts (a mask could go): a long pair is refused even with Truncate
    p.set_read_options(ReadOptions {
        max_length: 12,
        long_texts: LongTexts::Truncate,
        batch_size: 8,
    })
    .unwrap();
    let masked = TextPair::new(long.text.clone(), "a very [MASK] movie !");
    let message = block_on(p.fill_mask(&masked, 3)).unwrap_err().to_string();
    assert!(message.contains("pair 0 is 22 tokens long"), "{message}");
    // next-sentence needs pairs
    let message = block_on(p.next_sentence(&["one text"]))
        .unwrap_err()
        .to_string();
    assert!(message.contains("item 0 is a single text"), "{message}");

    // a BERT with one token type cannot read the second text (type 1): refused, texts still read
    let mut one_type =
        Pipeline::load_dir(random.join("bert-random-classifier"), &Device::Cpu).unwrap();
    let c = one_type.hidden_size();
    // (1, C) a token-type table of one row
    one_type.model.embeddings.token_type =
        Some(webnlu::Tensor::from_vec(&Device::Cpu, &[1, c], vec![0.0; c], "token_type").unwrap());
    let message = block_on(one_type.classify(&[TextPair::single("a"), TextPair::new("a", "b")]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("item 1 is a pair") && message.contains("type_vocab_size 1"),
        "{message}"
    );
    assert!(block_on(one_type.classify(&["a"])).is_ok());

    // no next-sentence head: the message names what is missing
    for name in ["bert-random-classifier", "distilbert-random"] {
        let other = Pipeline::load_dir(random.join(name), &Device::Cpu).unwrap();
        let message = block_on(other.next_sentence(&[TextPair::new("a", "b")]))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("no next-sentence head")
                && message.contains("cls.seq_relationship.weight"),
            "{name}: {message}"
        );
        if name.starts_with("distil") {
            assert!(message.contains("DistilBERT"), "{message}");
            // DistilBERT reads pairs, joined by [SEP] with no type ids, and says so
            let note = other.pair_note().unwrap();
            assert!(
                note.contains("[SEP]") && note.contains("no type ids"),
                "{note}"
            );
        } else {
            assert!(other.pair_note().is_none());
        }
    }
}
