//! 16-bit weights (ops/matmul/half_float.rs, half_weight.rs): the conversions against their
//! definitions (every fp16 bit pattern, ties rounding to even, overflow), and the product
//! y = x W^T + b with W held in fp16 / bf16 against widening W to f32 first and running the f32
//! matmul, bit for bit on the CPU (same values, packing, microkernel and order) and on the GPU
//! (the same kernel), odd shapes included.

use crate::op_checks::*;
use webnlu::io::tensor_view::f16_to_f32;
use webnlu::ops::matmul::half_float::*;
use webnlu::ops::matmul::*;
use webnlu::{Device, Tensor};

#[test]
fn fp16_bits_widen_exactly_as_the_reference_conversion_for_every_pattern() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let mut simd = vec![0.0f32; all.len()];
    let mut portable = vec![0.0f32; all.len()];
    widen(WeightDtype::Fp16, &all, &mut simd); // F16C where the CPU has it
    widen_portable_for_tests(&all, &mut portable);
    for (i, &bits) in all.iter().enumerate() {
        let want = f16_to_f32(bits);
        for (what, got) in [("F16C/widen", simd[i]), ("portable", portable[i])] {
            assert!(
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                "{what}: {bits:#06x} -> {got} want {want}"
            );
        }
    }
    let mut bf = vec![0.0f32; all.len()];
    widen(WeightDtype::Bf16, &all, &mut bf);
    for (&bits, got) in all.iter().zip(&bf) {
        assert_eq!(got.to_bits(), (bits as u32) << 16);
    }
}

#[test]
fn f32_to_16_bits_round_trips_and_rounds_ties_to_even() {
    for dtype in [WeightDtype::Fp16, WeightDtype::Bf16] {
        for bits in 0..=u16::MAX {
            let x = dtype.to_f32(bits);
            if x.is_nan() {
                assert!(dtype.to_f32(dtype.from_f32(x)).is_nan());
                continue;
            }
            assert_eq!(dtype.from_f32(x), bits, "{dtype:?} {bits:#06x} ({x})");
            // The midpoint to the next value up (same sign, finite) rounds to the even one.
            let next = bits.wrapping_add(1);
            let y = dtype.to_f32(next);
            if !y.is_finite() || (bits & 0x8000) != (next & 0x8000) {
                continue;
            }
            let middle = ((x as f64 + y as f64) / 2.0) as f32; // exact in f32
            let even = if bits & 1 == 0 { bits } else { next };
            assert_eq!(dtype.from_f32(middle), even, "{dtype:?} tie {middle}");
            // Just above the midpoint rounds up, just below rounds down.
            let above = f32::from_bits(middle.to_bits() + 1);
            let below = f32::from_bits(middle.to_bits() - 1);
            assert_eq!(
                dtype.from_f32(above.copysign(middle)),
                next,
                "{dtype:?} {above}"
            );
            assert_eq!(
                dtype.from_f32(below.copysign(middle)),
                bits,
                "{dtype:?} {below}"
            );
        }
    }
    // fp16's largest finite value is 65504; from the midpoint to the next step (65520) up it is
    // infinite.
    assert_eq!(f16_bits_to_f32(f32_to_f16_bits(65519.0)), 65504.0);
    assert!(f16_bits_to_f32(f32_to_f16_bits(65520.0)).is_infinite());
    assert_eq!(f16_bits_to_f32(f32_to_f16_bits(1e-9)), 0.0);
    assert_eq!(WeightDtype::parse("bf16").unwrap(), WeightDtype::Bf16);
    let error = WeightDtype::parse("int4").unwrap_err().to_string();
    assert!(error.contains("int4") && error.contains("fp16"), "{error}");
}

/// y = x W^T + b with W (n, k) in `dtype` (its bits from random values), against the f32
/// matmul of the widened W on the same device. x is (2, m, k) when `three_d` (a batch of
/// sequences, as the model runs it).
fn check_product(device: &Device, dtype: WeightDtype, m: usize, n: usize, k: usize, three_d: bool) {
    let seed = (m * 1_000_000 + n * 1000 + k) as u64;
    let bits: Vec<u16> = random(n * k, seed)
        .iter()
        .map(|&v| dtype.from_f32(v))
        .collect();
    let widened: Vec<f32> = bits.iter().map(|&b| dtype.to_f32(b)).collect();
    let rows = if three_d { 2 * m } else { m };
    let x_shape: Vec<usize> = if three_d { vec![2, m, k] } else { vec![m, k] };
    let y_shape: Vec<usize> = if three_d { vec![2, m, n] } else { vec![m, n] };
    let x = Tensor::from_vec(device, &x_shape, random(rows * k, seed + 1), "x").unwrap();
    let bias = Tensor::from_vec(device, &[n], random(n, seed + 2), "bias").unwrap();
    let half = HalfWeight::from_bits(device, "w16", dtype, [n, k], &bits).unwrap();
    assert_eq!(half.numel(), n * k);
    let w = Tensor::from_vec(device, &[n, k], widened, "w").unwrap();
    let mut got = Tensor::zeros(device, &y_shape, "y16").unwrap();
    matmul_forward_half(&mut got, &x, &half, Some(&bias)).unwrap();
    let mut want = Tensor::zeros(device, &y_shape, "y").unwrap();
    let options = MatmulOptions {
        trans_b: true,
        ..MatmulOptions::default()
    };
    matmul_forward(&mut want, &x, &w, Some(&bias), options).unwrap();
    let (got, want) = (
        got.to_vec_blocking().unwrap(),
        want.to_vec_blocking().unwrap(),
    );
    let what = format!("{} {dtype:?} m={m} n={n} k={k} 3d={three_d}", device.kind());
    if k == 0 {
        // no inputs: every row of y is the bias
        let bias = bias.to_vec_blocking().unwrap();
        assert!(
            want.chunks(n).all(|row| row == bias.as_slice()),
            "{what}: the f32 product's rows are not the bias"
        );
    }
    // Bit for bit on both devices: the widened values are exact and the rest is the f32
    // product (CPU: the same GEMM and microkernel; GPU: the same kernel, `b_format` set).
    let identical = got
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(
        identical,
        "{what}: not bit-identical to the widened f32 product"
    );
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 5, 7),
    (4, 33, 2),
    (17, 31, 33),
    (64, 65, 63),
    (130, 70, 257), // over the threading threshold (4e6 flops): split over the cores
    (5, 40, 300),   // depth over one KC block (256)
    (3, 5, 0),      // no inputs: y is the bias on every row
];

