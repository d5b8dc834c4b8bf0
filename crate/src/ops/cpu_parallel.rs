//! The CPU ops' threads. [`run_in_parallel`] runs jobs on a pool of `cpu_threads()` threads
//! kept between calls (rayon's; a thread made per op and part cost tens of microseconds each,
//! hundreds of times per forward pass). Elementwise ops cut their output into one contiguous
//! part per thread and compute each part by the same per-element code, so the result does not
//! depend on the number of threads (dropout's mask is a function of the element index, not of
//! an RNG state). Natively only; in wasm `cpu_threads()` is 1 and everything runs inline.

use super::matmul::cpu_gemm::cpu_threads;

/// Runs `job(item)` for every item, in parallel on the pool (natively), and returns when all
/// are done; a panic in a job is re-raised here. In wasm, one after another.
pub fn run_in_parallel<T: Send>(items: Vec<T>, job: impl Fn(T) + Sync) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let job = &job;
        pool().scope(|scope| {
            for item in items {
                scope.spawn(move |_| job(item));
            }
        });
    }
    #[cfg(target_arch = "wasm32")]
    items.into_iter().for_each(job);
}

/// The pool for the current `cpu_threads()` (made again when that changes).
#[cfg(not(target_arch = "wasm32"))]
fn pool() -> std::sync::Arc<rayon::ThreadPool> {
    use std::sync::{Arc, Mutex};
    static POOL: Mutex<Option<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(None);
    let threads = cpu_threads();
    let mut slot = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((size, pool)) = slot.as_ref() {
        if *size == threads {
            return pool.clone();
        }
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("webnlu-cpu-{i}"))
            .build()
            .expect("the CPU thread pool could not start its threads"),
    );
    *slot = Some((threads, pool.clone()));
    pool
}

/// Below this many elements one thread does it all (a thread costs tens of microseconds).
const MIN_ELEMENTS_PER_THREAD: usize = 1 << 15;

/// Calls `compute(start, part)` for contiguous parts of `out` that together cover it, where
/// `start` is the index of `part[0]` in `out`; in parallel when `out` is large.
pub fn for_each_part<T: Send>(out: &mut [T], compute: impl Fn(usize, &mut [T]) + Sync) {
    let threads = cpu_threads()
        .min(out.len() / MIN_ELEMENTS_PER_THREAD)
        .max(1);
    if threads == 1 {
        compute(0, out);
        return;
    }
    let part_len = out.len().div_ceil(threads);
    let parts: Vec<_> = out.chunks_mut(part_len).enumerate().collect();
    run_in_parallel(parts, |(p, part)| compute(p * part_len, part));
}

/// [`for_each_part`] for row-major (rows, `row_len`) data: calls `compute(first_row, part)`
/// for parts made of whole rows that together cover `out`.
pub fn for_each_row_part<T: Send>(
    out: &mut [T],
    row_len: usize,
    compute: impl Fn(usize, &mut [T]) + Sync,
) {
    let mut no_side: Vec<()> = Vec::new();
    let side_len = 0;
    for_each_row_part_with(out, row_len, &mut no_side, side_len, |first, part, _| {
        compute(first, part)
    });
}

/// [`for_each_row_part`] with a second output of `side_len` values per row (a row's
/// statistics): `compute(first_row, rows_part, side_part)`. `side` is empty when
/// `side_len` is 0.
pub fn for_each_row_part_with<T: Send, S: Send>(
    out: &mut [T],
    row_len: usize,
    side: &mut [S],
    side_len: usize,
    compute: impl Fn(usize, &mut [T], &mut [S]) + Sync,
) {
    if row_len == 0 || out.is_empty() {
        return;
    }
    let rows = out.len() / row_len;
    let threads = cpu_threads()
        .min(out.len() / MIN_ELEMENTS_PER_THREAD)
        .clamp(1, rows.max(1));
    if threads == 1 {
        compute(0, out, side);
        return;
    }
    let rows_per_part = rows.div_ceil(threads);
    let mut parts = Vec::with_capacity(threads);
    let mut side_rest = side;
    for (p, part) in out.chunks_mut(rows_per_part * row_len).enumerate() {
        let side_here = (part.len() / row_len * side_len).min(side_rest.len());
        let (side_part, rest) = std::mem::take(&mut side_rest).split_at_mut(side_here);
        side_rest = rest;
        parts.push((p * rows_per_part, part, side_part));
    }
    run_in_parallel(parts, |(first_row, part, side_part)| {
        compute(first_row, part, side_part)
    });
}
