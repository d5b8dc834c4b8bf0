//! Elementwise CPU ops over the matmul's threads: the output is cut into one contiguous part
//! per thread and each part is computed by the same per-element code, so the result does not
//! depend on the number of threads (dropout's mask is a function of the element index, not of
//! an RNG state). Natively only; in wasm `cpu_threads()` is 1 and everything runs inline.

use super::matmul::cpu_gemm::cpu_threads;

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
    let compute = &compute;
    std::thread::scope(|scope| {
        for (p, part) in out.chunks_mut(part_len).enumerate() {
            scope.spawn(move || compute(p * part_len, part));
        }
    });
}
