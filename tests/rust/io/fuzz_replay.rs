//! Replays, on stable, every input the fuzzers saved: the minimized corpus of each target
//! (`tests/fuzz/corpus/<target>/`) and every crash, hang or oversized allocation found so far
//! (`tests/fuzz/regressions/<target>/`, kept after the fix). Each must run through the target's
//! body (tests/fuzz/targets.rs) without a panic, in well under the fuzzers' 1 s hang limit
//! (here 10 s, for the unoptimized test build and a loaded machine). The fuzzing itself is
//! `bash tests/fuzz/run.sh SECONDS` (nightly, not part of the test command).

#[allow(dead_code)]
#[path = "../../fuzz/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fuzz")
}

/// The files of `dir` (none when it does not exist), sorted.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_saved_fuzz_input_runs_without_a_panic_or_a_hang() {
    let mut replayed = 0;
    for (name, body) in targets::TARGETS {
        let corpus = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "no corpus for fuzz target {name} in tests/fuzz/corpus/{name}/: run `bash tests/fuzz/run.sh 20`"
        );
        let regressions = inputs(&fuzz_dir().join("regressions").join(name));
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            let started = Instant::now();
            body(&data);
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(10),
                "{name}: {} took {took:?}",
                path.display()
            );
            replayed += 1;
        }
    }
    eprintln!(
        "replayed {replayed} saved inputs of {} fuzz targets",
        targets::TARGETS.len()
    );
}

/// The archive the structure-aware target builds around its input is one the reader accepts:
/// a valid pickle inside reaches the tensors (else that target would fuzz only the zip layer).
#[test]
fn the_structure_aware_zip_wraps_a_checkpoint_the_reader_accepts() {
    let original = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/bert-reference/torch-bin/tiny-zip.bin"),
    )
    .unwrap();
    let entries = webnlu::io::zip_archive::read_stored_entries("tiny-zip.bin", &original).unwrap();
    let owned: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|e| (e.name.clone(), e.data.to_vec()))
        .collect();
    let borrowed: Vec<(&str, &[u8])> = owned
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let rebuilt = targets::stored_zip(&borrowed);
    let file = webnlu::io::PytorchFile::parse("rebuilt.bin", &rebuilt).unwrap();
    assert_eq!(file.tensors.len(), 6);
}
