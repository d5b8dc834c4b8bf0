//! The training pieces on plain named tensors (no model): AdamW with the Hugging Face
//! Trainer's weight-decay groups, the linear warmup schedule and global-norm clipping against
//! PyTorch + transformers (tests/fixtures/tasks/training_reference.json, written by
//! tests/tasks/training_reference.py), gradient accumulation, the split, accuracy, the NaN
//! guard, the feature cache, the example readers and the windows of long texts. Then
//! `train_classifier` on long examples with the small random classifier checkpoint: each
//! example's logits the mean of its windows' (against PyTorch, every freezing policy, both
//! devices), CPU == GPU with dropout, and validation accuracy == `classify`'s.

use crate::op_checks;

use std::collections::BTreeMap;
use std::path::Path;

use op_checks::{assert_close, gpu};
use pollster::block_on;
use serde_json::Value;
use webnlu::io::ModelFiles;
use webnlu::models::Freeze;
use webnlu::ops::losses::{cross_entropy_backward, cross_entropy_forward, IGNORE_INDEX};
use webnlu::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use webnlu::ops::optimizer::AdamWConfig;
use webnlu::tasks::examples::{label_classes, parse_examples, Example, ExampleFormat};
use webnlu::tasks::windows::{average_per_text, encode_windows, LongTexts};
use webnlu::tasks::{
    head_features, ClassifierTraining, Pipeline, ReadOptions, StepsProgress, TrainOptions,
    TrainReport,
};
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

/// `AdamW::step_named` keys the moments and the decay group by the names given, not by the
/// tensors' names (ELMo's biLM names its tensors by kind: two convolutions' biases share one):
/// two tensors with one tensor name keep separate moments, and the one named "...bias" gets no
/// weight decay. With a zero gradient AdamW's update is the decay alone: x (1 - lr wd).
#[test]
fn adamw_step_named_keys_moments_and_decay_by_the_given_names() {
    let device = Device::Cpu;
    let (lr, wd) = (0.1f32, 0.5f32);
    let mut optimizer = AdamW::new(AdamWConfig {
        weight_decay: wd,
        ..AdamWConfig::default()
    });
    let mut weight = Tensor::from_vec(&device, &[2], vec![1.0, -2.0], "conv").unwrap();
    let mut bias = Tensor::from_vec(&device, &[3], vec![1.0, 2.0, 3.0], "conv").unwrap();
    let zero2 = Tensor::zeros(&device, &[2], "g").unwrap();
    let zero3 = Tensor::zeros(&device, &[3], "g").unwrap();
    let names = ["conv_0.weight".to_string(), "conv_0.bias".to_string()];
    for _ in 0..2 {
        let mut updates = vec![
            ParameterUpdate {
                value: &mut weight,
                grad: &zero2,
            },
            ParameterUpdate {
                value: &mut bias,
                grad: &zero3,
            },
        ];
        optimizer.step_named(lr, &names, &mut updates).unwrap();
    }
    let decay = 1.0 - lr * wd;
    assert_eq!(
        weight.to_vec_blocking().unwrap(),
        [1.0 * decay * decay, -2.0 * decay * decay]
    );
    assert_eq!(bias.to_vec_blocking().unwrap(), [1.0, 2.0, 3.0]);
    assert_eq!(optimizer.state_bytes(), (2 + 3) * 2 * 4);
    // one name per parameter
    let mut updates = vec![ParameterUpdate {
        value: &mut weight,
        grad: &zero2,
    }];
    assert!(optimizer.step_named(lr, &names, &mut updates).is_err());
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

// ---- training on long examples: the windows' logits averaged, as classify reads them -------

/// The committed random BertForSequenceClassification with its dropout set to 0 (the torch
/// reference ran without dropout: its random masks cannot be reproduced).
fn random_classifier_files(model: &str, without_dropout: bool) -> ModelFiles {
    let mut files = ModelFiles::from_dir(Path::new("..").join(model)).unwrap_or_else(|e| {
        panic!("{e}: regenerate with `python tests/models/reference.py` (tests/models/README.md)")
    });
    if without_dropout {
        let mut config: Value = serde_json::from_slice(files.get("config.json").unwrap()).unwrap();
        for key in [
            "hidden_dropout_prob",
            "attention_probs_dropout_prob",
            "classifier_dropout",
        ] {
            config[key] = 0.0.into();
        }
        files.insert("config.json", serde_json::to_vec(&config).unwrap());
    }
    files
}

fn reference_examples(r: &Value) -> Vec<Example> {
    r["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Example {
            text: e["text"].as_str().unwrap().to_string(),
            pair: None,
            label: e["label"].as_str().unwrap().to_string(),
        })
        .collect()
}

