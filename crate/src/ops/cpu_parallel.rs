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
    let compute = &compute;
    std::thread::scope(|scope| {
        let mut side_rest = side;
        for (p, part) in out.chunks_mut(rows_per_part * row_len).enumerate() {
            let side_here = (part.len() / row_len * side_len).min(side_rest.len());
            let (side_part, rest) = std::mem::take(&mut side_rest).split_at_mut(side_here);
            side_rest = rest;
            scope.spawn(move || compute(p * rows_per_part, part, side_part));
        }
    });
}
