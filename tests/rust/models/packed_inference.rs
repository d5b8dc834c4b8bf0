//! An inference-only model whose encoder layers' weight matrices are packed for the CPU GEMM at
//! load and their plain copies dropped (`BertModel::pack_for_inference`, what the CLI's
//! inference commands do): the same outputs bit for bit as a model that was never packed, the
//! same parameter count, the same saved files byte for byte; the layers frozen (their backward
//! refused with an error that says what to do) until `unpack_weights` gives the plain tensors
//! back value for value, after which a training step's gradients equal those of the unpacked
//! model bit for bit. A GPU or 16-bit model is left as loaded.

use std::path::PathBuf;

use webnlu::io::ModelFiles;
use webnlu::models::{BertModel, EncoderInput, Freeze, Gradients, RunMode, Targets, Task};
use webnlu::ops::matmul::WeightDtype;
use webnlu::tensor::Tensor;
use webnlu::Device;

use crate::op_checks::gpu;

fn files(name: &str) -> ModelFiles {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/bert-reference/random")
        .join(name);
    ModelFiles::from_dir(&dir).unwrap()
}

fn load(name: &str) -> BertModel {
    BertModel::load(&files(name), &Device::Cpu).unwrap()
}

/// Two rows of different lengths (the second padded), ids inside every random vocabulary.
fn batch() -> EncoderInput {
    EncoderInput::from_ids(
        &Device::Cpu,
        &[
            vec![2, 5, 8, 31, 37, 5, 1, 67, 3],
            vec![2, 6, 48, 66, 60, 3, 7, 9, 3],
        ],
        &[vec![0, 0, 0, 0, 0, 1, 1, 1, 1], vec![0; 9]],
    )
    .unwrap()
}

fn bits(t: &Tensor) -> Vec<u32> {
    let values = t.to_vec_blocking().unwrap();
    values.iter().map(|v| v.to_bits()).collect()
}

/// (name, bits) of every parameter of `model`.
fn parameter_bits(model: &BertModel) -> Vec<(String, Vec<u32>)> {
    (model.named_parameters().into_iter())
        .map(|(name, t)| (name, bits(t)))
        .collect()
}

#[test]
fn packed_layers_give_bit_identical_outputs_and_unpack_to_the_same_weights() {
    for (name, task) in [
        ("bert-random", Task::MaskedLm),
        ("distilbert-random-classifier", Task::SequenceClassification),
    ] {
        let plain = load(name);
        let mut packed = load(name);
        packed.pack_for_inference().unwrap();
        assert!(packed.has_packed_only_weights(), "{name}");
        let matrices = 6 * packed.num_layers();
        assert_eq!(packed.packed_only_weight_count(), matrices, "{name}");
        assert_eq!(packed.parameter_count(), plain.parameter_count(), "{name}");
        let mode = RunMode::inference();
        // twice on the plain model: its first product packs the same panels into its cache
        for round in 0..2 {
            let want = plain.forward_task(&batch(), task, &mode).unwrap();
            let got = packed.forward_task(&batch(), task, &mode).unwrap();
            assert_eq!(
                bits(&got.encoder.hidden),
                bits(&want.encoder.hidden),
                "{name} {round}"
            );
            assert_eq!(bits(&got.logits), bits(&want.logits), "{name} {round}");
        }
        packed.unpack_weights().unwrap();
        assert!(!packed.has_packed_only_weights(), "{name}");
        assert_eq!(parameter_bits(&packed), parameter_bits(&plain), "{name}");
    }
}

#[test]
fn a_packed_model_saves_the_files_of_the_model_never_packed() {
    // task models (the `bert.` / `distilbert.` prefix) and a bare one (its heads dropped:
    // saved as BertModel, without the prefix)
    for (name, bare) in [
        ("bert-random-classifier", false),
        ("distilbert-random", false),
        ("bert-random", true),
    ] {
        let mut plain = load(name);
        let mut packed = load(name);
        if bare {
            for model in [&mut plain, &mut packed] {
                (model.masked_lm, model.next_sentence) = (None, None);
            }
            assert_eq!(plain.architecture(), "BertModel");
        }
        packed.pack_for_inference().unwrap();
        let (got, want) = (
            packed.save_blocking().unwrap(),
            plain.save_blocking().unwrap(),
        );
        assert!(
            packed.has_packed_only_weights(),
            "{name}: saving keeps the panels"
        );
        assert_eq!(got.config_json, want.config_json, "{name}");
        assert!(
            got.safetensors == want.safetensors,
            "{name}: safetensors differ"
        );
    }
}

#[test]
fn a_packed_model_refuses_to_train_its_layers_until_unpacked() {
    let plain = load("bert-random-classifier");
    let mut model = load("bert-random-classifier");
    model.pack_for_inference().unwrap();
    let task = Task::SequenceClassification;
    let targets = Targets::Classes(vec![1, 0]);
    let mode = RunMode::training(7, Freeze::All);
    let mut out = model.forward_task(&batch(), task, &mode).unwrap();
    let err = (model.backward_task(&mut out, &targets, &mut Gradients::new()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("packed for inference only") && err.contains("unpack"),
        "{err}"
    );
    // head-only training reads no layer's backward: it works on the packed model
    let head = RunMode::training(7, Freeze::Head);
    let mut out = model.forward_task(&batch(), task, &head).unwrap();
    let mut head_grads = Gradients::new();
    model
        .backward_task(&mut out, &targets, &mut head_grads)
        .unwrap();
    // unpacked, every layer trains, with the gradients of the model never packed
    model.unpack_weights().unwrap();
    let mut grads = [Gradients::new(), Gradients::new()];
    for (m, g) in [&model, &plain].into_iter().zip(&mut grads) {
        let mut out = m.forward_task(&batch(), task, &mode).unwrap();
        m.backward_task(&mut out, &targets, g).unwrap();
    }
    let [got, want] = grads;
    let sorted = |g: &Gradients| {
        let mut named: Vec<(String, Vec<u32>)> =
            g.iter().map(|(n, t)| (n.to_string(), bits(t))).collect();
        named.sort();
        named
    };
    let (got, want) = (sorted(&got), sorted(&want));
    assert!(got
        .iter()
        .any(|(n, _)| n.contains("layer.0.attention.self.query.weight")));
    assert_eq!(got, want);
}

#[test]
fn packing_leaves_a_gpu_or_16_bit_model_as_loaded() {
    let task = Task::SequenceClassification;
    let mode = RunMode::inference();
    let name = "distilbert-random-classifier";
    let mut half = BertModel::load_as(&files(name), &Device::Cpu, WeightDtype::Fp16).unwrap();
    half.pack_for_inference().unwrap();
    assert_eq!(
        half.packed_only_weight_count(),
        0,
        "fp16 keeps its own packed format"
    );
    let device = gpu();
    let plain = BertModel::load(&files(name), &device).unwrap();
    let mut packed = BertModel::load(&files(name), &device).unwrap();
    packed.pack_for_inference().unwrap();
    assert_eq!(
        packed.packed_only_weight_count(),
        0,
        "nothing packed on the GPU"
    );
    let input = || {
        EncoderInput::from_ids(
            &device,
            &[vec![2, 5, 8, 31, 37, 5, 1, 67, 3]],
            &[vec![0; 9]],
        )
        .unwrap()
    };
    let (a, b) = (
        packed.forward_task(&input(), task, &mode).unwrap(),
        plain.forward_task(&input(), task, &mode).unwrap(),
    );
    assert_eq!(bits(&a.logits), bits(&b.logits));
}
