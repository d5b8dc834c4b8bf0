//! A safetensors file read as it arrives, chunk by chunk in file order (the browser's `fetch`
//! body, a `Blob`'s stream): the 8-byte header length and the JSON header are gathered and
//! validated as [`super::SafeTensors::parse`] validates them, then every data byte is copied
//! straight into the tensor it belongs to (its data offsets), so the whole file is never held
//! beside its tensors. Each tensor goes to its final form as soon as it can:
//! - on a GPU, an F32 tensor that the model holds in f32 is written into its GPU buffer (row
//!   shards included) block by block as its bytes arrive ([`UPLOAD_BLOCK_VALUES`] values at a
//!   time, checked finite on the way): memory holds one block, never the tensor (mBERT's word
//!   embeddings are 350 MiB);
//! - a layer matrix that the model holds compressed (fp16, bf16, int8: the [`HeaderPlan`] names
//!   them) is gathered, then converted on the model's device as soon as its last byte is in and
//!   its f32 values freed: memory holds one matrix at a time;
//! - on the CPU an F32 tensor is filled in place as its final `Vec<f32>`; other dtypes are kept
//!   as their bytes, converted when the model reads them.
//!
//! [`WeightStream::finish`] checks that the stream held the whole file (a truncated stream is
//! an error naming the tensor it stopped in) and gives the [`StreamedWeights`] that
//! `ModelFiles::insert_streamed` hands to the model's loader, which takes each tensor by name
//! once (checking its shape against the config as usual).

use std::sync::Mutex;

use super::safetensors::{header_length, parse_header, HeaderEntry};
use super::tensor_view::{DType, NonFinite, TensorView};
use crate::device::Device;
use crate::memory_limit::try_filled_vec;
use crate::ops::matmul::{HalfWeight, WeightDtype};
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Values gathered from the stream before each write into a GPU buffer (4 MiB).
pub const UPLOAD_BLOCK_VALUES: usize = 1 << 20;

/// Whether `entry`'s bytes are its f32 values as they are (an F32 tensor on a little-endian
/// host): filled in place as a `Vec<f32>`, or written into a GPU buffer as they arrive.
fn holds_f32_values(entry: &HeaderEntry) -> bool {
    entry.dtype == DType::F32 && cfg!(target_endian = "little")
}

/// Where one tensor's bytes are while the file streams in, and after.
enum Slot {
    /// None of its bytes arrived yet.
    Waiting,
    /// An F32 tensor's values, filled in place (little-endian hosts).
    Values(Vec<f32>),
    /// A tensor of another dtype, as stored.
    Bytes(Vec<u8>),
    /// An F32 tensor being written into its GPU buffer as its bytes arrive.
    Uploading(Box<BlockUpload>),
    /// An F32 tensor on the GPU, complete.
    Uploaded(Tensor),
    /// An F32 tensor streamed to the GPU that held NaN or infinite values: its buffer was
    /// dropped; reading it is an error naming it.
    NonFinite(NonFinite),
    /// A layer matrix in the load's compressed dtype, converted as it completed.
    Compressed(HalfWeight),
    /// Handed to the model.
    Taken,
}

/// An F32 tensor written into its GPU buffer block by block: the bytes of the block being
/// gathered, and what was written before it.
struct BlockUpload {
    tensor: Tensor,
    /// min(UPLOAD_BLOCK_VALUES, the tensor's values) values, reused for every block.
    block: Vec<f32>,
    /// Bytes of `block` filled so far.
    filled: usize,
    /// Values written to the tensor so far.
    written: usize,
    non_finite: NonFinite,
}

impl BlockUpload {
    /// Takes the tensor's next `bytes`, writing every block as it fills.
    fn take(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let block: &mut [u8] = bytemuck::cast_slice_mut(&mut self.block);
            let n = (block.len() - self.filled).min(bytes.len());
            block[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == block.len() {
                self.write_block()?;
            }
        }
        Ok(())
    }

    /// Writes the values gathered (whole values: a tensor's bytes are 4 a value) and starts
    /// the next block; after a NaN or infinity nothing more is written (the tensor is dropped).
    fn write_block(&mut self) -> Result<()> {
        let values = &self.block[..self.filled / 4];
        self.non_finite.count_in(self.written, values);
        if !self.non_finite.any() {
            self.tensor.write_at(self.written, values)?;
        }
        self.written += values.len();
        self.filled = 0;
        Ok(())
    }
}

