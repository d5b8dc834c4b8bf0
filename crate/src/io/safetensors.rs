//! safetensors (https://github.com/huggingface/safetensors, format described in its README):
//! `u64 little-endian header length N`, `N bytes of JSON`, then the tensor bytes. The JSON maps
//! each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` with offsets relative
//! to the start of the byte buffer after the header; an optional `"__metadata__"` maps strings
//! to strings. Reading borrows the file's bytes (zero-copy views); writing produces F32 files
//! that Python `safetensors` and transformers load.

use std::collections::BTreeMap;

use super::byte_reader::checked_product;
use super::tensor_view::{impl_tensor_lookup, DType, TensorView};
use crate::{Error, Result};

/// Headers larger than this are refused before parsing (the Python library uses 100 MB too).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// A parsed safetensors file: tensors in file order, borrowing `bytes`.
pub struct SafeTensors<'a> {
    pub file: String,
    pub tensors: Vec<TensorView<'a>>,
    pub metadata: BTreeMap<String, String>,
}

impl<'a> SafeTensors<'a> {
    /// Parses and validates the header: every tensor's dtype is known, its shape's byte size
    /// equals its offsets' span, offsets lie inside the buffer and tensors do not overlap.
    pub fn parse(file: &str, bytes: &'a [u8]) -> Result<Self> {
        let header_len = header_length(file, &bytes[..bytes.len().min(8)], bytes.len() as u64)?;
        let header_end = 8 + header_len as usize;
        let data = &bytes[header_end..];
        let header = parse_header(file, &bytes[8..header_end], data.len() as u64)?;
        let tensors = (header.entries.into_iter())
            .map(|e| {
                let view = &data[e.begin as usize..e.end as usize];
                TensorView::new(file, &e.name, e.dtype, e.shape, view)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SafeTensors {
            file: file.to_string(),
            tensors,
            metadata: header.metadata,
        })
    }
}

/// One tensor of a safetensors header: where its bytes lie after the header.
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderEntry {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Byte offsets `[begin, end)` relative to the first byte after the header.
    pub begin: u64,
    pub end: u64,
}

/// A validated safetensors header: its tensors in file order and its `__metadata__`.
#[derive(Clone, Debug)]
pub struct Header {
    pub entries: Vec<HeaderEntry>,
    pub metadata: BTreeMap<String, String>,
}

/// The header's byte length from the file's first 8 bytes (`first`, fewer when the file is
/// shorter), checked against the `file_len` bytes of the whole file and [`MAX_HEADER_BYTES`].
pub fn header_length(file: &str, first: &[u8], file_len: u64) -> Result<u64> {
    if first.len() < 8 || file_len < 8 {
        return Err(Error::format(
            file,
            format!("not a safetensors file: {file_len} bytes, the header length alone needs 8"),
        ));
    }
    let header_len = u64::from_le_bytes(first[..8].try_into().unwrap_or([0; 8]));
    let available = file_len - 8;
    if header_len > available || header_len > MAX_HEADER_BYTES {
        return Err(Error::format(
            file,
            format!(
                "header length {header_len} exceeds the {available} bytes after it (limit {MAX_HEADER_BYTES})"
            ),
        ));
    }
    Ok(header_len)
}

/// Parses and validates the JSON header `json` of a file whose data part (after the header)
/// holds `data_len` bytes: every tensor's dtype is known, its shape's byte size equals its
/// offsets' span, offsets lie inside the data and tensors do not overlap. Entries in file
/// order (by offset; empty tensors at the same offset by name).
pub fn parse_header(file: &str, json: &[u8], data_len: u64) -> Result<Header> {
    let err = |detail: String| Error::format(file, detail);
    let header: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| err(format!("header is not valid JSON: {e}")))?;
    let object = header
        .as_object()
        .ok_or_else(|| err("header is not a JSON object".to_string()))?;
    let mut metadata = BTreeMap::new();
    let mut entries = Vec::with_capacity(object.len());
    for (name, entry) in object {
        if name == "__metadata__" {
            let map = entry
                .as_object()
                .ok_or_else(|| err("__metadata__ is not an object".to_string()))?;
            for (k, v) in map {
                let v = v
                    .as_str()
                    .ok_or_else(|| err(format!("__metadata__ value of {k:?} is not a string")))?;
                metadata.insert(k.clone(), v.to_string());
            }
            continue;
        }
        let tensor_err = |detail: &str| err(format!("tensor {name}: {detail}"));
        let dtype_name = entry["dtype"]
            .as_str()
            .ok_or_else(|| tensor_err("missing or non-string \"dtype\""))?;
        let dtype = DType::from_safetensors_name(dtype_name)
            .ok_or_else(|| tensor_err(&format!("unknown dtype {dtype_name:?}")))?;
        let shape = entry["shape"]
            .as_array()
            .ok_or_else(|| tensor_err("missing \"shape\" array"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| tensor_err("shape entries must be non-negative integers"))?;
        let (begin, end) = entry["data_offsets"]
            .as_array()
            .filter(|a| a.len() == 2)
            .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
            .ok_or_else(|| tensor_err("\"data_offsets\" must be [begin, end]"))?;
        if begin > end || end > data_len {
            return Err(tensor_err(&format!(
                "data_offsets [{begin}, {end}] lie outside the {data_len} data bytes"
            )));
        }
        let numel = checked_product(&shape)
            .ok_or_else(|| tensor_err(&format!("shape {shape:?} overflows")))?;
        let expected = numel.checked_mul(dtype.size_in_bytes());
        if expected.map(|n| n as u64) != Some(end - begin) {
            return Err(tensor_err(&format!(
                "shape {shape:?} of {dtype_name} needs {} bytes, data_offsets [{begin}, {end}] hold {}",
                expected.map_or("more than usize::MAX".to_string(), |n| n.to_string()),
                end - begin
            )));
        }
        entries.push(HeaderEntry {
            name: name.clone(),
            dtype,
            shape,
            begin,
            end,
        });
    }
    // File order (by offset) is the order users expect when listing; at one offset an empty
    // tensor comes before the tensor that starts there, empty ones by name.
    crate::sort::sort_by(&mut entries, |a, b| {
        (a.begin, a.end, &a.name).cmp(&(b.begin, b.end, &b.name))
    });
    for pair in entries.windows(2) {
        if pair[1].begin < pair[0].end {
            return Err(err(format!(
                "tensors {} and {} overlap ([{}, {}] and [{}, {}])",
                pair[0].name, pair[1].name, pair[0].begin, pair[0].end, pair[1].begin, pair[1].end
            )));
        }
    }
    Ok(Header { entries, metadata })
}

impl_tensor_lookup!(SafeTensors);

/// Serialises F32 tensors `(name, shape, values)` as a safetensors file with
/// `__metadata__ = {"format": "pt"}` (what transformers expects of PyTorch weights). Tensors are
/// written in name order; the header is padded with spaces to a multiple of 8 so that every
/// tensor starts 8-byte aligned, as the Python writer does.
pub fn write_safetensors(tensors: &[(&str, &[usize], &[f32])]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&(&str, &[usize], &[f32])> = tensors.iter().collect();
    crate::sort::sort_by(&mut sorted, |a, b| a.0.cmp(b.0));
    let mut header = serde_json::Map::new();
    let mut metadata = serde_json::Map::new();
    metadata.insert("format".into(), "pt".into());
    header.insert("__metadata__".into(), serde_json::Value::Object(metadata));
    let mut offset = 0usize;
    for (name, shape, values) in &sorted {
        if *name == "__metadata__" || header.contains_key(*name) {
            return Err(Error::invalid(format!(
                "duplicate or reserved tensor name {name:?}"
            )));
        }
        let numel = checked_product(shape).unwrap_or(usize::MAX);
        if numel != values.len() {
            return Err(Error::shape(
                format!("writing tensor {name}"),
                numel,
                values.len(),
            ));
        }
        let end = offset + 4 * values.len();
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header_bytes = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| Error::invalid(format!("cannot serialise safetensors header: {e}")))?;
    while header_bytes.len() % 8 != 0 {
        header_bytes.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + header_bytes.len() + offset);
    out.extend_from_slice(&(header_bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&header_bytes);
    for (_, _, values) in &sorted {
        for v in values.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}
