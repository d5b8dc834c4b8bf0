//! int8 weights (ops/matmul/int8.rs, half_weight.rs, cpu_gemm.rs's `PackedB8`, the kernel's
//! `b_format` 3): the quantizer against its definition (absmax per output channel, ties to
//! even, zero channels, the clamp, refusals), the SIMD widening against the portable one, and
//! y = x W^T + b with W in int8 against dequantizing W first and running the f32 matmul: bit
//! for bit on the CPU and on the GPU (the same values, the same GEMM / kernel), and GPU against
//! CPU up to summation order. Odd depths (k not a multiple of 4: padded words on the GPU) and
//! odd widths (n not a multiple of the CPU's strips) included.

use crate::op_checks::*;
use webnlu::ops::matmul::int8::*;
use webnlu::ops::matmul::*;
use webnlu::{Device, Tensor};

#[test]
fn quantizer_follows_absmax_per_channel_with_ties_to_even() {
    // Row 0: absmax 127 so scale = 1 exactly; the halves round to the even code.
    // Row 1: zeros. Row 2: random values with a negative absmax.
    let mut values = vec![127.0, 0.5, 1.5, 2.5, -0.5, -3.5, 126.4, -127.0];
    values.extend([0.0f32; 8]);
    let mut row2 = random(8, 7);
    row2[3] = -1.5; // the absmax, negative
    values.extend(&row2);
    let q = quantize("w", [3, 8], &values).unwrap();
    assert_eq!(q.scales[0], 1.0);
    assert_eq!(&q.codes[..8], &[127, 0, 2, 2, 0, -4, 126, -127]);
    // A zero channel: scale 0 (stated choice) and all-zero codes, dequantized to zeros.
    assert_eq!(q.scales[1], 0.0);
    assert!(q.codes[8..16].iter().all(|&c| c == 0));
    assert_eq!(q.scales[2], 1.5 / 127.0);
    assert_eq!(q.codes[16 + 3], -127, "the absmax maps to -127");
    let back = dequantize(&q);
    assert!(back[8..16].iter().all(|&v| v == 0.0));
    for (i, (&v, &w)) in values.iter().zip(&back).enumerate() {
        let scale = q.scales[i / 8];
        let bound = scale / 2.0 + 4.0 * f32::EPSILON * v.abs(); // see the next test
        assert!((v - w).abs() <= bound, "{i}: {v} -> {w} (scale {scale})");
    }
}

#[test]
fn quantizer_round_trip_error_is_at_most_half_a_scale_step() {
    // 64 channels of 300 values over very different ranges.
    let (out, inp) = (64, 300);
    let mut values = random(out * inp, 11);
    for (c, row) in values.chunks_mut(inp).enumerate() {
        let range = 10f32.powi(c as i32 % 9 - 5); // 1e-5 .. 1e3
        row.iter_mut().for_each(|v| *v *= range);
    }
    let q = quantize("w", [out, inp], &values).unwrap();
    let back = dequantize(&q);
    for c in 0..out {
        let row = &values[c * inp..][..inp];
        let absmax = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert_eq!(q.scales[c], absmax / 127.0, "channel {c}");
        let codes = &q.codes[c * inp..][..inp];
        assert!(codes.iter().any(|&x| x.abs() == 127), "channel {c}");
        for (i, (&v, &w)) in row.iter().zip(&back[c * inp..][..inp]).enumerate() {
            // scale / 2 from rounding to the nearest code, plus the f32 roundings of v / scale
            // and q * scale (a few units in the last place of the values involved)
            let bound = q.scales[c] / 2.0 + 4.0 * f32::EPSILON * v.abs().max(w.abs());
            assert!((v - w).abs() <= bound, "channel {c}, {i}: {v} -> {w}");
        }
    }
}

#[test]
fn quantizer_clamps_to_127_and_refuses_non_finite_values() {
    // A channel whose absmax is a subnormal f32 (190 units of 2^-149): absmax / 127 rounds to
    // 1 unit, so absmax / scale = 190 and the clamp keeps the codes in [-127, 127].
    let unit = f32::from_bits(1);
    let tiny = [190.0 * unit, -190.0 * unit, 3.0 * unit, 0.0];
    let q = quantize("tiny", [1, 4], &tiny).unwrap();
    assert_eq!(q.scales[0], unit);
    assert_eq!(q.codes, vec![127, -127, 3, 0]);
    // The largest f32 values: a finite scale and codes of +-127.
    let q = quantize("huge", [1, 2], &[f32::MAX, -f32::MAX]).unwrap();
    assert_eq!(q.codes, vec![127, -127]);
    assert!(q.scales[0].is_finite());
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let error = quantize("encoder.layer.0.w", [2, 2], &[0.0, 1.0, bad, 2.0])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("encoder.layer.0.w") && error.contains("index 2"),
            "{error}"
        );
        let error = HalfWeight::from_f32(
            &Device::Cpu,
            "layer",
            WeightDtype::Int8,
            [1, 2],
            &[bad, 1.0],
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("layer") && error.contains("index 0"),
            "{error}"
        );
    }
    let error = quantize("short", [2, 3], &[0.0; 5])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("short") && error.contains("5 values"),
        "{error}"
    );
}

