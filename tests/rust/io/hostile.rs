//! Bad input for the weight-file layer (issue 4, "What must be shown", bad input): corrupt or
//! lying safetensors, zip and legacy `.bin` files, pickles that try to run code, and a config.json
//! that does not match its weights. Every case must end in a `webnlu::Error` whose message names
//! the file (and the tensor or entry where there is one); none may panic. Cases already covered
//! by io_safetensors.rs / io_pytorch.rs (synthetic files built byte by byte) are not repeated:
//! this file works on real torch/transformers output committed in tests/fixtures/bert-reference/
//! (the random checkpoints and `torch-bin/tiny-{zip,legacy}.bin`, see tests/models/README.md).

use crate::bert_reference;

use std::panic::{catch_unwind, AssertUnwindSafe};

use bert_reference::{repo_path, HOW_TO_MAKE};
use webnlu::io::pickle::unpickle;
use webnlu::io::{DType, ModelConfig, ModelFiles, PytorchFile, SafeTensors, WeightFile};
use webnlu::train::SplitMix64;

const TINY_ZIP: &str = "tests/fixtures/bert-reference/torch-bin/tiny-zip.bin";
const TINY_LEGACY: &str = "tests/fixtures/bert-reference/torch-bin/tiny-legacy.bin";
const BERT_RANDOM: &str = "tests/fixtures/bert-reference/random/bert-random";
const DISTILBERT_RANDOM: &str = "tests/fixtures/bert-reference/random/distilbert-random";

/// A committed fixture's bytes, or a failure naming it and how to make it.
fn committed(relative: &str) -> Vec<u8> {
    let path = repo_path(relative);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("missing fixture {}: {e}; {HOW_TO_MAKE}", path.display()))
}

