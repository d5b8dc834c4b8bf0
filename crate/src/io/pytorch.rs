//! PyTorch `pytorch_model.bin` state_dicts, read without PyTorch and without running code.
//!
//! Two layouts exist (see `torch/serialization.py`, `_save`/`_load` and `_legacy_save`/`_legacy_load`):
//! - zip (torch >= 1.6): entries `<archive>/data.pkl` (the pickled state_dict, whose tensors refer
//!   to storages by persistent id) and `<archive>/data/<key>` (each storage's raw bytes, little endian).
//! - legacy: five things back to back: a pickled magic number (0x1950a86a20f9469cfc6c), a pickled
//!   protocol version (1001), a pickled sys_info dict, the pickled state_dict, a pickled list of
//!   storage keys, then for each key in that order an i64 element count and the storage's bytes.
//!
//! Tensors come out as [`TensorView`]s borrowing the file's bytes; strided (non-contiguous)
//! views, such as the transposed weights of TF-converted checkpoints (rxnfp), are copied into
//! row-major order.

use std::collections::HashMap;
use std::rc::Rc;

use super::byte_reader::{checked_product, ByteReader};
use super::pickle::{unpickle, StorageRef, TensorRef, Value};
use super::tensor_view::{impl_tensor_lookup, TensorView};
use super::zip_archive::{looks_like_zip, read_stored_entries};
use crate::{Error, Result};

const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
const LEGACY_PROTOCOL_VERSION: i128 = 1001;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PytorchFormat {
    Zip,
    Legacy,
}

pub struct PytorchFile<'a> {
    pub file: String,
    pub format: PytorchFormat,
    /// Tensors in the state_dict's order.
    pub tensors: Vec<TensorView<'a>>,
}

impl<'a> PytorchFile<'a> {
    /// Parses either layout, chosen by the first bytes (a zip local header, or a pickle).
    pub fn parse(file: &str, bytes: &'a [u8]) -> Result<Self> {
        if looks_like_zip(bytes) {
            Self::parse_zip(file, bytes)
        } else if bytes.first() == Some(&0x80) {
            Self::parse_legacy(file, bytes)
        } else {
            Err(Error::format(
                file,
                "not a PyTorch checkpoint: starts with neither a zip header nor a pickle",
            ))
        }
    }

