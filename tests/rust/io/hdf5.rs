//! The HDF5 subset reader on AllenNLP's ELMo fixture files (every dataset listed and read,
//! compared with h5py), on h5py-written files with chunked/deflate/shuffle/fletcher32 layouts and
//! with the newest format (superblock v3, object header v2, link messages), and on hostile files.

use crate::io_reference_summary;

use io_reference_summary::*;
use webnlu::io::Hdf5File;
use webnlu::Error;

const ELMO: &str = "tests/fixtures/models/elmo-fixture";
const ELMO_FILES: [&str; 5] = [
    "lm_weights.hdf5",
    "lm_embeddings_0.hdf5",
    "lm_embeddings_1.hdf5",
    "lm_embeddings_2.hdf5",
    "elmo_token_embeddings.hdf5",
];

#[test]
fn elmo_fixture_files_match_h5py() {
    let reference = reference_json("elmo_hdf5.json");
    for name in ELMO_FILES {
        let bytes = fixture_bytes(&format!("{ELMO}/{name}"));
        let file = Hdf5File::parse(name, &bytes).unwrap();
        let paths = file.dataset_paths().unwrap();
        let expected = reference[name].as_object().unwrap();
        let mut expected_paths: Vec<&String> = expected.keys().collect();
        expected_paths.sort();
        assert_eq!(
            paths.iter().collect::<Vec<_>>(),
            expected_paths,
            "{name}: dataset list"
        );
        for path in &paths {
            let (shape, values) = file.read_dataset_f32(path).unwrap();
            assert_matches_summary(
                &format!("{name}: {path}"),
                &shape,
                &values,
                &expected[path.as_str()],
            );
        }
    }
}

#[test]
fn elmo_weights_have_the_documented_shapes() {
    let bytes = fixture_bytes(&format!("{ELMO}/lm_weights.hdf5"));
    let file = Hdf5File::parse("lm_weights.hdf5", &bytes).unwrap();
    assert_eq!(file.dataset_paths().unwrap().len(), 33);
    let shape = |p: &str| file.read_dataset_f32(p).unwrap().0;
    assert_eq!(shape("char_embed"), vec![261, 4]);
    assert_eq!(shape("CNN/W_cnn_4"), vec![1, 5, 4, 64]);
    assert_eq!(shape("CNN_high_1/W_transform"), vec![124, 124]);
    assert_eq!(
        shape("RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_0"),
        vec![32, 256]
    );
    assert_eq!(
        shape("RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_P_0"),
        vec![64, 16]
    );
    // Leading or doubled slashes name the same dataset.
    assert_eq!(file.read_dataset_f32("/CNN//b_cnn_0").unwrap().0, vec![4]);
    let missing = file
        .read_dataset_f32("CNN/W_cnn_9")
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("lm_weights.hdf5") && missing.contains("CNN/W_cnn_9"),
        "{missing}"
    );
    let group = file.read_dataset_f32("CNN").unwrap_err().to_string();
    assert!(group.contains("not a dataset"), "{group}");
}

