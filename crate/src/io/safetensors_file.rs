//! A safetensors file read tensor by tensor from disk (native only): the header is read and
//! validated when the file is opened (as [`super::SafeTensors::parse`] validates it, against the
//! file's length), and each tensor's bytes are read when asked for, with a seek, straight into
//! the buffer that keeps them: an F32 tensor into its `Vec<f32>`, with no copy of the file in
//! memory. Peak memory while a model loads is then its tensors plus one tensor's bytes (a
//! 16-bit or F64 tensor converted to f32), not the whole file plus its tensors.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::safetensors::{header_length, parse_header, HeaderEntry};
use super::tensor_view::{DType, TensorView};
use crate::memory_limit::{tensor_bytes, try_filled_vec};
use crate::{Error, Result};

/// An open safetensors file whose tensors are read on demand.
pub struct SafeTensorsFile {
    /// The file's name for error messages.
    pub file: String,
    path: PathBuf,
    /// Offset of the first data byte (8 + the header's length).
    data_start: u64,
    /// The tensors in file order.
    pub entries: Vec<HeaderEntry>,
    handle: Mutex<File>,
}

impl SafeTensorsFile {
    /// Opens `path` and reads and validates its header (nothing of the tensors is read).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let io_err = |source| Error::io(&file, source);
        let mut handle = File::open(path).map_err(io_err)?;
        let file_len = handle.metadata().map_err(io_err)?.len();
        let mut first = [0u8; 8];
        let got = read_up_to(&mut handle, &mut first).map_err(io_err)?;
        let header_len = header_length(&file, &first[..got], file_len)?;
        let mut json = try_filled_vec(&format!("{file}: header"), header_len as usize, 0u8)?;
        handle.read_exact(&mut json).map_err(io_err)?;
        let data_start = 8 + header_len;
        let header = parse_header(&file, &json, file_len - data_start)?;
        Ok(SafeTensorsFile {
            file,
            path: path.to_path_buf(),
            data_start,
            entries: header.entries,
            handle: Mutex::new(handle),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
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
        let mut handle = self
            .handle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let read = handle
            .seek(SeekFrom::Start(self.data_start + entry.begin))
            .and_then(|_| handle.read_exact(out));
        read.map_err(|source| {
            Error::format(
                &self.file,
                format!(
                    "tensor {}: cannot read its {} bytes at offset {} (was the file changed \
                     or truncated since it was opened?): {source}",
                    entry.name,
                    out.len(),
                    self.data_start + entry.begin
                ),
            )
        })
    }
}

/// Reads until `buf` is full or the file ends; the count read.
fn read_up_to(handle: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match handle.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}
