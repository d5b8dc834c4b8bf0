//! `webnlu elmo-train --options P --weights P --data TSV [--train N] [--test M] [--epochs E]
//! [--batch-size B] [--lr X] [--seed S] [--mix | --end-to-end] [--device auto|gpu|cpu]`
//!
//! Trains a sentiment classifier on ELMo features (`models::elmo::classifier`) on rated
//! sentences (`id<TAB>rating<TAB>text`, label = sign of the rating: VADER's ground-truth files,
//! Hutto & Gilbert, ICWSM 2014). The training options are the library's `ElmoTrainOptions`
//! (the type JavaScript's `elmo.trainClassifier` options are read into): the flags fill it and
//! its `validate` checks them. `--train N --test M` are this command's own: the sentences are
//! shuffled with `--seed`; the first N train, the next M are held out (the rest of the file is
//! left out), where JavaScript holds out a share of its examples (`validation`).
//! Prints one JSON line per epoch: mean training loss and accuracy
//! (measured on each batch before its update), held-out loss and accuracy, the held-out
//! majority-class rate (chance), and the seconds the epoch took (the first epoch includes the
//! biLM features of the training sentences, which also fit the fixed feature standardization).

use std::time::Instant;

use clap::Args;

use super::elmo::BiLmArgs;
use webnlu::models::elmo::classifier::ElmoTraining;
use webnlu::tasks::elmo_examples::parse_rated_sentences;
use webnlu::tasks::elmo_training::{shuffle_and_split, ElmoClassifierRun, ElmoTrainOptions};
use webnlu::tasks::OptionError;
use webnlu::{Error, Result};

/// `elmo-train`'s options.
#[derive(Args)]
pub struct ElmoTrainArgs {
    #[command(flatten)]
    pub bilm: BiLmArgs,
    /// Rated sentences: id<TAB>rating<TAB>text lines
    #[arg(long, value_name = "TSV")]
    pub data: String,
    /// Sentences trained on: the first N of the seeded shuffle (this command's own; JavaScript
    /// holds out a share, `validation`, instead)
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub train: usize,
    /// Sentences held out: the next M of the shuffle (the rest of the file is left out)
    #[arg(long, value_name = "M", default_value_t = 1000)]
    pub test: usize,
    /// Passes over the training sentences
    #[arg(long, value_name = "E", default_value_t = ElmoTrainOptions::default().epochs)]
    pub epochs: usize,
    /// Sentences per optimizer step
    #[arg(long, value_name = "B", default_value_t = ElmoTrainOptions::default().batch_size)]
    pub batch_size: usize,
    /// AdamW learning rate (constant)
    #[arg(long, value_name = "X", default_value_t = ElmoTrainOptions::default().learning_rate)]
    pub lr: f32,
    /// Seeds the shuffle and the new head
    #[arg(long, value_name = "S", default_value_t = ElmoTrainOptions::default().seed)]
    pub seed: u64,
    /// Train the scalar mix of the layers too
    #[arg(long, conflicts_with = "end_to_end")]
    pub mix: bool,
    /// Train the whole biLM too
    #[arg(long)]
    pub end_to_end: bool,
}

impl ElmoTrainArgs {
    /// The training options these flags give (the held-out share is JavaScript's: the command
    /// holds out `--test` sentences), checked by the library's `ElmoTrainOptions::validate`:
    /// an error names the flag, its value and the range.
    fn options(&self) -> Result<ElmoTrainOptions> {
        let training = match (self.mix, self.end_to_end) {
            (false, false) => ElmoTraining::Head,
            (true, false) => ElmoTraining::Mix,
            (_, true) => ElmoTraining::EndToEnd,
        };
        let options = ElmoTrainOptions {
            training,
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.lr,
            seed: self.seed,
            ..ElmoTrainOptions::default()
        };
        options
            .validate()
            .map_err(|e| Error::invalid(flag_error(&e)))?;
        Ok(options)
    }
}

/// "--batch-size must be a positive integer ...": the flag of the option `error` names.
fn flag_error(error: &OptionError) -> String {
    let flag = match error.option {
        "epochs" => "--epochs",
        "batchSize" => "--batch-size",
        "learningRate" => "--lr",
        "seed" => "--seed",
        other => other, // not a flag of this command (`validation` stays at its default)
    };
    format!("elmo-train: {flag} {}", error.problem)
}

pub fn run(args: ElmoTrainArgs) -> Result<()> {
    let data_path = args.data.as_str();
    let (train_count, test_count) = (args.train, args.test);
    if train_count == 0 || test_count == 0 {
        return Err(Error::invalid(
            "elmo-train: --train and --test must be at least 1",
        ));
    }
    let options = args.options()?;
    let (mut bilm, device) = super::elmo::load_bilm(&args.bilm)?;

    let data_bytes = webnlu::io::read_file(data_path)?;
    let data_text = std::str::from_utf8(&data_bytes)
        .map_err(|e| Error::format(data_path, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let examples = parse_rated_sentences(data_path, data_text)?;
    if examples.len() < train_count + test_count {
        return Err(Error::invalid(format!(
            "elmo-train: {data_path} has {} labelled sentences, fewer than --train {train_count} + --test {test_count}",
            examples.len()
        )));
    }
    let (train, test) = shuffle_and_split(examples, train_count, test_count, options.seed)?;
    // The first epoch's seconds include the features of the training sentences.
    let started = Instant::now();
    let mut run = pollster::block_on(ElmoClassifierRun::start(&bilm, 2, train, test, options))?;
    let mut feature_seconds = started.elapsed().as_secs_f64();
    for _ in 0..options.epochs {
        let started = Instant::now();
        let report = pollster::block_on(run.run_epoch(&mut bilm))?;
        let line = serde_json::json!({
            "epoch": report.epoch,
            "training": options.training.to_string(),
            "device": device.kind(),
            "train_sentences": train_count,
            "test_sentences": test_count,
            "train_loss": report.train_loss,
            "train_accuracy": report.train_accuracy,
            "test_loss": report.test_loss,
            "test_accuracy": report.test_accuracy,
            "test_chance": report.test_chance,
            "mix_weights": report.mix_weights,
            "mix_gamma": report.mix_gamma,
            "seconds": started.elapsed().as_secs_f64() + feature_seconds,
        });
        feature_seconds = 0.0;
        println!("{line}");
    }
    Ok(())
}
