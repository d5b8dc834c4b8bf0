//! The training pieces on plain named tensors (no model): AdamW with the Hugging Face
//! Trainer's weight-decay groups, the linear warmup schedule and global-norm clipping against
//! PyTorch + transformers (tests/fixtures/tasks/training_reference.json, written by
//! tests/tasks/training_reference.py), gradient accumulation, the split, accuracy, the NaN
//! guard, the feature cache, the example readers and the windows of long texts.

mod op_checks;

use std::collections::BTreeMap;

use op_checks::{assert_close, gpu};
use serde_json::Value;
use webnlu::ops::losses::{cross_entropy_backward, cross_entropy_forward, IGNORE_INDEX};
use webnlu::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use webnlu::ops::optimizer::AdamWConfig;
use webnlu::tasks::examples::{label_classes, parse_examples, ExampleFormat};
use webnlu::tasks::windows::{average_per_text, encode_windows, LongTexts};
use webnlu::tokenizer::Tokenizer;
use webnlu::train::*;
use webnlu::{Device, Error, Tensor};

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

#[test]
fn weight_decay_groups_are_the_trainers() {
    let reference = reference();
    let decay = reference["decay"].as_object().unwrap();
    assert!(decay.len() > 40, "names of three models");
    for (name, expected) in decay {
        assert_eq!(decays(name), expected.as_bool().unwrap(), "{name}");
    }
    // old TensorFlow LayerNorm names
    assert!(!decays("bert.embeddings.LayerNorm.gamma"));
    assert!(!decays("embeddings.LayerNorm.beta"));
}

#[test]
fn linear_schedule_is_get_linear_schedule_with_warmup() {
    let reference = reference();
    let s = &reference["schedule"];
    let schedule = LinearSchedule::new(
        s["peak_lr"].as_f64().unwrap() as f32,
        s["warmup"].as_u64().unwrap(),
        s["total"].as_u64().unwrap(),
    )
    .unwrap();
    let lrs = floats(&s["lrs"]);
    let ours: Vec<f32> = (0..lrs.len() as u64).map(|i| schedule.lr(i)).collect();
    // both computed in f64 then rounded: equal to f32 rounding
    assert_close("schedule", &ours, &lrs, 1e-10, 1e-6);
    assert!(LinearSchedule::new(1e-3, 11, 10).is_err());
    assert!(LinearSchedule::new(f32::NAN, 0, 10).is_err());
}

/// Three optimizer steps of torch.optim.AdamW in two groups, with the schedule and clipping,
/// on `device`.
fn adamw_steps_match_torch(device: &Device) {
    let reference = reference();
    let r = &reference["adamw"];
    let shapes: BTreeMap<String, Vec<usize>> = serde_json::from_value(r["shapes"].clone()).unwrap();
    let mut params: BTreeMap<String, Tensor> = shapes
        .iter()
        .map(|(name, shape)| {
            let data = floats(&r["before"][name]);
            (
                name.clone(),
                Tensor::from_vec(device, shape, data, name).unwrap(),
            )
        })
        .collect();
    let schedule = LinearSchedule::new(
        r["lr"].as_f64().unwrap() as f32,
        r["warmup"].as_u64().unwrap(),
        r["total"].as_u64().unwrap(),
    )
    .unwrap();
    let mut optimizer = AdamW::new(AdamWConfig {
        weight_decay: r["weight_decay"].as_f64().unwrap() as f32,
        ..AdamWConfig::default()
    });
    let expected_norms = floats(&r["norms"]);
    for (step, step_grads) in r["grads"].as_array().unwrap().iter().enumerate() {
        let mut grads: Vec<(String, Tensor)> = shapes
            .iter()
            .map(|(name, shape)| {
                let data = floats(&step_grads[name]);
                let grad = Tensor::from_vec(device, shape, data, &format!("grad.{name}")).unwrap();
                (name.clone(), grad)
            })
            .collect();
        let mut norm = Tensor::zeros(device, &[2], "norm").unwrap();
        {
            let mut refs: Vec<&mut Tensor> = grads.iter_mut().map(|(_, g)| g).collect();
            clip_gradients(
                &mut norm,
                &mut refs,
                Some(r["max_norm"].as_f64().unwrap() as f32),
            )
            .unwrap();
        }
        let norm = norm.to_vec_blocking().unwrap();
        assert_close(
            "total norm",
            &norm[..1],
            &expected_norms[step..step + 1],
            1e-5,
            1e-5,
        );
        let mut updates: Vec<ParameterUpdate> = params
            .iter_mut()
            .zip(&grads)
            .map(|((_, value), (_, grad))| ParameterUpdate { value, grad })
            .collect();
        optimizer
            .step(schedule.lr(step as u64), &mut updates)
            .unwrap();
    }
    assert_eq!(optimizer.steps(), 3);
    let state: usize = shapes.values().map(|s| s.iter().product::<usize>()).sum();
    assert_eq!(optimizer.state_bytes(), (state * 2 * 4) as u64);
    for (name, value) in &params {
        let got = value.to_vec_blocking().unwrap();
        // three f32 steps against torch's f32 steps: rounding of lr*m/sqrt(v) per step
        assert_close(name, &got, &floats(&r["after"][name]), 2e-6, 1e-5);
    }
}

