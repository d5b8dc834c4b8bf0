//! Masked-LM fine-tuning (`tasks::train_masked_lm`): BERT's corruption (15% chosen; 80% [MASK],
//! 10% random, 10% kept; never a special token; seeded), one step's loss and gradients against
//! PyTorch + transformers on corrupted ids given by the fixture
//! (tests/fixtures/tasks/training_reference.json `masked_lm`: the committed random
//! BertForPreTraining read as BertForMaskedLM, head and all, both devices), then a short run
//! whose held-out perplexity falls, CPU == GPU, fill-mask and save on the result, and errors.

use crate::op_checks;

use std::path::Path;

use op_checks::{assert_close, gpu};
use pollster::block_on;
use serde_json::Value;
use webnlu::io::ModelFiles;
use webnlu::models::{Freeze, Gradients, RunMode};
use webnlu::tasks::train_masked_lm::{corrupt, Corrupted};
use webnlu::tasks::{MaskedLmTraining, Pipeline, StepsProgress, TrainOptions};
use webnlu::train::SplitMix64;
use webnlu::Device;

const REFERENCE: &str = "../tests/fixtures/tasks/training_reference.json";
const PRETRAINING: &str = "tests/fixtures/bert-reference/random/bert-random";

fn files(without_dropout: bool) -> ModelFiles {
    let mut files = ModelFiles::from_dir(Path::new("..").join(PRETRAINING)).unwrap();
    if without_dropout {
        let mut config: Value = serde_json::from_slice(files.get("config.json").unwrap()).unwrap();
        for key in ["hidden_dropout_prob", "attention_probs_dropout_prob"] {
            config[key] = 0.0.into();
        }
        files.insert("config.json", serde_json::to_vec(&config).unwrap());
    }
    files
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn corruption_is_berts_and_seeded() {
    let ids: Vec<u32> = (0..200_000).map(|i| 10 + (i % 50)).collect();
    let mut special = vec![0u32; ids.len()];
    for s in special.iter_mut().step_by(10) {
        *s = 1;
    }
    let mut rng = SplitMix64::new(9);
    let c = corrupt(&ids, &special, 0.15, 4, 1000, &mut rng);
    let ordinary = special.iter().filter(|&&s| s == 0).count() as f64;
    let chosen: Vec<usize> = (0..ids.len()).filter(|&t| c.labels[t] >= 0).collect();
    assert!(
        chosen.iter().all(|&t| special[t] == 0),
        "a special token was chosen"
    );
    assert!(chosen.iter().all(|&t| c.labels[t] == ids[t] as i64));
    assert!((0..ids.len()).all(|t| c.labels[t] >= 0 || c.ids[t] == ids[t]));
    let n = chosen.len() as f64;
    let masked = chosen.iter().filter(|&&t| c.ids[t] == 4).count() as f64;
    let kept = chosen.iter().filter(|&&t| c.ids[t] == ids[t]).count() as f64;
    // 180,000 ordinary tokens: binomial standard deviations of ~0.1% (chosen share) and ~0.3%
    assert!(
        (n / ordinary - 0.15).abs() < 0.005,
        "chosen {}",
        n / ordinary
    );
    assert!((masked / n - 0.8).abs() < 0.01, "masked {}", masked / n);
    // kept: the 10% left alone plus the random draws that hit the same id (1 in 1000)
    assert!((kept / n - 0.1).abs() < 0.01, "kept {}", kept / n);
    assert!(((n - masked - kept) / n - 0.1).abs() < 0.01);
    let again = corrupt(&ids, &special, 0.15, 4, 1000, &mut SplitMix64::new(9));
    assert_eq!(again, c, "the same seed draws the same corruption");
    let other = corrupt(&ids, &special, 0.15, 4, 1000, &mut SplitMix64::new(10));
    assert_ne!(other, c);
}

fn masked_lm_step_matches_torch(device: &Device) {
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(REFERENCE).unwrap()).unwrap();
    let r = &reference["masked_lm"];
    let batch: Vec<Corrupted> = r["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| Corrupted {
            ids: serde_json::from_value(row["ids"].clone()).unwrap(),
            labels: serde_json::from_value(row["labels"].clone()).unwrap(),
        })
        .collect();
    for (policy, expected) in r["policies"].as_object().unwrap() {
        let freeze: Freeze = policy.parse().unwrap();
        let mut p = Pipeline::load(&files(true), device).unwrap();
        let texts = vec!["the cat".to_string(), "a dog".to_string()];
        let options = TrainOptions {
            freeze,
            validation_fraction: 0.0,
            ..TrainOptions::default()
        };
        let run = block_on(MaskedLmTraining::new(&mut p, &texts, options)).unwrap();
        let mut grads = Gradients::new();
        let mode = RunMode::training(1, freeze);
        let (sum, count) = block_on(run.step(&p, &batch, &mode, 1, Some(&mut grads))).unwrap();
        let loss = (sum / count as f64) as f32;
        // a mean of 8 cross-entropies over 84 logits in f32: rounding only
        assert_close(
            &format!("{policy}: loss"),
            &[loss],
            &[r["policies"][policy]["loss"].as_f64().unwrap() as f32],
            1e-5,
            1e-5,
        );
        for (name, want) in expected["grads"].as_object().unwrap() {
            let want = floats(want); // the first rows of the gradient (8 rows / 8 values)
            let got = grads
                .get(name)
                .unwrap_or_else(|| panic!("{policy}: no gradient of {name}"))
                .to_vec_blocking()
                .unwrap();
            // the 1e-3 relative; the absolute floor covers entries that cancel to ~0
            assert_close(
                &format!("{policy}: gradient of {name}"),
                &got[..want.len()],
                &want,
                1e-6,
                1e-3,
            );
        }
        if freeze == Freeze::Head {
            // a tied decoder is the word embeddings: frozen with the encoder
            assert!(grads
                .get("bert.embeddings.word_embeddings.weight")
                .is_none());
        }
    }
}

