//! Reuse of CPU tensor storage. A forward pass or training step makes and drops the same
//! large tensors (activations, gradients) every time; allocating each afresh costs, natively, a
//! `mmap` of zero pages, a page fault on every first touch and a `munmap` that interrupts the
//! other cores to flush their TLBs (in a profile of an all-layers MiniLM training step on 2
//! threads: a quarter of the time in the kernel). Dropped CPU tensors of at least
//! [`MIN_POOLED_ELEMENTS`] elements park their buffer here, by size class (`class_of`: eight
//! capacities per power of two; a pooled tensor's buffer is allocated with its class's capacity,
//! at most 12.5% over its length), and the next tensor of that class takes it, zero-filled as a
//! new one. Shapes repeat from step to step; texts a few tokens apart share classes.
//!
//! At most [`POOL_LIMIT_BYTES`] are kept; past that a dropped buffer is freed. A parked buffer
//! that no take of the last [`MAX_IDLE_TAKES`] takes reused is freed too (looked for every
//! [`EVICT_EVERY`] takes): a steady step takes its buffers back every time, while the sizes of
//! texts seen long ago would otherwise stay parked for good (bert-tiny, by exact length and
//! without eviction: 34 MB after one call of each of 120 text lengths). Values are 4-byte `Pod` types (`f32`, `u32`), kept as `u32` bit
//! patterns.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::memory_limit::try_filled_vec;
use crate::tensor::Element;
use crate::Result;

/// Smaller buffers are cheap to allocate (the allocator reuses them without system calls).
const MIN_POOLED_ELEMENTS: usize = 1 << 14;
/// Most bytes the pool keeps.
const POOL_LIMIT_BYTES: usize = 1 << 30;

/// Pooled takes a parked buffer may wait for before it is freed.
const MAX_IDLE_TAKES: u64 = 4096;
/// How often (in pooled takes) the pool looks for idle buffers.
const EVICT_EVERY: u64 = 256;

struct Pool {
    /// size class -> (the take count when it was parked, a buffer of that capacity), oldest first
    free: HashMap<usize, Vec<(u64, Vec<u32>)>>,
    bytes: usize,
    /// Pooled takes so far (requests of at least MIN_POOLED_ELEMENTS).
    takes: u64,
}

impl Pool {
    /// Frees the buffers parked before take `oldest_kept`.
    fn evict_before(&mut self, oldest_kept: u64) {
        let mut freed = 0;
        for (&n, list) in self.free.iter_mut() {
            let idle = list
                .iter()
                .take_while(|(parked, _)| *parked < oldest_kept)
                .count();
            list.drain(..idle);
            freed += idle * n * 4; // n: the class, each buffer's capacity
        }
        self.free.retain(|_, list| !list.is_empty());
        self.bytes -= freed;
    }
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> R {
    let mut guard = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let pool = guard.get_or_insert_with(|| Pool {
        free: HashMap::new(),
        bytes: 0,
        takes: 0,
    });
    f(pool)
}

/// A buffer of `n` zeros, reused when one of its size class was given back; a new one is
/// reserved fallibly (an [`crate::Error::OutOfMemory`] when the allocator refuses).
pub(crate) fn take_zeroed<T: Element>(n: usize) -> Result<Vec<T>> {
    take(n, true)
}

/// A buffer of `n` elements for an output that will be overwritten whole: a reused one keeps
/// its old values (no pass to zero it), a new one is zeros.
pub(crate) fn take_for_overwrite<T: Element>(n: usize) -> Result<Vec<T>> {
    take(n, false)
}

/// The pool's size class of `n` elements, the capacity of the buffers it serves `n` from:
/// eight classes per power of two (at most 12.5% over), so lengths a few tokens apart share.
fn class_of(n: usize) -> usize {
    let power_below = 1usize << (usize::BITS - 1 - n.leading_zeros());
    let step = (power_below / 8).max(1);
    n.div_ceil(step) * step
}

fn take<T: Element>(n: usize, zeroed: bool) -> Result<Vec<T>> {
    if n < MIN_POOLED_ELEMENTS {
        return Ok(vec![T::default(); n]);
    }
    let class = class_of(n);
    let reused = with_pool(|pool| {
        pool.takes += 1;
        if pool.takes % EVICT_EVERY == 0 && pool.takes > MAX_IDLE_TAKES {
            pool.evict_before(pool.takes - MAX_IDLE_TAKES);
        }
        let (_, buffer) = pool.free.get_mut(&class)?.pop()?;
        pool.bytes -= class * 4;
        Some(buffer)
    });
    match reused {
        Some(mut buffer) => {
            buffer.resize(n, 0); // within its capacity: no reallocation
            if zeroed {
                crate::ops::cpu_parallel::for_each_part(&mut buffer, |_, part| part.fill(0));
            }
            Ok(bytemuck::allocation::cast_vec(buffer))
        }
        None => {
            // the whole class allocated (zeroed), `n` of it in use
            let mut buffer = try_filled_vec("a CPU tensor's buffer", class, T::default())?;
            buffer.truncate(n);
            Ok(buffer)
        }
    }
}

/// Parks `buffer` for a later take of its size class (or frees it).
pub(crate) fn give_back<T: Element>(buffer: Vec<T>) {
    let capacity = buffer.capacity();
    if buffer.len() < MIN_POOLED_ELEMENTS || class_of(capacity) != capacity {
        return;
    }
    let buffer: Vec<u32> = bytemuck::allocation::cast_vec(buffer);
    with_pool(|pool| {
        if pool.bytes + capacity * 4 <= POOL_LIMIT_BYTES {
            pool.bytes += capacity * 4;
            let parked = pool.takes;
            pool.free
                .entry(capacity)
                .or_default()
                .push((parked, buffer));
        }
    });
}

/// Bytes the pool keeps for reuse.
pub(crate) fn held_bytes() -> usize {
    with_pool(|pool| pool.bytes)
}

/// Frees every parked buffer (back to the allocator; a wasm module's memory does not shrink,
/// but the allocator reuses the space).
pub(crate) fn trim() {
    with_pool(|pool| {
        pool.free.clear();
        pool.bytes = 0;
    });
}
