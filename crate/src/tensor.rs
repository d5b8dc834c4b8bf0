//! A tensor: a name, a shape (row-major, last dimension contiguous) and its storage, either a
//! `Vec` on the CPU or a pooled buffer on one GPU. There are no hidden read-backs: GPU data
//! reaches the CPU only through [`Tensor::to_vec`] (async) or `to_vec_blocking` (native).
//!
//! Element types: `f32` for values, `u32` for ids (token ids, labels).

use crate::cpu_pool;
use crate::device::{Device, GpuBuffer, GpuContext};
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
        let place = match self.storage {
            Storage::Cpu(_) => "cpu",
            Storage::Gpu(..) => "gpu",
        };
        write!(f, "Tensor({:?}, {:?}, {place})", self.name, self.shape)
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

fn element_count(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl<T: Element> Tensor<T> {
    /// A tensor holding `data` (length = product of `shape`) on `device`.
    pub fn from_vec(device: &Device, shape: &[usize], data: Vec<T>, name: &str) -> Result<Self> {
        if data.len() != element_count(shape) {
            return Err(Error::shape(
                format!("{name}: data for shape {shape:?}"),
                element_count(shape),
                data.len(),
            ));
        }
        let storage = match device {
            Device::Cpu => Storage::Cpu(data),
            Device::Gpu(ctx) => Storage::Gpu(ctx.upload(name, &data)?, ctx.clone()),
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
        let n = element_count(shape);
        let storage = match device {
            Device::Cpu => Storage::Cpu(cpu_pool::take_zeroed(n)),
            Device::Gpu(ctx) => Storage::Gpu(ctx.zeros(name, (n * 4) as u64)?, ctx.clone()),
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
        let n = element_count(shape);
        let storage = match device {
            Device::Cpu => Storage::Cpu(cpu_pool::take_for_overwrite(n)),
            Device::Gpu(ctx) => Storage::Gpu(ctx.alloc(name, (n * 4) as u64)?, ctx.clone()),
        };
        Ok(Tensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            storage,
            version: next_version(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
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
        match &self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(_, ctx) => Device::Gpu(ctx.clone()),
        }
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self.storage, Storage::Gpu(..))
    }

    /// The GPU context if the tensor is on a GPU.
    pub fn gpu_context(&self) -> Option<&GpuContext> {
        match &self.storage {
            Storage::Cpu(_) => None,
            Storage::Gpu(_, ctx) => Some(ctx),
        }
    }

    /// Same elements, another shape with the same element count.
    pub fn reshape(&mut self, shape: &[usize]) -> Result<()> {
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
            Storage::Gpu(..) => Err(self.wrong_device("CPU")),
        }
    }
    pub fn cpu_mut(&mut self) -> Result<&mut [T]> {
        self.version = next_version();
        match &mut self.storage {
            Storage::Cpu(data) => Ok(data),
            Storage::Gpu(..) => Err(Error::invalid(format!(
                "{} is on the GPU, the op runs on the CPU",
                self.name
            ))),
        }
    }

    /// The GPU buffer; an error if the tensor is on the CPU.
    pub fn gpu(&self) -> Result<&GpuBuffer> {
        match &self.storage {
            Storage::Gpu(buffer, _) => Ok(buffer),
            Storage::Cpu(_) => Err(self.wrong_device("GPU")),
        }
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
            Storage::Cpu(data) => Ok(data.clone()),
            Storage::Gpu(buffer, ctx) => ctx.read(buffer, self.bytes()).await,
        }
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