/// `long_texts` on a random-classifier pipeline whose windows are `max_length` long.
fn read_in_windows(p: &mut Pipeline, max_length: usize, stride: usize) {
    p.set_read_options(ReadOptions {
        max_length,
        long_texts: LongTexts::Windows { stride },
        // fewer windows per encoder pass than the examples have: the cache fills in batches
        batch_size: 4,
    })
    .unwrap();
}

/// The torch reference (training_reference.py `windows`): the window ids are HF tokenizers'
/// overflow windows, and for every freezing policy the loss and gradients of the first step
/// and the losses and parameters after three AdamW steps are PyTorch's, the examples' logits
/// being the mean of their windows' logits.
fn windows_training_matches_torch(device: &Device) {
    let reference = reference();
    let r = &reference["windows"];
    let files = random_classifier_files(r["model"].as_str().unwrap(), true);
    let examples = reference_examples(r);
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let (max_length, stride) = (
        r["max_length"].as_u64().unwrap() as usize,
        r["stride"].as_u64().unwrap() as usize,
    );
    let steps = r["steps"].as_u64().unwrap() as usize;
    let window_ids: Vec<Vec<Vec<u32>>> = serde_json::from_value(r["window_ids"].clone()).unwrap();
    let total_windows: usize = window_ids.iter().map(Vec::len).sum();
    for (policy, expected) in r["policies"].as_object().unwrap() {
        let mut p = Pipeline::load(&files, device).unwrap();
        read_in_windows(&mut p, max_length, stride);
        let windows = encode_windows(
            &p.tokenizer,
            &texts,
            max_length,
            LongTexts::Windows { stride },
        )
        .unwrap();
        for (e, ids) in window_ids.iter().enumerate() {
            let ours: Vec<Vec<u32>> = windows
                .iter()
                .filter(|w| w.text == e)
                .map(|w| w.encoding.ids.clone())
                .collect();
            assert_eq!(&ours, ids, "windows of example {e}");
        }
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
        let mut run = block_on(ClassifierTraining::new(&mut p, &examples, options)).unwrap();
        assert_eq!(run.labels(), ["negative", "neutral", "positive"]);
        for value in p.model.parameters_mut() {
            if let Some((name, shape, data)) =
                checkpoint_head.iter().find(|(n, ..)| n == value.name())
            {
                *value = Tensor::from_vec(device, shape, data.clone(), name).unwrap();
            }
        }
        assert_eq!(run.report().windows, total_windows);
        let all: Vec<usize> = (0..examples.len()).collect();
        let losses = floats(&expected["losses"]);
        let (loss, grads) = block_on(run.gradients(&p, &all)).unwrap();
        // a mean of 6 cross-entropies of 3 logits, each a mean of fp32 logits: rounding only
        assert_close(
            &format!("{policy}: first loss"),
            &[loss],
            &losses[..1],
            1e-5,
            1e-5,
        );
        let expected_grads = expected["grads"].as_object().unwrap();
        for (name, want) in expected_grads {
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
            // one batch per epoch: the epoch's loss is the step's; later steps start from
            // parameters that already differ by rounding
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
            // three AdamW steps of lr 5e-3: each moves a value by at most ~lr, so rounding of
            // the gradients changes the values by far less than 1e-5
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
fn training_on_windows_matches_torch_on_the_cpu() {
    windows_training_matches_torch(&Device::Cpu);
}

#[test]
fn training_on_windows_matches_torch_on_the_gpu() {
    windows_training_matches_torch(&gpu());
}

/// 48 examples of 2 to 40 words of the random checkpoints' vocabulary, labelled by which of
/// three words they hold most: most need several windows of 10 tokens.
fn long_examples() -> Vec<Example> {
    let words = [
        "the", "a", "cat", "dog", "man", "woman", "house", "car", "tree", "river", "sun", "rain",
        "is", "was", "sat", "ran", "saw", "on", "in", "with", "and", "but", "not", "very", "big",
        "small", "old", "new", "movie", "song", "book", ".", ",",
    ];
    let marks = [
        ("good", "positive"),
        ("bad", "negative"),
        ("boring", "neutral"),
    ];
    let mut rng = SplitMix64::new(11);
    (0..48)
        .map(|i| {
            let n = 2 + rng.below(39);
            let (mark, label) = marks[i % 3];
            let text: Vec<&str> = (0..n)
                .map(|_| {
                    if rng.below(4) == 0 {
                        mark
                    } else {
                        words[rng.below(words.len())]
                    }
                })
                .collect();
            Example {
                text: format!("{mark} {}", text.join(" ")),
                pair: None,
                label: label.to_string(),
            }
        })
        .collect()
}

/// Training with dropout on long examples, each freezing policy: the GPU gives what the CPU
/// gives, and the validation accuracy after each run is the accuracy of `classify` on the
/// held-out texts (both average the windows' logits). `truncate` reads the first windows only.
#[test]
fn training_on_windows_agrees_across_devices_and_validates_as_classify() {
    let files = random_classifier_files(
        "tests/fixtures/bert-reference/random/bert-random-classifier",
        false,
    );
    let examples = long_examples();
    let gpu = gpu();
    let options = TrainOptions {
        epochs: 2,
        learning_rate: 5e-3,
        batch_size: 8,
        validation_fraction: 0.25,
        seed: 5,
        ..TrainOptions::default()
    };
    let split = train_validation_split(examples.len(), 0.25, 5).unwrap();
    let held_out: Vec<&str> = split
        .validation
        .iter()
        .map(|&i| examples[i].text.as_str())
        .collect();
    let run = |device: &Device, options: &TrainOptions| {
        let mut p = Pipeline::load(&files, device).unwrap();
        read_in_windows(&mut p, 10, 3);
        let report = block_on(p.train_classifier(&examples, options.clone(), |_| {})).unwrap();
        let accuracy = |p: &Pipeline| {
            let classified = block_on(p.classify(&held_out)).unwrap();
            let correct = classified
                .iter()
                .zip(&split.validation)
                .filter(|(c, &i)| c.label == examples[i].label)
                .count();
            correct as f32 / held_out.len() as f32
        };
        let windows = accuracy(&p);
        // the same model reading the first windows only
        p.set_read_options(ReadOptions {
            long_texts: LongTexts::Truncate,
            ..p.read
        })
        .unwrap();
        (report, windows, accuracy(&p))
    };
    let mut first_windows_differ = false;
    for freeze in [Freeze::Head, Freeze::Top(1), Freeze::All] {
        let options = TrainOptions {
            freeze,
            ..options.clone()
        };
        let (cpu, cpu_classify, cpu_first_windows) = run(&Device::Cpu, &options);
        let (gpu, gpu_classify, _) = run(&gpu, &options);
        first_windows_differ |= cpu_first_windows != cpu_classify;
        println!("{freeze}: cpu {cpu:?}\ngpu {gpu:?}");
        assert!(
            cpu.windows > 2 * examples.len(),
            "{freeze}: {} windows",
            cpu.windows
        );
        assert_eq!(cpu.windows, gpu.windows);
        for (c, g) in cpu.epochs.iter().zip(&gpu.epochs) {
            // 8 AdamW steps of lr 5e-3 from the same start, the same dropout masks
            // (Threefry): float rounding of two devices
            assert!(
                (c.loss - g.loss).abs() < 1e-4,
                "{freeze}: loss {} vs {}",
                c.loss,
                g.loss
            );
        }
        // the same count of held-out examples right: both read the windows alike
        let last = |r: &TrainReport| r.epochs.last().unwrap().validation_accuracy.unwrap();
        assert_eq!(last(&cpu), cpu_classify, "{freeze}: cpu");
        assert_eq!(last(&gpu), gpu_classify, "{freeze}: gpu");
        assert_eq!(last(&cpu), last(&gpu), "{freeze}");

        // the first windows only: one window per example, another loss
        let truncated = TrainOptions {
            long_texts: Some(LongTexts::Truncate),
            ..options.clone()
        };
        let (cut, ..) = run(&Device::Cpu, &truncated);
        assert_eq!(cut.windows, examples.len());
        assert_ne!(cut.epochs[0].loss, cpu.epochs[0].loss, "{freeze}");
    }
    // the equalities above can tell the averaging from reading one window: on these
    // examples the first windows alone give another held-out accuracy
    assert!(first_windows_differ);
}

/// Head-only training from features computed in parts elsewhere (what the browser's worker pool
/// does: `head_features` of contiguous parts of the examples on other copies of the model,
/// joined in example order, into `new_with_features`) is the run `new` makes: the same features
/// bit for bit (each window's features do not depend on its batch), so the same epochs and the
/// same classifier. Long examples in windows of 10 tokens, batches of 4 windows; a wrong number
/// of features and features for a policy other than head are refused.
#[test]
fn head_only_training_from_features_computed_in_parts_is_the_same_run() {
    let files = random_classifier_files(
        "tests/fixtures/bert-reference/random/bert-random-classifier",
        false,
    );
    let examples = long_examples();
    let options = TrainOptions {
        epochs: 2,
        learning_rate: 5e-3,
        batch_size: 8,
        validation_fraction: 0.25,
        seed: 5,
        ..TrainOptions::default()
    };
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let pipeline = || {
        let mut p = Pipeline::load(&files, &Device::Cpu).unwrap();
        read_in_windows(&mut p, 10, 3);
        p
    };
    let run = |p: &mut Pipeline, features: Option<Vec<f32>>| {
        let mut run = block_on(ClassifierTraining::new_with_features(
            p,
            &examples,
            options.clone(),
            features,
        ))
        .unwrap();
        let epochs: Vec<_> = (0..options.epochs)
            .map(|_| block_on(run.run_epoch(p)).unwrap())
            .collect();
        (epochs, block_on(p.classify(&texts)).unwrap())
    };
    let (whole_epochs, whole_classified) = run(&mut pipeline(), None);

    // three parts of 20, 15 and 13 examples, each on a model of its own
    let mut features = Vec::new();
    for part in [&texts[..20], &texts[20..35], &texts[35..]] {
        features.extend(block_on(head_features(&pipeline(), part, &options)).unwrap());
    }
    let (parts_epochs, parts_classified) = run(&mut pipeline(), Some(features.clone()));
    assert_eq!(parts_epochs, whole_epochs);
    assert_eq!(parts_classified, whole_classified);

    let refused = |features: Vec<f32>, freeze: Freeze| {
        let mut p = pipeline();
        let options = TrainOptions {
            freeze,
            ..options.clone()
        };
        match block_on(ClassifierTraining::new_with_features(
            &mut p,
            &examples,
            options,
            Some(features),
        )) {
            Ok(_) => panic!("features accepted"),
            Err(e) => e.to_string(),
        }
    };
    let short = features[..features.len() - 1].to_vec();
    assert!(refused(short, Freeze::Head).contains("precomputed feature values, expected"));
    assert!(refused(features, Freeze::Top(1)).contains("head-only training, not freeze top:1"));
}

/// An epoch taken a few optimizer steps at a time (`run_steps`, what the browser's engine does
/// so that JavaScript can report progress and stop between calls) is the epoch `run_epoch`
/// runs whole: the same reports and the same classifier bit for bit, with dropout, gradient
/// accumulation (2 micro-batches a step) and long examples in windows, head-only and all layers,
/// on the CPU and the GPU. The steps are counted as the epoch has them.
#[test]
fn training_in_steps_is_the_epochs_run_whole() {
    let files = random_classifier_files(
        "tests/fixtures/bert-reference/random/bert-random-classifier",
        false,
    );
    let examples = long_examples();
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    for device in [Device::Cpu, gpu()] {
        for freeze in [Freeze::Head, Freeze::All] {
            let options = TrainOptions {
                freeze,
                epochs: 2,
                learning_rate: 5e-3,
                batch_size: 4,
                accumulation_steps: 2,
                validation_fraction: 0.25,
                seed: 5,
                ..TrainOptions::default()
            };
            let pipeline = || {
                let mut p = Pipeline::load(&files, &device).unwrap();
                read_in_windows(&mut p, 10, 3);
                p
            };
            let mut p = pipeline();
            let mut run =
                block_on(ClassifierTraining::new(&mut p, &examples, options.clone())).unwrap();
            let whole: Vec<_> = (0..options.epochs)
                .map(|_| block_on(run.run_epoch(&mut p)).unwrap())
                .collect();
            let whole_classified = block_on(p.classify(&texts)).unwrap();

            let mut p = pipeline();
            let mut run =
                block_on(ClassifierTraining::new(&mut p, &examples, options.clone())).unwrap();
            let mut in_steps = Vec::new();
            let mut seen = Vec::new();
            while in_steps.len() < options.epochs {
                match block_on(run.run_steps(&mut p, 2)).unwrap() {
                    StepsProgress::Running { epoch, done, total } => {
                        seen.push((epoch, done, total))
                    }
                    StepsProgress::EpochDone(progress) => in_steps.push(progress),
                }
            }
            // 36 training examples: 9 micro-batches of 4, 5 steps (the last of one micro-batch)
            let expected: Vec<_> = [1, 2]
                .iter()
                .flat_map(|&epoch| [(epoch, 2, 5), (epoch, 4, 5)])
                .collect();
            assert_eq!(seen, expected, "{freeze}");
            assert_eq!(in_steps, whole, "{freeze} on {device:?}");
            assert_eq!(
                block_on(p.classify(&texts)).unwrap(),
                whole_classified,
                "{freeze}"
            );
        }
    }
}
