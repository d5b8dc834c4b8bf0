//! The params of every dispatch of one submit, in one place: each dispatch gets a 256-byte slot
//! of a shared uniform buffer (bound with a dynamic offset) instead of a uniform buffer of its
//! own. Creating a buffer per dispatch cost a driver allocation and a mapped write each
//! (hundreds per training step); here the slots are filled on the host and written with one
//! `queue.write_buffer` per 64 KiB chunk just before the submit that reads them.
//!
//! Layout: chunks of [`SLOTS_PER_CHUNK`] slots of [`SLOT_BYTES`] bytes (WebGPU's default
//! `minUniformBufferOffsetAlignment`, also the binding size, so any params struct up to 256
//! bytes fits). A step with more dispatches than one chunk holds uses further chunks, created
//! once and kept.
//!
//! Why reuse is safe: a submit's slots are written by `queue.write_buffer`, which runs before
//! that submit's command buffer and after every earlier submit (queue order), so a slot the GPU
//! still has to read for an earlier submit is never overwritten early.

use std::num::NonZeroU64;

/// Bytes per slot: the uniform offset alignment and the bound size of every params block.
pub(crate) const SLOT_BYTES: u64 = 256;
/// Slots per chunk buffer (64 KiB).
const SLOTS_PER_CHUNK: u64 = 256;
const CHUNK_BYTES: u64 = SLOT_BYTES * SLOTS_PER_CHUNK;

/// Where one dispatch's params live: bind `chunk` (size [`SLOT_BYTES`]) at dynamic `offset`.
pub(crate) struct UniformSlot {
    pub(crate) chunk: wgpu::Buffer,
    pub(crate) offset: u32,
}

impl UniformSlot {
    pub(crate) fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.chunk,
            offset: 0,
            size: NonZeroU64::new(SLOT_BYTES),
        })
    }
}

#[derive(Default)]
pub(crate) struct UniformArena {
    /// The chunk buffers (UNIFORM | COPY_DST, CHUNK_BYTES each), created on demand, kept.
    chunks: Vec<wgpu::Buffer>,
    /// This submit's slots on the host, chunk after chunk (slot i at bytes i * SLOT_BYTES).
    staged: Vec<u8>,
}

impl UniformArena {
    /// Copies `params` (at most [`SLOT_BYTES`], checked by the caller) into the next free
    /// slot; `created` is told when a new chunk buffer had to be made.
    pub(crate) fn push(
        &mut self,
        device: &wgpu::Device,
        params: &[u8],
        created: impl FnOnce(),
    ) -> UniformSlot {
        let slot = self.staged.len() as u64 / SLOT_BYTES;
        let chunk_index = (slot / SLOTS_PER_CHUNK) as usize;
        if chunk_index == self.chunks.len() {
            created();
            self.chunks
                .push(device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("uniform arena"),
                    size: CHUNK_BYTES,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }));
        }
        self.staged.extend_from_slice(params);
        self.staged.resize(((slot + 1) * SLOT_BYTES) as usize, 0);
        UniformSlot {
            chunk: self.chunks[chunk_index].clone(),
            offset: ((slot % SLOTS_PER_CHUNK) * SLOT_BYTES) as u32,
        }
    }

    /// Bytes and count of the chunk buffers kept.
    pub(crate) fn held(&self) -> (u64, u64) {
        let chunks = self.chunks.len() as u64;
        (chunks * CHUNK_BYTES, chunks)
    }

    /// Drops the chunk buffers when no slot is staged (after a submit); the next dispatch
    /// makes a new one. Bind groups that bind a chunk must be dropped too (the caller's cache).
    pub(crate) fn trim(&mut self) {
        if self.staged.is_empty() {
            self.chunks.clear();
        }
    }

    /// Writes the staged slots into their chunks (before the submit that reads them) and
    /// starts the next submit at slot 0.
    pub(crate) fn write(&mut self, queue: &wgpu::Queue) {
        for (chunk, bytes) in self
            .chunks
            .iter()
            .zip(self.staged.chunks(CHUNK_BYTES as usize))
        {
            queue.write_buffer(chunk, 0, bytes);
        }
        self.staged.clear();
    }
}
