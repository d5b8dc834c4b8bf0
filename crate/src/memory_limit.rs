//! How big one allocation may be, and allocating without aborting.
//!
//! The wasm module is built with `panic = "abort"`: an allocation that the allocator cannot
//! serve (a wasm32 address space of 4 GiB, `memory.grow` refused by the browser) would trap
//! and leave the module unusable. So the allocations whose size comes from the input (tensors,
//! the CPU pool's buffers, read-backs, model files) go through here: their byte count is
//! computed without overflow and checked against [`MAX_TENSOR_BYTES`] before anything is
//! allocated, and their memory is reserved with `try_reserve_exact`; a refusal is an
//! [`Error::OutOfMemory`] naming the allocation, and smaller work goes on.

use std::cell::Cell;

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

/// The most bytes a model's weights may take while it loads, by default: on wasm32 the whole
/// 4 GiB address space (the weights as held, plus the file's bytes handed to the module);
/// natively no limit (the system refuses what it cannot give).
pub const DEFAULT_MODEL_BYTES_LIMIT: u64 = if cfg!(target_arch = "wasm32") {
    MAX_TENSOR_BYTES
} else {
    u64::MAX
};

thread_local! {
    /// [`set_model_bytes_limit`]'s limit for the loads of this thread.
    static MODEL_BYTES_LIMIT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Sets the limit [`check_model_fits`] applies to the model loads of the calling thread
/// (`None`: [`DEFAULT_MODEL_BYTES_LIMIT`]): for a caller that knows its budget, and for tests
/// that lower it on purpose (per thread, so that other tests' loads keep the default).
pub fn set_model_bytes_limit(bytes: Option<u64>) {
    MODEL_BYTES_LIMIT.with(|limit| limit.set(bytes));
}

/// The limit [`set_model_bytes_limit`] set on this thread, if one is set.
pub fn model_bytes_limit_set() -> Option<u64> {
    MODEL_BYTES_LIMIT.with(Cell::get)
}

/// Where [`model_bytes_limit`] comes from, for messages about a `job` ("load", "run").
pub(crate) fn limit_origin(job: &str) -> String {
    if model_bytes_limit_set().is_some() {
        format!("the limit set for this {job}")
    } else {
        "a wasm module's whole memory, 4 GiB".to_string()
    }
}

/// The limit [`check_model_fits`] applies on this thread.
pub fn model_bytes_limit() -> u64 {
    MODEL_BYTES_LIMIT
        .with(Cell::get)
        .unwrap_or(DEFAULT_MODEL_BYTES_LIMIT)
}

/// Refuses, before anything of it is allocated, a model load that needs `needed` bytes
/// (`breakdown` says of what) over [`model_bytes_limit`]: an [`Error::OutOfMemory`] naming the
/// need, the limit and what to try (`advice`).
pub fn check_model_fits(what: &str, needed: u64, breakdown: &str, advice: &str) -> Result<()> {
    let limit = model_bytes_limit();
    if needed <= limit {
        return Ok(());
    }
    let limit_is = limit_origin("load");
    Err(Error::out_of_memory(
        what,
        needed,
        format!(
            "it needs {needed} bytes ({:.1} MiB: {breakdown}), over {limit} bytes ({:.1} MiB, \
             {limit_is}); {advice}",
            mib(needed),
            mib(limit)
        ),
    ))
}

/// `bytes` in MiB, for messages.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// Refuses, before any work is encoded, a GPU tensor `name` of `shape` (f32) that a kernel binds
/// whole when it is over the device's limit for one storage binding
/// (`GpuContext::max_binding_bytes`: the smaller of `maxStorageBufferBindingSize` and
/// `maxBufferSize`); `advice` says what to try (fewer or shorter texts per batch). An
/// [`Error::OutOfMemory`] naming the tensor, its bytes and the limit; nothing on the CPU (the
/// wasm memory is checked per tensor by [`tensor_bytes`]).
///
/// Without this check such a tensor is split into row shards when it is made (`tensor.rs`)
/// and the first op that binds it refuses it, after the work before it was encoded.
pub fn check_gpu_buffer(
    device: &crate::Device,
    name: &str,
    shape: &[usize],
    advice: &str,
) -> Result<()> {
    let crate::Device::Gpu(ctx) = device else {
        return Ok(());
    };
    let bytes = tensor_bytes(name, shape, 4)?;
    let limit = ctx.max_binding_bytes();
    if bytes <= limit {
        return Ok(());
    }
    Err(Error::out_of_memory(
        format!("GPU tensor {name:?} of shape {shape:?}"),
        bytes,
        format!(
            "over this GPU's limit of {limit} bytes ({:.1} MiB) for one buffer that a kernel \
             binds whole (the smaller of maxStorageBufferBindingSize and maxBufferSize); {advice}",
            mib(limit)
        ),
    ))
}
