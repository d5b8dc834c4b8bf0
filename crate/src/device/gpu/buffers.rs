//! The GPU context's storage buffers: allocation from the pool (an out-of-memory error scope
//! around each new buffer), uploads, zeroed buffers and copies, and giving the pool's and the
//! uniform arena's memory back (`trim`). The rest of [`GpuContext`] is in `mod.rs`.

use super::*;

/// Uploads that may wait for a submit before their staging copies are freed (native).
const UPLOAD_BATCH_BYTES: u64 = 16 << 20;

impl GpuContext {
    /// A pooled storage buffer of `bytes` bytes (contents undefined). `name` names the tensor
    /// in the error when it is over the device's limit.
    pub fn alloc(&self, name: &str, bytes: u64) -> Result<GpuBuffer> {
        Ok(self.alloc_from_pool(name, bytes, false)?.0)
    }

    /// [`Self::alloc`], and whether no pending command uses the buffer (see `buffer_pool.rs`);
    /// `for_upload` asks the pool for its longest-free buffer, the likeliest to be settled.
    pub(super) fn alloc_from_pool(
        &self,
        name: &str,
        bytes: u64,
        for_upload: bool,
    ) -> Result<(GpuBuffer, bool)> {
        self.check()?;
        if self.inner.failures.take_trim_pending() {
            // after a refused buffer: the failed call's buffers (the invalid one among them)
            // went back to the pool; give them all back to the driver
            self.trim_pool();
        }
        let limit = self.max_binding_bytes();
        if bytes > limit {
            return Err(Error::Gpu(format!(
                "buffer {name:?} needs {bytes} bytes ({:.1} MiB), over this device's limit of \
                 {limit} bytes ({:.1} MiB) per storage binding (only tensors of two or more \
                 dimensions whose single rows fit are split into row shards)",
                bytes as f64 / 1048576.0,
                limit as f64 / 1048576.0
            )));
        }
        let bucket = bucket_bytes(bytes).min(limit.max(16));
        let stats = &self.inner.stats;
        let (buffer, settled) = match self.inner.pool.take(bucket, for_upload) {
            Some(found) => {
                stats.add(Counter::BuffersReused, 1);
                found
            }
            None => {
                stats.add(Counter::BuffersCreated, 1);
                let buffer = self.create_storage_buffer(name, bucket)?;
                self.inner.pool.created(bucket);
                (buffer, true)
            }
        };
        let buffer = GpuBuffer::new(buffer, bytes, self.inner.pool.clone());
        self.check()?;
        Ok((buffer, settled))
    }

