//! How big one allocation may be, and allocating without aborting.
//!
//! The wasm module is built with `panic = "abort"`: an allocation that the allocator cannot
//! serve (a wasm32 address space of 4 GiB, `memory.grow` refused by the browser) would trap
//! and leave the module unusable. So the allocations whose size comes from the input (tensors,
//! the CPU pool's buffers, read-backs, model files) go through here: their byte count is
//! computed without overflow and checked against [`MAX_TENSOR_BYTES`] before anything is
//! allocated, and their memory is reserved with `try_reserve_exact`; a refusal is an
//! [`Error::OutOfMemory`] naming the allocation, and smaller work goes on.

use crate::{Error, Result};

/// The most bytes one tensor may hold, on every device and target: 4 GiB, all of a wasm32
/// module's address space (natively it keeps a runaway input, e.g. a 60,000-token text's
/// `(B, NH, T, T)` attention scores, from taking the machine's memory).
pub const MAX_TENSOR_BYTES: u64 = 4 << 30;

/// The bytes of a tensor named `name` of `shape` with `element_bytes` per element; an
/// [`Error::OutOfMemory`] when that count overflows or is over [`MAX_TENSOR_BYTES`] (checked
/// before anything is allocated).
pub fn tensor_bytes(name: &str, shape: &[usize], element_bytes: u64) -> Result<u64> {
    let bytes = shape
        .iter()
        .try_fold(element_bytes, |bytes, &d| bytes.checked_mul(d as u64));
    match bytes {
        Some(bytes) if bytes <= MAX_TENSOR_BYTES => Ok(bytes),
        Some(bytes) => Err(Error::out_of_memory(
            format!("tensor {name:?} of shape {shape:?}"),
            bytes,
            format!(
                "over the limit of {MAX_TENSOR_BYTES} bytes (4 GiB, a wasm module's whole \
                 memory) for one tensor"
            ),
        )),
        None => Err(Error::out_of_memory(
            format!("tensor {name:?} of shape {shape:?}"),
            u64::MAX,
            "its size overflows 64 bits",
        )),
    }
}

/// Refuses, before any work, an attention whose `(B, NH, T, T)` scores could not be held
/// (see [`tensor_bytes`]): the call then fails before its first op, with nothing encoded on
/// the device (a 30,000-token text is refused at once, not after its embeddings).
pub fn check_attention_scores(batch: usize, heads: usize, tokens: usize) -> Result<()> {
    tensor_bytes("attention.scores", &[batch, heads, tokens, tokens], 4).map(|_| ())
}

/// `n` copies of `value`, the memory reserved fallibly: an [`Error::OutOfMemory`] naming
/// `what` when the allocator refuses (on wasm32: over 2 GiB in one piece, or the browser
/// refused to grow the memory) instead of an abort.
pub fn try_filled_vec<T: Clone>(what: &str, n: usize, value: T) -> Result<Vec<T>> {
    let mut data = Vec::new();
    reserve(&mut data, what, n)?;
    data.resize(n, value);
    Ok(data)
}

/// `data` with room for `n` more elements, reserved fallibly (see [`try_filled_vec`]).
pub fn reserve<T>(data: &mut Vec<T>, what: &str, n: usize) -> Result<()> {
    data.try_reserve_exact(n).map_err(|e| {
        let bytes = (n as u64).saturating_mul(std::mem::size_of::<T>() as u64);
        Error::out_of_memory(what, bytes, format!("the allocator refused: {e}"))
    })
}
