//! What a device holds between calls, and how to give back what it only keeps for reuse:
//! [`Device::memory_usage`] and [`Device::trim`].
//!
//! A GPU device keeps the storage buffers that tensors gave back (the buffer pool,
//! `buffer_pool.rs`), the bind groups that bind them (`bind_group_cache.rs`) and the uniform
//! arena's chunks (`uniform_arena.rs`); the CPU path keeps dropped tensor storage for reuse
//! (`cpu_pool.rs`, one pool per process or wasm instance, shared by every CPU device). After a
//! model is dropped its weights' buffers are in the pool: `trim` gives them back.

use super::Device;
use crate::Result;

/// A snapshot of what a device holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryUsage {
    /// Bytes of GPU buffers held: the pooled storage buffers (in use by tensors, and free for
    /// reuse, at their rounded allocation size) and the uniform arena's chunks. 0 on the CPU.
    pub gpu_bytes: u64,
    /// How many such buffers. 0 on the CPU.
    pub gpu_buffers: u64,
    /// Bytes of CPU tensor storage parked for reuse (the process's CPU pool; on any device,
    /// since the GPU path uses CPU tensors too, e.g. for the tokenizer's ids).
    pub cpu_pool_bytes: u64,
}

impl Device {
    /// What this device holds now (see [`MemoryUsage`]).
    pub fn memory_usage(&self) -> MemoryUsage {
        let (gpu_bytes, gpu_buffers) = match self {
            Device::Cpu => (0, 0),
            Device::Gpu(ctx) => ctx.held_buffers(),
        };
        MemoryUsage {
            gpu_bytes,
            gpu_buffers,
            cpu_pool_bytes: crate::cpu_pool::held_bytes() as u64,
        }
    }

    /// Gives back what is kept only for reuse: on a GPU the free pooled buffers, the cached
    /// bind groups and the uniform chunks (pending work is submitted first); on every device
    /// the CPU pool's parked storage. Tensors alive stay. The next call is slower while it makes
    /// its buffers again.
    pub fn trim(&self) -> Result<()> {
        crate::cpu_pool::trim();
        match self {
            Device::Cpu => Ok(()),
            Device::Gpu(ctx) => ctx.trim(),
        }
    }
}
