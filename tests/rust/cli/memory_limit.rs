//! `--memory-limit` of the training commands: a model load over it is refused, and a run whose
//! estimate is over it is refused before its first step with the message that names the need,
//! its parts and what to try (exit status 1, no panic, no epoch line).

use std::process::{Command, Output};

use crate::bert_reference::repo_path;

fn train_head(examples: &str, memory_limit_mib: f64) -> Output {
    let model = repo_path("tests/fixtures/bert-reference/random/bert-random-classifier");
    Command::new(env!("CARGO_BIN_EXE_webnlu"))
        .args([
            "train-head",
            "--model",
            model.to_str().unwrap(),
            "--device",
            "cpu",
        ])
        .args([
            "--examples",
            examples,
            "--freeze",
            "all",
            "--batch-size",
            "2",
        ])
        .args(["--epochs", "1", "--validation", "0"])
        .args(["--memory-limit", &format!("{memory_limit_mib:.9}")])
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap()
}

/// The number after `before` in `text`.
fn number_after(text: &str, before: &str) -> u64 {
    let at = text
        .find(before)
        .unwrap_or_else(|| panic!("{before:?} in {text}"))
        + before.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

#[test]
fn a_run_over_the_memory_limit_is_refused_with_what_to_try() {
    let dir = std::env::temp_dir().join(format!("webnlu-cli-memory-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = dir.join("examples.tsv");
    std::fs::write(&examples, "the old man\ta\nthe river\tb\n").unwrap();
    let examples = examples.to_str().unwrap();

    // a limit under the load's need refuses the load, naming it
    let output = train_head(examples, 0.001);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("loading the model"), "{stderr}");
    let load_need = number_after(&stderr, "needs ");

    // half as much again: the load fits, the run (all weights trained: their gradients and
    // moments alone are three times the weights) does not
    let output = train_head(examples, 1.5 * load_need as f64 / 1048576.0);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stdout.contains("\"epoch\""), "no epoch ran: {stdout}");
    for part in [
        "out of memory: train_classifier (freeze all) needs",
        "the limit set for this run",
        "MiB of weights as fp32",
        "MiB of gradients + AdamW moments",
        "MiB of activations at batch 2 x 5 tokens",
        "try, in this order: training fewer layers",
    ] {
        assert!(stderr.contains(part), "{part:?} in {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