fn check_values(file_name: &str, expected: &serde_json::Value) {
    let bytes = fixture_bytes(&format!("tests/fixtures/generated/io/{file_name}"));
    let file = Hdf5File::parse(file_name, &bytes).unwrap();
    for (path, want) in expected.as_object().unwrap() {
        let (shape, values) = file.read_dataset_f32(path).unwrap();
        let want_shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let want_values: Vec<f32> = want["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(shape, want_shape, "{file_name}: {path}");
        // f32 data is read bit-exactly; f64 data is rounded to f32 once, as `as f32` does here.
        assert_eq!(values, want_values, "{file_name}: {path}");
    }
}

#[test]
fn chunked_deflate_shuffle_and_fletcher_datasets_match_h5py() {
    let reference = reference_json("synthetic_hdf5.json");
    check_values("chunked.h5", &reference["chunked.h5"]);
    let bytes = fixture_bytes("tests/fixtures/generated/io/chunked.h5");
    let file = Hdf5File::parse("chunked.h5", &bytes).unwrap();
    assert_eq!(
        file.dataset_paths().unwrap(),
        vec![
            "deflate_shuffle",
            "empty_chunked",
            "group/deep/f64_chunked",
            "ints_fletcher"
        ]
    );
}

#[test]
fn newest_format_with_link_messages_matches_h5py() {
    let reference = reference_json("synthetic_hdf5.json");
    check_values("latest.h5", &reference["latest.h5"]);
    let bytes = fixture_bytes("tests/fixtures/generated/io/latest.h5");
    let file = Hdf5File::parse("latest.h5", &bytes).unwrap();
    assert_eq!(
        file.dataset_paths().unwrap(),
        vec![
            "compact",
            "unwritten",
            "v4_chunked",
            "weights/contiguous",
            "weights/scalar"
        ]
    );
    // Layout version 4 chunk indexes are outside the subset: refused by name, not misread.
    match file.read_dataset_f32("v4_chunked") {
        Err(Error::Unsupported { what }) => assert!(
            what.contains("v4_chunked") && what.contains("layout version 4"),
            "{what}"
        ),
        other => panic!("expected Unsupported, got {:?}", other.map(|r| r.0)),
    }
}

fn read_everything(name: &str, bytes: &[u8]) -> Result<usize, Error> {
    let file = Hdf5File::parse(name, bytes)?;
    let mut total = 0;
    for path in file.dataset_paths()? {
        total += file.read_dataset_f32(&path)?.1.len();
    }
    Ok(total)
}

#[test]
fn not_hdf5_and_truncated_files_are_refused() {
    let m = read_everything("notes.txt", b"hello, world")
        .unwrap_err()
        .to_string();
    assert!(
        m.contains("notes.txt") && m.contains("not an HDF5 file"),
        "{m}"
    );
    let bytes = fixture_bytes(&format!("{ELMO}/lm_embeddings_1.hdf5"));
    let full = read_everything("lm_embeddings_1.hdf5", &bytes).unwrap();
    assert!(full > 0);
    for len in (0..bytes.len()).step_by(53) {
        // Never a panic; and a cut file never yields all the data.
        if let Ok(n) = read_everything("cut", &bytes[..len]) {
            assert!(n < full, "a file cut at {len} read completely");
        }
    }
}

fn find(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("pattern in fixture")
}

#[test]
fn lying_and_cyclic_structures_are_refused() {
    // A dimension that claims 2^40 rows: refused before any allocation.
    let mut bytes = fixture_bytes(&format!("{ELMO}/lm_embeddings_0.hdf5"));
    let dims: Vec<u8> = [2u64, 50, 16]
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .collect();
    let at = find(&bytes, &dims) + 8;
    bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let file = Hdf5File::parse("lying.hdf5", &bytes).unwrap();
    let m = file.read_dataset_f32("0").unwrap_err().to_string();
    assert!(m.contains("lying.hdf5") && m.contains("dataset 0"), "{m}");

    // A group B-tree whose node points at itself (level raised so it is followed as a subtree).
    let mut bytes = fixture_bytes(&format!("{ELMO}/lm_weights.hdf5"));
    let tree = find(&bytes, b"TREE");
    bytes[tree + 5] = 1; // level
    let first_child = tree + 8 + 16 + 8;
    bytes[first_child..first_child + 8].copy_from_slice(&(tree as u64).to_le_bytes());
    let m = read_everything("cyclic.hdf5", &bytes)
        .unwrap_err()
        .to_string();
    assert!(m.contains("cyclic.hdf5") && m.contains("cycle"), "{m}");

    // A hard link from a group back to the root: the walk detects the loop.
    let mut bytes = fixture_bytes("tests/fixtures/generated/io/latest.h5");
    let root = {
        let file = Hdf5File::parse("x", &bytes).unwrap();
        drop(file);
        // Superblock v2/3: signature, version, sizes, flags, then base, extension, EOF, root.
        u64::from_le_bytes(bytes[36..44].try_into().unwrap())
    };
    let name = find(&bytes, b"compact");
    bytes[name + 7..name + 15].copy_from_slice(&root.to_le_bytes());
    let m = read_everything("loop.h5", &bytes).unwrap_err().to_string();
    assert!(m.contains("loop.h5") && m.contains("cycle"), "{m}");

    // A dataset never written (no storage; h5py reads zeros) that claims 3 x 2^24 floats
    // (192 MiB) in a 2 KB file: refused before the zeros are allocated.
    let mut bytes = fixture_bytes("tests/fixtures/generated/io/latest.h5");
    let dims: Vec<u8> = [3u64, 5].iter().flat_map(|d| d.to_le_bytes()).collect();
    let at = find(&bytes, &dims) + 8;
    bytes[at..at + 8].copy_from_slice(&(1u64 << 24).to_le_bytes());
    let file = Hdf5File::parse("unwritten.h5", &bytes).unwrap();
    let m = file.read_dataset_f32("unwritten").unwrap_err().to_string();
    assert!(
        m.contains("unwritten.h5") && m.contains("far larger than the file could hold"),
        "{m}"
    );

    // Offsets and lengths of a size the format does not have.
    let mut bytes = fixture_bytes(&format!("{ELMO}/lm_weights.hdf5"));
    bytes[13] = 3;
    assert!(read_everything("sizes.hdf5", &bytes)
        .unwrap_err()
        .to_string()
        .contains("offset size 3"));
}

#[test]
fn fuzzed_files_never_panic() {
    let weights = fixture_bytes(&format!("{ELMO}/lm_embeddings_1.hdf5"));
    let chunked = fixture_bytes("tests/fixtures/generated/io/chunked.h5");
    let latest = fixture_bytes("tests/fixtures/generated/io/latest.h5");
    for (seed, bytes) in [(11u64, &weights), (12, &chunked), (13, &latest)] {
        // Corrupt only the metadata-dense first 4 kB (most bytes further on are plain values).
        let head = bytes.len().min(4096);
        let refused = fuzz_no_panic(&bytes[..head], seed, 1500, &|b| {
            let mut copy = b.to_vec();
            copy.extend_from_slice(&bytes[head..]);
            read_everything("fuzz", &copy).is_ok()
        });
        assert!(refused > 0, "seed {seed}: no corruption was ever noticed");
    }
}
