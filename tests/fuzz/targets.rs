//! The fuzz targets' bodies: each reads outside data the way webnlu reads it from a stranger
//! (a Hub repository, a user's drag-and-drop) and must return `Ok` or `Err`, never panic, hang
//! or allocate beyond what the input justifies. Shared by the libFuzzer binaries
//! (`tests/fuzz/fuzz_targets/*.rs`, nightly, `bash tests/fuzz/run.sh`) and the stable replay of
//! the saved corpus and every crash found so far (`tests/rust/io/fuzz_replay.rs`, in `make test`).
//!
//! Each body goes past the parse when the parse succeeds (tensors converted, datasets read,
//! texts tokenized), since that is what a loader does next.

use webnlu::io::hdf5::Hdf5File;
use webnlu::io::pickle::unpickle;
use webnlu::io::{ElmoOptions, ModelConfig, PytorchFile, SafeTensors, TensorView};
use webnlu::tasks::{parse_examples, ExampleFormat};
use webnlu::tokenizer::{Tokenizer, VocabOptions};

/// Every target: its name (the fuzz binary and the corpus folder) and its body.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("safetensors", safetensors),
    ("pytorch_bin", pytorch_bin),
    ("pickle", pickle),
    ("torch_zip_pickle", torch_zip_pickle),
    ("hdf5", hdf5),
    ("config_json", config_json),
    ("tokenizer_json", tokenizer_json),
    ("vocab_txt", vocab_txt),
    ("elmo_options", elmo_options),
    ("training_examples", training_examples),
];

/// Texts a loaded tokenizer is asked to encode: ASCII, accents, CJK, emoji, control characters.
const PROBES: [&str; 3] = [
    "Hello, world! The naïve café's [MASK] costs $3.50.",
    "東京では 🙂 unaffable\u{7}\tspaces  and\u{200b}zero-width",
    "",
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// What a loader does with the tensors of a weight file: convert each to f32 (or i64).
fn read_tensors(tensors: &[TensorView<'_>]) {
    for tensor in tensors {
        let _ = tensor.numel();
        let _ = tensor.to_f32();
        let _ = tensor.to_i64();
    }
}

pub fn safetensors(data: &[u8]) {
    if let Ok(file) = SafeTensors::parse("model.safetensors", data) {
        for name in file.names() {
            if let Ok(tensor) = file.tensor(name) {
                read_tensors(std::slice::from_ref(tensor));
            }
        }
    }
}

pub fn pytorch_bin(data: &[u8]) {
    if let Ok(file) = PytorchFile::parse("pytorch_model.bin", data) {
        read_tensors(&file.tensors);
    }
}

pub fn pickle(data: &[u8]) {
    let _ = unpickle("data.pkl", data, 0);
}

/// Structure-aware: the input is the pickle of a zip checkpoint (`archive/data.pkl`) inside a
/// valid archive with two storages (`archive/data/0`, `archive/data/1`, 64 bytes each), so
/// that mutations reach the tensor rebuilding behind the zip layer, which random bytes almost
/// never get through.
pub fn torch_zip_pickle(data: &[u8]) {
    let storage = [0u8; 64];
    let archive = stored_zip(&[
        ("archive/data.pkl", data),
        ("archive/byteorder", b"little"),
        ("archive/data/0", &storage),
        ("archive/data/1", &storage),
    ]);
    pytorch_bin(&archive);
}

pub fn hdf5(data: &[u8]) {
    if let Ok(file) = Hdf5File::parse("weights.hdf5", data) {
        if let Ok(paths) = file.dataset_paths() {
            for path in paths.iter().take(64) {
                let _ = file.dataset_shape(path);
                let _ = file.read_dataset_f32(path);
            }
        }
    }
}

pub fn config_json(data: &[u8]) {
    if let Some(text) = text(data) {
        if let Ok(config) = ModelConfig::from_json("config.json", text) {
            let _ = config.hidden_size();
            let _ = config.labels();
        }
    }
}

fn encode_probes(tokenizer: &Tokenizer) {
    for probe in PROBES {
        if let Ok(encoding) = tokenizer.encode(probe) {
            let _ = tokenizer.decode(&encoding.ids, true);
        }
        let _ = tokenizer.encode_pair(probe, PROBES[0]);
        let _ = tokenizer.count_tokens(probe);
    }
}

pub fn tokenizer_json(data: &[u8]) {
    if let Some(text) = text(data) {
        if let Ok(tokenizer) = Tokenizer::from_tokenizer_json(text) {
            encode_probes(&tokenizer);
        }
    }
}

pub fn vocab_txt(data: &[u8]) {
    if let Some(text) = text(data) {
        if let Ok(tokenizer) = Tokenizer::from_vocab_str(text, &VocabOptions::default()) {
            encode_probes(&tokenizer);
        }
    }
}

pub fn elmo_options(data: &[u8]) {
    if let Some(text) = text(data) {
        if let Ok(options) = ElmoOptions::from_json("options.json", text) {
            let _ = options.n_filters();
        }
    }
}

/// Labelled examples (`train-head --examples`, the demo's upload) in every format.
pub fn training_examples(data: &[u8]) {
    if let Some(text) = text(data) {
        for (format, name) in [
            (ExampleFormat::Auto, "examples.tsv"),
            (ExampleFormat::Auto, "examples.csv"),
            (ExampleFormat::RatedTsv, "rated.tsv"),
            (ExampleFormat::Tsv, "examples.tsv"),
            (ExampleFormat::Csv, "examples.csv"),
            (ExampleFormat::Lines, "examples.txt"),
        ] {
            let _ = parse_examples(text, format, name);
        }
    }
}

/// A zip archive of stored entries (no compression; CRCs left 0: webnlu's reader, like torch's,
/// does not check them), with a central directory.
pub fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let header = |signature: u32, central: bool| {
            let mut h = Vec::new();
            h.extend_from_slice(&signature.to_le_bytes());
            if central {
                h.extend_from_slice(&20u16.to_le_bytes()); // version made by
            }
            h.extend_from_slice(&20u16.to_le_bytes()); // version needed
            h.extend_from_slice(&0u16.to_le_bytes()); // flags
            h.extend_from_slice(&0u16.to_le_bytes()); // method: stored
            h.extend_from_slice(&0u32.to_le_bytes()); // time, date
            h.extend_from_slice(&0u32.to_le_bytes()); // crc
            h.extend_from_slice(&(data.len() as u32).to_le_bytes()); // compressed size
            h.extend_from_slice(&(data.len() as u32).to_le_bytes()); // size
            h.extend_from_slice(&(name.len() as u16).to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes()); // extra length
            if central {
                h.extend_from_slice(&[0u8; 6]); // comment length, disk, internal attributes
                h.extend_from_slice(&0u32.to_le_bytes()); // external attributes
                h.extend_from_slice(&offset.to_le_bytes());
            }
            h.extend_from_slice(name.as_bytes());
            h
        };
        out.extend(header(0x0403_4b50, false));
        out.extend_from_slice(data);
        central.extend(header(0x0201_4b50, true));
    }
    let directory_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // disk numbers
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}
