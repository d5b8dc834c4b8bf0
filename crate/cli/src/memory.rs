//! Process memory as Linux reports it (`/proc/self/status`), for the benchmarks and the
//! training report: the resident set now (`VmRSS`) and its peak (`VmHWM`), and a reset of the
//! peak (`echo 5 > /proc/self/clear_refs`) so that one phase can be measured alone. Elsewhere
//! every function returns `None`.

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Bytes resident now.
pub fn resident_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// The most bytes resident since the start or the last [`reset_peak`].
pub fn peak_resident_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Starts a new peak at the current resident size (Linux >= 4.0). False when not possible.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
