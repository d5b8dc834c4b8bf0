//! A safetensors file read as it arrives, chunk by chunk in file order (the browser's `fetch`
//! body, a `Blob`'s stream): the 8-byte header length and the JSON header are gathered and
//! validated as [`super::SafeTensors::parse`] validates them, then every data byte is copied
//! straight into the tensor it belongs to (its data offsets), so the whole file is never held
//! beside its tensors. An F32 tensor is filled in place as its final `Vec<f32>` (what a CPU model
//! keeps); on a GPU (fp32 loads) it is uploaded as soon as its last byte is in and its values
//! are freed, so memory then holds one tensor at a time. Other dtypes are kept as their bytes,
//! converted when the model reads them. [`WeightStream::finish`] checks that the stream held
//! the whole file (a truncated stream is an error naming the tensor it stopped in) and gives the
//! [`StreamedWeights`] that `ModelFiles::insert_streamed` hands to the model's loader, which
//! takes each tensor by name once (checking its shape against the config as usual).

use std::sync::Mutex;

use super::safetensors::{header_length, parse_header, HeaderEntry};
use super::tensor_view::{DType, TensorView};
use crate::device::Device;
use crate::memory_limit::try_filled_vec;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Where one tensor's bytes are while the file streams in, and after.
enum Slot {
    /// None of its bytes arrived yet.
    Waiting,
    /// An F32 tensor's values, filled in place (little-endian hosts).
    Values(Vec<f32>),
    /// A tensor of another dtype, as stored.
    Bytes(Vec<u8>),
    /// An F32 tensor uploaded to the GPU, its values freed.
    Uploaded(Tensor),
    /// Handed to the model.
    Taken,
}

/// A check of the header before any tensor byte is kept (the model's memory budget:
/// `BertModel::check_streamed_load_fits`).
pub type HeaderCheck = Box<dyn FnOnce(&[HeaderEntry]) -> Result<()>>;

/// A safetensors file being received in file order; see the module doc.
pub struct WeightStream {
    /// The file's name for error messages.
    file: String,
    /// The length the source announced (Content-Length, a Blob's size), when known: the header
    /// is checked against it and a stream longer or shorter is refused.
    total: Option<u64>,
    /// Bytes pushed so far.
    received: u64,
    /// The 8-byte length and the JSON header, gathered until the header is complete.
    head: Vec<u8>,
    /// Offset of the first data byte (8 + the header's length), once the header is read.
    data_start: Option<u64>,
    /// The tensors in file order (by offset) and where each one's bytes are.
    entries: Vec<HeaderEntry>,
    slots: Vec<Slot>,
    /// The first tensor not complete yet.
    next: usize,
    /// The GPU complete F32 tensors go to at once, when loading in fp32 on a GPU.
    upload_to: Option<Device>,
    /// Run on the header once it is read.
    header_check: Option<HeaderCheck>,
}

impl WeightStream {
    /// A stream of the safetensors file `file` (named in errors), `total` bytes long when
    /// known. With `upload_to` a GPU, every finite F32 tensor is uploaded as soon as its bytes
    /// are in (for fp32 loads, where that is its final form); else tensors stay in memory.
    pub fn new(file: impl Into<String>, total: Option<u64>, upload_to: Option<Device>) -> Self {
        WeightStream {
            file: file.into(),
            total,
            received: 0,
            head: Vec::new(),
            data_start: None,
            entries: Vec::new(),
            slots: Vec::new(),
            next: 0,
            upload_to: upload_to.filter(|d| matches!(d, Device::Gpu(_))),
            header_check: None,
        }
    }