#[test]
fn masked_lm_step_matches_torch_on_the_cpu() {
    masked_lm_step_matches_torch(&Device::Cpu);
}

#[test]
fn masked_lm_step_matches_torch_on_the_gpu() {
    masked_lm_step_matches_torch(&gpu());
}

/// 60 sentences of the random vocabulary with a strong pattern ("the X sat on the house").
fn corpus() -> Vec<String> {
    let animals = ["cat", "dog", "bird", "fish"];
    let places = ["house", "tree", "river"];
    (0..60)
        .map(|i| {
            format!(
                "the {} sat on the {} and the {} saw the {} .",
                animals[i % 4],
                places[i % 3],
                animals[(i + 1) % 4],
                places[(i + 2) % 3]
            )
        })
        .collect()
}

#[test]
fn masked_lm_training_lowers_held_out_perplexity_on_both_devices() {
    let texts = corpus();
    let options = TrainOptions {
        freeze: Freeze::All,
        epochs: 6,
        learning_rate: 5e-3,
        batch_size: 8,
        validation_fraction: 0.25,
        seed: 2,
        ..TrainOptions::default()
    };
    let mut reports = Vec::new();
    for device in [Device::Cpu, gpu()] {
        let mut p = Pipeline::load(&files(false), &device).unwrap();
        let report = block_on(p.train_masked_lm(&texts, options.clone(), |_| {})).unwrap();
        println!("{report:?}");
        let initial = report.initial_validation_perplexity.unwrap();
        let last = report.epochs.last().unwrap().validation_perplexity.unwrap();
        assert!(last < initial * 0.5, "perplexity {initial} -> {last}");
        // fill-mask reads the trained head; the saved model keeps its heads
        let filled = block_on(p.fill_mask("the cat sat on the [MASK] .", 3)).unwrap();
        assert_eq!(filled[0].len(), 3);
        let saved = block_on(p.save_to_files()).unwrap();
        let config: Value = serde_json::from_slice(saved.get("config.json").unwrap()).unwrap();
        assert_eq!(config["architectures"][0], "BertForPreTraining");
        reports.push(report);
    }
    for (c, g) in reports[0].epochs.iter().zip(&reports[1].epochs) {
        // the same corruption and dropout masks: float rounding of two devices
        assert!((c.loss - g.loss).abs() < 1e-3, "{} vs {}", c.loss, g.loss);
    }
}