/// The error message of a parse that must fail; asserts that it names `file` (and every string
/// of `names`).
fn refused<T>(result: webnlu::Result<T>, file: &str, names: &[&str]) -> String {
    let message = match result {
        Ok(_) => panic!("{file}: hostile input was accepted (expected an error naming {names:?})"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains(file),
        "error does not name the file {file}: {message}"
    );
    for name in names {
        assert!(
            message.contains(name),
            "error does not name {name}: {message}"
        );
    }
    message
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    (0..haystack.len().saturating_sub(needle.len() - 1))
        .filter(|&i| &haystack[i..i + needle.len()] == needle)
        .collect()
}

fn patch_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

// ---- the base files are what torch wrote ---------------------------------------------------

#[test]
fn torch_written_tiny_checkpoints_read_exactly() {
    let expected: serde_json::Value = serde_json::from_slice(&committed(
        "tests/fixtures/bert-reference/torch-bin/tiny.json",
    ))
    .unwrap();
    let expected = expected.as_object().unwrap();
    for path in [TINY_ZIP, TINY_LEGACY] {
        let bytes = committed(path);
        let file = PytorchFile::parse(path, &bytes).unwrap();
        assert_eq!(file.tensors.len(), expected.len(), "{path}");
        for (name, want) in expected {
            let t = file.tensor(name).unwrap();
            let shape: Vec<usize> = serde_json::from_value(want["shape"].clone()).unwrap();
            assert_eq!(t.shape, shape, "{path}: {name}");
            let dtype = match want["dtype"].as_str().unwrap() {
                "float32" => DType::F32,
                "float16" => DType::F16,
                "int64" => DType::I64,
                other => panic!("{other}"),
            };
            assert_eq!(t.dtype, dtype, "{path}: {name}");
            let values = want["values"].as_array().unwrap();
            if dtype == DType::I64 {
                let got = t.to_i64().unwrap();
                let want: Vec<i64> = values.iter().map(|v| v.as_i64().unwrap()).collect();
                assert_eq!(got, want, "{path}: {name}");
            } else {
                // exact: f16 -> f32 and f32 -> f64 -> f32 are lossless
                let got = t.to_f32().unwrap();
                let want: Vec<f32> = values.iter().map(|v| v.as_f64().unwrap() as f32).collect();
                assert_eq!(got.as_ref(), want.as_slice(), "{path}: {name}");
            }
        }
    }
}

// ---- safetensors ---------------------------------------------------------------------------

fn with_header(header: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

#[test]
fn safetensors_lies_are_refused_naming_file_and_tensor() {
    let file = "hostile.safetensors";
    let parse = |bytes: &[u8]| SafeTensors::parse(file, bytes).map(|_| ());
    let data = [0u8; 24];
    // A header that is not UTF-8 (a valid JSON shape around invalid bytes).
    let mut header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#.to_vec();
    header.extend_from_slice(b"\"\xff\xfe\":{}}");
    refused(parse(&with_header(&header, &data)), file, &["JSON"]);
    // An empty header, and a header length of zero.
    refused(parse(&with_header(b"", &data)), file, &["JSON"]);
    // Missing or malformed fields name the tensor.
    for (header, what) in [
        (r#"{"w":{"shape":[2],"data_offsets":[0,8]}}"#, "dtype"),
        (r#"{"w":{"dtype":"F32","data_offsets":[0,8]}}"#, "shape"),
        (r#"{"w":{"dtype":"F32","shape":[2]}}"#, "data_offsets"),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}"#,
            "data_offsets",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}}"#,
            "data_offsets",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#,
            "shape",
        ),
        (
            r#"{"w":{"dtype":7,"shape":[2],"data_offsets":[0,8]}}"#,
            "dtype",
        ),
        (
            r#"{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#,
            "F8_E4M3",
        ),
        (r#"{"w":[1,2,3]}"#, "dtype"),
    ] {
        refused(
            parse(&with_header(header.as_bytes(), &data)),
            file,
            &["tensor w", what],
        );
    }
    // Offsets at the end of u64, past the data, or crossing: named with the numbers.
    let max = u64::MAX;
    let huge = format!(
        r#"{{"w":{{"dtype":"U8","shape":[1],"data_offsets":[{},{max}]}}}}"#,
        max - 1
    );
    refused(
        parse(&with_header(huge.as_bytes(), &data)),
        file,
        &["tensor w", "outside"],
    );
    let past = r#"{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#;
    refused(
        parse(&with_header(past.as_bytes(), &data)),
        file,
        &["tensor w", "32", "24"],
    );
    // Shape x dtype disagreeing with the byte span (F16: 3 elements = 6 bytes, span 8).
    let m = r#"{"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}"#;
    refused(
        parse(&with_header(m.as_bytes(), &data)),
        file,
        &["tensor w", "6", "8"],
    );
    // Shapes whose element count or byte size overflows usize.
    for shape in [
        "[9223372036854775808,4]",
        "[4611686018427387904]",
        "[18446744073709551615]",
    ] {
        let h = format!(r#"{{"w":{{"dtype":"F32","shape":{shape},"data_offsets":[0,16]}}}}"#);
        refused(
            parse(&with_header(h.as_bytes(), &data)),
            file,
            &["tensor w"],
        );
    }
    // A shape dimension beyond u64.
    let h = r#"{"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,16]}}"#;
    refused(
        parse(&with_header(h.as_bytes(), &data)),
        file,
        &["tensor w"],
    );
    // Overlap of a later tensor with an earlier one, both named.
    let h = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#;
    refused(
        parse(&with_header(h.as_bytes(), &data)),
        file,
        &["a", "b", "overlap"],
    );
    // A header length that claims more than the file, by one byte and by 2^63.
    let good = with_header(
        br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
        &data,
    );
    for claim in [good.len() as u64 - 7, 1 << 63] {
        let mut lying = good.clone();
        lying[..8].copy_from_slice(&claim.to_le_bytes());
        refused(parse(&lying), file, &["header length"]);
    }
    // Every truncation of a real checkpoint is refused (header or data cut).
    let real = committed(&format!("{BERT_RANDOM}/model.safetensors"));
    let header_end = 8 + u64::from_le_bytes(real[..8].try_into().unwrap()) as usize;
    for len in (0..real.len())
        .step_by(331)
        .chain([header_end, real.len() - 1])
    {
        refused(parse(&real[..len]), file, &[]);
    }
}

// ---- zip .bin ------------------------------------------------------------------------------

/// Offsets of the central-directory headers of a zip, with each entry's name.
fn central_entries(bytes: &[u8]) -> Vec<(usize, String)> {
    find_all(bytes, &0x0201_4b50u32.to_le_bytes())
        .into_iter()
        .map(|at| {
            let name_len = u16::from_le_bytes([bytes[at + 28], bytes[at + 29]]) as usize;
            let name = String::from_utf8_lossy(&bytes[at + 46..at + 46 + name_len]).into_owned();
            (at, name)
        })
        .collect()
}

#[test]
fn zip_checkpoints_with_lying_directories_are_refused() {
    let file = "hostile-zip.bin";
    let parse = |bytes: &[u8]| PytorchFile::parse(file, bytes).map(|_| ());
    let good = committed(TINY_ZIP);
    parse(&good).unwrap();
    let entries = central_entries(&good);
    let (storage_at, storage_name) = entries
        .iter()
        .find(|(_, name)| name.contains("/data/"))
        .cloned()
        .expect("a storage entry");
    let eocd = good.len() - 22; // torch writes no archive comment
    assert_eq!(good[eocd..eocd + 4], 0x0605_4b50u32.to_le_bytes());

    // Truncated anywhere: the end record is gone (or the entries run out).
    for len in (0..good.len()).step_by(7) {
        refused(parse(&good[..len]), file, &[]);
    }
    // An entry whose sizes run past the end of the archive: named, with the numbers.
    let mut lying = good.clone();
    patch_u32(&mut lying, storage_at + 20, 1 << 30);
    patch_u32(&mut lying, storage_at + 24, 1 << 30);
    refused(parse(&lying), file, &[&storage_name, "past the end"]);
    // Compressed and stored sizes that disagree.
    let mut lying = good.clone();
    patch_u32(&mut lying, storage_at + 20, 3);
    refused(parse(&lying), file, &[&storage_name, "sizes disagree"]);
    // A local header offset that points past the end, or at something that is not a header.
    let mut lying = good.clone();
    patch_u32(&mut lying, storage_at + 42, u32::MAX - 1);
    refused(
        parse(&lying),
        file,
        &[&storage_name, "local header offset", "past the end"],
    );
    let mut lying = good.clone();
    patch_u32(&mut lying, storage_at + 42, 1);
    refused(parse(&lying), file, &[&storage_name, "local header"]);
    // A central directory that starts past the end, or an entry count the file cannot hold.
    let mut lying = good.clone();
    patch_u32(&mut lying, eocd + 16, u32::MAX - 2);
    refused(
        parse(&lying),
        file,
        &["central directory offset", "past the end"],
    );
    let mut lying = good.clone();
    lying[eocd + 10..eocd + 12].copy_from_slice(&0xfffeu16.to_le_bytes());
    refused(parse(&lying), file, &["65534 entries"]);
    // torch writes ZIP64 records too: a classic count of 0xffff sends the reader to them.
    let locator = eocd - 20;
    assert_eq!(
        good[locator..locator + 4],
        0x0706_4b50u32.to_le_bytes(),
        "ZIP64 locator"
    );
    let record = u64::from_le_bytes(good[locator + 8..locator + 16].try_into().unwrap()) as usize;
    let zip64 = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good.clone();
        bytes[eocd + 10..eocd + 12].copy_from_slice(&0xffffu16.to_le_bytes());
        edit(&mut bytes);
        bytes
    };
    parse(&zip64(&|_| {})).unwrap();
    // ... a locator pointing past the end or at something else, a ZIP64 count the file cannot
    // hold, a ZIP64 directory offset past the end.
    let m = zip64(&|b| b[locator + 8..locator + 16].copy_from_slice(&(u64::MAX - 5).to_le_bytes()));
    refused(parse(&m), file, &["ZIP64 record offset", "past the end"]);
    refused(parse(&zip64(&|b| b[record] = b'X')), file, &["ZIP64"]);
    refused(parse(&zip64(&|b| b[locator] = b'X')), file, &["ZIP64"]);
    let m = zip64(&|b| b[record + 32..record + 40].copy_from_slice(&(1u64 << 40).to_le_bytes()));
    refused(parse(&m), file, &["1099511627776 entries"]);
    let m = zip64(&|b| b[record + 48..record + 56].copy_from_slice(&(1u64 << 50).to_le_bytes()));
    refused(
        parse(&m),
        file,
        &["central directory offset", "past the end"],
    );
    // No data.pkl (renamed in the central directory), and a storage entry that is missing.
    let mut lying = good.clone();
    for at in find_all(&good, b"data.pkl") {
        lying[at + 7] = b'X';
    }
    refused(parse(&lying), file, &["data.pkl"]);
    let mut lying = good.clone();
    for at in find_all(&good, storage_name.as_bytes()) {
        let last = at + storage_name.len() - 1;
        lying[last] = b'Z';
    }
    let key = storage_name.rsplit('/').next().unwrap();
    refused(parse(&lying), file, &[&format!("storage {key}")]);
    // A big-endian archive is refused by name.
    let mut lying = good.clone();
    let at = find(&good, b"little").expect("byteorder entry");
    lying[at..at + 6].copy_from_slice(b"bigend");
    refused(parse(&lying), file, &["byte order"]);
}

// ---- legacy .bin and pickles ---------------------------------------------------------------

/// Start offsets of the five pickles of a legacy checkpoint and the offset just past them.
fn legacy_layout(bytes: &[u8]) -> ([usize; 5], usize) {
    let mut starts = [0usize; 5];
    let mut pos = 0;
    for start in starts.iter_mut() {
        *start = pos;
        pos = unpickle("layout", bytes, pos).unwrap().1;
    }
    (starts, pos)
}

#[test]
fn pickles_that_would_run_code_are_refused_not_run() {
    let file = "hostile-legacy.bin";
    let parse = |bytes: &[u8]| PytorchFile::parse(file, bytes).map(|_| ());
    let good = committed(TINY_LEGACY);
    parse(&good).unwrap();
    let (starts, _) = legacy_layout(&good);
    let state_dict = starts[3];
    // GLOBAL of os.system / builtins.exec / posix.system in place of torch's rebuild function.
    let rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n";
    let at = state_dict + find(&good[state_dict..], rebuild).expect("a GLOBAL in the state_dict");
    for (module, name) in [("os", "system"), ("posix", "system"), ("builtins", "exec")] {
        let mut evil = good[..at].to_vec();
        evil.extend_from_slice(format!("c{module}\n{name}\n").as_bytes());
        evil.extend_from_slice(&good[at + rebuild.len()..]);
        refused(
            parse(&evil),
            file,
            &[&format!("{module}.{name}"), "refusing"],
        );
        // The same in a zip archive's data.pkl.
    }
    // Opcodes that build or call arbitrary objects, anywhere in the stream, refused by name.
    for (op, name) in [
        (b'i', "INST"),
        (b'o', "OBJ"),
        (0x81, "NEWOBJ"),
        (0x92, "NEWOBJ_EX"),
        (0x82, "EXT1"),
        (b'P', "PERSID"),
        (0x96, "BYTEARRAY8"),
        (0x97, "NEXT_BUFFER"),
        (b'S', "STRING"),
        (0xfe, "0xfe"),
    ] {
        for start in [starts[0], state_dict] {
            let mut evil = good.clone();
            evil[start + 2] = op; // just after the PROTO opcode
            refused(parse(&evil), file, &[name]);
        }
    }
    // A REDUCE of a non-callable and a pickle without STOP.
    let mut evil = good[..state_dict + 2].to_vec();
    evil.extend_from_slice(b"K\x01K\x02R.");
    refused(parse(&evil), file, &["REDUCE"]);
    refused(parse(&good[..starts[4] - 1]), file, &[]);
}

#[test]
fn legacy_storages_that_lie_about_their_size_are_refused() {
    let file = "hostile-legacy.bin";
    let parse = |bytes: &[u8]| PytorchFile::parse(file, bytes).map(|_| ());
    let good = committed(TINY_LEGACY);
    let (_, data_start) = legacy_layout(&good);
    let numel = i64::from_le_bytes(good[data_start..data_start + 8].try_into().unwrap());
    let with_count = |count: i64| {
        let mut bytes = good.clone();
        bytes[data_start..data_start + 8].copy_from_slice(&count.to_le_bytes());
        bytes
    };
    // Negative and absurd element counts.
    refused(parse(&with_count(-1)), file, &["bad element count -1"]);
    refused(parse(&with_count(i64::MAX)), file, &["storage"]);
    // More elements than the file holds: the storage runs past the end.
    refused(parse(&with_count(numel + 10_000)), file, &["past the end"]);
    // Fewer elements than the tensors' views need (the next storage's bytes are misread).
    refused(parse(&with_count(numel - 1)), file, &["storage"]);
    // Truncated in the storages.
    for cut in [1, 4, 9, 100] {
        refused(parse(&good[..good.len() - cut]), file, &[]);
    }
}

// ---- config.json versus the weights --------------------------------------------------------

/// The files of a committed random checkpoint with config.json replaced by `edit(config)`.
fn with_config(dir: &str, edit: impl Fn(&mut serde_json::Value)) -> ModelFiles {
    let mut files = ModelFiles::from_dir(repo_path(dir)).unwrap();
    assert!(
        files.get("model.safetensors").is_some(),
        "missing {dir}/model.safetensors; {HOW_TO_MAKE}"
    );
    let mut config: serde_json::Value =
        serde_json::from_slice(files.get("config.json").unwrap()).unwrap();
    edit(&mut config);
    files.insert("config.json", serde_json::to_vec(&config).unwrap());
    files
}

/// `require` for the shapes a config implies, as a model loader asks for them.
fn require_all(weights: &WeightFile, config: &ModelConfig) -> webnlu::Result<()> {
    match config {
        ModelConfig::Bert(c) => {
            let h = c.hidden_size;
            weights.require("embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
            weights.require(
                "embeddings.position_embeddings.weight",
                &[c.max_position_embeddings, h],
            )?;
            weights.require(
                "embeddings.token_type_embeddings.weight",
                &[c.type_vocab_size, h],
            )?;
            for l in 0..c.num_hidden_layers {
                weights.require(
                    &format!("encoder.layer.{l}.attention.self.query.weight"),
                    &[h, h],
                )?;
                weights.require(
                    &format!("encoder.layer.{l}.intermediate.dense.weight"),
                    &[c.intermediate_size, h],
                )?;
            }
        }
        ModelConfig::DistilBert(c) => {
            weights.require("embeddings.word_embeddings.weight", &[c.vocab_size, c.dim])?;
            for l in 0..c.n_layers {
                weights.require(
                    &format!("transformer.layer.{l}.ffn.lin1.weight"),
                    &[c.hidden_dim, c.dim],
                )?;
            }
        }
    }
    Ok(())
}

#[test]
fn config_that_does_not_match_the_weights_names_tensor_and_shapes() {
    // The unedited configs match their weights.
    for dir in [BERT_RANDOM, DISTILBERT_RANDOM] {
        let files = with_config(dir, |_| {});
        require_all(&files.weights().unwrap(), &files.config().unwrap()).unwrap();
    }
    let safetensors = "model.safetensors";
    // (checkpoint, config field, value that disagrees with the weights, what the error names)
    let cases: Vec<(&str, &str, u64, Vec<&str>)> = vec![
        (
            BERT_RANDOM,
            "hidden_size",
            48,
            vec!["embeddings.word_embeddings.weight", "[84, 48]", "[84, 32]"],
        ),
        (
            BERT_RANDOM,
            "vocab_size",
            30522,
            vec![
                "embeddings.word_embeddings.weight",
                "[30522, 32]",
                "[84, 32]",
            ],
        ),
        (
            BERT_RANDOM,
            "max_position_embeddings",
            512,
            vec![
                "embeddings.position_embeddings.weight",
                "[512, 32]",
                "[64, 32]",
            ],
        ),
        (
            BERT_RANDOM,
            "intermediate_size",
            64,
            vec![
                "encoder.layer.0.intermediate.dense.weight",
                "[64, 32]",
                "[37, 32]",
            ],
        ),
        (
            BERT_RANDOM,
            "num_hidden_layers",
            3,
            vec!["no tensor encoder.layer.2.attention.self.query.weight"],
        ),
        (
            DISTILBERT_RANDOM,
            "hidden_dim",
            3072,
            vec![
                "transformer.layer.0.ffn.lin1.weight",
                "[3072, 32]",
                "[37, 32]",
            ],
        ),
    ];
    for (dir, field, value, names) in cases {
        let files = with_config(dir, |c| c[field] = value.into());
        let config = files.config().unwrap();
        let weights = files.weights().unwrap();
        let mut names = names;
        names.push(safetensors);
        refused(require_all(&weights, &config), dir, &names);
    }
    // A config.json that is not UTF-8, not JSON, names an architecture webnlu does not load, an
    // unknown activation, or heads that do not divide the hidden size: refused naming the file.
    let config_cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"hidden_size\": \xff}".to_vec(), "UTF-8"),
        (b"{\"hidden_size\": 32,".to_vec(), "config.json"),
        (br#"{"model_type": "gpt2"}"#.to_vec(), "gpt2"),
        (br#"{"architectures": ["T5Model"]}"#.to_vec(), "T5Model"),
        (
            br#"{"model_type": "bert", "hidden_act": "swishy"}"#.to_vec(),
            "swishy",
        ),
        (
            br#"{"model_type": "bert", "hidden_size": 32, "num_attention_heads": 5}"#.to_vec(),
            "5",
        ),
        (
            br#"{"model_type": "bert", "hidden_size": -32}"#.to_vec(),
            "-32", // serde names the value and its position, not the field
        ),
        (
            br#"{"model_type": "bert", "num_labels": 3, "id2label": {"0": "a"}}"#.to_vec(),
            "num_labels",
        ),
    ];
    for (text, name) in config_cases {
        let mut files = ModelFiles::new("hostile-model");
        files.insert("config.json", text);
        refused(files.config(), "hostile-model/config.json", &[name]);
    }
}

// ---- fuzzing -------------------------------------------------------------------------------

/// Runs `parse` on `rounds` corrupted copies of `bytes` (1-4 byte overwrites or bit flips, and a
/// truncation one time in five), seeded. A panic fails the test with the round to reproduce it;
/// every error must name `file`. Returns how many copies were refused.
fn fuzz(
    bytes: &[u8],
    file: &str,
    seed: u64,
    rounds: usize,
    parse: &dyn Fn(&[u8]) -> webnlu::Result<()>,
) -> usize {
    let mut rng = SplitMix64::new(seed);
    let mut refused = 0;
    for round in 0..rounds {
        let mut copy = bytes.to_vec();
        for _ in 0..1 + rng.below(4) {
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
        match catch_unwind(AssertUnwindSafe(|| parse(&copy))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let message = e.to_string();
                assert!(
                    message.contains(file),
                    "round {round} (seed {seed}): error does not name {file}: {message}"
                );
                refused += 1;
            }
            Err(_) => panic!("{file}: parser panicked on fuzz round {round} (seed {seed})"),
        }
    }
    refused
}

/// Parses a weight file and converts every tensor, as a loader would.
fn read_every_tensor(weights: &WeightFile) -> webnlu::Result<()> {
    for t in weights.tensors() {
        match t.dtype {
            DType::I64 => drop(t.to_i64()?),
            _ => drop(t.to_f32()?),
        }
    }
    Ok(())
}

#[test]
fn fuzzed_real_files_never_panic() {
    let safetensors = committed(&format!("{BERT_RANDOM}/model.safetensors"));
    let header_end = 8 + u64::from_le_bytes(safetensors[..8].try_into().unwrap()) as usize;
    let parse_safetensors = |b: &[u8]| {
        read_every_tensor(&WeightFile::SafeTensors(SafeTensors::parse(
            "fuzz.safetensors",
            b,
        )?))
    };
    // Flips anywhere (mostly data: accepted, they are just other floats) and in the header only.
    let anywhere = fuzz(
        &safetensors,
        "fuzz.safetensors",
        11,
        1000,
        &parse_safetensors,
    );
    let header = fuzz(
        &safetensors[..header_end],
        "fuzz.safetensors",
        12,
        2000,
        &|b| {
            let mut file = b.to_vec();
            file.extend_from_slice(&safetensors[header_end..]);
            parse_safetensors(&file)
        },
    );
    let parse_bin =
        |b: &[u8]| read_every_tensor(&WeightFile::Pytorch(PytorchFile::parse("fuzz.bin", b)?));
    let zip = fuzz(&committed(TINY_ZIP), "fuzz.bin", 13, 3000, &parse_bin);
    let legacy = fuzz(&committed(TINY_LEGACY), "fuzz.bin", 14, 3000, &parse_bin);
    let config_bytes = committed(&format!("{BERT_RANDOM}/config.json"));
    let config = fuzz(&config_bytes, "fuzz/config.json", 15, 2000, &|b| {
        let mut files = ModelFiles::new("fuzz");
        files.insert("config.json", b.to_vec());
        files.config().map(|_| ())
    });
    // Each stream must have produced errors (else the mutations did not reach the parser).
    println!("refused: safetensors {anywhere}/1000 anywhere, {header}/2000 header; zip {zip}/3000; legacy {legacy}/3000; config {config}/2000");
    assert!(anywhere > 100 && header > 500 && zip > 500 && legacy > 500 && config > 500);
}