#[test]
fn adamw_with_groups_schedule_and_clipping_matches_torch_on_the_cpu() {
    adamw_steps_match_torch(&Device::Cpu);
}

#[test]
fn adamw_with_groups_schedule_and_clipping_matches_torch_on_the_gpu() {
    adamw_steps_match_torch(&gpu());
}

/// Mean cross-entropy of a linear classifier `logits = x @ w^T`, gradient into `dw`.
fn linear_classifier_gradient(dw: &mut Tensor, w: &Tensor, x: &[f32], labels: &[u32], scale: f32) {
    let device = Device::Cpu;
    let (k, c) = (w.shape()[0], w.shape()[1]);
    let n = labels.len();
    let x = Tensor::from_vec(&device, &[n, c], x.to_vec(), "x").unwrap();
    let targets = Tensor::from_vec(&device, &[n], labels.to_vec(), "labels").unwrap();
    let options = MatmulOptions {
        trans_b: true,
        ..Default::default()
    };
    let mut logits = Tensor::zeros(&device, &[n, k], "logits").unwrap();
    matmul_forward(&mut logits, &x, w, None, options).unwrap();
    let mut losses = Tensor::zeros(&device, &[n], "losses").unwrap();
    let mut lse = Tensor::zeros(&device, &[n], "lse").unwrap();
    cross_entropy_forward(&mut losses, &mut lse, &logits, &targets, IGNORE_INDEX).unwrap();
    let mut dlogits = Tensor::zeros(&device, &[n, k], "dlogits").unwrap();
    cross_entropy_backward(&mut dlogits, &logits, &lse, &targets, IGNORE_INDEX, scale).unwrap();
    matmul_backward(None, Some(dw), None, &dlogits, &x, w, options).unwrap();
}

#[test]
fn accumulated_micro_batches_give_the_gradient_of_the_whole_batch() {
    let (n, c, k) = (12, 5, 3);
    let x = op_checks::random(n * c, 7);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % k as u32).collect();
    let w = Tensor::from_vec(&Device::Cpu, &[k, c], op_checks::random(k * c, 8), "w").unwrap();
    let mut whole = Tensor::zeros(&Device::Cpu, &[k, c], "dw").unwrap();
    linear_classifier_gradient(&mut whole, &w, &x, &labels, 1.0 / n as f32);

    let accumulation = GradientAccumulation::new(3).unwrap();
    let steps = accumulation.steps(3);
    assert_eq!(steps, vec![0..3]);
    let mut accumulated = Tensor::zeros(&Device::Cpu, &[k, c], "dw").unwrap();
    for micro in 0..3 {
        let rows = micro * 4..(micro + 1) * 4;
        linear_classifier_gradient(
            &mut accumulated,
            &w,
            &x[rows.start * c..rows.end * c],
            &labels[rows],
            GradientAccumulation::loss_scale(4, 3),
        );
    }
    assert_close(
        "accumulated gradient",
        accumulated.cpu().unwrap(),
        whole.cpu().unwrap(),
        1e-6,
        1e-5,
    );
    assert_eq!(
        GradientAccumulation::new(2).unwrap().steps(5),
        vec![0..2, 2..4, 4..5]
    );
    assert!(GradientAccumulation::new(0).is_err());
}

