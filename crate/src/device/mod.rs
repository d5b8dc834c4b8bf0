//! Where tensors live and kernels run: [`Device::Cpu`] (plain Rust, SIMD where it pays) or
//! [`Device::Gpu`] (wgpu: Vulkan/Metal/DX12 natively, WebGPU in the browser).
//!
//! Selection policy ([`DeviceChoice::Auto`]): take the GPU unless the adapter is a software
//! fallback (`isFallbackAdapter` in the browser, device type `Cpu` natively, e.g. Mesa lavapipe
//! or SwiftShader); there the CPU kernels were 50-250x faster when this rule was set (measured
//! on a 2-core machine with lavapipe natively and SwiftShader in headless Chromium). An
//! explicit choice always wins, also on a fallback adapter (that is how the tests run the WGSL
//! kernels on lavapipe).
//!
//! The npm package does not use this rule for `device: 'auto'`: on a hardware adapter it times
//! the same small workload on both devices and takes the faster (`web/lib/device-choice.js`,
//! with the workload in `wasm/calibration.rs`); this rule stays for the CLI and native callers.

mod bind_group_cache;
mod buffer_pool;
mod gpu;
mod kernel;
mod lost;
mod memory;
mod pipeline_cache;
mod readback;
mod stats;
mod uniform_arena;

pub use buffer_pool::GpuBuffer;
pub use gpu::{GpuContext, GpuInfo, GpuOptions};
pub use kernel::{Kernel, Shader};
pub use lost::{DeviceLostInfo, DeviceLostSignal};
pub use memory::MemoryUsage;
pub use stats::{DeviceStats, KernelTime};

use crate::{Error, Result};

/// Which device the caller asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// GPU if it is a real one, else CPU (see the module doc).
    Auto,
    /// Always the CPU.
    Cpu,
    /// Always the GPU, also a software one; an error when there is no adapter at all.
    Gpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "gpu" => Ok(DeviceChoice::Gpu),
            other => Err(Error::invalid(format!(
                "device must be auto, cpu or gpu, found {other:?}"
            ))),
        }
    }
}

/// A compute device. Cloning a `Gpu` device clones a handle to the same wgpu device.
#[derive(Clone, Debug)]
pub enum Device {
    Cpu,
    Gpu(GpuContext),
}

impl Device {
    /// Open a device according to `choice` (async: in the browser the adapter request is a
    /// promise). `options` applies only when a GPU is opened.
    pub async fn new(choice: DeviceChoice, options: &GpuOptions) -> Result<Device> {
        match choice {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Gpu => Ok(Device::Gpu(GpuContext::new(options).await?)),
            DeviceChoice::Auto => {
                let adapter = match gpu::request_adapter().await {
                    Ok(adapter) => adapter,
                    // No adapter at all: the CPU is the only choice.
                    Err(_) => return Ok(Device::Cpu),
                };
                if adapter.get_info().device_type == wgpu::DeviceType::Cpu {
                    return Ok(Device::Cpu);
                }
                Ok(Device::Gpu(
                    GpuContext::from_adapter(adapter, options).await?,
                ))
            }
        }
    }

    /// Native only: [`Device::new`] blocking on the adapter/device futures.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(choice: DeviceChoice, options: &GpuOptions) -> Result<Device> {
        pollster::block_on(Device::new(choice, options))
    }

    /// Native only: `Device::new_blocking(DeviceChoice::Auto, &GpuOptions::default())`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn auto() -> Result<Device> {
        Device::new_blocking(DeviceChoice::Auto, &GpuOptions::default())
    }

    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
    }

    /// How the GPU device was lost, once it was; `None` while it works, and always on the CPU
    /// (which cannot be lost). After a loss every GPU call is [`Error::DeviceLost`].
    pub fn lost(&self) -> Option<DeviceLostInfo> {
        match self {
            Device::Cpu => None,
            Device::Gpu(ctx) => ctx.lost(),
        }
    }

    /// "cpu" or "gpu", as the CLI and the benchmark print it.
    pub fn kind(&self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Gpu(_) => "gpu",
        }
    }

    /// Submit all GPU work encoded so far (no-op on the CPU). Reading a tensor back does this
    /// itself; call it at the end of a step when nothing is read back.
    pub fn flush(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Gpu(ctx) => ctx.flush(),
        }
    }

    /// The GPU path's overhead counters so far (dispatches, submits, buffer / uniform /
    /// bind-group / pipeline creations, uploads, read-backs and host time; see
    /// [`DeviceStats`]); all zero on the CPU. Take two and subtract with
    /// [`DeviceStats::since`] to count one step.
    pub fn stats(&self) -> DeviceStats {
        match self {
            Device::Cpu => DeviceStats::default(),
            Device::Gpu(ctx) => ctx.stats(),
        }
    }

    /// Native only: the per-kernel GPU profile on or off (GPU only; see [`KernelTime`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set_kernel_profile(&self, on: bool) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Gpu(ctx) => ctx.set_kernel_profile(on),
        }
    }

    /// The per-kernel GPU times since the profile was turned on or last taken, the most
    /// first; empty on the CPU or with the profile off.
    pub fn take_kernel_profile(&self) -> Vec<KernelTime> {
        match self {
            Device::Cpu => Vec::new(),
            Device::Gpu(ctx) => ctx.take_kernel_profile(),
        }
    }

    /// Native only: submit and wait until the GPU has finished all of it (benchmarks).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn synchronize(&self) -> Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Gpu(ctx) => ctx.synchronize(),
        }
    }
}
