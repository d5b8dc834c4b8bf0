//! What the GPU path spends besides the kernels themselves: counters of the host-side work per
//! dispatch and per synchronisation, always on (relaxed atomic adds, one clock read per timed
//! call), read with [`crate::Device::stats`] and compared with [`DeviceStats::since`].
//!
//! Each counter is one thing that costs host time (and on a real GPU, driver time) whatever the
//! size of the kernel: recording a dispatch, submitting a command buffer, creating a buffer or a
//! bind group, compiling a pipeline, waiting for a read-back. `webnlu bench model --device gpu
//! --json` prints them per forward and per training step (`gpu_stats`).
//!
//! The times are host wall-clock nanoseconds inside the GPU context: `encode_ns` recording
//! dispatches (pipeline lookup, uniform, bind group, compute pass), `submit_ns` finishing and
//! submitting command buffers (with the uniform upload before each), `wait_ns` blocked until the
//! GPU is done (read-back and `synchronize`). They are measured natively only (the browser's
//! clock is not `std::time`); in wasm they stay 0 and only the counts are kept.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the counters (totals since the device was opened, or a difference).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceStats {
    /// Compute dispatches recorded (empty ones, skipped, do not count).
    pub dispatches: u64,
    /// Command buffers submitted to the queue.
    pub submits: u64,
    /// Storage buffers created because the pool had none of the size (pool misses).
    pub buffers_created: u64,
    /// Storage buffers taken from the pool (pool hits).
    pub buffers_reused: u64,
    /// Uniform (params) buffers created.
    pub uniform_buffers_created: u64,
    /// Bind groups created (misses of the bind-group cache).
    pub bind_groups_created: u64,
    /// Compute pipelines compiled (first use of a kernel).
    pub pipelines_created: u64,
    /// Host-to-GPU writes of tensor data (`queue.write_buffer` of an upload).
    pub uploads: u64,
    /// Read-backs awaited (a staging buffer, `map_async` and a wait each).
    pub readbacks: u64,
    /// Host time recording dispatches, nanoseconds (native only).
    pub encode_ns: u64,
    /// Host time finishing and submitting command buffers, nanoseconds (native only).
    pub submit_ns: u64,
    /// Host time blocked on the GPU (read-back, synchronize), nanoseconds (native only).
    pub wait_ns: u64,
}

impl DeviceStats {
    /// What happened between `earlier` and `self` (both from the same device).
    pub fn since(&self, earlier: &DeviceStats) -> DeviceStats {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        DeviceStats {
            dispatches: d(self.dispatches, earlier.dispatches),
            submits: d(self.submits, earlier.submits),
            buffers_created: d(self.buffers_created, earlier.buffers_created),
            buffers_reused: d(self.buffers_reused, earlier.buffers_reused),
            uniform_buffers_created: d(
                self.uniform_buffers_created,
                earlier.uniform_buffers_created,
            ),
            bind_groups_created: d(self.bind_groups_created, earlier.bind_groups_created),
            pipelines_created: d(self.pipelines_created, earlier.pipelines_created),
            uploads: d(self.uploads, earlier.uploads),
            readbacks: d(self.readbacks, earlier.readbacks),
            encode_ns: d(self.encode_ns, earlier.encode_ns),
            submit_ns: d(self.submit_ns, earlier.submit_ns),
            wait_ns: d(self.wait_ns, earlier.wait_ns),
        }
    }
}

/// Which counter an event adds to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    Dispatches,
    Submits,
    BuffersCreated,
    BuffersReused,
    UniformBuffersCreated,
    BindGroupsCreated,
    PipelinesCreated,
    Uploads,
    Readbacks,
    EncodeNs,
    SubmitNs,
    WaitNs,
}

const COUNTERS: usize = 12;

/// The live counters of one GPU context.
#[derive(Default)]
pub(crate) struct StatsCounters {
    values: [AtomicU64; COUNTERS],
}

impl StatsCounters {
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        self.values[counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Runs `work` and adds its host wall time (natively) to `counter`.
    pub(crate) fn timed<R>(&self, counter: Counter, work: impl FnOnce() -> R) -> R {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let started = std::time::Instant::now();
            let result = work();
            self.add(counter, started.elapsed().as_nanos() as u64);
            result
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = counter;
            work()
        }
    }

    pub(crate) fn snapshot(&self) -> DeviceStats {
        let v = |c: Counter| self.values[c as usize].load(Ordering::Relaxed);
        DeviceStats {
            dispatches: v(Counter::Dispatches),
            submits: v(Counter::Submits),
            buffers_created: v(Counter::BuffersCreated),
            buffers_reused: v(Counter::BuffersReused),
            uniform_buffers_created: v(Counter::UniformBuffersCreated),
            bind_groups_created: v(Counter::BindGroupsCreated),
            pipelines_created: v(Counter::PipelinesCreated),
            uploads: v(Counter::Uploads),
            readbacks: v(Counter::Readbacks),
            encode_ns: v(Counter::EncodeNs),
            submit_ns: v(Counter::SubmitNs),
            wait_ns: v(Counter::WaitNs),
        }
    }
}

/// GPU time of one kernel (one WGSL entry point) over a profiled stretch of work.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct KernelTime {
    /// The WGSL entry point, e.g. "matmul_forward".
    pub kernel: &'static str,
    pub dispatches: u64,
    /// Host wall time from submitting the dispatch alone to the GPU being idle, summed.
    pub ms: f64,
}

/// The per-kernel profile, native only and off unless asked for
/// ([`crate::Device::set_kernel_profile`]): while it is on, every dispatch is submitted alone
/// and waited for, and the wait is charged to its kernel. That serialises the GPU and adds a
/// submit and a wait per dispatch, so a profiled run is slower than a real one; what it gives is
/// the share of each kernel, to know which one to make faster.
#[derive(Default)]
pub(crate) struct KernelProfile {
    /// None: off.
    kernels: Option<std::collections::HashMap<&'static str, (u64, u64)>>, // (dispatches, ns)
}

// Switched on and fed only by native code (the browser has no blocking wait per dispatch).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
impl KernelProfile {
    pub(crate) fn set(&mut self, on: bool) {
        self.kernels = on.then(Default::default);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.kernels.is_some()
    }

    pub(crate) fn add(&mut self, kernel: &'static str, ns: u64) {
        if let Some(kernels) = &mut self.kernels {
            let entry = kernels.entry(kernel).or_default();
            entry.0 += 1;
            entry.1 += ns;
        }
    }

    /// The kernels so far, the most time first; the profile starts over.
    pub(crate) fn take(&mut self) -> Vec<KernelTime> {
        let mut times: Vec<KernelTime> = self
            .kernels
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
            .into_iter()
            .map(|(kernel, (dispatches, ns))| KernelTime {
                kernel,
                dispatches,
                ms: ns as f64 / 1e6,
            })
            .collect();
        crate::sort::sort_by(&mut times, |a, b| {
            b.ms.total_cmp(&a.ms).then(a.kernel.cmp(b.kernel))
        });
        times
    }
}