#[test]
fn split_is_seeded_disjoint_and_complete() {
    let split = train_validation_split(100, 0.2, 42).unwrap();
    assert_eq!((split.train.len(), split.validation.len()), (80, 20));
    let mut all: Vec<usize> = split
        .train
        .iter()
        .chain(&split.validation)
        .copied()
        .collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(split, train_validation_split(100, 0.2, 42).unwrap());
    assert_ne!(split, train_validation_split(100, 0.2, 43).unwrap());
    assert!(train_validation_split(1, 0.5, 0).is_err());
    assert!(train_validation_split(10, 1.0, 0).is_err());

    let batches = epoch_batches(&split.train, 32, 1, 0).unwrap();
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![32, 32, 16]
    );
    assert_ne!(batches, epoch_batches(&split.train, 32, 1, 1).unwrap());
    assert!(epoch_batches(&split.train, 0, 1, 0).is_err());
}

#[test]
fn accuracy_and_the_nan_guard() {
    let logits = [0.1, 0.9, 2.0, -1.0, 0.5, 0.5];
    assert_eq!(accuracy(&logits, &[1, 0, 0], 2).unwrap(), Some(1.0));
    assert_eq!(accuracy(&logits, &[0, 0, 1], 2).unwrap(), Some(1.0 / 3.0));
    assert_eq!(accuracy(&[], &[], 2).unwrap(), None);
    assert!(accuracy(&logits, &[0, 1], 2).is_err());
    assert!(check_finite_loss(0.7, 1, 3).is_ok());
    for bad in [f32::NAN, f32::INFINITY] {
        let error = check_finite_loss(bad, 2, 17).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::InvalidArgument(_)));
        assert!(
            message.contains("epoch 2") && message.contains("step 17"),
            "{message}"
        );
    }
}