/// An epoch taken a few optimizer steps at a time (`run_steps`, what the browser's engine does
/// so that JavaScript can report progress and stop between calls) is the epoch `run_epoch`
/// runs whole: the same reports (the corruption of an epoch is drawn per text, whatever the
/// call) and the same masked-LM head bit for bit, with dropout and gradient accumulation, on the
/// CPU and the GPU. The steps are counted as the epoch has them.
#[test]
fn masked_lm_training_in_steps_is_the_epochs_run_whole() {
    let texts = corpus();
    let options = TrainOptions {
        freeze: Freeze::Top(1),
        epochs: 2,
        learning_rate: 5e-3,
        batch_size: 8,
        accumulation_steps: 2,
        validation_fraction: 0.25,
        seed: 4,
        ..TrainOptions::default()
    };
    for device in [Device::Cpu, gpu()] {
        let mut p = Pipeline::load(&files(false), &device).unwrap();
        let mut run = block_on(MaskedLmTraining::new(&mut p, &texts, options.clone())).unwrap();
        let whole: Vec<_> = (0..options.epochs)
            .map(|_| block_on(run.run_epoch(&mut p)).unwrap())
            .collect();
        let whole_filled = block_on(p.fill_mask("the cat sat on the [MASK] .", 5)).unwrap();

        let mut p = Pipeline::load(&files(false), &device).unwrap();
        let mut run = block_on(MaskedLmTraining::new(&mut p, &texts, options.clone())).unwrap();
        let (mut in_steps, mut seen) = (Vec::new(), Vec::new());
        while in_steps.len() < options.epochs {
            match block_on(run.run_steps(&mut p, 1)).unwrap() {
                StepsProgress::Running { epoch, done, total } => seen.push((epoch, done, total)),
                StepsProgress::EpochDone(progress) => in_steps.push(progress),
            }
        }
        // 45 training texts: 6 micro-batches of up to 8, 3 steps of 2
        assert_eq!(seen, [(1, 1, 3), (1, 2, 3), (2, 1, 3), (2, 2, 3)]);
        assert_eq!(in_steps, whole, "on {device:?}");
        let filled = block_on(p.fill_mask("the cat sat on the [MASK] .", 5)).unwrap();
        assert_eq!(filled, whole_filled, "on {device:?}");
    }
}

#[test]
fn bad_masked_lm_input_gets_clear_errors() {
    let error = |files: &ModelFiles, texts: &[String], probability: f32| {
        let mut p = Pipeline::load(files, &Device::Cpu).unwrap();
        let options = TrainOptions {
            mlm_probability: Some(probability),
            ..TrainOptions::default()
        };
        match block_on(MaskedLmTraining::new(&mut p, texts, options)) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    };
    let good = corpus();
    let e = error(&files(false), &[], 0.15);
    assert!(e.contains("no texts"), "{e}");
    let e = error(&files(false), &["a".into(), " ".into()], 0.15);
    assert!(e.contains("text 1 is empty"), "{e}");
    let e = error(&files(false), &good, 1.5);
    assert!(
        e.contains("mlmProbability must be in (0, 1), found 1.5"),
        "{e}"
    );
    let classifier = ModelFiles::from_dir(Path::new(
        "../tests/fixtures/bert-reference/random/bert-random-classifier",
    ))
    .unwrap();
    let e = error(&classifier, &good, 0.15);
    assert!(e.contains("no masked-LM head"), "{e}");
}