#[test]
fn half_weight_product_equals_the_widened_f32_product_on_the_cpu() {
    for dtype in [WeightDtype::Fp16, WeightDtype::Bf16] {
        for &(m, n, k) in SHAPES {
            check_product(&Device::Cpu, dtype, m, n, k, false);
        }
        check_product(&Device::Cpu, dtype, 7, 9, 11, true);
        check_product(&Device::Cpu, dtype, 0, 9, 11, true);
    }
}

#[test]
fn half_weight_product_equals_the_widened_f32_product_on_the_gpu() {
    let gpu = gpu();
    for dtype in [WeightDtype::Fp16, WeightDtype::Bf16] {
        for &(m, n, k) in SHAPES {
            check_product(&gpu, dtype, m, n, k, false);
        }
        check_product(&gpu, dtype, 7, 9, 11, true);
        check_product(&gpu, dtype, 0, 9, 11, true);
    }
}

#[test]
fn half_weight_is_half_the_bytes_and_refuses_bad_input() {
    let gpu = gpu();
    let values = random(64 * 48, 3);
    for device in [Device::Cpu, gpu] {
        let w = HalfWeight::from_f32(&device, "w", WeightDtype::Fp16, [64, 48], &values).unwrap();
        // CPU: 64 columns are whole NR-wide strips natively (NR = 32); GPU: 24 words a row.
        assert_eq!(w.bytes(), 64 * 48 * 2, "{}", device.kind());
        let too_big = vec![1e5f32; 4];
        let error = HalfWeight::from_f32(&device, "big", WeightDtype::Fp16, [2, 2], &too_big)
            .unwrap_err()
            .to_string();
        assert!(error.contains("big") && error.contains("65504"), "{error}");
        assert!(HalfWeight::from_f32(&device, "ok", WeightDtype::Bf16, [2, 2], &too_big).is_ok());
        // a NaN in a 16-bit file (0x7e00): refused with the tensor and the index
        let error =
            HalfWeight::from_bits(&device, "nan", WeightDtype::Fp16, [1, 2], &[0x3c00, 0x7e00])
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("nan:") && error.contains("index 1"),
            "{error}"
        );
        let error = HalfWeight::from_bits(&device, "short", WeightDtype::Fp16, [2, 3], &[0; 5])
            .unwrap_err()
            .to_string();
        assert!(error.contains("short"), "{error}");
        let x = Tensor::zeros(&device, &[3, 47], "x").unwrap();
        let mut y = Tensor::zeros(&device, &[3, 64], "y").unwrap();
        let error = matmul_forward_half(&mut y, &x, &w, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("x") && error.contains("48"), "{error}");
    }
    // A weight on one device and the input on the other.
    let cpu_weight =
        HalfWeight::from_f32(&Device::Cpu, "w", WeightDtype::Bf16, [4, 4], &[0.5; 16]).unwrap();
    let gpu = crate::op_checks::gpu();
    let x = Tensor::zeros(&gpu, &[1, 4], "x").unwrap();
    let mut y = Tensor::zeros(&gpu, &[1, 4], "y").unwrap();
    let error = matmul_forward_half(&mut y, &x, &cpu_weight, None)
        .unwrap_err()
        .to_string();
    assert!(error.contains("y is on the GPU"), "{error}");
}

#[test]
fn the_gpu_kernel_widens_every_finite_16_bit_value_exactly() {
    // y (1, n) = [1] @ W^T with W (n, 1) holding every finite pattern once (subnormals, the
    // largest values, both signs): y is each value itself (k = 1: an odd depth, padded words).
    let gpu = gpu();
    for dtype in [WeightDtype::Fp16, WeightDtype::Bf16] {
        let bits: Vec<u16> = (0..=u16::MAX)
            .filter(|&b| dtype.to_f32(b).is_finite())
            .collect();
        let n = bits.len();
        let w = HalfWeight::from_bits(&gpu, "every value", dtype, [n, 1], &bits).unwrap();
        let x = Tensor::from_vec(&gpu, &[1, 1], vec![1.0], "one").unwrap();
        let mut y = Tensor::zeros(&gpu, &[1, n], "y").unwrap();
        matmul_forward_half(&mut y, &x, &w, None).unwrap();
        let got = y.to_vec_blocking().unwrap();
        for (&b, &v) in bits.iter().zip(&got) {
            // == rather than bits: 0 + (-0) is +0 in the sum
            assert_eq!(v, dtype.to_f32(b), "{dtype:?} {b:#06x}");
        }
    }
}
