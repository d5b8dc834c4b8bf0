//! Allocations refused as `Error::OutOfMemory` values naming the tensor and its bytes, before
//! anything is allocated (a tensor over `MAX_TENSOR_BYTES`, 4 GiB, or a size that overflows),
//! on the CPU and the GPU; the same device then works for smaller tensors. Nothing here
//! allocates more than a few bytes.

use crate::op_checks::*;
use webnlu::device::Device;
use webnlu::memory_limit::{
    check_attention_scores, tensor_bytes, try_filled_vec, MAX_TENSOR_BYTES,
};
use webnlu::ops::elementwise::gelu_forward;
use webnlu::{Error, Tensor};

fn assert_out_of_memory<T: std::fmt::Debug>(
    result: webnlu::Result<T>,
    name: &str,
    bytes: u64,
) -> String {
    match result {
        Err(error @ Error::OutOfMemory { .. }) => {
            let Error::OutOfMemory {
                what,
                bytes: needed,
                ..
            } = &error
            else {
                unreachable!()
            };
            assert!(what.contains(name), "{error}");
            assert_eq!(*needed, bytes, "{error}");
            error.to_string()
        }
        other => panic!("expected Error::OutOfMemory for {name}, got {other:?}"),
    }
}

#[test]
fn tensors_over_4_gib_are_refused_by_name_on_both_devices_and_small_ones_still_work() {
    for device in [Device::Cpu, gpu()] {
        // (B, NH, T, T) attention scores of one 40,000-token text with 2 heads: 12.8 GB
        let shape = [1, 2, 40_000, 40_000];
        let bytes = 2 * 40_000 * 40_000 * 4;
        let message = assert_out_of_memory(
            Tensor::<f32>::uninit(&device, &shape, "attention.scores"),
            "attention.scores",
            bytes,
        );
        assert!(message.contains("12800000000 bytes"), "{message}");
        assert!(message.contains("[1, 2, 40000, 40000]"), "{message}");
        assert_out_of_memory(
            Tensor::<f32>::zeros(&device, &shape, "zeros"),
            "zeros",
            bytes,
        );
        // one element over the bound
        let over = (MAX_TENSOR_BYTES / 4 + 1) as usize;
        assert_out_of_memory(
            Tensor::<f32>::zeros(&device, &[over], "just over"),
            "just over",
            MAX_TENSOR_BYTES + 4,
        );
        // a shape whose size overflows even 64 bits
        assert_out_of_memory(
            Tensor::<f32>::zeros(&device, &[usize::MAX, 4], "overflowing"),
            "overflowing",
            u64::MAX,
        );
        // the device goes on
        let x = upload(&device, &[2], &[0.0, 1.0], "x");
        let mut y = Tensor::<f32>::uninit(&device, &[2], "y").unwrap();
        gelu_forward(&mut y, &x).unwrap();
        assert!((download(&y)[1] - 0.8413).abs() < 1e-3);
    }
}

#[test]
fn the_byte_count_is_checked_without_overflow() {
    assert_eq!(tensor_bytes("t", &[3, 5], 4).unwrap(), 60);
    assert_eq!(tensor_bytes("t", &[], 4).unwrap(), 4, "a scalar");
    assert_eq!(tensor_bytes("t", &[0, usize::MAX], 4).unwrap(), 0, "empty");
    assert_eq!(
        tensor_bytes("t", &[1 << 30], 4).unwrap(),
        MAX_TENSOR_BYTES,
        "exactly the bound is allowed"
    );
    assert!(tensor_bytes("t", &[1 << 40, 1 << 40], 4).is_err());
}

#[test]
fn a_reservation_the_allocator_refuses_is_an_error_not_an_abort() {
    // more than isize::MAX bytes: refused by the reservation itself (capacity overflow), as an
    // allocation over 2 GiB is on wasm32, without touching memory
    let error = try_filled_vec("a test buffer", usize::MAX / 2, 0f32).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::OutOfMemory { .. }) && message.contains("a test buffer"),
        "{message}"
    );
    assert_eq!(try_filled_vec("small", 3, 1u32).unwrap(), vec![1, 1, 1]);
}

#[test]
fn an_attention_too_big_is_refused_before_any_op() {
    // BERT-base: 12 heads, 512 tokens, a batch of 32: 402 MB of scores, fine
    check_attention_scores(32, 12, 512).unwrap();
    // one 30,002-token window with 2 heads: 7.2 GB, refused by name
    let error = check_attention_scores(1, 2, 30_002).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::OutOfMemory { bytes, .. } if bytes == 2 * 30_002 * 30_002 * 4),
        "{message}"
    );
    assert!(
        message.contains("\"attention.scores\" of shape [1, 2, 30002, 30002]"),
        "{message}"
    );
}
