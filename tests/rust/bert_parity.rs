//! BERT / DistilBERT against the reference: the real checkpoints in tests/fixtures/models
//! (downloaded by tests/setup/fetch-assets.sh) and the PyTorch fixtures of
//! tests/fixtures/bert-reference (made by tests/models/reference.py).

use webnlu::io::ModelFiles;
use webnlu::models::{BertModel, EncoderInput, RunMode};
use webnlu::ops::pooling::mean_pooling_forward_cpu;
use webnlu::tokenizer::Tokenizer;
use webnlu::Device;

fn model_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models")
        .join(name);
    assert!(
        dir.is_dir(),
        "{} is missing: run tests/setup/fetch-assets.sh",
        dir.display()
    );
    dir
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// all-MiniLM-L6-v2's documented similarities (the model card's example):
/// "The weather is lovely today." vs "It's so sunny outside!" 0.6660, and each vs
/// "He drove to the stadium." 0.1046 and 0.1411.
fn minilm_similarities(device: &Device) -> [f32; 3] {
    let dir = model_dir("all-minilm-l6-v2");
    let files = ModelFiles::from_dir(&dir).unwrap();
    let model = BertModel::load(&files, device).unwrap();
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.set_padding(None); // its tokenizer.json pads to 128: pad per batch instead
    let texts = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ];
    let encodings = tokenizer.encode_batch(&texts).unwrap();
    let input = EncoderInput::from_encodings(device, &encodings).unwrap();
    let out = model.encode(&input, &RunMode::inference()).unwrap();
    let hidden = out.hidden.to_vec_blocking().unwrap();
    let (b, t, c) = (input.batch, input.seq, model.hidden_size());
    let mask: Vec<u32> = input.attention_mask.iter().map(|&m| m as u32).collect();
    let mut pooled = vec![0.0; b * c];
    mean_pooling_forward_cpu(&mut pooled, &hidden, &mask, b, t, c).unwrap();
    let row = |i: usize| &pooled[i * c..(i + 1) * c];
    [
        cosine(row(0), row(1)),
        cosine(row(0), row(2)),
        cosine(row(1), row(2)),
    ]
}

#[test]
fn all_minilm_reproduces_documented_similarities_on_cpu() {
    let s = minilm_similarities(&Device::Cpu);
    println!("CPU similarities {s:?}");
    // The model card prints 4 decimals: agree to their rounding.
    for (got, want) in s.iter().zip([0.6660f32, 0.1046, 0.1411]) {
        assert!((got - want).abs() < 5e-5, "similarities {s:?}");
    }
}

#[test]
fn all_minilm_reproduces_documented_similarities_on_gpu() {
    let s = minilm_similarities(&gpu());
    println!("GPU similarities {s:?}");
    for (got, want) in s.iter().zip([0.6660f32, 0.1046, 0.1411]) {
        assert!((got - want).abs() < 5e-5, "similarities {s:?}");
    }
}

/// The GPU (Mesa lavapipe in CI): no adapter is a failure, not a skip.
fn gpu() -> Device {
    Device::new_blocking(
        webnlu::DeviceChoice::Gpu,
        &webnlu::device::GpuOptions::default(),
    )
    .unwrap_or_else(|e| {
        panic!("{e}: install mesa-vulkan-drivers (lavapipe) and set WGPU_BACKEND=vulkan")
    })
}