    /// The stream with `check` run on the header as soon as it is read, before any tensor byte
    /// is kept: its error is the stream's.
    pub fn check_header_with(mut self, check: HeaderCheck) -> Self {
        self.header_check = Some(check);
        self
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Takes the next `chunk` of the file.
    pub fn push(&mut self, mut chunk: &[u8]) -> Result<()> {
        let after = self.received + chunk.len() as u64;
        if let Some(total) = self.total.filter(|&total| after > total) {
            return Err(Error::format(
                &self.file,
                format!("the stream holds more than the {total} bytes announced for the file"),
            ));
        }
        while self.data_start.is_none() && !chunk.is_empty() {
            let wanted = match self.head.len() {
                n if n < 8 => 8 - n,
                n => (8 + self.header_len()? as usize) - n,
            };
            let (taken, rest) = chunk.split_at(wanted.min(chunk.len()));
            self.head.extend_from_slice(taken);
            self.received += taken.len() as u64;
            chunk = rest;
            self.read_header_if_complete()?;
        }
        while !chunk.is_empty() {
            let pos = self.received - self.data_start.unwrap_or(0); // data offset of chunk[0]
            self.complete_empty_tensors(pos)?;
            let Some(entry) = self.entries.get(self.next) else {
                // after the last tensor: padding within the announced length
                self.received += chunk.len() as u64;
                break;
            };
            let (begin, end) = (entry.begin, entry.end);
            if pos < begin {
                let gap = ((begin - pos) as usize).min(chunk.len());
                self.received += gap as u64;
                chunk = &chunk[gap..];
                continue;
            }
            let n = ((end - pos) as usize).min(chunk.len());
            self.fill(self.next, (pos - begin) as usize, &chunk[..n])?;
            self.received += n as u64;
            chunk = &chunk[n..];
            if pos + n as u64 == end {
                self.complete(self.next)?;
                self.next += 1;
            }
        }
        Ok(())
    }

    /// The header's length, from the 8 bytes gathered (checked against the announced length).
    fn header_len(&self) -> Result<u64> {
        header_length(&self.file, &self.head[..8], self.total.unwrap_or(u64::MAX))
    }

    /// Parses the header once all its bytes are in.
    fn read_header_if_complete(&mut self) -> Result<()> {
        if self.head.len() < 8 || self.head.len() as u64 != 8 + self.header_len()? {
            return Ok(());
        }
        let data_start = self.head.len() as u64;
        let data_len = self.total.map_or(u64::MAX, |total| total - data_start);
        let header = parse_header(&self.file, &self.head[8..], data_len)?;
        if let Some(check) = self.header_check.take() {
            check(&header.entries)?;
        }
        self.slots = header.entries.iter().map(|_| Slot::Waiting).collect();
        self.entries = header.entries;
        self.head = Vec::new();
        self.data_start = Some(data_start);
        Ok(())
    }

    /// Completes the empty tensors at data offset `pos` (they need no byte).
    fn complete_empty_tensors(&mut self, pos: u64) -> Result<()> {
        while let Some(entry) = self.entries.get(self.next) {
            if entry.begin != entry.end || entry.begin > pos {
                break;
            }
            self.complete(self.next)?;
            self.next += 1;
        }
        Ok(())
    }

    /// Copies `bytes` into tensor `index` from its byte `offset` on (allocating it first).
    fn fill(&mut self, index: usize, offset: usize, bytes: &[u8]) -> Result<()> {
        if let Slot::Waiting = self.slots[index] {
            self.slots[index] = self.allocate(&self.entries[index])?;
        }
        let target: &mut [u8] = match &mut self.slots[index] {
            Slot::Values(values) => bytemuck::cast_slice_mut(values),
            Slot::Bytes(stored) => stored,
            _ => unreachable!("a tensor being filled holds its values or bytes"),
        };
        target[offset..offset + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// The empty storage of `entry`: its f32 values (an F32 tensor) or its bytes.
    fn allocate(&self, entry: &HeaderEntry) -> Result<Slot> {
        let what = format!("{}: tensor {}", self.file, entry.name);
        let bytes = (entry.end - entry.begin) as usize;
        Ok(
            if entry.dtype == DType::F32 && cfg!(target_endian = "little") {
                Slot::Values(try_filled_vec(&what, bytes / 4, 0f32)?)
            } else {
                Slot::Bytes(try_filled_vec(&what, bytes, 0u8)?)
            },
        )
    }

    /// Tensor `index` has all its bytes: uploaded now when the stream uploads (a tensor with a
    /// NaN or infinity stays, for the loader to refuse by name should the model read it).
    fn complete(&mut self, index: usize) -> Result<()> {
        if let Slot::Waiting = self.slots[index] {
            self.slots[index] = self.allocate(&self.entries[index])?; // an empty tensor
        }
        let Some(device) = &self.upload_to else {
            return Ok(());
        };
        let finite =
            matches!(&self.slots[index], Slot::Values(v) if v.iter().all(|x| x.is_finite()));
        if finite {
            let entry = &self.entries[index];
            let Slot::Values(values) = std::mem::replace(&mut self.slots[index], Slot::Taken)
            else {
                unreachable!("checked above");
            };
            let tensor = Tensor::from_vec(device, &entry.shape, values, &entry.name)?;
            self.slots[index] = Slot::Uploaded(tensor);
        }
        Ok(())
    }

    /// The weights, once the whole file was pushed: an error when the stream ended early (in
    /// the header, or in a tensor: named, with how many of its bytes arrived).
    pub fn finish(mut self) -> Result<StreamedWeights> {
        let Some(data_start) = self.data_start else {
            let need = match self.head.len() {
                n if n < 8 => "8 for the header length".to_string(),
                _ => format!("{} for the header", 8 + self.header_len()?),
            };
            return Err(Error::format(
                &self.file,
                format!(
                    "the stream ended after {} bytes, before its header was complete (it needs {need})",
                    self.received
                ),
            ));
        };
        let data_end = self.entries.last().map_or(0, |e| e.end);
        let need = self.total.unwrap_or(data_start + data_end);
        if self.received < need {
            let pos = self.received - data_start;
            let inside = match self.entries.get(self.next) {
                Some(e) if pos >= e.begin && pos < e.end => format!(
                    ", in tensor {} ({} of its {} bytes)",
                    e.name,
                    pos - e.begin,
                    e.end - e.begin
                ),
                Some(e) => format!(", before tensor {}", e.name),
                None => String::new(),
            };
            return Err(Error::format(
                &self.file,
                format!(
                    "truncated: the stream ended after {} of the file's {need} bytes{inside}",
                    self.received
                ),
            ));
        }
        self.complete_empty_tensors(data_end)?;
        Ok(StreamedWeights {
            file: self.file,
            entries: self.entries,
            slots: Mutex::new(self.slots),
        })
    }
}

/// The tensors of a streamed safetensors file, each taken once by the model's loader.
pub struct StreamedWeights {
    /// The file's name for error messages.
    pub file: String,
    /// The tensors in file order.
    pub entries: Vec<HeaderEntry>,
    slots: Mutex<Vec<Slot>>,
}

impl StreamedWeights {
    /// Tensor `name` (any spelling, see `model_files::find_by_name`), its shape checked.
    fn require(&self, name: &str, shape: &[usize]) -> Result<usize> {
        super::model_files::require_index(&self.file, &self.entries, name, shape)
    }

    /// Takes the slot of tensor `index` out (an error when the model took it already).
    fn take(&self, index: usize) -> Result<Slot> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match std::mem::replace(&mut slots[index], Slot::Taken) {
            Slot::Taken | Slot::Waiting => Err(Error::format(
                &self.file,
                format!(
                    "tensor {}: read twice (a streamed file's tensors are handed over once)",
                    self.entries[index].name
                ),
            )),
            slot => Ok(slot),
        }
    }

    /// Tensor `name` already uploaded to the GPU, if it was (else it is left for
    /// [`StreamedWeights::take_f32`] / [`StreamedWeights::take_view`]).
    pub fn take_uploaded(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        let index = self.require(name, shape)?;
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !matches!(slots[index], Slot::Uploaded(_)) {
            return Ok(None);
        }
        match std::mem::replace(&mut slots[index], Slot::Taken) {
            Slot::Uploaded(tensor) => Ok(Some(tensor)),
            _ => unreachable!("checked above"),
        }
    }

    /// Tensor `name` as f32 values: an F32 tensor's own vector (no copy), others converted.
    pub fn take_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let index = self.require(name, shape)?;
        match self.take(index)? {
            Slot::Values(values) => Ok(values),
            Slot::Bytes(bytes) => Ok(self.view(index, bytes)?.to_f32()?.into_owned()),
            _ => Err(self.already_uploaded(index)),
        }
    }

    /// Tensor `name` as stored (an F32 tensor's values as their bytes).
    pub fn take_view(&self, name: &str, shape: &[usize]) -> Result<TensorView<'static>> {
        let index = self.require(name, shape)?;
        match self.take(index)? {
            Slot::Values(values) => self.view(index, bytemuck::cast_slice(&values).to_vec()),
            Slot::Bytes(bytes) => self.view(index, bytes),
            _ => Err(self.already_uploaded(index)),
        }
    }

    fn view(&self, index: usize, bytes: Vec<u8>) -> Result<TensorView<'static>> {
        let e = &self.entries[index];
        TensorView::new(&self.file, &e.name, e.dtype, e.shape.clone(), bytes)
    }

    fn already_uploaded(&self, index: usize) -> Error {
        Error::format(
            &self.file,
            format!(
                "tensor {} was uploaded to the GPU as f32 while streaming; it cannot be read back",
                self.entries[index].name
            ),
        )
    }

    /// Bytes of tensors held as stored, not yet in their final form (16-bit, F64...).
    pub fn bytes_in_memory(&self) -> u64 {
        let slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (slots.iter())
            .map(|slot| match slot {
                Slot::Bytes(bytes) => bytes.len() as u64,
                _ => 0,
            })
            .sum()
    }
}
