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
        let err = |detail: String| Error::format(file, detail);
        if bytes.len() < 8 {
            return Err(err(format!(
                "not a safetensors file: {} bytes, the header length alone needs 8",
                bytes.len()
            )));
        }
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        let available = (bytes.len() - 8) as u64;
        if header_len > available || header_len > MAX_HEADER_BYTES {
            return Err(err(format!(
                "header length {header_len} exceeds the {available} bytes after it (limit {MAX_HEADER_BYTES})"
            )));
        }
        let header_end = 8 + header_len as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..header_end])
            .map_err(|e| err(format!("header is not valid JSON: {e}")))?;
        let entries = header
            .as_object()
            .ok_or_else(|| err("header is not a JSON object".to_string()))?;
        let data = &bytes[header_end..];

        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(entries.len());
        let mut spans = Vec::with_capacity(entries.len()); // (begin, end, name)
        for (name, entry) in entries {
            if name == "__metadata__" {
                let map = entry
                    .as_object()
                    .ok_or_else(|| err("__metadata__ is not an object".to_string()))?;
                for (k, v) in map {
                    let v = v.as_str().ok_or_else(|| {
                        err(format!("__metadata__ value of {k:?} is not a string"))
                    })?;
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
            let offsets = entry["data_offsets"]
                .as_array()
                .filter(|a| a.len() == 2)
                .and_then(|a| Some((a[0].as_u64()?, a[1].as_u64()?)))
                .ok_or_else(|| tensor_err("\"data_offsets\" must be [begin, end]"))?;
            let (begin, end) = offsets;
            if begin > end || end > data.len() as u64 {
                return Err(tensor_err(&format!(
                    "data_offsets [{begin}, {end}] lie outside the {} data bytes",
                    data.len()
                )));
            }
            let numel = checked_product(&shape)
                .ok_or_else(|| tensor_err(&format!("shape {shape:?} overflows")))?;
            let expected = numel.checked_mul(dtype.size_in_bytes());
            if expected != Some((end - begin) as usize) {
                return Err(tensor_err(&format!(
                    "shape {shape:?} of {dtype_name} needs {} bytes, data_offsets [{begin}, {end}] hold {}",
                    expected.map_or("more than usize::MAX".to_string(), |n| n.to_string()),
                    end - begin
                )));
            }
            let view = &data[begin as usize..end as usize];
            tensors.push(TensorView::new(file, name, dtype, shape, view)?);
            spans.push((begin, end, name.clone()));
        }
        crate::sort::sort(&mut spans);
        for pair in spans.windows(2) {
            if pair[1].0 < pair[0].1 {
                return Err(err(format!(
                    "tensors {} and {} overlap ([{}, {}] and [{}, {}])",
                    pair[0].2, pair[1].2, pair[0].0, pair[0].1, pair[1].0, pair[1].1
                )));
            }
        }
        // File order (by offset) is the order users expect when listing.
        // all borrowed: pointer order = file order (ties: empty tensors, by name)
        crate::sort::sort_by(&mut tensors, |a, b| {
            (a.data.as_ptr() as usize)
                .cmp(&(b.data.as_ptr() as usize))
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(SafeTensors {
            file: file.to_string(),
            tensors,
            metadata,
        })
    }
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
