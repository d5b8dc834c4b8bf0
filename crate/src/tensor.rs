//! A tensor: a name, a shape (row-major, last dimension contiguous) and its storage, either a
//! `Vec` on the CPU or a pooled buffer on one GPU. There are no hidden read-backs: GPU data
//! reaches the CPU only through [`Tensor::to_vec`] (async) or `to_vec_blocking` (native).
//!
//! Element types: `f32` for values, `u32` for ids (token ids, labels).
//!
//! **Row shards.** A GPU tensor of two or more dimensions whose bytes are over the device's
//! storage binding limit (`maxStorageBufferBindingSize`, 128 MiB by default) is held as row
//! shards: consecutive blocks of its first dimension, each its own buffer that fits one
//! binding (e.g. mBERT's word embeddings, 119,547 x 768 x 4 bytes = 350 MiB, are three
//! shards under the default limit). [`Tensor::row_shards`] lists them (one entry, the tensor
//! itself, when it is not sharded, and always on the CPU), so an op written over the shards
//! runs unchanged on an ordinary tensor. The ops that read shards: the embedding gather and
//! scatter-add (`ops::embedding`), the masked-LM decoder product (`ops::row_sharded`), the
//! read-back, and the optimizer and gradient clipping (`train::adamw`). Every other op reads
//! one buffer through [`Tensor::gpu`], which refuses a sharded tensor with an error naming it.

use crate::cpu_pool;
use crate::device::{Device, GpuBuffer, GpuContext};
use crate::memory_limit::{reserve, tensor_bytes};
use crate::{Error, Result};

/// What a tensor may hold: 4-byte plain values that the GPU reads as `f32` or `u32`.
pub trait Element: bytemuck::Pod + Default + std::fmt::Debug + Send + Sync + 'static {}
impl Element for f32 {}
impl Element for u32 {}

/// Where the elements are.
pub enum Storage<T: Element> {
    Cpu(Vec<T>),
    /// The buffer and the context it belongs to.
    Gpu(GpuBuffer, GpuContext),
    /// Row shards on one GPU, in row order: each an ordinary GPU tensor of shape
    /// (rows_i, shape[1..]) that fits one storage binding (see the module doc).
    GpuShards(Vec<Tensor<T>>),
}

pub struct Tensor<T: Element = f32> {
    /// Names the tensor in errors, e.g. "bert.encoder.layer.0.attention.self.query.weight".
    name: String,
    /// Row-major dimensions; the product is the element count (0 for an empty tensor).
    shape: Vec<usize>,
    storage: Storage<T>,
    /// Identifies the CPU contents: new at creation and at every `cpu_mut()`, unique across
    /// tensors, so a cache of something computed from the values (the matmul's packed weight
    /// panels) knows when it is stale.
    version: u64,
}

/// The next content version (see `Tensor::version`).
fn next_version() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl<T: Element> std::fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.storage {
            Storage::Cpu(_) => write!(f, "Tensor({:?}, {:?}, cpu)", self.name, self.shape),
            Storage::Gpu(..) => write!(f, "Tensor({:?}, {:?}, gpu)", self.name, self.shape),
            Storage::GpuShards(shards) => write!(
                f,
                "Tensor({:?}, {:?}, gpu, {} row shards)",
                self.name,
                self.shape,
                shards.len()
            ),
        }
    }
}

/// A CPU tensor's buffer goes back to the pool for the next tensor of its size (`cpu_pool.rs`).
impl<T: Element> Drop for Tensor<T> {
    fn drop(&mut self) {
        if let Storage::Cpu(data) = &mut self.storage {
            cpu_pool::give_back(std::mem::take(data));
        }
    }
}

