//! all-MiniLM-L6-v2 with fp16 weights multiplied in f16 arithmetic (`GpuOptions::
//! f16_arithmetic` on lavapipe, which offers `shader-f16`; the kernel's own parity test is
//! tests/rust/ops/f16_matmul.rs) against the fp32 model: the fp16 bar, cosine >= 0.9999.

use crate::half_weights::{cosines, TEXTS};
use crate::op_checks::{self, gpu};
use pollster::block_on;
use webnlu::device::{DeviceChoice, GpuOptions};
use webnlu::ops::matmul::WeightDtype;
use webnlu::tasks::*;
use webnlu::Device;

fn embeddings(device: &Device, dtype: WeightDtype) -> Vec<f32> {
    let dir = op_checks::fixture_model_dir("all-minilm-l6-v2", &[]);
    let pipeline = Pipeline::load_dir_as(dir, device, dtype).unwrap();
    block_on(pipeline.embed(&TEXTS, Pooling::Mean, true)).unwrap()
}

#[test]
fn minilm_fp16_embeddings_in_f16_arithmetic_match_fp32_on_the_gpu() {
    let options = GpuOptions {
        f16_arithmetic: true,
        ..GpuOptions::default()
    };
    let f16_gpu = Device::new_blocking(DeviceChoice::Gpu, &options).unwrap();
    match &f16_gpu {
        Device::Gpu(ctx) => assert!(ctx.info().f16_arithmetic, "{:?}", ctx.info()),
        Device::Cpu => panic!("asked for a GPU"),
    }
    let full = embeddings(&gpu(), WeightDtype::Fp32);
    let f16 = embeddings(&f16_gpu, WeightDtype::Fp16);
    // The f16 path ran: its embeddings differ from the f32 path's on fp16 weights.
    assert_ne!(f16, embeddings(&gpu(), WeightDtype::Fp16));
    // The fp16 bar. Each product rounds the activations to f16 too (11 significant
    // bits, as the weights): per matmul output an error of at most 3 * 2^-11 of sum |x w|
    // (ops/matmul/f16_arithmetic.rs), through 6 layers and LayerNorms.
    let cos = cosines(&f16, &full, 384);
    let worst = cos.iter().cloned().fold(1.0f32, f32::min);
    println!("fp16 + f16 arithmetic cosines to fp32 {cos:?}, worst {worst}");
    assert!(worst >= 0.9999, "{cos:?}");
}
