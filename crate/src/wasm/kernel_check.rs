//! `checkKernels()`: the kernel check of [`crate::kernel_check`] in the browser, for
//! `tests/browser/kernel-check.test.mjs`. Only in the test build (cargo feature `kernel-check`),
//! not in the npm package.
//!
//! Opens the GPU through the library's own [`Device::new`] with an explicit GPU choice (so a
//! fallback adapter such as SwiftShader is taken, not swapped for the CPU), runs every case on it
//! and on the CPU with asynchronous read-back, and resolves to a JSON string:
//! `{"adapter": {name, backend, isSoftware}, "checks": [{name, shape, maxAbsDiff, tolerance, passed}]}`.

use wasm_bindgen::prelude::*;

use super::to_js_error;
use crate::device::{Device, DeviceChoice, GpuOptions};
use crate::kernel_check::check_kernels;

#[wasm_bindgen(js_name = checkKernels)]
pub async fn check_kernels_js() -> Result<String, JsError> {
    let device = Device::new(DeviceChoice::Gpu, &GpuOptions::default())
        .await
        .map_err(to_js_error)?;
    let Device::Gpu(ctx) = &device else {
        return Err(JsError::new("checkKernels: no GPU device was opened"));
    };
    let info = ctx.info();
    let checks = check_kernels(&device).await.map_err(to_js_error)?;
    let report = serde_json::json!({
        "adapter": {
            "name": info.name,
            "backend": info.backend,
            "isSoftware": info.is_software,
        },
        "checks": checks.iter().map(|c| serde_json::json!({
            "name": c.name,
            "shape": c.shape,
            "maxAbsDiff": c.max_abs_diff,
            "tolerance": c.tolerance,
            "passed": c.passed,
        })).collect::<Vec<_>>(),
    });
    Ok(report.to_string())
}