#[test]
fn feature_cache_gathers_rows() {
    let mut cache = FeatureCache::new(3);
    cache.push_rows(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    assert!(cache.push_rows(&[1.0]).is_err());
    assert_eq!(cache.len(), 2);
    let batch = cache.gather(&Device::Cpu, &[1, 0, 1], "batch").unwrap();
    assert_eq!(batch.shape(), &[3, 3]);
    assert_eq!(
        batch.cpu().unwrap(),
        &[4.0, 5.0, 6.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    );
    assert!(cache.gather(&Device::Cpu, &[2], "batch").is_err());
}

#[test]
fn the_movie_review_file_reads_as_signed_ratings() {
    let path = "../tests/fixtures/models/vader/movieReviewSnippets_GroundTruth.txt";
    let content = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run tests/setup/fetch-assets.sh"));
    let examples = parse_examples(&content, ExampleFormat::Auto, path).unwrap();
    // 10605 lines: 5242 rated > 0, 5326 < 0, 37 exactly 0 (skipped)
    let (labels, classes) = label_classes(&examples);
    assert_eq!(labels, ["negative", "positive"]);
    assert_eq!(classes.iter().filter(|&&c| c == 1).count(), 5242);
    assert_eq!(classes.iter().filter(|&&c| c == 0).count(), 5326);
    assert!(examples.iter().all(|e| !e.text.ends_with('\r')));
    assert!(examples[0].text.starts_with("The Rock is destined"));
}

#[test]
fn csv_and_tsv_examples() {
    let csv = "label,text\r\npos,\"good, \"\"really\"\"\nfun\"\r\nneg,bad\r\n";
    let examples = parse_examples(csv, ExampleFormat::Auto, "reviews.csv").unwrap();
    assert_eq!(examples.len(), 2);
    assert_eq!(examples[0].text, "good, \"really\"\nfun");
    assert_eq!(examples[1].label, "neg");
    let tsv = "text\tlabel\nnice film\tpos\nawful\tneg\n";
    let examples = parse_examples(tsv, ExampleFormat::Auto, "reviews.tsv").unwrap();
    assert_eq!(examples.len(), 2);
    assert_eq!(examples[0].text, "nice film");
    for (content, what) in [
        ("text,score\nx,1\n", "missing.csv"),
        ("label,text\npos,\"open\n", "open.csv"),
        ("label,text\npos,a,b\n", "fields.csv"),
        ("no tab here\n", "plain.tsv"),
        ("", "empty.tsv"),
    ] {
        let error = parse_examples(content, ExampleFormat::Auto, what).unwrap_err();
        assert!(error.to_string().contains(what), "{error}");
    }
}

fn minilm_tokenizer() -> Tokenizer {
    let path = "../tests/fixtures/models/all-minilm-l6-v2/tokenizer.json";
    Tokenizer::from_tokenizer_json_file(path)
        .unwrap_or_else(|e| panic!("{e}; run tests/setup/fetch-assets.sh"))
}

#[test]
fn long_texts_become_overlapping_windows_or_an_error() {
    let tokenizer = minilm_tokenizer();
    let long = "the quick brown fox jumps over the lazy dog ".repeat(5); // 45 words
    let texts = ["a short one", long.as_str()];
    let windows = encode_windows(&tokenizer, &texts, 16, LongTexts::Windows { stride: 4 }).unwrap();
    let whole = tokenizer.tokenize(&long).ids; // 45 tokens without [CLS]/[SEP]
    assert_eq!(whole.len(), 45);
    assert_eq!(windows[0].text, 0);
    let of_long: Vec<_> = windows.iter().filter(|w| w.text == 1).collect();
    // 14 tokens per window, a new window every 10: starts 0, 10, 20, 30, 40 (HF tokenizers gives
    // the same 5 windows, lengths 16, 16, 16, 16, 7 with [CLS]/[SEP])
    assert_eq!(of_long.len(), 5);
    let (cls, sep) = (
        tokenizer.token_to_id("[CLS]").unwrap(),
        tokenizer.token_to_id("[SEP]").unwrap(),
    );
    for (i, w) in of_long.iter().enumerate() {
        let ids = &w.encoding.ids;
        assert!(ids.len() <= 16);
        assert_eq!((ids[0], *ids.last().unwrap()), (cls, sep));
        let start = i * 10;
        assert_eq!(&ids[1..ids.len() - 1], &whole[start..(start + 14).min(45)]);
    }
    // truncation keeps the first window only
    let cut = encode_windows(&tokenizer, &texts, 16, LongTexts::Truncate).unwrap();
    assert_eq!(cut.len(), 2);
    assert_eq!(cut[1].encoding.ids, of_long[0].encoding.ids);
    // refusing names the text and its length
    let error = encode_windows(&tokenizer, &texts, 16, LongTexts::Refuse).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::InvalidArgument(_)));
    assert!(
        message.contains("text 1") && message.contains("47 tokens") && message.contains("16"),
        "{message}"
    );
    // averaging rows per text
    let rows: Vec<f32> = (0..windows.len()).flat_map(|w| [w as f32, 1.0]).collect();
    let averaged = average_per_text(&windows, &rows, 2, 2).unwrap();
    assert_eq!(averaged, vec![0.0, 1.0, 3.0, 1.0]);
}