    fn parse_zip(file: &str, bytes: &'a [u8]) -> Result<Self> {
        let entries = read_stored_entries(file, bytes)?;
        let pickles: Vec<&str> = entries
            .iter()
            .map(|e| e.name.as_str())
            .filter(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
            .collect();
        let pickle_name = match pickles.as_slice() {
            [one] => one.to_string(),
            _ => {
                return Err(Error::format(
                    file,
                    format!(
                        "expected one data.pkl entry in the archive, found {}",
                        pickles.len()
                    ),
                ))
            }
        };
        let prefix = &pickle_name[..pickle_name.len() - "data.pkl".len()];
        let mut storages: HashMap<String, &'a [u8]> = HashMap::new();
        let mut pickle_bytes: &[u8] = &[];
        for entry in &entries {
            if entry.name == pickle_name {
                pickle_bytes = entry.data;
            } else if entry.name == format!("{prefix}byteorder") && entry.data != b"little" {
                return Err(Error::unsupported(format!(
                    "{file}: byte order {:?} (only little-endian checkpoints)",
                    String::from_utf8_lossy(entry.data)
                )));
            } else if let Some(key) = entry.name.strip_prefix(&format!("{prefix}data/")) {
                storages.insert(key.to_string(), entry.data);
            }
        }
        let what = format!("{file} ({pickle_name})");
        let (root, _) = unpickle(&what, pickle_bytes, 0)?;
        let tensors = collect_tensors(file, &root, |storage| {
            let data = storages.get(&storage.key).copied().ok_or_else(|| {
                Error::format(
                    file,
                    format!("storage {} has no data/{} entry", storage.key, storage.key),
                )
            })?;
            check_storage_len(file, storage, data)?;
            Ok(data)
        })?;
        Ok(PytorchFile {
            file: file.to_string(),
            format: PytorchFormat::Zip,
            tensors,
        })
    }

    fn parse_legacy(file: &str, bytes: &'a [u8]) -> Result<Self> {
        let (magic, pos) = unpickle(file, bytes, 0)?;
        if *magic != Value::Int(LEGACY_MAGIC) {
            return Err(Error::format(
                file,
                "not a PyTorch checkpoint: wrong magic number",
            ));
        }
        let (protocol, pos) = unpickle(file, bytes, pos)?;
        if *protocol != Value::Int(LEGACY_PROTOCOL_VERSION) {
            return Err(Error::format(
                file,
                format!(
                    "legacy checkpoint protocol {}, expected {LEGACY_PROTOCOL_VERSION}",
                    describe(&protocol)
                ),
            ));
        }
        let (sys_info, pos) = unpickle(file, bytes, pos)?;
        if let Value::Dict(items) = &*sys_info {
            for (k, v) in items {
                if **k == Value::Str("little_endian".into()) && **v != Value::Bool(true) {
                    return Err(Error::unsupported(format!(
                        "{file}: big-endian legacy checkpoint"
                    )));
                }
            }
        }
        let (root, pos) = unpickle(file, bytes, pos)?;
        let (keys, pos) = unpickle(file, bytes, pos)?;
        let keys = match &*keys {
            Value::List(keys) => keys
                .iter()
                .map(|k| match &**k {
                    Value::Str(s) => Ok(s.clone()),
                    _ => Err(Error::format(file, "storage key list holds a non-string")),
                })
                .collect::<Result<Vec<String>>>()?,
            _ => return Err(Error::format(file, "storage key list is missing")),
        };

        // Element types of the storages, as the state_dict's persistent ids declare them.
        let mut declared: HashMap<String, StorageRef> = HashMap::new();
        visit_tensors(&root, &mut |_, t| {
            let root_key = t.storage.view_of.as_ref().map_or(&t.storage.key, |v| &v.0);
            declared
                .entry(root_key.clone())
                .or_insert_with(|| t.storage.clone());
        });
        let mut storages: HashMap<String, &'a [u8]> = HashMap::new();
        let mut r = ByteReader::at(file, bytes, pos as u64)?;
        for key in &keys {
            let storage = declared.get(key).ok_or_else(|| {
                Error::format(
                    file,
                    format!("storage {key} is listed but no tensor uses it"),
                )
            })?;
            let numel = r.i64()?;
            let len = u64::try_from(numel)
                .ok()
                .and_then(|n| n.checked_mul(storage.dtype.size_in_bytes() as u64))
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    Error::format(file, format!("storage {key}: bad element count {numel}"))
                })?;
            let data = r.take(len).map_err(|_| {
                Error::format(
                    file,
                    format!(
                        "storage {key}: {numel} elements ({len} bytes) at byte {} run past the end ({} bytes)",
                        r.pos,
                        bytes.len()
                    ),
                )
            })?;
            storages.insert(key.clone(), data);
        }
        let tensors = collect_tensors(file, &root, |storage| {
            let (root_key, elem_offset, view_numel) = match &storage.view_of {
                Some((root, offset, n)) => (root, *offset, Some(*n)),
                None => (&storage.key, 0, None),
            };
            let data = storages.get(root_key).copied().ok_or_else(|| {
                Error::format(
                    file,
                    format!("storage {root_key} is not in the storage key list"),
                )
            })?;
            let es = storage.dtype.size_in_bytes() as u64;
            let data = match view_numel {
                None => data,
                Some(n) => slice_elements(data, elem_offset, n, es).ok_or_else(|| {
                    Error::format(file, format!("storage view of {root_key} lies outside it"))
                })?,
            };
            check_storage_len(file, storage, data)?;
            Ok(data)
        })?;
        Ok(PytorchFile {
            file: file.to_string(),
            format: PytorchFormat::Legacy,
            tensors,
        })
    }
}

impl_tensor_lookup!(PytorchFile);

fn check_storage_len(file: &str, storage: &StorageRef, data: &[u8]) -> Result<()> {
    let expected = storage
        .numel
        .checked_mul(storage.dtype.size_in_bytes() as u64);
    if expected != Some(data.len() as u64) {
        return Err(Error::format(
            file,
            format!(
                "storage {} declares {} {:?} elements but holds {} bytes",
                storage.key,
                storage.numel,
                storage.dtype,
                data.len()
            ),
        ));
    }
    Ok(())
}

/// Row-major strides; dimensions of extent 1 may carry any stride.
fn is_contiguous(size: &[u64], stride: &[u64]) -> bool {
    let mut expected = 1u64;
    for (&extent, &step) in size.iter().zip(stride).rev() {
        if extent != 1 && step != expected {
            return false;
        }
        expected = expected.saturating_mul(extent);
    }
    true
}

