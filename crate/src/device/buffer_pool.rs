//! GPU buffers are expensive to create; a training step makes the same sizes again and again.
//! A [`GpuBuffer`] comes from the pool and goes back to it when dropped. Sizes are rounded up to
//! a size class (multiples of 256 bytes up to 2 KiB, then eight classes per power of two: at
//! most 12.5% over), so requests of near-equal size (texts a few tokens apart) share buffers.
//!
//! The pool does not grow without end: a free buffer that no request took for
//! [`MAX_IDLE_SUBMITS`] submits is destroyed (checked every [`EVICT_EVERY`] submits). A steady
//! training step or a run of same-shaped calls takes its buffers back every step, so they stay;
//! the sizes of texts seen long ago go (without this, every new text length added its
//! activations' buffers for good: bert-tiny held 108 MB after one call of each of 120 lengths).
//!
//! Reuse is safe without fences: all GPU work runs in submission order and a recycled buffer is
//! only written by later commands. Uploads are the exception: `queue.write_buffer` runs before
//! the next submission, i.e. before the commands still pending in the encoder. So the pool
//! records the submit count ("epoch") at which each buffer came back: a buffer given back
//! before the last submit is *settled* (no pending command uses it) and an upload may write it
//! at once; only an upload that gets an unsettled one submits the pending work first (see
//! `GpuContext::upload`). Uploads take the oldest free buffer of a size, so in a steady
//! training step they find a settled one and cost no extra submit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Usage of every pooled buffer: bound as storage, copied from (read-back), copied/cleared into.
pub(crate) const POOL_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// Submits a free buffer may wait for a request before it is destroyed.
pub(crate) const MAX_IDLE_SUBMITS: u64 = 64;
/// How often (in submits) the pool looks for idle buffers.
const EVICT_EVERY: u64 = 16;

/// Round a request to the pool's size class (at least 16 bytes: a binding can not be empty):
/// a multiple of 256 bytes, and above 2 KiB of an eighth of the power of two below it.
pub(crate) fn bucket_bytes(bytes: u64) -> u64 {
    let bytes = bytes.max(16);
    let power_below = 1u64 << (63 - bytes.leading_zeros());
    let step = (power_below / 8).max(256);
    bytes.div_ceil(step) * step
}

/// A free buffer and the epoch (submits so far) at which it came back.
struct FreeBuffer {
    buffer: wgpu::Buffer,
    released: u64,
}

/// Free buffers by bucket size, shared by the context and every buffer it handed out.
pub(crate) struct BufferPool {
    /// Identifies the owning `GpuContext`, so a buffer from another device is caught.
    pub(crate) context_id: u64,
    /// Free buffers by bucket, oldest first.
    free: Mutex<HashMap<u64, Vec<FreeBuffer>>>,
    /// Submits so far (`next_epoch` after each).
    epoch: AtomicU64,
    /// Bytes and count of the buffers this pool made and has not dropped (in use or free).
    held_bytes: AtomicU64,
    held_buffers: AtomicU64,
}

impl BufferPool {
    pub(crate) fn new(context_id: u64) -> Arc<BufferPool> {
        Arc::new(BufferPool {
            context_id,
            free: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            held_bytes: AtomicU64::new(0),
            held_buffers: AtomicU64::new(0),
        })
    }

    /// A free buffer of exactly `bucket` bytes, if any, and whether it is settled (came back
    /// before the last submit). `oldest`: the longest-free one (for uploads, which want a
    /// settled one), else the most recent.
    pub(crate) fn take(&self, bucket: u64, oldest: bool) -> Option<(wgpu::Buffer, bool)> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let list = free.get_mut(&bucket).filter(|list| !list.is_empty())?;
        let entry = if oldest { list.remove(0) } else { list.pop()? };
        let settled = entry.released < self.epoch.load(Ordering::Relaxed);
        Some((entry.buffer, settled))
    }

    /// Called after every submit: what was given back before it is settled now; every
    /// [`EVICT_EVERY`] submits the buffers idle for [`MAX_IDLE_SUBMITS`] are destroyed (no
    /// pending command uses them: the encoder was just submitted).
    pub(crate) fn next_epoch(&self) {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed) + 1;
        if epoch % EVICT_EVERY == 0 && epoch > MAX_IDLE_SUBMITS {
            let oldest_kept = epoch - MAX_IDLE_SUBMITS;
            let idle: Vec<FreeBuffer> = {
                let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
                let idle = free
                    .values_mut()
                    .flat_map(|list| {
                        // oldest first: the idle ones are a prefix
                        let n = list.iter().take_while(|f| f.released < oldest_kept).count();
                        list.drain(..n).collect::<Vec<_>>()
                    })
                    .collect();
                free.retain(|_, list| !list.is_empty());
                idle
            };
            self.destroy(idle);
        }
    }

    /// Destroys buffers taken out of the free lists and stops counting them.
    fn destroy(&self, dropped: Vec<FreeBuffer>) {
        let bytes: u64 = dropped.iter().map(|f| f.buffer.size()).sum();
        for free in &dropped {
            // Now rather than when the last handle goes (in the browser: at garbage
            // collection); work already submitted that uses it still completes.
            free.buffer.destroy();
        }
        self.held_bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.held_buffers
            .fetch_sub(dropped.len() as u64, Ordering::Relaxed);
    }

    fn give_back(&self, buffer: wgpu::Buffer) {
        let released = self.epoch.load(Ordering::Relaxed);
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.entry(buffer.size())
            .or_default()
            .push(FreeBuffer { buffer, released });
    }

    /// Counts a buffer of `size` bytes just created for this pool (it is held until
    /// [`Self::trim`] drops it).
    pub(crate) fn created(&self, size: u64) {
        self.held_bytes.fetch_add(size, Ordering::Relaxed);
        self.held_buffers.fetch_add(1, Ordering::Relaxed);
    }

    /// Destroy every free buffer (memory goes back to the driver).
    pub(crate) fn trim(&self) {
        let dropped: Vec<FreeBuffer> = {
            let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
            free.drain().flat_map(|(_, list)| list).collect()
        };
        self.destroy(dropped);
    }

    /// Bytes and count of the buffers made by this pool and not dropped: those in use by
    /// tensors and the free ones.
    pub(crate) fn held(&self) -> (u64, u64) {
        (
            self.held_bytes.load(Ordering::Relaxed),
            self.held_buffers.load(Ordering::Relaxed),
        )
    }

    /// Bytes held by free buffers.
    pub(crate) fn free_bytes(&self) -> u64 {
        let free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        free.iter()
            .map(|(size, list)| size * list.len() as u64)
            .sum()
    }
}

/// A storage buffer of at least `bytes` bytes on one GPU; back to its pool on drop.
pub struct GpuBuffer {
    buffer: Option<wgpu::Buffer>,
    /// Bytes the tensor uses (the wgpu buffer may be larger: bucket rounding, minimum 16).
    bytes: u64,
    pool: Arc<BufferPool>,
}

impl GpuBuffer {
    pub(crate) fn new(buffer: wgpu::Buffer, bytes: u64, pool: Arc<BufferPool>) -> GpuBuffer {
        GpuBuffer {
            buffer: Some(buffer),
            bytes,
            pool,
        }
    }

    /// The wgpu buffer, for bind groups and copies.
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer
            .as_ref()
            .expect("a GpuBuffer holds its buffer until dropped")
    }

    /// Bytes in use (not the rounded allocation size).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn context_id(&self) -> u64 {
        self.pool.context_id
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.give_back(buffer);
        }
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({} bytes)", self.bytes)
    }
}
