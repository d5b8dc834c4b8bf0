//! `webnlu inspect` against the transformers fixture (moved from tests/rust/tasks/inspect.rs with
//! the CLI's move to crate/cli).

use crate::bert_reference::{load_case, max_abs_diff};

// Tolerances of issue 12 (as tests/rust/tasks/inspect.rs), max abs, fp32 on both sides. Hidden
// states are O(1) after each LayerNorm (the random checkpoints' largest |value| is about 4), so
// 1e-4 is about 30 ulp of the largest element, what a different summation order in a 6-layer
// stack gives; the probabilities are in [0, 1] and sum to 1 per row, so 1e-5 leaves room for a
// few ulp of the softmax's inputs only.
const HIDDEN_TOLERANCE: f32 = 1e-4;
const ATTENTION_TOLERANCE: f32 = 1e-5;

/// `webnlu inspect` on a text and a pair: the same numbers as the fixture, the JSON layout of
/// the usage, `--layers` selection, and errors with a non-zero exit.
#[test]
fn the_cli_writes_one_json_object_per_line() {
    let case = load_case("inspect-bert-random");
    let pair: Vec<String> = serde_json::from_value(case.field("pair").clone()).unwrap();
    let run = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_webnlu"))
            .arg("inspect")
            .arg("--model")
            .arg(&case.model_dir)
            .args(["--device", "cpu"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A refused --layers exits before reading stdin: a broken pipe here is expected then.
        let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
        child.wait_with_output().unwrap()
    };
    let input = format!("{}\n{}\t{}\n", case.texts[0], pair[0], pair[1]);
    let output = run(&["--attentions"], &input);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let flat = |v: &serde_json::Value| -> Vec<f32> {
        fn walk(v: &serde_json::Value, out: &mut Vec<f32>) {
            match v {
                serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
                other => out.push(other.as_f64().unwrap() as f32),
            }
        }
        let mut out = Vec::new();
        walk(v, &mut out);
        out
    };
    for (row, (line, prefix)) in lines.iter().zip(["text", "pair"]).enumerate() {
        let hidden = case.tensor(&format!("{prefix}.hidden_states"));
        let attentions = case.tensor(&format!("{prefix}.attentions"));
        let t = hidden.shape[1];
        assert_eq!(line["type_ids"], serde_json::json!(case.type_ids[row]));
        assert_eq!(line["tokens"].as_array().unwrap().len(), t);
        assert_eq!(
            line["offsets"][1],
            serde_json::json!([0, row_first_word_end(row)])
        );
        assert_eq!(line["layers"], serde_json::json!([0, 1, 2]));
        assert_eq!(line["attention_layers"], serde_json::json!([0, 1]));
        let shape = |v: &serde_json::Value| {
            let mut dims = Vec::new();
            let mut v = v;
            while let Some(items) = v.as_array() {
                dims.push(items.len());
                v = &items[0];
            }
            dims
        };
        assert_eq!(shape(&line["hidden_states"]), hidden.shape);
        assert_eq!(shape(&line["attentions"]), attentions.shape);
        let d = max_abs_diff(&flat(&line["hidden_states"]), &hidden.data);
        assert!(d <= HIDDEN_TOLERANCE, "cli {prefix} hidden: {d}");
        let d = max_abs_diff(&flat(&line["attentions"]), &attentions.data);
        assert!(d <= ATTENTION_TOLERANCE, "cli {prefix} attentions: {d}");
    }
    // --layers: the selected hidden states; no attentions without --attentions
    let output = run(&["--layers", "2"], &format!("{}\n", case.texts[0]));
    assert!(output.status.success());
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line["layers"], serde_json::json!([2]));
    assert!(line.get("attentions").is_none() && line.get("attention_layers").is_none());
    let hidden = case.tensor("text.hidden_states");
    let size = hidden.shape[1] * hidden.shape[2];
    let d = max_abs_diff(&flat(&line["hidden_states"]), &hidden.data[2 * size..]);
    assert!(d <= HIDDEN_TOLERANCE, "cli --layers 2: {d}");
    // errors: a non-zero exit and the reason on stderr
    for (args, input, want) in [
        (
            vec!["--layers", "9"],
            "the cat\n".to_string(),
            "hidden state 9 does not exist",
        ),
        (
            vec![],
            format!("the cat\n{}\n", "the cat sat . ".repeat(20)),
            "line 2: the text is 82 tokens long",
        ),
    ] {
        let output = run(&args, &input);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(want),
            "{stderr}"
        );
    }
}

/// The end (code points) of the first word of row 0 ("the") and of row 1 ("a").
fn row_first_word_end(row: usize) -> usize {
    [3, 1][row]
}
