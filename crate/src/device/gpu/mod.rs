//! The GPU side of [`super::Device`]: one wgpu device and queue, the buffer pool, the pipeline
//! cache, the pending command encoder (all dispatches of a step go into one encoder and are
//! submitted together) with the uniform arena that holds their params (`uniform_arena.rs`),
//! explicit asynchronous read-back, the overhead counters (`stats.rs`), and the mapping of
//! wgpu failures to error values (`lost.rs`): a lost device to [`Error::DeviceLost`], a
//! buffer refused for want of memory to [`Error::OutOfMemory`] naming it (an error scope around
//! each buffer creation), anything else to [`Error::Gpu`].
//!
//! Limits: [`wgpu::Limits::default()`] is WebGPU's default set (256 invocations and 16 KiB of
//! workgroup storage per workgroup, 128 MiB per storage binding, 256 MiB per buffer, 8 storage
//! buffers per stage). Kernels are written for it, so what passes natively runs in every
//! browser. [`GpuOptions::limits`] raises them on request, if the adapter allows it;
//! [`GpuOptions::largest_bindings`] asks for the adapter's largest binding and buffer sizes
//! only. A tensor over the binding size is held as row shards (`tensor.rs`), so a big
//! vocabulary runs under the default 128 MiB too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::bind_group_cache::BindGroupCache;
use super::buffer_pool::{bucket_bytes, BufferPool, GpuBuffer, POOL_USAGE};
use super::kernel::Kernel;
use super::lost::{DeviceLostInfo, DeviceLostSignal, Failures};
use super::pipeline_cache::PipelineCache;
use super::readback;
use super::stats::{Counter, DeviceStats, KernelProfile, KernelTime, StatsCounters};
use super::uniform_arena::{UniformArena, SLOT_BYTES};
use crate::{Error, Result};

mod buffers;

/// How to open the GPU.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Limits to request. `None`: WebGPU's defaults. Larger values are granted only if the
    /// adapter supports them (else opening fails with an error naming the limit).
    pub limits: Option<wgpu::Limits>,
    /// Also ask for the adapter's largest storage binding and buffer sizes when it offers more
    /// than the limits above (WebGPU's default: 128 MiB per binding, 256 MiB per buffer), so a
    /// big tensor needs fewer row shards (`tensor.rs`). Never required: an adapter's values
    /// are at least the defaults. The CLI sets it; kernels are unaffected. Native only: in
    /// wasm it is ignored (the npm package opens WebGPU's defaults and splits big tensors into
    /// row shards; reading the adapter's limits would add 2.7 KB to the module).
    pub largest_bindings: bool,
    /// For tests: treat a storage binding as at most this many bytes (a multiple of 4, >= 16),
    /// below what the device allows, so tiny models are split into row shards.
    pub max_binding_bytes: Option<u64>,
    /// Multiply fp16 weights in f16 arithmetic, accumulated in f32 (`shaders/matmul_f16.wgsl`),
    /// where the device has `shader-f16`; elsewhere (and by default) the f32 path runs, whose
    /// result is bit-identical to widening the weights to f32 first. See
    /// [`GpuInfo::f16_arithmetic`] for the path that runs.
    pub f16_arithmetic: bool,
    /// For tests: open the device as if the adapter had no `shader-f16` (it is not requested).
    pub hide_shader_f16: bool,
}

impl GpuOptions {
    /// WebGPU's default limits, and the adapter's largest binding and buffer sizes.
    pub fn largest_bindings() -> GpuOptions {
        GpuOptions {
            largest_bindings: true,
            ..GpuOptions::default()
        }
    }
}

/// What the adapter is, for logs, the benchmark and the selection policy.
#[derive(Clone, Debug)]
pub struct GpuInfo {
    /// Adapter name, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
    pub name: String,
    /// "vulkan", "metal", "dx12", "webgpu", ...
    pub backend: String,
    /// A software rasterizer (lavapipe, SwiftShader, WARP): `isFallbackAdapter` / type Cpu.
    pub is_software: bool,
    /// Optional features found on the adapter (never required by a kernel). `shader-f16` is
    /// also requested when offered (unless [`GpuOptions::hide_shader_f16`]).
    pub has_shader_f16: bool,
    pub has_subgroups: bool,
    /// fp16 weights are multiplied in f16 arithmetic (`shaders/matmul_f16.wgsl`): asked for
    /// ([`GpuOptions::f16_arithmetic`]) and the device was opened with `shader-f16`.
    pub f16_arithmetic: bool,
}

