//! What went wrong on a GPU device, and when it was lost: the failure state that
//! [`super::GpuContext::check`] reports.
//!
//! Three kinds, kept apart because a caller acts differently on each:
//! - the device was **lost** (destroyed, a driver reset, the browser's GPU process gone): sticky,
//!   every later call is [`Error::DeviceLost`]; [`DeviceLostSignal`] is a future that resolves
//!   with the reason, for the JS `rt.device.lost` promise;
//! - a buffer could not be made (**out of memory**): reported once as [`Error::OutOfMemory`]
//!   naming the buffer, then the device goes on (the pool is emptied first: see `gpu.rs`);
//! - any other wgpu error (validation, internal): sticky [`Error::Gpu`], as before.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::{Error, Result};

/// Why and how a device was lost, as WebGPU's `GPUDeviceLostInfo` says it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceLostInfo {
    /// "destroyed" (`GPUDevice.destroy()` / wgpu's `Device::destroy`) or "unknown".
    pub reason: String,
    pub message: String,
}

impl DeviceLostInfo {
    pub fn error(&self) -> Error {
        Error::DeviceLost {
            reason: self.reason.clone(),
            message: self.message.clone(),
        }
    }
}

/// A GPU buffer the device refused to make.
struct RefusedBuffer {
    name: String,
    bytes: u64,
}

#[derive(Default)]
struct State {
    lost: Option<DeviceLostInfo>,
    out_of_memory: Option<RefusedBuffer>,
    /// Set when an out-of-memory error was reported: the pool's free buffers (one of them may
    /// be the invalid one) are dropped before the next allocation.
    trim_pending: bool,
    error: Option<String>,
    /// Who awaits the loss ([`DeviceLostSignal`]).
    wakers: Vec<Waker>,
}

/// The failure state of one GPU device, shared with wgpu's callbacks.
#[derive(Clone, Default)]
pub(crate) struct Failures {
    state: Arc<Mutex<State>>,
}

impl Failures {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The device is lost (the first report wins); wakes whoever awaits the loss.
    pub fn set_lost(&self, reason: wgpu::DeviceLostReason, message: &str) {
        let mut state = self.state();
        if state.lost.is_none() {
            let reason = match reason {
                wgpu::DeviceLostReason::Destroyed => "destroyed",
                _ => "unknown",
            };
            state.lost = Some(DeviceLostInfo {
                reason: reason.to_string(),
                message: message.to_string(),
            });
        }
        for waker in state.wakers.drain(..) {
            waker.wake();
        }
    }

    /// A wgpu error nobody captured: out of memory (without a buffer name: one that an error
    /// scope caught comes through [`Self::set_out_of_memory`]) or another kind.
    pub fn set_error(&self, error: &wgpu::Error) {
        match error {
            wgpu::Error::OutOfMemory { .. } => self.set_out_of_memory("a GPU buffer or command", 0),
            wgpu::Error::Validation { description, .. } => {
                self.state()
                    .error
                    .get_or_insert_with(|| format!("validation error: {description}"));
            }
            wgpu::Error::Internal { description, .. } => {
                self.state()
                    .error
                    .get_or_insert_with(|| format!("internal error: {description}"));
            }
        }
    }

    /// The buffer `name` of `bytes` bytes could not be made: reported once by [`Self::check`].
    pub fn set_out_of_memory(&self, name: &str, bytes: u64) {
        self.state()
            .out_of_memory
            .get_or_insert_with(|| RefusedBuffer {
                name: name.to_string(),
                bytes,
            });
    }

    /// The loss, once it happened.
    pub fn lost(&self) -> Option<DeviceLostInfo> {
        self.state().lost.clone()
    }

    /// Fails with the loss (every time), else a refused buffer (once), else the first other
    /// error (every time).
    pub fn check(&self) -> Result<()> {
        let mut state = self.state();
        if let Some(lost) = &state.lost {
            return Err(lost.error());
        }
        if let Some(refused) = state.out_of_memory.take() {
            state.trim_pending = true;
            return Err(Error::out_of_memory(
                format!("GPU buffer {:?}", refused.name),
                refused.bytes,
                "the GPU device is out of memory; smaller work goes on",
            ));
        }
        match &state.error {
            Some(message) => Err(Error::Gpu(message.clone())),
            None => Ok(()),
        }
    }

    /// Whether the pool should be emptied now (once after each reported out-of-memory).
    pub fn take_trim_pending(&self) -> bool {
        std::mem::take(&mut self.state().trim_pending)
    }

    /// A future that resolves when the device is lost.
    pub fn signal(&self) -> DeviceLostSignal {
        DeviceLostSignal {
            failures: self.clone(),
        }
    }
}

/// Resolves with the [`DeviceLostInfo`] when the device is lost (never, if it is not). Holds
/// only the failure state, not the device: awaiting it keeps no GPU memory alive.
pub struct DeviceLostSignal {
    failures: Failures,
}

impl Future for DeviceLostSignal {
    type Output = DeviceLostInfo;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DeviceLostInfo> {
        let mut state = self.failures.state();
        match &state.lost {
            Some(lost) => Poll::Ready(lost.clone()),
            None => {
                state.wakers.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