impl<T: Element> Tensor<T> {
    /// The CPU tensor's buffer, taken out of it (not given to the CPU pool: a weight packed for
    /// inference keeps it, `ops/matmul/packed_only.rs`); a GPU tensor is refused, naming it.
    pub fn into_cpu_vec(mut self) -> Result<Vec<T>> {
        match &mut self.storage {
            Storage::Cpu(data) => Ok(std::mem::take(data)),
            _ => Err(Error::unsupported(format!(
                "the values of {} are on the GPU, not in CPU memory",
                self.name
            ))),
        }
    }
}

/// The allocator's refusal `error` of a CPU tensor's buffer, told as the tensor's: its name,
/// shape and `bytes` (the buffer asked for may be a little larger: the pool's size class).
fn refused(name: &str, shape: &[usize], bytes: u64, error: Error) -> Error {
    match error {
        Error::OutOfMemory { detail, .. } => {
            Error::out_of_memory(format!("tensor {name:?} of shape {shape:?}"), bytes, detail)
        }
        other => other,
    }
}

/// Bytes per element: every [`Element`] is a 4-byte value.
const ELEMENT_BYTES: u64 = 4;

/// The element count of `shape`; within `usize` for a shape that passed
/// [`tensor_bytes`] (at most 4 GiB).
fn element_count(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Rows per shard when a tensor of `shape` must be split on `ctx` (over one binding, two or
/// more dimensions, one row fits); `None`: one buffer (which `GpuContext::alloc` refuses with
/// an error naming the tensor when even that cannot fit, e.g. a single row over the limit).
fn rows_per_shard(ctx: &GpuContext, shape: &[usize]) -> Option<usize> {
    let limit = ctx.max_binding_bytes() as usize;
    let bytes = element_count(shape) * 4;
    if shape.len() < 2 || bytes <= limit {
        return None;
    }
    let row_bytes = element_count(&shape[1..]) * 4;
    let rows = limit / row_bytes.max(1);
    (rows >= 1).then_some(rows)
}

/// The row ranges of the shards of a tensor of `rows` rows, `per_shard` rows each (the last
/// one shorter).
fn shard_ranges(rows: usize, per_shard: usize) -> Vec<std::ops::Range<usize>> {
    (0..rows.div_ceil(per_shard))
        .map(|i| i * per_shard..((i + 1) * per_shard).min(rows))
        .collect()
}

/// The context of a tensor's shards (out of line: `gpu_context` is inlined at every op).
#[inline(never)]
fn shards_context<T: Element>(shards: &[Tensor<T>]) -> Option<&GpuContext> {
    match &shards.first()?.storage {
        Storage::Gpu(_, ctx) => Some(ctx),
        _ => None,
    }
}

/// What a new GPU tensor holds.
enum Contents<'a, T> {
    Values(&'a [T]),
    Zeros,
    Undefined,
    /// Undefined until [`Tensor::write_at`] fills it (made safe to write at once).
    ForWrites,
}

/// The GPU storage of a new tensor: one buffer, or row shards when it is over one binding
/// (kept out of line: the constructors are called everywhere).
#[inline(never)]
fn gpu_storage<T: Element>(
    ctx: &GpuContext,
    shape: &[usize],
    name: &str,
    contents: Contents<'_, T>,
) -> Result<Storage<T>> {
    let bytes = (element_count(shape) * 4) as u64;
    let Some(per_shard) = rows_per_shard(ctx, shape) else {
        let buffer = match contents {
            Contents::Values(values) => ctx.upload(name, values)?,
            Contents::Zeros => ctx.zeros(name, bytes)?,
            Contents::Undefined => ctx.alloc(name, bytes)?,
            Contents::ForWrites => ctx.alloc_for_writes(name, bytes)?,
        };
        return Ok(Storage::Gpu(buffer, ctx.clone()));
    };
    let row = element_count(&shape[1..]);
    let mut shards = Vec::new();
    for rows in shard_ranges(shape[0], per_shard) {
        let mut shard_shape = shape.to_vec();
        shard_shape[0] = rows.len();
        let shard_name = format!("{name}[rows {}..{}]", rows.start, rows.end);
        let part = match &contents {
            Contents::Values(values) => Contents::Values(&values[rows.start * row..rows.end * row]),
            Contents::Zeros => Contents::Zeros,
            Contents::Undefined => Contents::Undefined,
            Contents::ForWrites => Contents::ForWrites,
        };
        shards.push(Tensor {
            storage: gpu_storage(ctx, &shard_shape, &shard_name, part)?,
            name: shard_name,
            shape: shard_shape,
            version: next_version(),
        });
    }
    Ok(Storage::GpuShards(shards))
}

impl<T: Element> Tensor<T> {
    /// A tensor holding `data` (length = product of `shape`) on `device`.
    pub fn from_vec(device: &Device, shape: &[usize], data: Vec<T>, name: &str) -> Result<Self> {
        tensor_bytes(name, shape, ELEMENT_BYTES)?;
        if data.len() != element_count(shape) {
            return Err(Error::shape(
                format!("{name}: data for shape {shape:?}"),
                element_count(shape),
                data.len(),
            ));
        }
        let storage = match device {
            Device::Cpu => Storage::Cpu(data),
            Device::Gpu(ctx) => gpu_storage(ctx, shape, name, Contents::Values(&data))?,
        };
        Ok(Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            storage,
            version: next_version(),
        })
    }

    /// A tensor of zeros on `device`.
    pub fn zeros(device: &Device, shape: &[usize], name: &str) -> Result<Self> {
        let bytes = tensor_bytes(name, shape, ELEMENT_BYTES)?;
        let n = element_count(shape);
        let storage = match device {
            Device::Cpu => {
                Storage::Cpu(cpu_pool::take_zeroed(n).map_err(|e| refused(name, shape, bytes, e))?)
            }
            Device::Gpu(ctx) => gpu_storage(ctx, shape, name, Contents::Zeros)?,
        };
        Ok(Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            storage,
            version: next_version(),
        })
    }

    /// A tensor on `device` with undefined contents, for outputs that an op overwrites
    /// completely (on the CPU a reused buffer keeps old values, as a pooled GPU buffer does).
    pub fn uninit(device: &Device, shape: &[usize], name: &str) -> Result<Self> {
        let bytes = tensor_bytes(name, shape, ELEMENT_BYTES)?;
        let n = element_count(shape);
        let storage = match device {
            Device::Cpu => Storage::Cpu(
                cpu_pool::take_for_overwrite(n).map_err(|e| refused(name, shape, bytes, e))?,
            ),
            Device::Gpu(ctx) => gpu_storage(ctx, shape, name, Contents::Undefined)?,
        };
        Ok(Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            storage,
            version: next_version(),
        })
    }

    /// A tensor on `device` whose elements [`Tensor::write_at`] writes, piece by piece, after
    /// (a weight streamed into its final place as its bytes arrive: `io::WeightStream`); until
    /// then its contents are undefined (zeros on the CPU).
    pub fn for_writes(device: &Device, shape: &[usize], name: &str) -> Result<Self> {
        let Device::Gpu(ctx) = device else {
            return Tensor::zeros(device, shape, name);
        };
        tensor_bytes(name, shape, ELEMENT_BYTES)?;
        let storage = gpu_storage(ctx, shape, name, Contents::ForWrites)?;
        Ok(Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            storage,
            version: next_version(),
        })
    }

    /// Writes `values` as the elements `first..first + values.len()` (flat, row-major) of the
    /// tensor, across its row shards; on a GPU the write goes into the queue (before the next
    /// submission), from a tensor made by [`Tensor::for_writes`].
    pub fn write_at(&mut self, first: usize, values: &[T]) -> Result<()> {
        let end = first + values.len();
        if end > self.numel() {
            return Err(Error::invalid(format!(
                "writing elements {first}..{end} of {} {:?}: it has {}",
                self.name,
                self.shape,
                self.numel()
            )));
        }
        let mut next = 0; // flat index of the next shard's first element
        for (_, shard) in self.row_shards_mut() {
            let start = next;
            next += shard.numel();
            let (from, to) = (first.max(start), end.min(next));
            if from >= to {
                continue;
            }
            let part = &values[from - first..to - first];
            match &mut shard.storage {
                Storage::Cpu(data) => data[from - start..to - start].copy_from_slice(part),
                Storage::Gpu(buffer, ctx) => ctx.write(
                    buffer,
                    ((from - start) as u64) * ELEMENT_BYTES,
                    bytemuck::cast_slice(part),
                )?,
                Storage::GpuShards(_) => unreachable!("a shard is one buffer"),
            }
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same tensor under another name (its GPU buffers keep their labels).
    pub fn renamed(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The row shards in row order, each with its first row: `[(0, self)]` for a tensor held in
    /// one buffer (always on the CPU), so an op written over the shards runs on any tensor.
    pub fn row_shards(&self) -> Vec<(usize, &Tensor<T>)> {
        match &self.storage {
            Storage::GpuShards(shards) => {
                let mut first = 0;
                shards
                    .iter()
                    .map(|shard| {
                        let start = first;
                        first += shard.shape[0];
                        (start, shard)
                    })
                    .collect()
            }
            _ => vec![(0, self)],
        }
    }

    /// [`Tensor::row_shards`] for writing (the contents version changes).
    pub fn row_shards_mut(&mut self) -> Vec<(usize, &mut Tensor<T>)> {
        self.version = next_version();
        if !matches!(self.storage, Storage::GpuShards(_)) {
            return vec![(0, self)];
        }
        let Storage::GpuShards(shards) = &mut self.storage else {
            unreachable!("checked above")
        };
        let mut first = 0;
        shards
            .iter_mut()
            .map(|shard| {
                let start = first;
                first += shard.shape[0];
                (start, shard)
            })
            .collect()
    }

    /// How many buffers hold the tensor: 1 unless it is split into row shards.
    pub fn shard_count(&self) -> usize {
        match &self.storage {
            Storage::GpuShards(shards) => shards.len(),
            _ => 1,
        }
    }
    /// The content version: changes whenever the CPU elements may have changed.
    pub fn version(&self) -> u64 {
        self.version
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn numel(&self) -> usize {
        element_count(&self.shape)
    }
    pub fn bytes(&self) -> u64 {
        (self.numel() * 4) as u64
    }

    pub fn device(&self) -> Device {
        match self.gpu_context() {
            None => Device::Cpu,
            Some(ctx) => Device::Gpu(ctx.clone()),
        }
    }

    pub fn is_gpu(&self) -> bool {
        !matches!(self.storage, Storage::Cpu(_))
    }

    /// The GPU context if the tensor is on a GPU.
    pub fn gpu_context(&self) -> Option<&GpuContext> {
        match &self.storage {
            Storage::Cpu(_) => None,
            Storage::Gpu(_, ctx) => Some(ctx),
            Storage::GpuShards(shards) => shards_context(shards),
        }
    }

    /// Same elements, another shape with the same element count.
    pub fn reshape(&mut self, shape: &[usize]) -> Result<()> {
        if self.shard_count() > 1 && shape != self.shape {
            return Err(Error::unsupported(format!(
                "reshape of {} {:?} to {shape:?}: it is held as {} row shards",
                self.name,
                self.shape,
                self.shard_count()
            )));
        }
        if element_count(shape) != self.numel() {
            return Err(Error::shape(
                format!("reshape of {}", self.name),
                format!("{} elements", self.numel()),
                shape,
            ));
        }
        self.shape = shape.to_vec();
        Ok(())
    }

    /// Error unless the shape is exactly `expected`; `op` names the op for the message.
    pub fn expect_shape(&self, op: &str, expected: &[usize]) -> Result<()> {
        if self.shape != expected {
            return Err(Error::shape(
                format!("{op}: {}", self.name),
                expected,
                &self.shape,
            ));
        }
        Ok(())
    }

    /// The CPU elements; an error if the tensor is on a GPU.
    pub fn cpu(&self) -> Result<&[T]> {
        match &self.storage {
            Storage::Cpu(data) => Ok(data),
            _ => Err(self.wrong_device("CPU")),
        }
    }
    pub fn cpu_mut(&mut self) -> Result<&mut [T]> {
        self.version = next_version();
        match &mut self.storage {
            Storage::Cpu(data) => Ok(data),
            _ => Err(Error::invalid(format!(
                "{} is on the GPU, the op runs on the CPU",
                self.name
            ))),
        }
    }

    /// The GPU buffer; an error if the tensor is on the CPU.
    pub fn gpu(&self) -> Result<&GpuBuffer> {
        match &self.storage {
            Storage::Gpu(buffer, _) => Ok(buffer),
            // one out-of-line call for both errors: `gpu()` is inlined at every kernel call
            _ => Err(self.not_one_gpu_buffer()),
        }
    }

    /// Why [`Tensor::gpu`] has no buffer: the tensor is on the CPU, or in row shards.
    #[cold]
    #[inline(never)]
    fn not_one_gpu_buffer(&self) -> Error {
        if !self.is_gpu() {
            return self.wrong_device("GPU");
        }
        let limit = self.gpu_context().map_or(0, |ctx| ctx.max_binding_bytes());
        Error::unsupported(format!(
            "{} {:?} needs {:.1} MiB, over this GPU's {:.1} MiB per storage binding, so it is \
             held as {} row shards, which this op cannot read (only the embedding lookup and its \
             gradient, the masked-LM decoder, the optimizer and the read-back can); for an \
             activation, use fewer or shorter texts per batch",
            self.name,
            self.shape,
            self.bytes() as f64 / 1048576.0,
            limit as f64 / 1048576.0,
            self.shard_count()
        ))
    }

    fn wrong_device(&self, op_place: &str) -> Error {
        let place = if self.is_gpu() { "GPU" } else { "CPU" };
        Error::invalid(format!(
            "{} is on the {place}, the op runs on the {op_place}",
            self.name
        ))
    }

    /// The elements, read back from the GPU if needed (async: never blocks a browser).
    pub async fn to_vec(&self) -> Result<Vec<T>> {
        match &self.storage {
            Storage::Cpu(data) => {
                let mut copy = Vec::new();
                reserve(
                    &mut copy,
                    &format!("the copy of {:?}", self.name),
                    data.len(),
                )?;
                copy.extend_from_slice(data);
                Ok(copy)
            }
            Storage::Gpu(buffer, ctx) => ctx.read(buffer, self.bytes()).await,
            Storage::GpuShards(shards) => {
                let mut all = Vec::new();
                reserve(
                    &mut all,
                    &format!("the read-back of {:?}", self.name),
                    self.numel(),
                )?;
                for shard in shards {
                    all.extend(shard.to_vec_one_buffer()?.await?);
                }
                Ok(all)
            }
        }
    }

    /// The read-back of a tensor in one buffer (a shard).
    fn to_vec_one_buffer(&self) -> Result<impl std::future::Future<Output = Result<Vec<T>>> + '_> {
        let ctx = self.gpu_context().ok_or_else(|| self.wrong_device("GPU"))?;
        Ok(ctx.read(self.gpu()?, self.bytes()))
    }

    /// Native only: [`Tensor::to_vec`], blocking.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_vec_blocking(&self) -> Result<Vec<T>> {
        pollster::block_on(self.to_vec())
    }

    /// A copy of this tensor on `device` (async because a GPU source is read back).
    pub async fn to_device(&self, device: &Device) -> Result<Tensor<T>> {
        let data = self.to_vec().await?;
        Tensor::from_vec(device, &self.shape, data, &self.name)
    }

    /// Native only: [`Tensor::to_device`], blocking.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn to_device_blocking(&self, device: &Device) -> Result<Tensor<T>> {
        pollster::block_on(self.to_device(device))
    }
}
