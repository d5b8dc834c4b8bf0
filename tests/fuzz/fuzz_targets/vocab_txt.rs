#![no_main]
// One fuzz target: the body is targets::vocab_txt (see tests/fuzz/targets.rs).
#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::vocab_txt(data));
