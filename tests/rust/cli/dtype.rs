//! `--dtype fp32|fp16|bf16|int8` of the model commands: refused by the parser when unknown
//! (naming the values), `embed` in fp16, bf16 and int8 close to fp32 on the committed random
//! BERT checkpoint, and `train-head` of a 16-bit or int8 model: head-only and top:1 runs train
//! and their save is refused (compressed layers left), an `all` run (every layer widened to
//! fp32) saves;
//! `--f16-arithmetic` on the GPU (lavapipe offers shader-f16) close to fp32 and not the default path.

use crate::bert_reference::repo_path;
use std::path::Path;
use std::process::{Command, Output};

fn webnlu(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_webnlu"))
        .args(args)
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
    child.wait_with_output().unwrap()
}

fn model() -> String {
    let dir = repo_path("tests/fixtures/bert-reference/random/bert-random");
    dir.to_str().unwrap().to_string()
}

fn embeddings(dtype: &str) -> Vec<Vec<f64>> {
    embeddings_with(&["--device", "cpu", "--dtype", dtype])
}

/// `embed` of two texts with the random checkpoint and `options`.
fn embeddings_with(options: &[&str]) -> Vec<Vec<f64>> {
    let model = model();
    let mut args = vec!["embed", "--model", &model];
    args.extend_from_slice(options);
    let output = webnlu(&args, "hello world\nthe cat sat on the mat\n");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            serde_json::from_value(value["embedding"].clone()).unwrap()
        })
        .collect()
}

#[test]
fn embed_in_16_bits_is_close_to_fp32_and_an_unknown_dtype_is_refused() {
    let full = embeddings("fp32");
    for dtype in ["fp16", "bf16"] {
        for (a, b) in embeddings(dtype).iter().zip(&full) {
            // unit vectors: the dot product is the cosine (bar: the 0.9999)
            let cosine: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            assert!(cosine >= 0.9999, "{dtype}: cosine {cosine}");
        }
    }
    // int8 (a scale per output channel): measured cosines 0.99998 and 0.99997 on these texts
    // with this random checkpoint (hidden 32); the int8 bar is 0.999.
    for (a, b) in embeddings("int8").iter().zip(&full) {
        let cosine: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        assert!(cosine >= 0.999, "int8: cosine {cosine}");
    }
    let output = webnlu(&["embed", "--model", &model(), "--dtype", "int3"], "");
    assert_eq!(output.status.code(), Some(2));
    let e = String::from_utf8_lossy(&output.stderr);
    assert!(e.contains("int3") && e.contains("fp16"), "{e}");
}

#[test]
fn a_16_bit_model_trains_its_head_and_its_layers_and_saves_once_all_are_fp32() {
    compressed_model_trains_its_head_and_its_layers_and_saves_once_all_are_fp32("fp16");
}

#[test]
fn an_int8_model_trains_its_head_and_its_layers_and_saves_once_all_are_fp32() {
    compressed_model_trains_its_head_and_its_layers_and_saves_once_all_are_fp32("int8");
}

fn compressed_model_trains_its_head_and_its_layers_and_saves_once_all_are_fp32(dtype: &str) {
    let dir = std::env::temp_dir().join(format!("webnlu-cli-dtype-{dtype}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let examples = dir.join("examples.tsv");
    std::fs::write(&examples, "good film\tpos\nbad film\tneg\nfine day\tpos\n").unwrap();
    let examples = examples.to_str().unwrap();
    let out = dir.join("trained");
    let out = out.to_str().unwrap();
    let train = |freeze: &str| {
        webnlu(
            &[
                "train-head",
                "--model",
                &model(),
                "--device",
                "cpu",
                "--dtype",
                dtype,
                "--examples",
                examples,
                "--epochs",
                "1",
                "--validation",
                "0",
                "--freeze",
                freeze,
                "--out",
                out,
            ],
            "",
        )
    };
    // The head and top:1 runs train (layer by layer widened to fp32 for top:1), then saving
    // is refused: compressed layers are left. An `all` run widens every layer: it saves.
    for freeze in ["head", "top:1"] {
        let output = train(freeze);
        assert_eq!(output.status.code(), Some(1), "{freeze}");
        let e = String::from_utf8_lossy(&output.stderr);
        assert!(
            e.contains("saving") && e.contains(&format!("dtype {dtype}")),
            "{freeze}: {e}"
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("\"epoch\""),
            "{freeze}: the run trained before the save"
        );
    }
    let output = train("all");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(Path::new(out).join("model.safetensors").is_file());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn f16_arithmetic_on_the_gpu_is_close_to_fp32_and_off_by_default() {
    // lavapipe offers shader-f16: with the flag, fp16 weights are multiplied in f16 (the
    // activations rounded to 11 significant bits too), so the embeddings differ from the
    // default f32 arithmetic's, within the fp16 bar of fp32.
    let gpu = |extra: &[&str]| {
        let mut options = vec!["--device", "gpu", "--dtype", "fp16"];
        options.extend_from_slice(extra);
        embeddings_with(&options)
    };
    let full = embeddings_with(&["--device", "gpu"]);
    let f16 = gpu(&["--f16-arithmetic"]);
    assert_ne!(f16, gpu(&[]), "--f16-arithmetic took the f32 path");
    for (a, b) in f16.iter().zip(&full) {
        // unit-length embeddings (embed's default): the dot product is the cosine
        let cosine: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        eprintln!("--f16-arithmetic: cosine to fp32 {cosine}");
        assert!(cosine >= 0.9999, "--f16-arithmetic: cosine {cosine}");
    }
}
