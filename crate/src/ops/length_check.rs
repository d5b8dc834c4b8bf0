//! Slice-length checks for the CPU ops: a wrong buffer size becomes a `webnlu::Error::Shape`
//! that names the op and the argument, never an index panic deep inside a loop.

use crate::{Error, Result};

/// Fails unless `found == expected`. `op` names the op, `argument` the slice parameter.
pub(crate) fn expect_len(op: &str, argument: &str, found: usize, expected: usize) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::shape(
            format!("{op}: {argument}"),
            [expected],
            [found],
        ))
    }
}

/// `a * b` (and further factors) as a length, failing instead of overflowing.
pub(crate) fn product(op: &str, factors: &[usize]) -> Result<usize> {
    factors.iter().try_fold(1usize, |acc, &f| {
        acc.checked_mul(f)
            .ok_or_else(|| Error::invalid(format!("{op}: sizes {factors:?} overflow")))
    })
}

/// A size as the `u32` a WGSL params block holds, failing instead of truncating.
pub(crate) fn as_u32(op: &str, x: usize) -> Result<u32> {
    u32::try_from(x).map_err(|_| {
        Error::invalid(format!(
            "{op}: size {x} exceeds u32 (too large for one GPU dispatch)"
        ))
    })
}