/// A handle to one open GPU; clones share it.
#[derive(Clone)]
pub struct GpuContext {
    inner: Arc<GpuInner>,
}

struct GpuInner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: GpuInfo,
    limits: wgpu::Limits,
    /// Largest buffer a kernel binds: the device's limits, or `GpuOptions::max_binding_bytes`.
    max_binding_bytes: u64,
    pool: Arc<BufferPool>,
    pipelines: PipelineCache,
    /// The work not yet submitted: this step's encoder and its dispatches' params.
    pending: Mutex<Pending>,
    /// A lost device, a refused buffer, the first other uncaptured wgpu error (`lost.rs`).
    failures: Failures,
    /// Bound where a kernel's optional input is absent (e.g. no bias), 16 bytes.
    placeholder: GpuBuffer,
    /// Dispatches, submits, creations, read-backs and their host time (see `stats.rs`).
    stats: StatsCounters,
    /// Bind groups by layout and bound buffers (see `bind_group_cache.rs`).
    bind_groups: Mutex<BindGroupCache>,
    /// GPU time per kernel, when asked for (native only; see `stats.rs`).
    kernel_profile: Mutex<KernelProfile>,
    /// Bytes written by uploads since they were last submitted (native: see
    /// `buffers.rs`'s `settle_uploads`).
    unsubmitted_upload_bytes: AtomicU64,
}

/// What the next submit carries.
#[derive(Default)]
struct Pending {
    /// The compute pass that consecutive dispatches share (one pass, not one per dispatch;
    /// wgpu still orders the dispatches with barriers). Ended before a copy, a clear or the
    /// submit, which the encoder records outside passes. Declared first: dropped first.
    pass: Option<wgpu::ComputePass<'static>>,
    /// The encoder that collects this step's dispatches; `None` after a submit.
    encoder: Option<wgpu::CommandEncoder>,
    /// The params of its dispatches, written to the GPU just before the submit.
    uniforms: UniformArena,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GpuContext({} on {})",
            self.inner.info.name, self.inner.info.backend
        )
    }
}

static NEXT_CONTEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) async fn request_adapter() -> Result<wgpu::Adapter> {
    // Natively WGPU_BACKEND (e.g. "vulkan") narrows the backends; in wasm only WebGPU is built.
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        })
        .await
        .map_err(|e| Error::Gpu(format!("no GPU adapter: {e}")))
}

/// `limits` with the adapter's largest storage binding and buffer sizes when `largest` (see
/// [`GpuOptions::largest_bindings`]).
#[cfg(not(target_arch = "wasm32"))]
fn with_largest_bindings(
    mut limits: wgpu::Limits,
    adapter: &wgpu::Adapter,
    largest: bool,
) -> wgpu::Limits {
    if largest {
        let offered = adapter.limits();
        limits.max_storage_buffer_binding_size = limits
            .max_storage_buffer_binding_size
            .max(offered.max_storage_buffer_binding_size);
        limits.max_buffer_size = limits.max_buffer_size.max(offered.max_buffer_size);
    }
    limits
}

/// In wasm `largest_bindings` is ignored (see [`GpuOptions::largest_bindings`]).
#[cfg(target_arch = "wasm32")]
fn with_largest_bindings(limits: wgpu::Limits, _: &wgpu::Adapter, _: bool) -> wgpu::Limits {
    limits
}

impl GpuContext {
    /// Open the default adapter's device (see [`GpuOptions`]).
    pub async fn new(options: &GpuOptions) -> Result<GpuContext> {
        let adapter = request_adapter().await?;
        GpuContext::from_adapter(adapter, options).await
    }