/// Run on the header once it is read, before any tensor byte is kept: refuses a load that
/// cannot fit (the model's memory budget: `BertModel::plan_streamed_load`) and gives the
/// indices of the entries that the model holds compressed (converted as they complete).
pub type HeaderPlan = Box<dyn FnOnce(&[HeaderEntry]) -> Result<Vec<usize>>>;

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
    /// The model's device: on a GPU, F32 tensors are written into their buffers as they
    /// arrive (but those to be compressed); the compressed matrices are made on it.
    device: Option<Device>,
    /// Run on the header once it is read.
    header_plan: Option<HeaderPlan>,
    /// The dtype of the matrices the plan names, and whether each entry is one of them.
    compress_as: WeightDtype,
    compressed: Vec<bool>,
}

impl WeightStream {
    /// A stream of the safetensors file `file` (named in errors), `total` bytes long when
    /// known, for a model on `device`: on a GPU every F32 tensor (but the matrices a
    /// [`WeightStream::plan_with`] names) is written into its GPU buffer as it arrives; on the
    /// CPU, or without a device, tensors stay in memory as they are.
    pub fn new(file: impl Into<String>, total: Option<u64>, device: Option<Device>) -> Self {
        WeightStream {
            file: file.into(),
            total,
            received: 0,
            head: Vec::new(),
            data_start: None,
            entries: Vec::new(),
            slots: Vec::new(),
            next: 0,
            device,
            header_plan: None,
            compress_as: WeightDtype::Fp32,
            compressed: Vec::new(),
        }
    }

