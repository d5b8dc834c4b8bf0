//! wasm exports of [`crate::Device::memory_usage`] and [`crate::Device::trim`] on a
//! `WasmRuntime`, with the size of this wasm instance's memory (which only grows: the
//! allocator reuses what is freed, the module never gives pages back).

use wasm_bindgen::prelude::*;

use super::model::{to_js, WasmRuntime};
use super::to_js_error;

/// [`crate::device::MemoryUsage`] with JavaScript's names, and the wasm memory.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JsMemoryUsage {
    gpu_bytes: u64,
    gpu_buffers: u64,
    cpu_pool_bytes: u64,
    wasm_bytes: u64,
}

/// Bytes of this instance's linear memory (64 KiB pages).
fn wasm_memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) as u64 * 65536
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

#[wasm_bindgen]
impl WasmRuntime {
    /// `{gpuBytes, gpuBuffers, cpuPoolBytes, wasmBytes}`: the GPU buffers this runtime's device
    /// holds (live and pooled; 0 on the CPU), the CPU pool's parked bytes and the wasm memory.
    pub fn memory_usage(&self) -> Result<JsValue, JsValue> {
        let usage = self.device.memory_usage();
        to_js(&JsMemoryUsage {
            gpu_bytes: usage.gpu_bytes,
            gpu_buffers: usage.gpu_buffers,
            cpu_pool_bytes: usage.cpu_pool_bytes,
            wasm_bytes: wasm_memory_bytes(),
        })
    }

    /// Sets the most bytes a model load, or a training run's estimate, may need in this wasm
    /// instance (`crate::memory_limit::set_model_bytes_limit`; `None`: the default, the whole
    /// 4 GiB of a wasm module for loads and CPU runs, none for GPU runs, whose memory WebGPU
    /// does not report). For callers that know their budget, and for tests that lower it.
    pub fn set_memory_limit(&self, bytes: Option<f64>) -> Result<(), JsError> {
        let bytes = match bytes {
            None => None,
            Some(b) if b.is_finite() && b >= 0.0 && b.fract() == 0.0 && b <= u64::MAX as f64 => {
                Some(b as u64)
            }
            Some(b) => {
                return Err(JsError::new(&format!(
                    "memoryLimit must be a whole number of bytes >= 0, or null, found {b}"
                )))
            }
        };
        crate::memory_limit::set_model_bytes_limit(bytes);
        Ok(())
    }

    /// Drops what the device keeps for reuse (see [`crate::Device::trim`]).
    pub fn trim(&self) -> Result<(), JsError> {
        self.device.trim().map_err(to_js_error)
    }
}
