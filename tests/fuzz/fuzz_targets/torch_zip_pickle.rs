#![no_main]
// One fuzz target: the body is targets::torch_zip_pickle (see tests/fuzz/targets.rs), run under the
// allocation limit of alloc_guard.rs (alloc_guard::READER bytes per input byte, plus 1 MiB).
#[path = "../alloc_guard.rs"]
mod alloc_guard;
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| alloc_guard::limited(
    data,
    alloc_guard::READER,
    targets::torch_zip_pickle
));
