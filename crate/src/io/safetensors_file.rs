//! A safetensors file read tensor by tensor from where its bytes are (a file on disk natively;
//! in the browser, the fetched file left in JS memory): the header is read and validated when
//! the file is opened (as [`super::SafeTensors::parse`] validates it, against the file's
//! length), and each tensor's bytes are read when asked for straight into the buffer that keeps
//! them: an F32 tensor into its `Vec<f32>`, with no copy of the file in memory (nor, in the
//! browser, in wasm memory). Peak memory while a model loads is then its tensors plus one
//! tensor's bytes (a 16-bit or F64 tensor converted to f32), not the whole file plus its tensors.

#[cfg(not(target_arch = "wasm32"))]
use std::fs::File;
#[cfg(not(target_arch = "wasm32"))]
use std::io::{Read, Seek, SeekFrom};
#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
#[cfg(not(target_arch = "wasm32"))]
use std::sync::Mutex;

use super::safetensors::{header_length, parse_header, HeaderEntry};
use super::tensor_view::{DType, TensorView};
use crate::memory_limit::{tensor_bytes, try_filled_vec};
use crate::{Error, Result};

/// Bytes that can be read at any offset: what a [`SafeTensorsFile`] reads from.
pub trait ByteRanges {
    /// The length in bytes.
    fn len(&self) -> std::io::Result<u64>;
    /// Fills `out` with the bytes from `offset` on (an error when fewer are there).
    fn read_at(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()>;
}

/// The byte source a [`SafeTensorsFile`] owns (natively shareable across threads).
#[cfg(not(target_arch = "wasm32"))]
pub type Ranges = Box<dyn ByteRanges + Send + Sync>;
/// The byte source a [`SafeTensorsFile`] owns.
#[cfg(target_arch = "wasm32")]
pub type Ranges = Box<dyn ByteRanges>;

/// A file on disk, read with a seek per range.
#[cfg(not(target_arch = "wasm32"))]
impl ByteRanges for Mutex<File> {
    fn len(&self) -> std::io::Result<u64> {
        let handle = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(handle.metadata()?.len())
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let mut handle = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        handle.seek(SeekFrom::Start(offset))?;
        handle.read_exact(out)
    }
}

/// A file the browser fetched, left in JS memory: each range is copied out of it into wasm
/// memory (the JS array must stay unchanged while the model loads, which it does: loading is
/// one synchronous call).
#[cfg(target_arch = "wasm32")]
impl ByteRanges for js_sys::Uint8Array {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.length() as u64)
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let end = offset + out.len() as u64;
        if end > self.length() as u64 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.subarray(offset as u32, end as u32).copy_to(out);
        Ok(())
    }
}

/// An open safetensors file whose tensors are read on demand.
pub struct SafeTensorsFile {
    /// The file's name for error messages.
    pub file: String,
    /// Offset of the first data byte (8 + the header's length).
    data_start: u64,
    /// The tensors in file order.
    pub entries: Vec<HeaderEntry>,
    bytes: Ranges,
}

impl SafeTensorsFile {
    /// Opens `path` and reads and validates its header (nothing of the tensors is read).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let handle = File::open(path).map_err(|source| Error::io(&file, source))?;
        SafeTensorsFile::from_ranges(file, Box::new(Mutex::new(handle)))
    }

    /// Reads and validates the header of the safetensors file in `bytes` (nothing of the
    /// tensors is read); `file` names it in errors.
    pub fn from_ranges(file: String, bytes: Ranges) -> Result<Self> {
        let io_err = |source| Error::io(&file, source);
        let file_len = bytes.len().map_err(io_err)?;
        let mut first = [0u8; 8];
        let got = file_len.min(8) as usize;
        bytes.read_at(0, &mut first[..got]).map_err(io_err)?;
        let header_len = header_length(&file, &first[..got], file_len)?;
        let mut json = try_filled_vec(&format!("{file}: header"), header_len as usize, 0u8)?;
        bytes.read_at(8, &mut json).map_err(io_err)?;
        let data_start = 8 + header_len;
        let header = parse_header(&file, &json, file_len - data_start)?;
        Ok(SafeTensorsFile {
            file,
            data_start,
            entries: header.entries,
            bytes,
        })
    }

    /// The tensor's raw bytes, read from the file (owned).
    pub fn read_view(&self, entry: &HeaderEntry) -> Result<TensorView<'static>> {
        let what = format!("{}: tensor {}", self.file, entry.name);
        let mut bytes = try_filled_vec(&what, (entry.end - entry.begin) as usize, 0u8)?;
        self.read_at(entry, &mut bytes)?;
        TensorView::new(
            &self.file,
            &entry.name,
            entry.dtype,
            entry.shape.clone(),
            bytes,
        )
    }

    /// The tensor's values as f32: an F32 tensor is read straight into the returned vector;
    /// other float dtypes are read and then converted (as [`TensorView::to_f32`] does).
    pub fn read_f32(&self, entry: &HeaderEntry) -> Result<Vec<f32>> {
        if entry.dtype != DType::F32 || cfg!(target_endian = "big") {
            return Ok(self.read_view(entry)?.to_f32()?.into_owned());
        }
        let what = format!("{}: tensor {}", self.file, entry.name);
        tensor_bytes(&what, &entry.shape, 4)?;
        let numel = ((entry.end - entry.begin) / 4) as usize;
        let mut values = try_filled_vec(&what, numel, 0f32)?;
        self.read_at(entry, bytemuck::cast_slice_mut(&mut values))?;
        Ok(values)
    }

    /// Fills `out` with the entry's bytes (`out` is exactly as long as the entry).
    fn read_at(&self, entry: &HeaderEntry, out: &mut [u8]) -> Result<()> {
        let offset = self.data_start + entry.begin;
        self.bytes.read_at(offset, out).map_err(|source| {
            Error::format(
                &self.file,
                format!(
                    "tensor {}: cannot read its {} bytes at offset {offset} (was the file changed \
                     or truncated since it was opened?): {source}",
                    entry.name,
                    out.len(),
                ),
            )
        })
    }
}
