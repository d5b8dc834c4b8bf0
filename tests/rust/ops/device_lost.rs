//! A lost GPU device (lavapipe, destroyed on purpose): the next op, upload and read-back are
//! `Error::DeviceLost` values naming the reason, never a panic or a hang; `lost_signal` resolves;
//! a new device works.

use std::sync::mpsc;
use std::time::Duration;

use crate::op_checks::*;
use webnlu::device::{Device, DeviceLostInfo};
use webnlu::ops::elementwise::gelu_forward;
use webnlu::{Error, Tensor};

/// `ctx.lost_signal()` awaited on a thread of its own: its info, or a failure after 20 s (a
/// signal that never resolves must fail the test, not hang it).
fn wait_for_loss(gpu: &Device) -> DeviceLostInfo {
    let Device::Gpu(ctx) = gpu else {
        unreachable!()
    };
    let signal = ctx.lost_signal();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(pollster::block_on(signal));
    });
    receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("lost_signal did not resolve within 20 s of the loss")
}

fn assert_lost(result: Result<impl std::fmt::Debug, Error>, what: &str) {
    match result {
        Err(Error::DeviceLost { .. }) => {}
        other => panic!("{what}: expected Error::DeviceLost, got {other:?}"),
    }
}

#[test]
fn destroy_makes_every_later_call_a_device_lost_error_and_resolves_the_signal() {
    let gpu = gpu();
    let Device::Gpu(ctx) = &gpu else {
        unreachable!()
    };
    assert_eq!(gpu.lost(), None);
    let x = upload(&gpu, &[4], &[1.0; 4], "x");
    let mut y = Tensor::<f32>::zeros(&gpu, &[4], "y").unwrap();
    ctx.destroy();
    let info = wait_for_loss(&gpu);
    assert_eq!(info.reason, "destroyed");
    assert_eq!(gpu.lost(), Some(info));
    // every kind of call, twice: the loss is sticky
    for _ in 0..2 {
        assert_lost(gelu_forward(&mut y, &x), "an op");
        assert_lost(x.to_vec_blocking(), "a read-back");
        assert_lost(Tensor::<f32>::zeros(&gpu, &[4], "z"), "an allocation");
        assert_lost(upload_result(&gpu), "an upload");
        assert_lost(gpu.flush(), "a flush");
    }
    let message = gelu_forward(&mut y, &x).unwrap_err().to_string();
    assert!(
        message.contains("GPU device was lost (destroyed)"),
        "{message}"
    );
}

fn upload_result(gpu: &Device) -> webnlu::Result<Tensor> {
    Tensor::from_vec(gpu, &[2], vec![1.0, 2.0], "uploaded")
}

#[test]
fn a_device_destroyed_behind_the_context_is_reported_as_lost_at_the_next_call() {
    // wgpu's own destroy, as a driver reset or `GPUDevice.destroy()` from other code would do:
    // the context learns it from wgpu (device-lost callback, a failed read-back), not from
    // `GpuContext::destroy`.
    let gpu = gpu();
    let Device::Gpu(ctx) = &gpu else {
        unreachable!()
    };
    let x = upload(&gpu, &[4], &[1.0, -1.0, 0.5, 2.0], "x");
    let mut y = Tensor::<f32>::zeros(&gpu, &[4], "y").unwrap();
    gelu_forward(&mut y, &x).unwrap();
    ctx.wgpu_device().destroy();
    let read = gelu_forward(&mut y, &x).and_then(|_| y.to_vec_blocking());
    assert_lost(read, "the op and read-back after wgpu's destroy");
    let info = wait_for_loss(&gpu);
    assert_eq!(info.reason, "destroyed", "{info:?}");
    assert_lost(y.to_vec_blocking(), "a later read-back");
}

#[test]
fn a_new_device_works_after_a_loss() {
    let lost = gpu();
    let Device::Gpu(ctx) = &lost else {
        unreachable!()
    };
    ctx.destroy();
    let fresh = gpu();
    assert_eq!(fresh.lost(), None);
    let x = upload(&fresh, &[2], &[0.0, 1.0], "x");
    let mut y = Tensor::<f32>::zeros(&fresh, &[2], "y").unwrap();
    gelu_forward(&mut y, &x).unwrap();
    let values = download(&y);
    // gelu(0) = 0, gelu(1) = 0.8413 (erf form; the tanh form differs by 2e-4)
    assert!(
        values[0].abs() < 1e-6 && (values[1] - 0.8413).abs() < 1e-3,
        "{values:?}"
    );
    assert_eq!(Device::Cpu.lost(), None, "a CPU is never lost");
}