#[test]
fn simd_widening_equals_the_portable_one_for_every_code() {
    // Every byte value (-128 too, which the quantizer never makes), in rows of the widths the
    // CPU paths use (8: wasm and AVX2 steps, 16: AVX-512, 32: the native strip), scales of
    // many magnitudes.
    let codes: Vec<i8> = (0..=255u8).map(|b| b as i8).collect();
    for width in [8usize, 16, 32] {
        let scales: Vec<f32> = random(width, width as u64)
            .iter()
            .enumerate()
            .map(|(j, v)| v * 10f32.powi(j as i32 % 7 - 3))
            .collect();
        let mut simd = vec![0.0; codes.len()];
        let mut portable = vec![0.0; codes.len()];
        widen_rows(&codes, &scales, &mut simd);
        widen_rows_portable(&codes, &scales, &mut portable);
        for (i, (&a, &b)) in simd.iter().zip(&portable).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "width {width}, value {i}");
            assert_eq!(b, codes[i] as f32 * scales[i % width]);
        }
    }
}

/// y = x W^T + b with W (n, k) quantized from random values, against the f32 matmul of the
/// dequantized W on the same device (bit for bit), and the GPU's int8 product against the
/// CPU's (summation order). x is (2, m, k) when `three_d` (a batch of sequences).
fn check_product(device: &Device, m: usize, n: usize, k: usize, three_d: bool) {
    let seed = (m * 1_000_000 + n * 1000 + k) as u64 + 17;
    let q = quantize("w8", [n, k], &random(n * k, seed)).unwrap();
    let rows = if three_d { 2 * m } else { m };
    let x_shape: Vec<usize> = if three_d { vec![2, m, k] } else { vec![m, k] };
    let y_shape: Vec<usize> = if three_d { vec![2, m, n] } else { vec![m, n] };
    let x_values = random(rows * k, seed + 1);
    let bias_values = random(n, seed + 2);
    let product = |device: &Device| -> (Vec<f32>, Vec<f32>) {
        let x = Tensor::from_vec(device, &x_shape, x_values.clone(), "x").unwrap();
        let bias = Tensor::from_vec(device, &[n], bias_values.clone(), "bias").unwrap();
        let w8 = HalfWeight::from_quantized(device, "w8", &q).unwrap();
        assert_eq!((w8.numel(), w8.dtype()), (n * k, WeightDtype::Int8));
        let w = Tensor::from_vec(device, &[n, k], dequantize(&q), "w").unwrap();
        let mut got = Tensor::zeros(device, &y_shape, "y8").unwrap();
        matmul_forward_half(&mut got, &x, &w8, Some(&bias)).unwrap();
        let mut want = Tensor::zeros(device, &y_shape, "y").unwrap();
        let options = MatmulOptions {
            trans_b: true, // W (out, in), as the linear layers hold it
            ..MatmulOptions::default()
        };
        matmul_forward(&mut want, &x, &w, Some(&bias), options).unwrap();
        (
            got.to_vec_blocking().unwrap(),
            want.to_vec_blocking().unwrap(),
        )
    };
    let (got, want) = product(device);
    let what = format!("{} int8 m={m} n={n} k={k} 3d={three_d}", device.kind());
    // Bit for bit: the widened values are the dequantized ones (one f32 multiply on both
    // devices) and the rest is the f32 product (CPU: the same GEMM and microkernel; GPU: the
    // same kernel with `b_format` 3).
    let identical = got
        .iter()
        .zip(&want)
        .all(|(a, b)| a.to_bits() == b.to_bits());
    assert!(
        identical,
        "{what}: not bit-identical to the dequantized f32 product"
    );
    if device.is_gpu() {
        // Against the CPU's int8 product: the same terms summed in another order (the kernel
        // steps k by 16, the CPU's microkernel by 1 within blocks of 256). Terms |x w| <= 1,
        // sums of up to 300: 1e-4 absolute is ~100x the f32 rounding of such sums.
        let (cpu, _) = product(&Device::Cpu);
        assert_close(&format!("{what}: GPU vs CPU"), &got, &cpu, 1e-4, 1e-5);
    }
}

const SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (3, 5, 7),
    (4, 33, 2),
    (17, 31, 33),
    (64, 65, 63),
    (9, 6, 4),
    (130, 70, 257), // over the threading threshold (4e6 flops): split over the cores
    (5, 40, 300),   // depth over one KC block (256)
    (3, 5, 0),      // no inputs: y is the bias on every row
];

