//! `webnlu tokenize`: bad input on stdin is an error naming the line, never a panic (moved from
//! tests/rust/tokenizer/errors.rs with the CLI's move to crate/cli).

use std::io::Write;
use std::process::{Command, Stdio};

const VOCAB: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n##s\n";

pub fn run_cli(args: &[&str], stdin: &[u8]) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webnlu"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_refuses_invalid_utf8_with_the_line_number() {
    let dir = std::env::temp_dir().join(format!("webnlu-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let vocab = dir.join("vocab.txt");
    std::fs::write(&vocab, VOCAB).unwrap();
    let vocab = vocab.to_str().unwrap();

    let (code, stdout, stderr) = run_cli(
        &["tokenize", "--tokenizer", vocab],
        b"hello world\nhello \xc3\x28 world\n",
    );
    assert_eq!(code, 1, "stderr: {stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("UTF-8"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.starts_with("{\"ids\":[2,5,6,3]"), "{stdout}");

    let (code, stdout, _) = run_cli(
        &["tokenize", "--tokenizer", vocab, "--count"],
        b"hello worlds\r\nhello\n",
    );
    assert_eq!(code, 0);
    assert_eq!(stdout.trim(), "{\"texts\":2,\"tokens\":8}");

    let (code, _, stderr) = run_cli(
        &["tokenize", "--tokenizer", vocab, "--pair"],
        b"no tab here\n",
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("line 1") && stderr.contains("tab"),
        "{stderr}"
    );

    let (code, _, stderr) = run_cli(&["tokenize", "--tokenizer", "/nonexistent.json"], b"");
    assert_eq!(code, 1);
    assert!(stderr.contains("/nonexistent.json"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
