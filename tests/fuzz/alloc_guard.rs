//! The allocation check of the fuzz binaries, without AddressSanitizer: a global allocator that
//! aborts the process (libFuzzer then saves the input as a crash) when one allocation, made while
//! a target's body runs, is larger than the input justifies:
//!
//! ```text
//! limit = per_input_byte * input length + 1 MiB
//! ```
//!
//! `per_input_byte` is the target's own (see `fuzz_targets/*.rs`): 64 for every reader but the
//! HDF5 one (a reader may widen each byte into a few values — u8 to i64 is 8x, JSON's `[0,0,...]`
//! becomes 16-byte-per-byte values —, and a growing Vec may double that), and 8 x 1032 for HDF5
//! (deflate expands at most 1032x, then bytes become f32 values). The 1 MiB covers fixed tables.
//! Outside the body (libFuzzer's own bookkeeping is C++ and does not come here anyway) nothing is
//! checked. libFuzzer's `-malloc_limit_mb` needs a sanitizer's malloc hooks; this check works with
//! `--sanitizer none` and is tighter than its 256 MB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest allocation allowed now, in bytes; usize::MAX when no body runs.
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

const FIXED_ALLOWANCE: usize = 1 << 20;

pub struct Guard;

#[global_allocator]
static GUARD: Guard = Guard;

impl Guard {
    fn check(&self, size: usize) {
        let limit = LIMIT.load(Ordering::Relaxed);
        if size > limit {
            // The report below may allocate. No backtrace here: symbolizing this binary can take
            // longer than the 1 s hang limit; the saved input, replayed under a debugger (or
            // FUZZ_SANITIZER=address), shows where.
            LIMIT.store(usize::MAX, Ordering::Relaxed);
            eprintln!(
                "==alloc_guard== one allocation of {size} bytes, over the limit of {limit} bytes \
                 for this input (tests/fuzz/alloc_guard.rs)"
            );
            std::process::abort();
        }
    }
}

unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.check(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

/// Runs `body` on `data` with the limit set from the input's length.
pub fn limited(data: &[u8], per_input_byte: usize, body: fn(&[u8])) {
    // A panic is the crash to report: the panic hooks (libfuzzer-sys's, the default one) may
    // allocate freely, so the limit is lifted before they run.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let reporting = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            LIMIT.store(usize::MAX, Ordering::Relaxed);
            reporting(info)
        }));
    });
    let limit = data
        .len()
        .saturating_mul(per_input_byte)
        .saturating_add(FIXED_ALLOWANCE);
    LIMIT.store(limit, Ordering::Relaxed);
    body(data);
    LIMIT.store(usize::MAX, Ordering::Relaxed);
}

/// The multiplier of every target but hdf5.
#[allow(dead_code)]
pub const READER: usize = 64;
/// HDF5: deflate's largest expansion (1032x) times 8 (bytes to f32 values, and a copy).
#[allow(dead_code)]
pub const HDF5: usize = 8 * 1032;