    /// A new storage buffer of `bytes` bytes, made inside an out-of-memory error scope.
    /// Natively the scope answers at once: a refused buffer is an [`Error::OutOfMemory`]
    /// naming `name` here. In the browser the answer is a promise: a refusal is recorded when
    /// it comes and reported by the next [`Self::check`] (at the latest the call's read-back).
    pub(super) fn create_storage_buffer(&self, name: &str, bytes: u64) -> Result<wgpu::Buffer> {
        let device = &self.inner.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: bytes,
            usage: POOL_USAGE,
            mapped_at_creation: false,
        });
        let refused = scope.pop();
        #[cfg(not(target_arch = "wasm32"))]
        if pollster::block_on(refused).is_some() {
            buffer.destroy();
            return Err(Error::out_of_memory(
                format!("GPU buffer {name:?}"),
                bytes,
                "the GPU device is out of memory; smaller work goes on",
            ));
        }
        #[cfg(target_arch = "wasm32")]
        {
            let failures = self.inner.failures.clone();
            let name = name.to_string();
            wasm_bindgen_futures::spawn_local(async move {
                if refused.await.is_some() {
                    failures.set_out_of_memory(&name, bytes);
                }
            });
        }
        Ok(buffer)
    }

    /// A pooled buffer holding `data`. `write_buffer` runs before the next submission, so when
    /// the buffer is a recycled one that pending commands may still use (not settled, see
    /// `buffer_pool.rs`), the pending work is submitted first.
    pub fn upload<T: bytemuck::Pod>(&self, name: &str, data: &[T]) -> Result<GpuBuffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let buffer = self.alloc_for_writes(name, bytes.len() as u64)?;
        self.write(&buffer, 0, bytes)?;
        Ok(buffer)
    }

    /// A pooled buffer of `bytes` bytes that [`Self::write`] fills, piece by piece, later (a
    /// weight streamed straight into its buffer as its bytes arrive): as [`Self::upload`]
    /// without the values. A recycled buffer that pending commands may still use is made safe
    /// to write now (the pending work is submitted first), as `write_buffer` runs before the
    /// next submission.
    pub fn alloc_for_writes(&self, name: &str, bytes: u64) -> Result<GpuBuffer> {
        let (buffer, settled) = self.alloc_from_pool(name, bytes, true)?;
        if bytes > 0 && !settled {
            self.flush()?;
        }
        Ok(buffer)
    }

    /// Writes `bytes` into `buffer` (from [`Self::alloc_for_writes`]) at byte `offset`; both
    /// multiples of 4, as `write_buffer` requires. In pieces of at most [`UPLOAD_BATCH_BYTES`],
    /// each settled: at most one piece's staging copy waits at a time.
    pub fn write(&self, buffer: &GpuBuffer, offset: u64, bytes: &[u8]) -> Result<()> {
        if !offset.is_multiple_of(4)
            || !bytes.len().is_multiple_of(4)
            || offset + bytes.len() as u64 > buffer.bytes()
        {
            return Err(Error::invalid(format!(
                "a GPU write of {} bytes at offset {offset} into a buffer of {} bytes (both \
                 must be multiples of 4, inside the buffer)",
                bytes.len(),
                buffer.bytes()
            )));
        }
        if bytes.is_empty() {
            return Ok(());
        }
        self.inner.stats.add(Counter::Uploads, 1);
        for (i, piece) in bytes.chunks(UPLOAD_BATCH_BYTES as usize).enumerate() {
            let at = offset + i as u64 * UPLOAD_BATCH_BYTES;
            self.inner.queue.write_buffer(buffer.raw(), at, piece);
            self.settle_uploads(piece.len() as u64)?;
        }
        Ok(())
    }

    /// Once [`UPLOAD_BATCH_BYTES`] of uploads wait for a submit, submits them (an empty
    /// submit: the queue's writes go first, before any command recorded but not yet
    /// submitted, as they would have at the next submit); natively it also waits for the GPU,
    /// so that wgpu frees their staging copies. Without it, loading a model (uploads and no
    /// submit) holds a staging copy of every weight until the first forward: twice the
    /// weights' memory at peak. In the browser the submit lets the GPU process recycle its
    /// `writeBuffer` staging while a streamed model uploads (no wait: nothing blocks there;
    /// Chromium, bert-base on SwiftShader: the GPU process's peak 618 -> 577 MiB over idle).
    fn settle_uploads(&self, bytes: u64) -> Result<()> {
        let pending = self
            .inner
            .unsubmitted_upload_bytes
            .fetch_add(bytes, Ordering::Relaxed)
            + bytes;
        if pending < UPLOAD_BATCH_BYTES {
            return Ok(());
        }
        self.inner
            .unsubmitted_upload_bytes
            .store(0, Ordering::Relaxed);
        self.inner.queue.submit([]);
        #[cfg(not(target_arch = "wasm32"))]
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU after uploads: {e}")))?;
        self.check()
    }

    /// A pooled buffer of `bytes` zero bytes (cleared in the pending encoder, in order).
    pub fn zeros(&self, name: &str, bytes: u64) -> Result<GpuBuffer> {
        let buffer = self.alloc(name, bytes)?;
        self.with_encoder(|encoder| encoder.clear_buffer(buffer.raw(), 0, None));
        Ok(buffer)
    }

    /// Encode a copy of the first `bytes` bytes of `src` into `dst`.
    pub fn copy(&self, dst: &GpuBuffer, src: &GpuBuffer, bytes: u64) -> Result<()> {
        self.check_owned(&[dst, src])?;
        if bytes > 0 {
            self.with_encoder(|encoder| {
                encoder.copy_buffer_to_buffer(src.raw(), 0, dst.raw(), 0, bytes)
            });
        }
        Ok(())
    }

    pub(super) fn check_owned(&self, buffers: &[&GpuBuffer]) -> Result<()> {
        for buffer in buffers {
            if buffer.context_id() != self.inner.pool.context_id {
                return Err(Error::invalid(
                    "a GPU tensor of another device was passed to an op",
                ));
            }
        }
        Ok(())
    }

    /// Give the pool's free buffers back to the driver (the pending work is submitted first:
    /// a free buffer may be bound by a dispatch not yet submitted, and is destroyed here; a
    /// GPU failure shows in the next call's error).
    pub fn trim_pool(&self) {
        let _ = self.flush();
        // cached bind groups hold buffers: let go of them first
        self.inner
            .bind_groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.inner.pool.trim();
    }

    /// Bytes held by the pool's free buffers.
    pub fn pool_free_bytes(&self) -> u64 {
        self.inner.pool.free_bytes()
    }

    /// The GPU memory this context holds in buffers: the pooled storage buffers (in use by
    /// tensors, and free) and the uniform arena's chunks, in bytes and in buffers. Read-back
    /// staging buffers live only during a read and are not counted.
    pub fn held_buffers(&self) -> (u64, u64) {
        let (pool_bytes, pool_buffers) = self.inner.pool.held();
        let pending = self.inner.pending.lock().unwrap_or_else(|p| p.into_inner());
        let (arena_bytes, arena_buffers) = pending.uniforms.held();
        (pool_bytes + arena_bytes, pool_buffers + arena_buffers)
    }

    /// Gives back what the context keeps for reuse: submits the pending work, then drops the
    /// cached bind groups, the uniform arena's chunks and the pool's free buffers. Buffers in
    /// use by tensors stay; the next steps make what they need again.
    pub fn trim(&self) -> Result<()> {
        self.flush()?;
        self.inner
            .bind_groups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .uniforms
            .trim();
        self.inner.pool.trim();
        self.check()
    }
}
