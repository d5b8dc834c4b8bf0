//! `webnlu elmo` and `webnlu elmo-train` on AllenNLP's fixture biLM (moved from
//! tests/rust/models/elmo_parity.rs and elmo_training.rs with the CLI's move to crate/cli).

use crate::elmo_fixture::{expected_top_layers, fixture_dir, sentences};
use crate::op_checks;

/// `webnlu elmo-train` on the fixture biLM in `dir` with the examples file `data`.
fn elmo_train(dir: &std::path::Path, data: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_webnlu"));
    command
        .arg("elmo-train")
        .arg("--options")
        .arg(dir.join("options.json"))
        .arg("--weights")
        .arg(dir.join("lm_weights.hdf5"))
        .arg("--data")
        .arg(data);
    command
}

/// The CLI with `--batch-size 3 --stateful` on the fixture's sentences in batch order gives
/// AllenNLP's top layer; lines come back in input order with boundaries removed.
#[test]
fn cli_reproduces_the_fixture_and_keeps_line_order() {
    use std::io::Write;
    let dir = fixture_dir();
    let sentences = sentences();
    // Batch i = [sentences[0][i], sentences[1][i], sentences[2][i]].
    let mut input = String::new();
    for i in 0..10 {
        for list in sentences.iter().take(3) {
            input.push_str(&list[i]);
            input.push('\n');
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_webnlu"))
        .args(["elmo", "--options"])
        .arg(dir.join("options.json"))
        .arg("--weights")
        .arg(dir.join("lm_weights.hdf5"))
        .args(["--batch-size", "3", "--stateful", "--device", "cpu"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 30);
    let expected = expected_top_layers();
    let mut worst = 0.0f32;
    for (line_index, line) in lines.iter().enumerate() {
        let (i, k) = (line_index / 3, line_index % 3);
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let layers = value["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3);
        let (t, want) = &expected[k][i];
        for layer in layers {
            assert_eq!(layer.as_array().unwrap().len(), *t, "line {line_index}");
        }
        for (token, vector) in layers[2].as_array().unwrap().iter().enumerate() {
            let vector = vector.as_array().unwrap();
            assert_eq!(vector.len(), 32);
            for (d, v) in vector.iter().enumerate() {
                let g = v.as_f64().unwrap() as f32;
                worst = worst.max((g - want[token * 32 + d]).abs());
            }
        }
    }
    // The same numbers as cpu_reproduces_allennlp_stateful_fixture, printed and parsed back.
    assert!(worst <= 1e-5, "CLI max difference {worst}");

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_webnlu"))
        .args(["elmo", "--options"])
        .arg(dir.join("options.json"))
        .arg("--weights")
        .arg(dir.join("sentences.json"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("sentences.json"));
}

/// `webnlu elmo-train` (head only) on VADER's movie-review sentences (Hutto & Gilbert, ICWSM
/// 2014; label = sign of the rating) with AllenNLP's tiny fixture biLM: the held-out accuracy
/// must beat chance (the majority class of the held-out split) by 3 standard deviations of the
/// accuracy of a predictor independent of the labels (<= 0.5 / sqrt(n) for n held-out
/// sentences): with n = TEST_SENTENCES that is a margin of 3 * 0.5 / sqrt(n). The run is
/// deterministic (fixed shuffle and initialisation), so the assertion cannot flake; the margin
/// is what makes "beats chance" a claim rather than noise.
#[test]
fn cli_head_only_classifier_beats_chance_on_held_out_movie_reviews() {
    const TRAIN_SENTENCES: usize = 3000;
    const TEST_SENTENCES: usize = 3000;
    let dir = fixture_dir();
    let vader = op_checks::fixture_model_dir("vader", &["movieReviewSnippets_GroundTruth.txt"]);
    let output = elmo_train(&dir, &vader.join("movieReviewSnippets_GroundTruth.txt"))
        .args(["--train", &TRAIN_SENTENCES.to_string()])
        .args(["--test", &TEST_SENTENCES.to_string()])
        .args(["--epochs", "10", "--device", "cpu"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let epochs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len(), 10);
    let first = &epochs[0];
    let last = &epochs[9];
    assert_eq!(last["training"], "head");
    assert_eq!(last["test_sentences"], TEST_SENTENCES);
    let accuracy = last["test_accuracy"].as_f64().unwrap();
    let chance = last["test_chance"].as_f64().unwrap();
    let margin = 3.0 * 0.5 / (TEST_SENTENCES as f64).sqrt();
    eprintln!("held-out accuracy {accuracy:.4}, chance {chance:.4}, margin {margin:.4}");
    assert!(
        accuracy > chance + margin,
        "held-out accuracy {accuracy} does not beat chance {chance} by {margin}"
    );
    assert!(
        last["train_loss"].as_f64().unwrap() < first["train_loss"].as_f64().unwrap(),
        "training loss did not fall: {text}"
    );
    // The head alone leaves the mix at AllenNLP's initial equal weights.
    let weights = last["mix_weights"].as_array().unwrap();
    assert!(weights
        .iter()
        .all(|w| (w.as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-6));

    // Bad input is named.
    let bad = elmo_train(&dir, &dir.join("options.json"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("options.json"));
}

/// `webnlu elmo-train`'s flags fill the library's `ElmoTrainOptions` and its `validate` checks
/// them before anything is loaded: a value out of range is named by its flag, with the value
/// and the range; `--help` shows the type's defaults.
#[test]
fn cli_elmo_train_names_a_flag_out_of_range_and_shows_the_defaults() {
    let dir = fixture_dir();
    for (flag, value, message) in [
        (
            "--batch-size",
            "0",
            "elmo-train: --batch-size must be a positive integer (>= 1), found 0",
        ),
        (
            "--epochs",
            "0",
            "elmo-train: --epochs must be a positive integer (>= 1), found 0",
        ),
        (
            "--lr",
            "-0.5",
            "elmo-train: --lr must be a finite number > 0, found -0.5",
        ),
        (
            "--lr",
            "inf",
            "elmo-train: --lr must be a finite number > 0, found inf",
        ),
    ] {
        let output = elmo_train(&dir, &dir.join("no-such-file.tsv"))
            .arg(format!("{flag}={value}"))
            .output()
            .unwrap();
        assert!(!output.status.success(), "{flag} {value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{flag} {value}: {stderr}");
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_webnlu"))
        .args(["elmo-train", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for (flag, default) in [
        ("--epochs", "[default: 10]"),
        ("--batch-size", "[default: 32]"),
        ("--lr", "[default: 0.003]"),
        ("--seed", "[default: 1]"),
    ] {
        assert!(
            help.split("\n\n")
                .chain(help.lines())
                .any(|l| l.contains(flag) && l.contains(default)),
            "{flag} {default} missing:\n{help}"
        );
    }
}