#[test]
fn int8_product_equals_the_dequantized_f32_product_on_the_cpu() {
    for &(m, n, k) in SHAPES {
        check_product(&Device::Cpu, m, n, k, false);
    }
    check_product(&Device::Cpu, 7, 9, 11, true);
    check_product(&Device::Cpu, 0, 9, 11, true);
}

#[test]
fn int8_product_equals_the_dequantized_f32_product_on_the_gpu() {
    let gpu = gpu();
    for &(m, n, k) in SHAPES {
        check_product(&gpu, m, n, k, false);
    }
    check_product(&gpu, 7, 9, 11, true);
    check_product(&gpu, 0, 9, 11, true);
}

#[test]
fn int8_weight_holds_a_byte_a_value_plus_a_scale_a_row() {
    let gpu = gpu();
    for device in [Device::Cpu, gpu] {
        let values = random(64 * 48, 3);
        let w = HalfWeight::from_f32(&device, "w", WeightDtype::Int8, [64, 48], &values).unwrap();
        // CPU: 64 columns are whole strips natively (NR = 32); GPU: 12 words a row.
        assert_eq!(w.bytes(), 64 * 48 + 64 * 4, "{}", device.kind());
        if device.is_gpu() {
            // k = 7: two words a row (the last one padded with a zero byte)
            let w =
                HalfWeight::from_f32(&device, "w", WeightDtype::Int8, [3, 7], &[0.5; 21]).unwrap();
            assert_eq!(w.bytes(), 3 * 2 * 4 + 3 * 4);
        }
        let x = Tensor::zeros(&device, &[3, 47], "x").unwrap();
        let mut y = Tensor::zeros(&device, &[3, 64], "y").unwrap();
        let error = matmul_forward_half(&mut y, &x, &w, None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("x") && error.contains("48"), "{error}");
    }
    let q = quantize("w", [2, 2], &[1.0; 4]).unwrap();
    let broken = QuantizedMatrix {
        scales: vec![1.0],
        ..q
    };
    let error = HalfWeight::from_quantized(&Device::Cpu, "broken", &broken)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("broken") && error.contains("1 scales"),
        "{error}"
    );
    assert_eq!(WeightDtype::parse("int8").unwrap(), WeightDtype::Int8);
    assert_eq!(WeightDtype::Int8.name(), "int8");
}

#[test]
fn the_gpu_kernel_dequantizes_every_code_in_every_byte_position() {
    // y (1, n) = x (1, 4) @ W^T with W (n, 4): row c holds code c - 127 in byte position
    // c % 4 and zeros elsewhere, x = 1, so y[c] = f32(code) * scale[c] exactly, for every
    // code -127..=127 in each of the word's four bytes (sign extension of each position).
    let gpu = gpu();
    let n = 255 * 4;
    let mut codes = vec![0i8; n * 4];
    let scales: Vec<f32> = random(n, 5).iter().map(|v| v.abs() + 0.01).collect();
    for c in 0..n {
        codes[c * 4 + c % 4] = ((c / 4) as i32 - 127) as i8;
    }
    let q = QuantizedMatrix {
        codes: codes.clone(),
        scales: scales.clone(),
        shape: [n, 4],
    };
    let w = HalfWeight::from_quantized(&gpu, "every code", &q).unwrap();
    let x = Tensor::from_vec(&gpu, &[1, 4], vec![1.0; 4], "ones").unwrap();
    let mut y = Tensor::zeros(&gpu, &[1, n], "y").unwrap();
    matmul_forward_half(&mut y, &x, &w, None).unwrap();
    let got = y.to_vec_blocking().unwrap();
    for c in 0..n {
        let code = codes[c * 4 + c % 4];
        // == rather than bits: 0 + (-0) is +0 in the sum
        assert_eq!(got[c], code as f32 * scales[c], "row {c}, code {code}");
    }
}

#[test]
fn an_int8_weight_widens_back_to_its_dequantized_values_exactly() {
    // `HalfWeight::to_f32_tensor` (what a training run makes its f32 master weight from): the
    // dequantized values, bit for bit, on both devices; (5, 7): odd widths and padded words.
    let gpu = gpu();
    let q = quantize("w", [5, 7], &random(35, 23)).unwrap();
    for device in [Device::Cpu, gpu] {
        let w = HalfWeight::from_quantized(&device, "w", &q).unwrap();
        let widened = pollster::block_on(w.to_f32_tensor()).unwrap();
        assert_eq!(widened.shape(), &[5, 7]);
        let got = widened.to_vec_blocking().unwrap();
        let want = dequantize(&q);
        let same = got
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{}: {got:?} vs {want:?}", device.kind());
    }
}