    pub(crate) async fn from_adapter(
        adapter: wgpu::Adapter,
        options: &GpuOptions,
    ) -> Result<GpuContext> {
        let adapter_info = adapter.get_info();
        let features = adapter.features();
        // `shader-f16` is requested whenever the adapter offers it (never required); only
        // `matmul_f16.wgsl` uses it, and only with `GpuOptions::f16_arithmetic`.
        let shader_f16 = features.contains(wgpu::Features::SHADER_F16) && !options.hide_shader_f16;
        let required_features = if shader_f16 {
            wgpu::Features::SHADER_F16
        } else {
            wgpu::Features::empty()
        };
        let limits = with_largest_bindings(
            options.limits.clone().unwrap_or_default(),
            &adapter,
            options.largest_bindings,
        );
        let device_binding_bytes = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        let max_binding_bytes = match options.max_binding_bytes {
            None => device_binding_bytes,
            Some(cap) if cap >= 16 && cap % 4 == 0 => cap.min(device_binding_bytes),
            Some(cap) => {
                return Err(Error::invalid(format!(
                    "GpuOptions::max_binding_bytes must be a multiple of 4 and at least 16, \
                     found {cap}"
                )))
            }
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("webnlu"),
                required_features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Gpu(format!("cannot open {}: {e}", adapter_info.name)))?;

        let failures = Failures::default();
        let on_error = failures.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            on_error.set_error(&error)
        }));
        let on_lost = failures.clone();
        // In the browser: the GPUDevice's `lost` promise (also after `GPUDevice.destroy()`).
        device.set_device_lost_callback(move |reason, message| on_lost.set_lost(reason, &message));

        let info = GpuInfo {
            name: adapter_info.name.clone(),
            backend: adapter_info.backend.to_str().to_string(),
            is_software: adapter_info.device_type == wgpu::DeviceType::Cpu,
            has_shader_f16: shader_f16,
            has_subgroups: features.contains(wgpu::Features::SUBGROUP),
            f16_arithmetic: shader_f16 && options.f16_arithmetic,
        };
        let pool = BufferPool::new(NEXT_CONTEXT_ID.fetch_add(1, Ordering::Relaxed));
        pool.created(16);
        let placeholder = GpuBuffer::new(
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("placeholder"),
                size: 16,
                usage: POOL_USAGE,
                mapped_at_creation: false,
            }),
            16,
            pool.clone(),
        );
        Ok(GpuContext {
            inner: Arc::new(GpuInner {
                device,
                queue,
                info,
                limits,
                max_binding_bytes,
                pool,
                pipelines: PipelineCache::default(),
                pending: Mutex::new(Pending::default()),
                failures,
                placeholder,
                stats: StatsCounters::default(),
                bind_groups: Mutex::new(BindGroupCache::default()),
                kernel_profile: Mutex::new(KernelProfile::default()),
                unsubmitted_upload_bytes: AtomicU64::new(0),
            }),
        })
    }

    pub fn info(&self) -> &GpuInfo {
        &self.inner.info
    }

    /// The limits the device was opened with (WebGPU defaults unless raised).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// The raw wgpu device, for code that needs something this module does not offer.
    pub fn wgpu_device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// Fail with what went wrong so far: [`Error::DeviceLost`] once the device is lost (every
    /// call), [`Error::OutOfMemory`] for a buffer the device refused (once), else the first
    /// other GPU error (every call). See `lost.rs`.
    pub fn check(&self) -> Result<()> {
        let result = self.inner.failures.check();
        // Natively a destroyed device's new objects are invalid (validation errors) before
        // wgpu calls the lost callback, on its next poll: poll now, so that a loss is
        // reported as one. Only on the error path; in the browser `lost` resolves by itself.
        #[cfg(not(target_arch = "wasm32"))]
        if matches!(result, Err(Error::Gpu(_))) {
            let _ = self.inner.device.poll(wgpu::PollType::Poll);
            if let Some(lost) = self.lost() {
                return Err(lost.error());
            }
        }
        result
    }

    /// Destroy the device (frees its memory at once; in the browser `GPUDevice.destroy()`).
    /// Every later call returns [`Error::DeviceLost`] with reason "destroyed", as after a real
    /// loss; open a new device to go on.
    pub fn destroy(&self) {
        self.inner
            .failures
            .set_lost(wgpu::DeviceLostReason::Destroyed, "destroyed by the caller");
        self.inner.device.destroy();
    }

    /// How the device was lost, once it was (`None` while it works).
    pub fn lost(&self) -> Option<DeviceLostInfo> {
        self.inner.failures.lost()
    }

    /// A future that resolves when the device is lost (see [`DeviceLostSignal`]).
    pub fn lost_signal(&self) -> DeviceLostSignal {
        self.inner.failures.signal()
    }

    /// A 16-byte buffer to bind where a kernel's optional input is absent.
    pub fn placeholder(&self) -> &GpuBuffer {
        &self.inner.placeholder
    }

    /// Largest buffer a kernel may bind: the storage binding limit (and the buffer limit), or
    /// the lower `GpuOptions::max_binding_bytes`. Larger tensors are held as row shards.
    pub fn max_binding_bytes(&self) -> u64 {
        self.inner.max_binding_bytes
    }

    /// `record` gets the pending encoder (made when there is none), the open pass ended.
    fn with_encoder<R>(&self, record: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.pass = None;
        record(self.pending_encoder(&mut pending))
    }

    /// `record` gets the open compute pass (begun when there is none) and the uniform arena,
    /// under one lock, so a dispatch's params and its commands go to the same submit.
    fn with_pass<R>(
        &self,
        record: impl FnOnce(&mut wgpu::ComputePass<'static>, &mut UniformArena) -> R,
    ) -> R {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.pass.is_none() {
            let pass = self
                .pending_encoder(&mut pending)
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("dispatches"),
                    timestamp_writes: None,
                })
                .forget_lifetime();
            pending.pass = Some(pass);
        }
        let Pending { pass, uniforms, .. } = &mut *pending;
        record(pass.as_mut().expect("begun above"), uniforms)
    }

    fn pending_encoder<'a>(&self, pending: &'a mut Pending) -> &'a mut wgpu::CommandEncoder {
        pending.encoder.get_or_insert_with(|| {
            self.inner
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("step"),
                })
        })
    }

    /// Workgroup counts for `n` threads in workgroups of `workgroup_size` threads, split over
    /// x and y when more than the per-dimension limit (65535) are needed. A kernel recovers its
    /// linear index as `gid.x + gid.y * num_workgroups.x * WORKGROUP_SIZE` (see `ops` docs).
    pub fn linear_groups(&self, n: usize, workgroup_size: u32) -> [u32; 3] {
        let groups = n.div_ceil(workgroup_size as usize);
        let max_x = self.inner.limits.max_compute_workgroups_per_dimension as usize;
        if groups <= max_x {
            [groups as u32, 1, 1]
        } else {
            [max_x as u32, groups.div_ceil(max_x) as u32, 1]
        }
    }

    /// Encode one dispatch of `kernel`: `inputs` bound read-only at bindings `0..`, then
    /// `outputs` read-write, then `params` as the uniform. Nothing runs until [`Self::flush`]
    /// (or a read-back). A dispatch with a zero workgroup count (an empty tensor) is skipped.
    pub fn dispatch<P: bytemuck::Pod>(
        &self,
        kernel: &Kernel,
        inputs: &[&GpuBuffer],
        outputs: &[&GpuBuffer],
        params: &P,
        workgroups: [u32; 3],
    ) -> Result<()> {
        let param_bytes = bytemuck::bytes_of(params);
        self.dispatch_with_param_bytes(kernel, inputs, outputs, param_bytes, workgroups)
    }

    /// [`Self::dispatch`] with the uniform as bytes: the one copy of the encoding code for
    /// every params type (the generic `dispatch` only converts).
    fn dispatch_with_param_bytes(
        &self,
        kernel: &Kernel,
        inputs: &[&GpuBuffer],
        outputs: &[&GpuBuffer],
        param_bytes: &[u8],
        workgroups: [u32; 3],
    ) -> Result<()> {
        self.check()?;
        self.check_owned(inputs)?;
        self.check_owned(outputs)?;
        if workgroups.contains(&0) {
            return Ok(());
        }
        let max = self.inner.limits.max_compute_workgroups_per_dimension;
        if workgroups.iter().any(|&g| g > max) {
            return Err(Error::Gpu(format!(
                "{}: {workgroups:?} workgroups, over the limit of {max} per dimension",
                kernel.entry
            )));
        }
        if param_bytes.len() as u64 > SLOT_BYTES {
            return Err(Error::invalid(format!(
                "{}: params of {} bytes, over the {SLOT_BYTES} of a uniform slot",
                kernel.entry,
                param_bytes.len()
            )));
        }
        let (device, stats) = (&self.inner.device, &self.inner.stats);
        stats.timed(Counter::EncodeNs, || {
            let cached =
                self.inner
                    .pipelines
                    .get(device, kernel, inputs.len(), outputs.len(), stats);
            self.with_pass(|pass, uniforms| {
                let slot = uniforms.push(device, param_bytes, || {
                    stats.add(Counter::UniformBuffersCreated, 1)
                });
                let storage: Vec<&wgpu::Buffer> = inputs
                    .iter()
                    .chain(outputs.iter())
                    .map(|b| b.raw())
                    .collect();
                let create = || {
                    let mut entries: Vec<wgpu::BindGroupEntry> = storage
                        .iter()
                        .enumerate()
                        .map(|(i, buffer)| wgpu::BindGroupEntry {
                            binding: i as u32,
                            resource: buffer.as_entire_binding(),
                        })
                        .collect();
                    entries.push(wgpu::BindGroupEntry {
                        binding: storage.len() as u32,
                        resource: slot.binding(),
                    });
                    stats.add(Counter::BindGroupsCreated, 1);
                    device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(kernel.entry),
                        layout: &cached.layout,
                        entries: &entries,
                    })
                };
                let bind_group = self
                    .inner
                    .bind_groups
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_create(&cached.layout, &storage, &slot.chunk, create);
                pass.set_pipeline(&cached.pipeline);
                pass.set_bind_group(0, &bind_group, &[slot.offset]);
                pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
            });
        });
        stats.add(Counter::Dispatches, 1);
        #[cfg(not(target_arch = "wasm32"))]
        if self.kernel_profile().is_on() {
            let started = std::time::Instant::now();
            self.synchronize()?;
            let ns = started.elapsed().as_nanos() as u64;
            self.kernel_profile().add(kernel.entry, ns);
        }
        self.check()
    }

    fn kernel_profile(&self) -> std::sync::MutexGuard<'_, KernelProfile> {
        self.inner
            .kernel_profile
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Native only: turn the per-kernel profile on (every dispatch then runs alone and is
    /// timed; see `stats.rs`) or off. Turning it on first waits for the work already encoded,
    /// so none of it is charged to a kernel.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn set_kernel_profile(&self, on: bool) -> Result<()> {
        self.synchronize()?;
        self.kernel_profile().set(on);
        Ok(())
    }

    /// The per-kernel times since the profile was turned on or last taken, the most first.
    pub fn take_kernel_profile(&self) -> Vec<KernelTime> {
        self.kernel_profile().take()
    }

    /// Submit the pending encoder (if any).
    pub fn flush(&self) -> Result<()> {
        let mut pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.pass = None;
        if let Some(encoder) = pending.encoder.take() {
            let stats = &self.inner.stats;
            stats.timed(Counter::SubmitNs, || {
                // the params first: queue writes land before the next submitted commands
                pending.uniforms.write(&self.inner.queue);
                self.inner.queue.submit([encoder.finish()]);
            });
            stats.add(Counter::Submits, 1);
            self.inner.pool.next_epoch();
        }
        drop(pending);
        self.check()
    }

    /// Native only: submit and block until the GPU is idle.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn synchronize(&self) -> Result<()> {
        self.flush()?;
        self.inner
            .stats
            .timed(Counter::WaitNs, || {
                self.inner.device.poll(wgpu::PollType::wait_indefinitely())
            })
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        self.check()
    }

    /// Read `bytes` bytes of `buffer` back (submits pending work first). Awaiting never
    /// blocks the browser's main thread; natively it blocks in `device.poll`.
    pub async fn read<T: bytemuck::Pod>(&self, buffer: &GpuBuffer, bytes: u64) -> Result<Vec<T>> {
        self.check_owned(&[buffer])?;
        if bytes == 0 {
            self.check()?;
            return Ok(Vec::new());
        }
        let staging = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("read-back"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.with_encoder(|encoder| {
            encoder.copy_buffer_to_buffer(buffer.raw(), 0, &staging, 0, bytes)
        });
        self.flush()?;
        self.inner.stats.add(Counter::Readbacks, 1);
        let (sender, receiver) = readback::channel();
        staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |status| sender.send(status));
        #[cfg(not(target_arch = "wasm32"))]
        self.inner
            .stats
            .timed(Counter::WaitNs, || {
                self.inner.device.poll(wgpu::PollType::wait_indefinitely())
            })
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        let status = receiver.await;
        self.check()?;
        // The staging buffer is ours alone: its mapping fails only when the device is gone
        // (in the browser `mapAsync` rejects at once on `GPUDevice.destroy()`, maybe before the
        // `lost` promise resolves).
        status.map_err(|e| {
            self.lost()
                .map(|lost| lost.error())
                .unwrap_or(Error::DeviceLost {
                    reason: "unknown".into(),
                    message: format!("reading {bytes} bytes back from the GPU failed: {e}"),
                })
        })?;
        let data = {
            let view = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("mapping the read-back buffer: {e}")))?;
            let count = view.len() / std::mem::size_of::<T>();
            let mut data: Vec<T> =
                crate::memory_limit::try_filled_vec("a GPU read-back", count, T::zeroed())?;
            bytemuck::cast_slice_mut::<T, u8>(&mut data).copy_from_slice(&view[..]);
            data
        };
        staging.unmap();
        Ok(data)
    }

    /// The overhead counters so far (see [`DeviceStats`]).
    pub fn stats(&self) -> DeviceStats {
        self.inner.stats.snapshot()
    }
}