    /// The stream with `plan` run on the header as soon as it is read, before any tensor byte
    /// is kept: its error is the stream's, and the matrices it names are converted to
    /// `compress_as` on the stream's device as soon as each is complete (the loader then takes
    /// them as they are: `WeightSource::take_compressed`).
    pub fn plan_with(mut self, compress_as: WeightDtype, plan: HeaderPlan) -> Self {
        self.compress_as = compress_as;
        self.header_plan = Some(plan);
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
        self.compressed = vec![false; header.entries.len()];
        if let Some(plan) = self.header_plan.take() {
            for index in plan(&header.entries)? {
                if let Some(flag) = self.compressed.get_mut(index) {
                    *flag = self.compress_as != WeightDtype::Fp32;
                }
            }
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
            self.slots[index] = self.allocate(index)?;
        }
        let target: &mut [u8] = match &mut self.slots[index] {
            Slot::Values(values) => bytemuck::cast_slice_mut(values),
            Slot::Bytes(stored) => stored,
            // in file order: `offset` is where the upload is
            Slot::Uploading(upload) => return upload.take(bytes),
            _ => unreachable!("a tensor being filled holds its values or bytes, or uploads"),
        };
        target[offset..offset + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// The GPU a tensor streams to as its bytes arrive: the stream's device when it is one,
    /// for an F32 tensor with values that the model holds in f32 (not one to compress).
    fn streams_to_gpu(&self, index: usize) -> Option<&Device> {
        let entry = &self.entries[index];
        let device = self
            .device
            .as_ref()
            .filter(|d| matches!(d, Device::Gpu(_)))?;
        (holds_f32_values(entry) && entry.end > entry.begin && !self.compressed[index])
            .then_some(device)
    }

    /// The empty storage of tensor `index`: its GPU buffer being written (see
    /// [`Self::streams_to_gpu`]), its f32 values (an F32 tensor) or its bytes.
    fn allocate(&self, index: usize) -> Result<Slot> {
        let entry = &self.entries[index];
        let what = format!("{}: tensor {}", self.file, entry.name);
        let bytes = (entry.end - entry.begin) as usize;
        if let Some(gpu) = self.streams_to_gpu(index) {
            let values = bytes / 4;
            return Ok(Slot::Uploading(Box::new(BlockUpload {
                tensor: Tensor::for_writes(gpu, &entry.shape, &entry.name)?,
                block: try_filled_vec(&what, values.min(UPLOAD_BLOCK_VALUES), 0f32)?,
                filled: 0,
                written: 0,
                non_finite: NonFinite::default(),
            })));
        }
        Ok(if holds_f32_values(entry) {
            Slot::Values(try_filled_vec(&what, bytes / 4, 0f32)?)
        } else {
            Slot::Bytes(try_filled_vec(&what, bytes, 0u8)?)
        })
    }

    /// Tensor `index` has all its bytes: an upload's last block is written, and a matrix to
    /// compress is converted (one that cannot be, e.g. with a NaN, stays as it is, for the
    /// loader to refuse by name should the model read it).
    fn complete(&mut self, index: usize) -> Result<()> {
        if let Slot::Waiting = self.slots[index] {
            self.slots[index] = self.allocate(index)?; // an empty tensor
        }
        let entry = &self.entries[index];
        match std::mem::replace(&mut self.slots[index], Slot::Taken) {
            Slot::Uploading(mut upload) => {
                upload.write_block()?;
                self.slots[index] = match upload.non_finite.any() {
                    true => Slot::NonFinite(upload.non_finite),
                    false => Slot::Uploaded(upload.tensor),
                };
            }
            slot if self.compressed[index] => {
                let device = self.device.clone().unwrap_or(Device::Cpu);
                let (name, dtype) = (&entry.name, self.compress_as);
                // a tensor that cannot be converted (not a matrix, a NaN...) stays as it is:
                // the loader gives the error, naming the tensor
                let converted = match &slot {
                    Slot::Values(values) => match entry.shape[..] {
                        [out, inp] => {
                            HalfWeight::from_f32(&device, name, dtype, [out, inp], values).ok()
                        }
                        _ => None,
                    },
                    Slot::Bytes(bytes) => TensorView::new(
                        &self.file,
                        name,
                        entry.dtype,
                        entry.shape.clone(),
                        &bytes[..],
                    )
                    .and_then(|view| view.to_half_weight(&device, name, dtype))
                    .ok(),
                    _ => None,
                };
                self.slots[index] = match converted {
                    Some(compressed) => Slot::Compressed(compressed),
                    None => slot,
                };
            }
            slot => self.slots[index] = slot,
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
        let mut slots = self.lock();
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
    /// [`StreamedWeights::take_f32`] / [`StreamedWeights::take_view`]); an error when it was
    /// streamed to the GPU and held NaN or infinite values.
    pub fn take_uploaded(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        let index = self.require(name, shape)?;
        let mut slots = self.lock();
        match &slots[index] {
            Slot::Uploaded(_) => {}
            Slot::NonFinite(found) => {
                return found.check(name, self.values_of(index)).map(|_| None)
            }
            _ => return Ok(None),
        }
        match std::mem::replace(&mut slots[index], Slot::Taken) {
            Slot::Uploaded(tensor) => Ok(Some(tensor)),
            _ => unreachable!("checked above"),
        }
    }

    /// Matrix `name` already converted to `dtype` as it completed, if it was.
    pub fn take_compressed(
        &self,
        name: &str,
        shape: &[usize],
        dtype: WeightDtype,
    ) -> Result<Option<HalfWeight>> {
        let index = self.require(name, shape)?;
        let mut slots = self.lock();
        if !matches!(&slots[index], Slot::Compressed(w) if w.dtype() == dtype) {
            return Ok(None);
        }
        match std::mem::replace(&mut slots[index], Slot::Taken) {
            Slot::Compressed(weight) => Ok(Some(weight)),
            _ => unreachable!("checked above"),
        }
    }

    /// Tensor `name` as f32 values: an F32 tensor's own vector (no copy), others converted.
    pub fn take_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let index = self.require(name, shape)?;
        match self.take(index)? {
            Slot::Values(values) => Ok(values),
            Slot::Bytes(bytes) => Ok(self.view(index, bytes)?.to_f32()?.into_owned()),
            slot => Err(self.not_in_memory(index, slot)),
        }
    }

    /// Tensor `name` as stored (an F32 tensor's values as their bytes).
    pub fn take_view(&self, name: &str, shape: &[usize]) -> Result<TensorView<'static>> {
        let index = self.require(name, shape)?;
        match self.take(index)? {
            Slot::Values(values) => self.view(index, bytemuck::cast_slice(&values).to_vec()),
            Slot::Bytes(bytes) => self.view(index, bytes),
            slot => Err(self.not_in_memory(index, slot)),
        }
    }

    /// The value count of tensor `index`.
    fn values_of(&self, index: usize) -> usize {
        self.entries[index].shape.iter().product()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn view(&self, index: usize, bytes: Vec<u8>) -> Result<TensorView<'static>> {
        let e = &self.entries[index];
        TensorView::new(&self.file, &e.name, e.dtype, e.shape.clone(), bytes)
    }

    /// Why tensor `index` cannot be read as values: it went to its final form as it streamed.
    fn not_in_memory(&self, index: usize, slot: Slot) -> Error {
        let name = &self.entries[index].name;
        let form = match slot {
            Slot::NonFinite(found) => {
                if let Err(error) = found.check(name, self.values_of(index)) {
                    return error;
                }
                "uploaded to the GPU"
            }
            Slot::Compressed(weight) => match weight.dtype() {
                WeightDtype::Int8 => "quantized to int8",
                _ => "converted to 16 bits",
            },
            _ => "uploaded to the GPU as f32",
        };
        Error::format(
            &self.file,
            format!("tensor {name} was {form} while streaming; it cannot be read back"),
        )
    }

    /// Bytes of tensors held as stored, not yet in their final form (16-bit, F64...).
    pub fn bytes_in_memory(&self) -> u64 {
        (self.lock().iter())
            .map(|slot| match slot {
                Slot::Bytes(bytes) => bytes.len() as u64,
                _ => 0,
            })
            .sum()
    }
}
