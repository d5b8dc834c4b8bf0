//! `webnlu elmo-train --options P --weights P --data TSV [--train N] [--test N] [--epochs E]
//! [--batch-size B] [--lr X] [--seed S] [--mix | --end-to-end] [--device auto|gpu|cpu]`
//!
//! Trains a sentiment classifier on ELMo features (`models::elmo_classifier`) on rated
//! sentences (`id<TAB>rating<TAB>text`, label = sign of the rating: VADER's ground-truth files,
//! Hutto & Gilbert, ICWSM 2014). The sentences are shuffled with `--seed`; the first N train,
//! the next N are held out. Prints one JSON line per epoch: mean training loss and accuracy
//! (measured on each batch before its update), held-out loss and accuracy, the held-out
//! majority-class rate (chance), and the seconds the epoch took (the first epoch includes the
//! biLM features of the training sentences, which also fit the fixed feature standardization).

use std::time::Instant;

use super::arguments::Arguments;
use webnlu::device::{DeviceChoice, GpuOptions};
use webnlu::models::elmo::ElmoBiLm;
use webnlu::models::elmo_classifier::{BatchResult, ElmoClassifier, ElmoTraining, FeatureScaling};
use webnlu::models::elmo_sentiment_data::{parse_rated_sentences, shuffle, RatedSentence};
use webnlu::ops::optimizer::AdamWConfig;
use webnlu::{Device, Error, Result};

