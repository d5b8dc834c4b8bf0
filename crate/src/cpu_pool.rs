//! Reuse of CPU tensor storage. A forward pass or training step makes and drops the same
//! large tensors (activations, gradients) every time; allocating each afresh costs, natively, a
//! `mmap` of zero pages, a page fault on every first touch and a `munmap` that interrupts the
//! other cores to flush their TLBs (in a profile of an all-layers MiniLM training step on 2
//! threads: a quarter of the time in the kernel). Dropped CPU tensors of at least
//! [`MIN_POOLED_ELEMENTS`] elements park their buffer here, by exact length (shapes repeat from
//! step to step), and the next tensor of that length takes it, zero-filled as a new one.
//!
//! At most [`POOL_LIMIT_BYTES`] are kept; past that a dropped buffer is freed. Values are 4-byte
//! `Pod` types (`f32`, `u32`), kept as `u32` bit patterns.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::tensor::Element;

/// Smaller buffers are cheap to allocate (the allocator reuses them without system calls).
const MIN_POOLED_ELEMENTS: usize = 1 << 14;
/// Most bytes the pool keeps.
const POOL_LIMIT_BYTES: usize = 1 << 30;

struct Pool {
    /// length -> buffers of exactly that length
    free: HashMap<usize, Vec<Vec<u32>>>,
    bytes: usize,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> R {
    let mut guard = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let pool = guard.get_or_insert_with(|| Pool {
        free: HashMap::new(),
        bytes: 0,
    });
    f(pool)
}

/// A buffer of `n` zeros, reused when one of that length was given back.
pub(crate) fn take_zeroed<T: Element>(n: usize) -> Vec<T> {
    take(n, true)
}

/// A buffer of `n` elements for an output that will be overwritten whole: a reused one keeps
/// its old values (no pass to zero it), a new one is zeros.
pub(crate) fn take_for_overwrite<T: Element>(n: usize) -> Vec<T> {
    take(n, false)
}

fn take<T: Element>(n: usize, zeroed: bool) -> Vec<T> {
    if n >= MIN_POOLED_ELEMENTS {
        let reused = with_pool(|pool| {
            let buffer = pool.free.get_mut(&n)?.pop()?;
            pool.bytes -= n * 4;
            Some(buffer)
        });
        if let Some(mut buffer) = reused {
            if zeroed {
                crate::ops::cpu_parallel::for_each_part(&mut buffer, |_, part| part.fill(0));
            }
            return bytemuck::allocation::cast_vec(buffer);
        }
    }
    vec![T::default(); n]
}

/// Parks `buffer` for a later [`take_zeroed`] of its length (or frees it).
pub(crate) fn give_back<T: Element>(buffer: Vec<T>) {
    let n = buffer.len();
    if n < MIN_POOLED_ELEMENTS || buffer.capacity() != n {
        return;
    }
    let buffer: Vec<u32> = bytemuck::allocation::cast_vec(buffer);
    with_pool(|pool| {
        if pool.bytes + n * 4 <= POOL_LIMIT_BYTES {
            pool.bytes += n * 4;
            pool.free.entry(n).or_default().push(buffer);
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