/// Copies a strided view (for example a transposed weight, as TF-converted checkpoints hold)
/// into row-major order. Refuses views that reach outside the storage, and views that are larger
/// than their storage (overlapping strides), so a header cannot make us allocate unboundedly.
fn gather_strided(
    file: &str,
    name: &str,
    t: &TensorRef,
    data: &[u8],
    numel: usize,
    es: usize,
) -> Result<Vec<u8>> {
    let storage_numel = (data.len() / es) as u64;
    if numel == 0 {
        return Ok(Vec::new());
    }
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.storage_offset, |acc, (&n, &s)| {
            acc.checked_add((n - 1).checked_mul(s)?)
        });
    if last.is_none_or(|l| l >= storage_numel) {
        return Err(Error::format(
            file,
            format!(
                "tensor {name}: size {:?} with stride {:?} at offset {} reaches outside its storage {} ({storage_numel} elements)",
                t.size, t.stride, t.storage_offset, t.storage.key
            ),
        ));
    }
    if numel as u64 > storage_numel {
        return Err(Error::unsupported(format!(
            "{file}: tensor {name} has overlapping strides {:?} for size {:?} (more elements than its storage)",
            t.stride, t.size
        )));
    }
    let mut out = Vec::with_capacity(numel * es);
    let mut index = vec![0u64; t.size.len()];
    for _ in 0..numel {
        let element =
            t.storage_offset + index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<u64>();
        let start = element as usize * es;
        out.extend_from_slice(&data[start..start + es]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
}

fn slice_elements(data: &[u8], offset: u64, numel: u64, elem_size: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset.checked_mul(elem_size)?).ok()?;
    let len = usize::try_from(numel.checked_mul(elem_size)?).ok()?;
    data.get(start..start.checked_add(len)?)
}

/// Calls `f(name, tensor)` for every string-keyed tensor of the top-level dict.
fn visit_tensors<'v>(root: &'v Value, f: &mut dyn FnMut(&'v str, &'v TensorRef)) {
    if let Value::Dict(items) = root {
        for (k, v) in items {
            if let (Value::Str(name), Value::Tensor(t)) = (&**k, &**v) {
                f(name, t);
            }
        }
    }
}

/// A pickled value (a dict key, a protocol number) for an error message, in a few words
/// whatever it holds: a pickle can share one container under itself many times over (DUP,
/// SETITEM, APPEND), so that printing the whole value takes exponential time and memory (a
/// 94-byte pickle printed as 2 MB, found by fuzzing).
fn describe(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_) => format!("{value:?}"),
        Value::Bytes(b) => format!("{} bytes", b.len()),
        Value::Tuple(items) => format!("a tuple of {}", items.len()),
        Value::List(items) => format!("a list of {}", items.len()),
        Value::Dict(items) => format!("a dict of {}", items.len()),
        Value::Global(_) => "a class".to_string(),
        Value::Storage(_) => "a storage".to_string(),
        Value::Tensor(_) => "a tensor".to_string(),
    }
}

/// Turns the state_dict's tensor references into views of their storages' bytes.
fn collect_tensors<'a>(
    file: &str,
    root: &Rc<Value>,
    mut storage_bytes: impl FnMut(&StorageRef) -> Result<&'a [u8]>,
) -> Result<Vec<TensorView<'a>>> {
    let items = match &**root {
        Value::Dict(items) => items,
        _ => {
            return Err(Error::format(
                file,
                "the pickle does not hold a state_dict (a dict of tensors)",
            ))
        }
    };
    let mut refs = Vec::new();
    visit_tensors(root, &mut |name, t| refs.push((name, t)));
    if refs.is_empty() {
        let keys: Vec<String> = items.iter().take(8).map(|(k, _)| describe(k)).collect();
        return Err(Error::format(
            file,
            format!(
                "the top-level dict holds no tensors (keys: {keys:?}); is it a wrapped checkpoint?"
            ),
        ));
    }
    let mut tensors = Vec::with_capacity(refs.len());
    for (name, t) in refs {
        let data = storage_bytes(&t.storage)?;
        let size: Vec<usize> = t
            .size
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::format(file, format!("tensor {name}: size {:?} overflows", t.size))
            })?;
        let numel = checked_product(&size).ok_or_else(|| {
            Error::format(file, format!("tensor {name}: size {size:?} overflows"))
        })?;
        let es = t.storage.dtype.size_in_bytes();
        let storage_numel = (data.len() / es) as u64;
        let bytes: std::borrow::Cow<'a, [u8]> = if is_contiguous(&t.size, &t.stride) {
            slice_elements(data, t.storage_offset, numel as u64, es as u64)
                .ok_or_else(|| {
                    Error::format(
                        file,
                        format!(
                            "tensor {name}: {numel} elements at offset {} exceed its storage {} ({storage_numel} elements)",
                            t.storage_offset, t.storage.key
                        ),
                    )
                })?
                .into()
        } else {
            gather_strided(file, name, t, data, numel, es)?.into()
        };
        tensors.push(TensorView::new(file, name, t.storage.dtype, size, bytes)?);
    }
    Ok(tensors)
}
