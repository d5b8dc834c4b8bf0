//! Training a model loaded with 16-bit weights (`dtype` fp16): the encoder layers the run
//! trains are widened to fp32 master weights at its start (`BertModel::widen_trained_layers`,
//! through `HalfWeight::to_f32_tensor`), the frozen ones stay 16-bit. The committed random
//! BERT with its weights stored in fp16 (so that both models start from the same values):
//! loaded with dtype fp16 and trained `top:1` for two steps on the CPU, it is the same run as
//! the model loaded with dtype fp32 from the same file (every value widened at load).

use crate::bert_reference::repo_path;
use crate::half_weights::fp16_safetensors;
use pollster::block_on;
use webnlu::io::ModelFiles;
use webnlu::models::Freeze;
use webnlu::ops::matmul::WeightDtype;
use webnlu::tasks::*;
use webnlu::Device;

/// The random BERT classifier with every f32 tensor stored as fp16 (made here, in memory).
fn random_classifier_in_fp16() -> ModelFiles {
    let dir = repo_path("tests/fixtures/bert-reference/random/bert-random-classifier");
    let original = ModelFiles::from_dir(&dir).unwrap();
    let mut files = ModelFiles::new("bert-random-classifier in fp16");
    for name in original.names() {
        let bytes = original.get(name).unwrap();
        match name {
            "model.safetensors" => files.insert(name, fp16_safetensors(bytes)),
            _ => files.insert(name, bytes.to_vec()),
        }
    }
    files
}

const TEXTS: [&str; 4] = [
    "the old man walked to the river",
    "a small bird in the tree",
    "the big house near the river",
    "she saw the man and the bird",
];

fn options(freeze: Freeze) -> TrainOptions {
    TrainOptions {
        freeze,
        epochs: 1,
        batch_size: 2, // two steps of the four examples
        validation_fraction: 0.0,
        seed: 3,
        ..TrainOptions::default()
    }
}

/// Trains `p` one epoch (two steps) on the four texts; the epoch's loss and the
/// classification of the texts after it.
fn train(p: &mut Pipeline, freeze: Freeze) -> (f32, Vec<Vec<f32>>) {
    let examples: Vec<Example> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, text)| Example {
            text: text.to_string(),
            pair: None,
            label: ["a", "b"][i % 2].to_string(),
        })
        .collect();
    let mut run = block_on(ClassifierTraining::new(p, &examples, options(freeze))).unwrap();
    let progress = block_on(run.run_epoch(p)).unwrap();
    let scores = block_on(p.classify(&TEXTS)).unwrap();
    (
        progress.loss,
        scores.into_iter().map(|c| c.scores).collect(),
    )
}

#[test]
fn training_top_1_of_an_fp16_model_is_the_fp32_run_and_the_frozen_layer_stays_16_bit() {
    let files = random_classifier_in_fp16();
    let device = Device::Cpu;
    let mut half = Pipeline::load_as(&files, &device, WeightDtype::Fp16).unwrap();
    let mut full = Pipeline::load_as(&files, &device, WeightDtype::Fp32).unwrap();
    // 2 layers of 4 x 32 x 32 + 2 x 32 x 37 matrix values
    let layer_values = 4 * 32 * 32 + 2 * 32 * 37;
    let (values, bytes_before) = half.model.half_weights_held();
    assert_eq!(values, 2 * layer_values);
    let weight_bytes_before = half.model.weight_bytes();

    let (loss_half, scores_half) = train(&mut half, Freeze::Top(1));
    let (loss_full, scores_full) = train(&mut full, Freeze::Top(1));
    // Exact: the same starting values, and a 16-bit matrix is widened exactly (in the GEMM for
    // the frozen layer, once at the start for the trained one), so every op computes the same
    // f32 numbers in the same order.
    assert_eq!(loss_half, loss_full, "the epoch's loss");
    assert_eq!(scores_half, scores_full, "classify after training");
    let trained: Vec<(String, Vec<f32>)> = half
        .model
        .named_parameters()
        .into_iter()
        .map(|(name, t)| (name, t.to_vec_blocking().unwrap()))
        .collect();
    for (name, values) in &trained {
        let (_, same) = full
            .model
            .named_parameters()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name}: not a parameter of the fp32 model"));
        assert_eq!(
            values,
            &same.to_vec_blocking().unwrap(),
            "{name} after training"
        );
    }
    assert!(
        trained
            .iter()
            .any(|(n, _)| n.contains("layer.1.intermediate.dense.weight")),
        "the trained layer's matrices are f32 parameters: {:?}",
        trained.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );

    // The frozen layer 0 is still held in 16 bits: half the matrices, half the bytes; the
    // widened layer 1 now takes 4 bytes a value.
    let (values, bytes_after) = half.model.half_weights_held();
    assert_eq!(values, layer_values);
    assert_eq!(bytes_after * 2, bytes_before);
    assert_eq!(half.model.weight_dtype(), WeightDtype::Fp16);
    // (against the fp32 model after its run: both have the run's new two-label head)
    assert_eq!(
        half.model.weight_bytes(),
        full.model.weight_bytes() - 4 * layer_values as u64 + bytes_after,
        "weight bytes: the fp32 model's, less layer 0's matrices at 4 bytes a value plus their \
         16-bit bytes"
    );
    assert!(
        half.model.weight_bytes() > weight_bytes_before,
        "the widened layer grew it"
    );
    // Saving still needs every layer in f32.
    let error = half.model.save_blocking().err().unwrap().to_string();
    assert!(error.contains("fp16"), "{error}");

    // Training all layers widens them all: the model is then fp32 throughout and saves.
    train(&mut half, Freeze::All);
    assert_eq!(half.model.half_weights_held(), (0, 0));
    assert_eq!(half.model.weight_dtype(), WeightDtype::Fp32);
    half.model.save_blocking().unwrap();
}

/// `HalfWeight::to_f32_tensor`, the widening a trained 16-bit layer starts from, on both
/// devices: every value the exact f32 of its 16 bits, in W's (out, in) layout. 5 x 7: an odd
/// `in` (the GPU's last word of a row half empty) and an `out` that does not fill a CPU strip.
#[test]
fn a_16_bit_weight_widens_to_its_exact_f32_values_on_both_devices() {
    use crate::op_checks::{gpu, random};
    use webnlu::ops::matmul::HalfWeight;
    let values = random(5 * 7, 11);
    for device in [Device::Cpu, gpu()] {
        for dtype in [WeightDtype::Fp16, WeightDtype::Bf16] {
            let w = HalfWeight::from_f32(&device, "w", dtype, [5, 7], &values).unwrap();
            let wide = block_on(w.to_f32_tensor()).unwrap();
            assert_eq!(wide.shape(), [5, 7]);
            assert_eq!(wide.name(), "w");
            assert_eq!(wide.device().kind(), device.kind());
            let want: Vec<f32> = values
                .iter()
                .map(|&v| dtype.to_f32(dtype.from_f32(v)))
                .collect();
            assert_eq!(
                wide.to_vec_blocking().unwrap(),
                want,
                "{} on {}",
                dtype.name(),
                device.kind()
            );
        }
    }
}