pub fn run(args: &[String]) -> Result<()> {
    let args = Arguments::parse(
        args,
        &[
            "options",
            "weights",
            "data",
            "train",
            "test",
            "epochs",
            "batch-size",
            "lr",
            "seed",
            "device",
        ],
        &["mix", "end-to-end"],
    )?;
    if let Some(extra) = args.positional.first() {
        return Err(Error::invalid(format!(
            "elmo-train: unexpected argument {extra:?}"
        )));
    }
    let need = |name: &str, what: &str| {
        args.value(name)
            .ok_or_else(|| Error::invalid(format!("elmo-train needs --{name} PATH ({what})")))
    };
    let options_path = need("options", "options.json")?;
    let weights_path = need("weights", "the .hdf5 weights")?;
    let data_path = need("data", "id<TAB>rating<TAB>text lines")?;
    let train_count = args.number("train")?.unwrap_or(2000);
    let test_count = args.number("test")?.unwrap_or(1000);
    let epochs = args.number("epochs")?.unwrap_or(10);
    let batch_size = args.number("batch-size")?.unwrap_or(32);
    let seed = args.number("seed")?.unwrap_or(1) as u64;
    if batch_size == 0 || train_count == 0 || test_count == 0 {
        return Err(Error::invalid(
            "elmo-train: --batch-size, --train and --test must be at least 1",
        ));
    }
    let lr: f32 = match args.value("lr") {
        None => 3e-3,
        Some(v) => v
            .parse()
            .ok()
            .filter(|x: &f32| x.is_finite() && *x > 0.0)
            .ok_or_else(|| Error::invalid(format!("--lr {v:?} is not a positive number")))?,
    };
    let training = match (args.flag("mix"), args.flag("end-to-end")) {
        (false, false) => ElmoTraining::Head,
        (true, false) => ElmoTraining::Mix,
        (_, true) => ElmoTraining::EndToEnd,
    };
    let choice: DeviceChoice = args.value("device").unwrap_or("auto").parse()?;
    let device = Device::new_blocking(choice, &GpuOptions::default())?;

    let options_bytes = webnlu::io::read_file(options_path)?;
    let options_text = std::str::from_utf8(&options_bytes)
        .map_err(|_| Error::format(options_path, "not UTF-8 text"))?;
    let weights = webnlu::io::read_file(weights_path)?;
    let mut bilm = ElmoBiLm::load(options_text, weights_path, &weights, &device)?;

    let data_bytes = webnlu::io::read_file(data_path)?;
    let data_text = std::str::from_utf8(&data_bytes)
        .map_err(|e| Error::format(data_path, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let mut examples = parse_rated_sentences(data_path, data_text)?;
    if examples.len() < train_count + test_count {
        return Err(Error::invalid(format!(
            "elmo-train: {data_path} has {} labelled sentences, fewer than --train {train_count} + --test {test_count}",
            examples.len()
        )));
    }
    shuffle(&mut examples, seed);
    let test: Vec<RatedSentence> = examples[train_count..train_count + test_count].to_vec();
    let mut train: Vec<RatedSentence> = examples[..train_count].to_vec();
    let positives = test.iter().filter(|e| e.label == 1).count();
    let chance = positives.max(test_count - positives) as f64 / test_count as f64;

    let config = AdamWConfig {
        lr,
        ..AdamWConfig::default()
    };
    let mut classifier = ElmoClassifier::new(&bilm, 2, training, config, seed)?;
    let pooled = |bilm: &ElmoBiLm, batch: &[RatedSentence]| {
        let sentences: Vec<Vec<&str>> = batch
            .iter()
            .map(|e| e.tokens.iter().map(String::as_str).collect())
            .collect();
        pollster::block_on(ElmoClassifier::pooled_layers(bilm, &sentences))
    };
    let labels = |batch: &[RatedSentence]| batch.iter().map(|e| e.label).collect::<Vec<u32>>();
    // The pooled layers of every training sentence under the initial biLM, once: they fit the
    // feature scaling, and with a frozen biLM the epochs reuse them.
    let started = Instant::now();
    let mut cached: Vec<(Vec<f32>, Vec<u32>)> = Vec::new();
    for batch in train.chunks(batch_size) {
        cached.push((pooled(&bilm, batch)?, labels(batch)));
    }
    let batches: Vec<&[f32]> = cached.iter().map(|(f, _)| f.as_slice()).collect();
    classifier.set_scaling(FeatureScaling::fit(
        &batches,
        bilm.num_layers(),
        bilm.output_dim(),
    )?)?;
    let mut test_cache: Vec<(Vec<f32>, Vec<u32>)> = Vec::new();
    if training != ElmoTraining::EndToEnd {
        for batch in test.chunks(batch_size) {
            test_cache.push((pooled(&bilm, batch)?, labels(batch)));
        }
    } else {
        cached.clear();
    }
    let feature_seconds = started.elapsed().as_secs_f64();

    let mode = match training {
        ElmoTraining::Head => "head",
        ElmoTraining::Mix => "mix",
        ElmoTraining::EndToEnd => "end-to-end",
    };
    for epoch in 1..=epochs {
        let started = Instant::now();
        let mut seen = BatchResult::default();
        if training == ElmoTraining::EndToEnd {
            shuffle(&mut train, seed.wrapping_add(epoch as u64));
            for batch in train.chunks(batch_size) {
                let sentences: Vec<Vec<&str>> = batch
                    .iter()
                    .map(|e| e.tokens.iter().map(String::as_str).collect())
                    .collect();
                seen.add(pollster::block_on(classifier.train_step_end_to_end(
                    &mut bilm,
                    &sentences,
                    &labels(batch),
                ))?);
            }
        } else {
            shuffle(&mut cached, seed.wrapping_add(epoch as u64));
            for (features, batch_labels) in &cached {
                seen.add(classifier.train_step(features, batch_labels)?);
            }
        }
        let mut held_out = BatchResult::default();
        if training == ElmoTraining::EndToEnd {
            for batch in test.chunks(batch_size) {
                held_out.add(classifier.evaluate(&pooled(&bilm, batch)?, &labels(batch))?);
            }
        } else {
            for (features, batch_labels) in &test_cache {
                held_out.add(classifier.evaluate(features, batch_labels)?);
            }
        }
        let line = serde_json::json!({
            "epoch": epoch,
            "training": mode,
            "device": device.kind(),
            "train_sentences": train_count,
            "test_sentences": test_count,
            "train_loss": seen.mean_loss(),
            "train_accuracy": seen.accuracy(),
            "test_loss": held_out.mean_loss(),
            "test_accuracy": held_out.accuracy(),
            "test_chance": chance,
            "mix_weights": classifier.mix.weights(),
            "mix_gamma": classifier.mix.gamma,
            "seconds": started.elapsed().as_secs_f64() + if epoch == 1 { feature_seconds } else { 0.0 },
        });
        println!("{line}");
    }
    Ok(())
}
