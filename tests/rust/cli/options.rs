//! The command line's declaration as a user meets it: `--help` lists every command, a command's
//! help its options with their defaults (the library's `TrainOptions::default()`), and an
//! unknown, missing or ill-typed option is refused by the parser (exit status 2) naming it,
//! while a value out of its range is refused by `TrainOptions::validate` (exit status 1) naming
//! the flag, the value and the range. The option checks come before any model is loaded, so
//! these runs need no model.

use std::process::{Command, Output};

fn webnlu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webnlu"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A labelled-examples file, a texts file and a CoNLL file for the training commands, in a
/// fresh folder.
fn training_files(name: &str) -> (std::path::PathBuf, String, String, String) {
    let dir = std::env::temp_dir().join(format!("webnlu-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = dir.join("examples.tsv");
    std::fs::write(&examples, "good film\tpos\nbad film\tneg\n").unwrap();
    let texts = dir.join("texts.txt");
    std::fs::write(&texts, "a text\nanother text\n").unwrap();
    let words = dir.join("words.conll");
    std::fs::write(&words, "EU B-ORG\nrejects O\n\nPeter B-PER\nsmiles O\n").unwrap();
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_string();
    (dir, path(examples), path(texts), path(words))
}

#[test]
fn help_lists_every_command_and_a_commands_options_with_their_defaults() {
    let output = webnlu(&["--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let help = stdout(&output);
    for command in [
        "tokenize",
        "elmo",
        "embed",
        "similarity",
        "fill-mask",
        "classify",
        "classify-tokens",
        "next-sentence",
        "inspect",
        "train-head",
        "train-tokens",
        "train-mlm",
        "elmo-train",
        "bench",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} missing from --help:\n{help}"
        );
    }
    let output = webnlu(&["train-head", "--help"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let help = stdout(&output);
    for (option, default) in [
        ("--freeze", "[default: head]"),
        ("--epochs", "[default: 3]"),
        ("--learning-rate", "[default: 0.001]"),
        ("--validation", "[default: 0.1]"),
        ("--seed", "[default: 42]"),
        ("--max-grad-norm", "[default: 1]"),
        ("--task", "[default: classification]"),
    ] {
        let line = help
            .split("\n\n")
            .chain(help.lines())
            .find(|l| l.contains(option) && l.contains(default));
        assert!(line.is_some(), "{option} {default} missing:\n{help}");
    }
    // the window options belong to the commands that read whole texts
    assert!(help.contains("--stride") && help.contains("--pooling"));
    let help = stdout(&webnlu(&["train-tokens", "--help"]));
    assert!(
        help.contains("--epochs") && !help.contains("--stride"),
        "{help}"
    );
    let output = webnlu(&["bench", "--help"]);
    assert!(output.status.success());
    for benchmark in ["tokenizer", "model", "elmo", "ops"] {
        assert!(stdout(&output).contains(benchmark), "{}", stdout(&output));
    }
}

#[test]
fn unknown_missing_and_ill_typed_options_are_refused_by_name() {
    let (dir, examples, _, words) = training_files("parse");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train-head",
            "--model",
            "/nonexistent",
            "--examples",
            &examples,
        ];
        args.extend_from_slice(extra);
        webnlu(&args)
    };
    // a misspelt option: named, with the option meant
    let output = train(&["--epoch", "2"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let e = stderr(&output);
    assert!(
        e.contains("unexpected argument '--epoch'") && e.contains("--epochs"),
        "{e}"
    );
    // a value of the wrong type: the option, the value, what it must be
    let output = train(&["--epochs", "three"]);
    assert_eq!(output.status.code(), Some(2));
    let e = stderr(&output);
    assert!(
        e.contains("invalid value 'three' for '--epochs <N>'"),
        "{e}"
    );
    let output = train(&["--freeze", "top"]);
    assert_eq!(output.status.code(), Some(2));
    let e = stderr(&output);
    assert!(
        e.contains("'--freeze <head|top:K|all>'") && e.contains("head, top:K"),
        "{e}"
    );
    let output = train(&["--max-grad-norm", "off"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("a number, or none for no clipping"),
        "{}",
        stderr(&output)
    );
    // an examples format the parser does not have: the formats it has
    let output = train(&["--format", "json"]);
    assert_eq!(output.status.code(), Some(2));
    let e = stderr(&output);
    assert!(
        e.contains("'--format <auto|rated|tsv|csv|lines>'") && e.contains("csv or lines"),
        "{e}"
    );
    // a missing required option
    let output = webnlu(&["train-head", "--examples", &examples]);
    assert_eq!(output.status.code(), Some(2));
    let e = stderr(&output);
    assert!(e.contains("required") && e.contains("--model <DIR>"), "{e}");
    // an option of another command: train-tokens cuts examples to --max-length
    let output = webnlu(&[
        "train-tokens",
        "--model",
        "/nonexistent",
        "--examples",
        &words,
        "--stride",
        "8",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unexpected argument '--stride'"));
    // an unknown command, with the one meant
    let output = webnlu(&["tokenise"]);
    assert_eq!(output.status.code(), Some(2));
    let e = stderr(&output);
    assert!(e.contains("'tokenise'") && e.contains("tokenize"), "{e}");
    // no command: the usage
    let output = webnlu(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("Usage: webnlu"));
    std::fs::remove_dir_all(&dir).ok();
}

/// The ranges are the library's (`TrainOptions::validate`, the same check as for JavaScript's
/// options); the CLI names its flag.
#[test]
fn out_of_range_training_options_are_refused_with_the_flag_value_and_range() {
    let (dir, examples, texts, words) = training_files("range");
    let cases: [(&str, &str, &[&str], &str); 7] = [
        (
            "train-head",
            &examples,
            &["--validation", "1.5"],
            "--validation must be the fraction of examples to hold out, in [0, 1), found 1.5",
        ),
        (
            "train-head",
            &examples,
            &["--epochs", "0"],
            "--epochs must be a positive integer (>= 1), found 0",
        ),
        (
            "train-head",
            &examples,
            &["--batch-size", "0"],
            "--batch-size must be a positive integer (>= 1), found 0",
        ),
        (
            "train-head",
            &examples,
            &["--warmup-ratio", "2"],
            "--warmup-ratio must be in [0, 1], found 2",
        ),
        (
            "train-head",
            &examples,
            &["--max-grad-norm=-1"],
            "--max-grad-norm must be a positive number, or null (CLI: none) for no clipping, found -1",
        ),
        (
            "train-tokens",
            &words,
            &["--freeze", "top:0"],
            "--freeze top:K must open at least one layer (K >= 1), found top:0",
        ),
        (
            "train-mlm",
            &texts,
            &["--mlm-probability", "1.5"],
            "--mlm-probability must be in (0, 1), found 1.5",
        ),
    ];
    for (command, file, extra, want) in cases {
        let input = if command == "train-mlm" {
            "--texts"
        } else {
            "--examples"
        };
        let mut args = vec![command, "--model", "/nonexistent", input, file];
        args.extend_from_slice(extra);
        let output = webnlu(&args);
        let e = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {e}");
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(
            !e.contains("/nonexistent"),
            "checked before the model loads: {e}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
