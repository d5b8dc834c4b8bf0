//! wasm exports for a lost GPU device and for copying files in without aborting:
//! `WasmRuntime.device_lost()` (the promise behind the package's `rt.device.lost`),
//! `WasmRuntime.destroy_device()` (what a loss does, on purpose: tests, and a page that wants
//! its GPU memory back at once) and [`bytes_from_js`].

use super::promise;
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::prelude::*;

use super::model::{to_js, WasmRuntime};
use crate::memory_limit::try_filled_vec;
use crate::Device;

#[wasm_bindgen]
impl WasmRuntime {
    /// `Promise<{reason, message}>` that resolves when this runtime's GPU device is lost
    /// (reason "destroyed" or "unknown", as WebGPU's `GPUDeviceLostInfo`); `undefined` on the
    /// CPU, which cannot be lost. The promise holds no reference to the device.
    pub fn device_lost(&self) -> Option<Promise> {
        let Device::Gpu(ctx) = &self.device else {
            return None;
        };
        let signal = ctx.lost_signal();
        Some(promise(async move { to_js(&signal.await) }))
    }

    /// Destroys this runtime's GPU device (`GPUDevice.destroy()` through wgpu): what a lost
    /// device does, on purpose. Every later GPU call rejects with a `DeviceLostError`. No-op
    /// on the CPU.
    pub fn destroy_device(&self) {
        if let Device::Gpu(ctx) = &self.device {
            ctx.destroy();
        }
    }
}

/// A copy of `bytes` in wasm memory, reserved fallibly: an out-of-memory error naming the file
/// `name` instead of an abort when the module's memory cannot hold it.
pub(super) fn bytes_from_js(name: &str, bytes: &Uint8Array) -> crate::Result<Vec<u8>> {
    let mut copy = try_filled_vec(&format!("file {name:?}"), bytes.length() as usize, 0u8)?;
    bytes.copy_to(&mut copy);
    Ok(copy)
}
