//! BertModel beyond the PyTorch fixtures (those are in bert_parity.rs): central finite
//! differences of the whole model's backward in training mode (dropout on) on the CPU, GPU ==
//! CPU with dropout, what each freezing policy keeps, save -> load round trips, new heads, and
//! clear errors for configs that do not fit the weights and for bad input.

use std::collections::BTreeSet;
use std::path::PathBuf;

use webnlu::io::{write_safetensors, ModelFiles};
use webnlu::models::{
    BertModel, EncoderInput, Freeze, Gradients, RunMode, Targets, Task, TaskOutput,
};
use webnlu::{Device, Error};

fn random_model_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/bert-reference/random")
        .join(name);
    assert!(
        dir.is_dir(),
        "{} is missing: regenerate with `python tests/models/reference.py` (tests/models/README.md)",
        dir.display()
    );
    dir
}

fn files(name: &str) -> ModelFiles {
    ModelFiles::from_dir(random_model_dir(name)).unwrap()
}

fn gpu() -> Device {
    Device::new_blocking(
        webnlu::DeviceChoice::Gpu,
        &webnlu::device::GpuOptions::default(),
    )
    .unwrap_or_else(|e| {
        panic!("{e}: install mesa-vulkan-drivers (lavapipe) and set WGPU_BACKEND=vulkan")
    })
}

/// Two rows of different lengths (the second padded), ids inside every random vocabulary.
fn batch(device: &Device) -> EncoderInput {
    EncoderInput::from_ids(
        device,
        &[
            vec![2, 5, 8, 31, 37, 5, 1, 67, 3],
            vec![2, 6, 48, 66, 60, 3, 7, 9, 11, 12, 3],
        ],
        &[vec![0, 0, 0, 0, 0, 1, 1, 1, 1], vec![0; 11]],
    )
    .unwrap()
}

/// The targets of `task` for [`batch`] (B = 2, T = 11).
fn targets(task: Task) -> Targets {
    let mut mlm = vec![-100i64; 22];
    mlm[3] = 8;
    mlm[11 + 4] = 60;
    mlm[11 + 7] = 2;
    match task {
        Task::MaskedLm => Targets::Classes(mlm),
        Task::PreTraining => Targets::PreTraining {
            masked_lm: mlm,
            next_sentence: vec![1, 0],
        },
        Task::NextSentence => Targets::Classes(vec![0, 1]),
        Task::SequenceClassification => Targets::Classes(vec![1, 0]),
        Task::TokenClassification => {
            let mut labels: Vec<i64> = (0..22).map(|i| (i % 5) as i64).collect();
            labels[20] = -100;
            labels[21] = -100;
            Targets::Classes(labels)
        }
    }
}

fn step(model: &BertModel, task: Task, mode: &RunMode) -> (f32, Gradients, TaskOutput) {
    let input = batch(model.device());
    let mut out = model.forward_task(&input, task, mode).unwrap();
    let mut grads = Gradients::new();
    let loss = model
        .backward_task(&mut out, &targets(task), &mut grads)
        .unwrap();
    (loss.to_vec_blocking().unwrap()[0], grads, out)
}

fn set_param(model: &mut BertModel, name: &str, index: usize, value: f32) -> f32 {
    let p = model
        .parameters_mut()
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("no parameter {name}"));
    let data = p.cpu_mut().unwrap();
    let old = data[index];
    data[index] = value;
    old
}

/// Central differences of the loss against the analytic gradient at the largest-gradient
/// element and at one other element of each listed parameter, in training mode with dropout
/// (the Threefry masks are the same in every evaluation).
fn check_finite_differences(model_name: &str, task: Task, params: &[&str]) {
    let mut model = BertModel::load(&files(model_name), &Device::Cpu).unwrap();
    let mode = RunMode::training(7, Freeze::All);
    let (_, grads, _) = step(&model, task, &mode);
    for &name in params {
        let g = grads
            .get(name)
            .unwrap_or_else(|| panic!("{model_name}: no gradient for {name}"))
            .to_vec_blocking()
            .unwrap();
        let largest = (0..g.len())
            .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
            .unwrap();
        for index in [largest, g.len() / 3] {
            // eps 1e-2 on weights of size ~0.2: truncation ~1e-5, f32 rounding of the loss
            // (~5e-7) / 2e-2 ~ 3e-5.
            let eps = 1e-2f32;
            let x = set_param(&mut model, name, index, 0.0);
            set_param(&mut model, name, index, x + eps);
            let (plus, _, _) = step(&model, task, &mode);
            set_param(&mut model, name, index, x - eps);
            let (minus, _, _) = step(&model, task, &mode);
            set_param(&mut model, name, index, x);
            let numeric = (plus - minus) / (2.0 * eps);
            let analytic = g[index];
            assert!(
                (numeric - analytic).abs() <= 2e-3 + 2e-2 * analytic.abs(),
                "{model_name} {task:?}: d loss / d {name}[{index}]: finite differences {numeric}, backward {analytic}"
            );
        }
    }
}

#[test]
fn bert_pretraining_backward_matches_finite_differences_with_dropout() {
    check_finite_differences(
        "bert-random",
        Task::PreTraining,
        &[
            // tied decoder + input embedding both feed this gradient
            "bert.embeddings.word_embeddings.weight",
            "bert.embeddings.token_type_embeddings.weight",
            "bert.embeddings.LayerNorm.weight",
            "bert.encoder.layer.0.attention.self.query.weight",
            "bert.encoder.layer.0.attention.self.value.bias",
            "bert.encoder.layer.1.intermediate.dense.weight",
            "bert.encoder.layer.1.output.LayerNorm.bias",
            "bert.pooler.dense.weight",
            "cls.predictions.transform.dense.weight",
            "cls.predictions.bias",
            "cls.seq_relationship.weight",
        ],
    );
}

#[test]
fn distilbert_classifier_backward_matches_finite_differences_with_dropout() {
    check_finite_differences(
        "distilbert-random-classifier",
        Task::SequenceClassification,
        &[
            "distilbert.embeddings.position_embeddings.weight",
            "distilbert.transformer.layer.0.attention.k_lin.weight",
            "distilbert.transformer.layer.1.ffn.lin1.weight",
            "distilbert.transformer.layer.1.sa_layer_norm.weight",
            "pre_classifier.weight",
            "classifier.weight",
        ],
    );
}

#[test]
fn bert_token_classifier_backward_matches_finite_differences_with_dropout() {
    check_finite_differences(
        "bert-random-ner",
        Task::TokenClassification,
        &[
            "bert.embeddings.word_embeddings.weight",
            "bert.encoder.layer.0.attention.output.dense.weight",
            "bert.encoder.layer.1.attention.self.key.weight",
            "classifier.weight",
        ],
    );
}

/// GPU == CPU for a training step with dropout (same Threefry masks on both devices).
fn check_gpu_matches_cpu(model_name: &str, task: Task, freeze: Freeze) {
    let gpu = gpu();
    let mode = RunMode::training(11, freeze);
    let cpu_model = BertModel::load(&files(model_name), &Device::Cpu).unwrap();
    let gpu_model = BertModel::load(&files(model_name), &gpu).unwrap();
    let (cpu_loss, cpu_grads, cpu_out) = step(&cpu_model, task, &mode);
    let (gpu_loss, gpu_grads, gpu_out) = step(&gpu_model, task, &mode);
    let what = format!("{model_name} {task:?} {freeze}");
    assert!(
        (cpu_loss - gpu_loss).abs() <= 1e-5 * cpu_loss.abs().max(1.0),
        "{what}: loss {cpu_loss} vs {gpu_loss}"
    );
    let close = |name: &str, a: &[f32], b: &[f32], tol: f32| {
        // (a scale of at least 1e-3: the key bias's gradient is exactly 0 up to rounding, since
        // softmax ignores a shift of all of a query's scores)
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-3);
        let d = a
            .iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
        // fp32, different summation orders: 1e-4 of the tensor's largest value
        assert!(
            d <= tol * scale,
            "{what}: {name}: max abs {d} (scale {scale})"
        );
    };
    close(
        "hidden",
        &cpu_out.encoder.hidden.to_vec_blocking().unwrap(),
        &gpu_out.encoder.hidden.to_vec_blocking().unwrap(),
        1e-4,
    );
    close(
        "logits",
        &cpu_out.logits.to_vec_blocking().unwrap(),
        &gpu_out.logits.to_vec_blocking().unwrap(),
        1e-4,
    );
    assert_eq!(
        cpu_grads.names(),
        gpu_grads.names(),
        "{what}: trained parameters"
    );
    for (name, g) in cpu_grads.iter() {
        let h = gpu_grads.get(name).unwrap();
        close(
            name,
            &g.to_vec_blocking().unwrap(),
            &h.to_vec_blocking().unwrap(),
            1e-3,
        );
    }
}

#[test]
fn gpu_matches_cpu_in_training_mode_with_dropout() {
    check_gpu_matches_cpu("bert-random", Task::PreTraining, Freeze::All);
    check_gpu_matches_cpu("bert-random", Task::NextSentence, Freeze::Top(2));
    check_gpu_matches_cpu(
        "bert-random-classifier",
        Task::SequenceClassification,
        Freeze::Top(1),
    );
    check_gpu_matches_cpu("bert-random-ner", Task::TokenClassification, Freeze::All);
    check_gpu_matches_cpu("distilbert-random", Task::MaskedLm, Freeze::All);
    check_gpu_matches_cpu(
        "distilbert-random-classifier",
        Task::SequenceClassification,
        Freeze::Head,
    );
}

#[test]
fn freezing_policies_keep_only_what_their_backward_needs() {
    let model = BertModel::load(&files("bert-random-classifier"), &Device::Cpu).unwrap();
    let input = batch(&Device::Cpu);
    let layers = model.num_layers();
    let kept = |mode: RunMode| {
        let out = model.encode(&input, &mode).unwrap();
        (out.layers_kept(), out.embeddings_kept())
    };
    assert_eq!(kept(RunMode::inference()), (0, false));
    assert_eq!(kept(RunMode::training(1, Freeze::Head)), (0, false));
    assert_eq!(kept(RunMode::training(1, Freeze::Top(1))), (1, false));
    assert_eq!(kept(RunMode::training(1, Freeze::Top(99))), (layers, false));
    assert_eq!(kept(RunMode::training(1, Freeze::All)), (layers, true));
    // and the gradients: head only -> the classifier alone
    let (_, grads, _) = step(
        &model,
        Task::SequenceClassification,
        &RunMode::training(1, Freeze::Head),
    );
    assert_eq!(grads.names(), ["classifier.bias", "classifier.weight"]);
    let (_, grads, _) = step(
        &model,
        Task::SequenceClassification,
        &RunMode::training(1, Freeze::Top(1)),
    );
    assert!(grads
        .names()
        .iter()
        .all(|n| !n.contains("layer.0.") && !n.contains("embeddings")));
    assert!(grads
        .names()
        .contains(&"bert.encoder.layer.1.output.dense.weight"));
}

#[test]
fn freeze_policies_parse_with_clear_errors() {
    assert_eq!("head".parse::<Freeze>().unwrap(), Freeze::Head);
    assert_eq!("top:2".parse::<Freeze>().unwrap(), Freeze::Top(2));
    assert_eq!("all".parse::<Freeze>().unwrap(), Freeze::All);
    let err = "top:x".parse::<Freeze>().unwrap_err().to_string();
    assert!(err.contains("top:K") && err.contains("top:x"), "{err}");
}

fn reload(model: &BertModel, device: &Device) -> BertModel {
    let saved = model.save_blocking().unwrap();
    let mut files = ModelFiles::new("saved");
    files.insert("config.json", saved.config_json.into_bytes());
    files.insert("model.safetensors", saved.safetensors);
    BertModel::load(&files, device).unwrap()
}

#[test]
fn save_and_load_round_trip_with_a_new_classifier() {
    for (name, family) in [("bert-random", "Bert"), ("distilbert-random", "DistilBert")] {
        let mut model = BertModel::load(&files(name), &Device::Cpu).unwrap();
        let labels: Vec<String> = ["negative", "positive", "neutral"]
            .map(String::from)
            .to_vec();
        model.add_sequence_classifier(&labels, 42).unwrap();
        assert_eq!(
            model.architecture(),
            format!("{family}ForSequenceClassification")
        );
        // transformers' init: classifier weight ~ normal(0, initializer_range), bias 0
        let (_, w) = model
            .named_parameters()
            .into_iter()
            .find(|(n, _)| n == "classifier.weight")
            .unwrap();
        let w = w.to_vec_blocking().unwrap();
        let std = (w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32).sqrt();
        let range = match &model.config {
            webnlu::io::ModelConfig::Bert(c) => c.initializer_range,
            webnlu::io::ModelConfig::DistilBert(c) => c.initializer_range,
        };
        assert!(
            (std / range - 1.0).abs() < 0.25,
            "{name}: init std {std} vs {range}"
        );
        let input = batch(&Device::Cpu);
        let mode = RunMode::inference();
        let before = model
            .forward_task(&input, Task::SequenceClassification, &mode)
            .unwrap()
            .logits
            .to_vec_blocking()
            .unwrap();
        let again = reload(&model, &Device::Cpu);
        assert_eq!(again.config.labels().id2label, labels);
        assert_eq!(
            again
                .named_parameters()
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>(),
            // what was saved: the classifier model, without the MLM / NSP heads of bert-random
            model
                .saved_parameters()
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>()
        );
        let after = again
            .forward_task(&input, Task::SequenceClassification, &mode)
            .unwrap()
            .logits
            .to_vec_blocking()
            .unwrap();
        assert_eq!(before, after, "{name}: logits after save + load");
    }
}

/// The tensor names of a safetensors file (its JSON header).
fn safetensors_names(bytes: &[u8]) -> BTreeSet<String> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}

fn saved_names(model: &BertModel) -> BTreeSet<String> {
    safetensors_names(&model.save_blocking().unwrap().safetensors)
}

fn checkpoint_names(name: &str) -> BTreeSet<String> {
    safetensors_names(files(name).get("model.safetensors").unwrap())
}

/// A saved model holds exactly what transformers' `save_pretrained` writes for the
/// architecture in its config: the committed random checkpoints were written by
/// `save_pretrained` itself (tests/models/reference.py), so their names are the reference.
#[test]
fn save_writes_the_tensors_of_the_saved_architecture_only() {
    // each checkpoint saved as loaded: its own names
    for name in [
        "bert-random",                  // BertForPreTraining: pooler, MLM (tied), NSP
        "bert-random-classifier",       // BertForSequenceClassification
        "bert-random-regression",       // BertForSequenceClassification, one label
        "bert-random-ner",              // BertForTokenClassification: no pooler
        "distilbert-random",            // DistilBertForMaskedLM
        "distilbert-random-classifier", // pre_classifier + classifier
    ] {
        let model = BertModel::load(&files(name), &Device::Cpu).unwrap();
        assert_eq!(saved_names(&model), checkpoint_names(name), "{name}");
    }
    let labels: Vec<String> = ["a", "b"].map(String::from).to_vec();
    // a pretraining checkpoint that gained a task head saves as the task model (the new head
    // wins, as AutoModelFor*.from_pretrained + save_pretrained does): no cls.* tensors
    let mut model = BertModel::load(&files("bert-random"), &Device::Cpu).unwrap();
    model.add_sequence_classifier(&labels, 1).unwrap();
    assert!(model.masked_lm.is_some() && model.next_sentence.is_some());
    assert_eq!(model.architecture(), "BertForSequenceClassification");
    assert_eq!(
        saved_names(&model),
        checkpoint_names("bert-random-classifier")
    );
    let mut model = BertModel::load(&files("bert-random"), &Device::Cpu).unwrap();
    model.add_token_classifier(&labels, 1).unwrap();
    assert_eq!(model.architecture(), "BertForTokenClassification");
    assert_eq!(saved_names(&model), checkpoint_names("bert-random-ner"));
    let mut model = BertModel::load(&files("distilbert-random"), &Device::Cpu).unwrap();
    model.add_sequence_classifier(&labels, 1).unwrap();
    assert_eq!(
        saved_names(&model),
        checkpoint_names("distilbert-random-classifier")
    );
    // BertForMaskedLM is built without a pooling layer: the MLM head, no pooler, no NSP
    let mut model = BertModel::load(&files("bert-random"), &Device::Cpu).unwrap();
    model.next_sentence = None;
    assert_eq!(model.architecture(), "BertForMaskedLM");
    let expected: BTreeSet<String> = checkpoint_names("bert-random")
        .into_iter()
        .filter(|n| !n.starts_with("bert.pooler.") && !n.starts_with("cls.seq_relationship."))
        .collect();
    assert_eq!(saved_names(&model), expected);
    // a bare BertModel (all-MiniLM-L6-v2): no prefix, as transformers' BertModel saves it
    // (its file also holds the `embeddings.position_ids` buffer that older transformers wrote)
    let minilm =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models/all-minilm-l6-v2");
    let minilm_files = ModelFiles::from_dir(&minilm)
        .unwrap_or_else(|e| panic!("{e}: run tests/setup/fetch-assets.sh all-minilm-l6-v2"));
    let model = BertModel::load(&minilm_files, &Device::Cpu).unwrap();
    assert_eq!(model.architecture(), "BertModel");
    let expected: BTreeSet<String> =
        safetensors_names(minilm_files.get("model.safetensors").unwrap())
            .into_iter()
            .filter(|n| n != "embeddings.position_ids")
            .collect();
    assert_eq!(saved_names(&model), expected);
    let again = reload(&model, &Device::Cpu);
    assert_eq!(again.parameter_count(), model.parameter_count());
}

#[test]
fn a_config_that_does_not_fit_the_weights_names_the_tensor_and_shapes() {
    let mut f = files("bert-random");
    let config = String::from_utf8(f.get("config.json").unwrap().to_vec()).unwrap();
    let wrong = config.replace("\"intermediate_size\": 37", "\"intermediate_size\": 40");
    assert_ne!(
        config, wrong,
        "the fixture config changed: update this test"
    );
    f.insert("config.json", wrong.into_bytes());
    let err = BertModel::load(&f, &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("encoder.layer.0.intermediate.dense.weight")
            && text.contains("[40, 32]")
            && text.contains("[37, 32]"),
        "{text}"
    );
}

#[test]
fn bad_input_is_a_clear_error() {
    let model = BertModel::load(&files("bert-random"), &Device::Cpu).unwrap();
    let mode = RunMode::inference();
    let long = EncoderInput::from_ids(&Device::Cpu, &[vec![2; 65]], &[]).unwrap();
    let err = model.encode(&long, &mode).unwrap_err().to_string();
    assert!(
        err.contains("65 tokens") && err.contains("64 positions"),
        "{err}"
    );
    let outside = EncoderInput::from_ids(&Device::Cpu, &[vec![2, 84, 3]], &[]).unwrap();
    let err = model.encode(&outside, &mode).unwrap_err().to_string();
    assert!(
        err.contains("token id 84") && err.contains("vocabulary of 84"),
        "{err}"
    );
    let types = EncoderInput::from_ids(&Device::Cpu, &[vec![2, 3]], &[vec![0, 2]]).unwrap();
    let err = model.encode(&types, &mode).unwrap_err().to_string();
    assert!(err.contains("token type id 2"), "{err}");
    let input = batch(&Device::Cpu);
    let err = model
        .forward_task(&input, Task::SequenceClassification, &mode)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("sequence-classification"), "{err}");
    let mut out = model
        .forward_task(
            &input,
            Task::MaskedLm,
            &RunMode::gradients_without_dropout(Freeze::All),
        )
        .unwrap();
    let bad = Targets::Classes(vec![500; 22]);
    let err = model
        .backward_task(&mut out, &bad, &mut Gradients::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("label 500") && err.contains("0..84"), "{err}");
}

#[test]
fn next_sentence_backward_matches_finite_differences() {
    check_finite_differences(
        "bert-random",
        Task::NextSentence,
        &[
            "bert.encoder.layer.1.attention.self.query.weight",
            "bert.pooler.dense.bias",
            "cls.seq_relationship.weight",
        ],
    );
}

#[test]
fn backward_accumulates_over_batches() {
    // gradient accumulation = several backwards into one Gradients before the optimizer step
    let model = BertModel::load(&files("bert-random-classifier"), &Device::Cpu).unwrap();
    let mode = RunMode::training(3, Freeze::Top(1));
    let (_, once, _) = step(&model, Task::SequenceClassification, &mode);
    let input = batch(&Device::Cpu);
    let mut twice = Gradients::new();
    for _ in 0..2 {
        let mut out = model
            .forward_task(&input, Task::SequenceClassification, &mode)
            .unwrap();
        model
            .backward_task(&mut out, &targets(Task::SequenceClassification), &mut twice)
            .unwrap();
    }
    for (name, g) in once.iter() {
        let a = g.to_vec_blocking().unwrap();
        let b = twice.get(name).unwrap().to_vec_blocking().unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (2.0 * x - y).abs() <= 1e-6 + 1e-5 * y.abs(),
                "{name}: {x} x 2 != {y}"
            );
        }
    }
}

/// bert-random with an untied MLM decoder (`tie_word_embeddings: false` and its own
/// `cls.predictions.decoder.weight`, here 0.5 x the word embeddings).
fn untied_files() -> ModelFiles {
    let f = files("bert-random");
    let file = f.weights().unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = file
        .tensors()
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                t.to_f32().unwrap().into_owned(),
            )
        })
        .collect();
    let word = tensors
        .iter()
        .find(|t| t.0.ends_with("word_embeddings.weight"))
        .unwrap()
        .clone();
    tensors.push((
        "cls.predictions.decoder.weight".into(),
        word.1,
        word.2.iter().map(|v| 0.5 * v).collect(),
    ));
    let views: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice()))
        .collect();
    let bytes = webnlu::io::write_safetensors(&views).unwrap();
    let config = String::from_utf8(f.get("config.json").unwrap().to_vec()).unwrap();
    let config = config.replacen('{', "{\n  \"tie_word_embeddings\": false,", 1);
    let mut out = ModelFiles::new("bert-random-untied");
    out.insert("config.json", config.into_bytes());
    out.insert("model.safetensors", bytes);
    out
}

#[test]
fn an_untied_decoder_is_its_own_head_parameter() {
    let model = BertModel::load(&untied_files(), &Device::Cpu).unwrap();
    assert!(model.masked_lm.as_ref().unwrap().decoder.is_some());
    let (_, grads, _) = step(&model, Task::MaskedLm, &RunMode::training(5, Freeze::Head));
    assert!(grads.get("cls.predictions.decoder.weight").is_some());
    assert!(grads
        .get("bert.embeddings.word_embeddings.weight")
        .is_none());
    // the tied model's logits differ: the decoder really is the separate tensor
    let tied = BertModel::load(&files("bert-random"), &Device::Cpu).unwrap();
    let mode = RunMode::inference();
    let logits = |m: &BertModel| {
        m.forward_task(&batch(&Device::Cpu), Task::MaskedLm, &mode)
            .unwrap()
            .logits
            .to_vec_blocking()
            .unwrap()
    };
    assert_ne!(logits(&model), logits(&tied));
    // saved and loaded again: still untied, same logits
    let again = reload(&model, &Device::Cpu);
    assert!(again.masked_lm.as_ref().unwrap().decoder.is_some());
    assert_eq!(logits(&again), logits(&model));
}

#[test]
fn an_untied_config_without_a_decoder_weight_names_it() {
    let mut f = files("bert-random");
    let config = String::from_utf8(f.get("config.json").unwrap().to_vec()).unwrap();
    let config = config.replacen('{', "{\n  \"tie_word_embeddings\": false,", 1);
    f.insert("config.json", config.into_bytes());
    let err = BertModel::load(&f, &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("cls.predictions.decoder.weight"), "{err}");
}

#[test]
fn an_unsupported_architecture_is_refused_by_name() {
    let mut f = files("bert-random");
    let config = String::from_utf8(f.get("config.json").unwrap().to_vec()).unwrap();
    f.insert(
        "config.json",
        config
            .replace("\"model_type\": \"bert\"", "\"model_type\": \"roberta\"")
            .into_bytes(),
    );
    let err = BertModel::load(&f, &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("roberta"), "{err}");
}

#[test]
fn encoder_input_refuses_inconsistent_rows() {
    let cpu = Device::Cpu;
    let err = EncoderInput::from_ids(&cpu, &[], &[])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no rows"), "{err}");
    let err = EncoderInput::from_ids(&cpu, &[vec![2, 3]], &[vec![0]])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("2 ids but 1 type ids"), "{err}");
    let err = EncoderInput::from_padded(&cpu, 2, 3, vec![0; 6], vec![0; 6], vec![1; 5])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("attention mask"), "{err}");
    // rows of different lengths are padded with id 0 and mask 0
    let input = EncoderInput::from_ids(&cpu, &[vec![2, 7, 3], vec![2, 3]], &[]).unwrap();
    assert_eq!((input.batch, input.seq), (2, 3));
    assert_eq!(input.host_ids, [2, 7, 3, 2, 3, 0]);
    assert_eq!(input.attention_mask, [1, 1, 1, 1, 1, 0]);
}

/// A checkpoint whose head needs a pooler it does not hold gets a random one, and says so (as
/// transformers warns about "newly initialized" weights); a complete checkpoint says nothing.
#[test]
fn a_missing_pooler_is_initialized_and_listed_as_newly_initialized() {
    for name in ["bert-random", "bert-random-classifier", "bert-random-ner"] {
        let model = BertModel::load(&files(name), &Device::Cpu).unwrap();
        assert!(
            model.newly_initialized.is_empty(),
            "{name}: {:?}",
            model.newly_initialized
        );
    }
    // bert-random-classifier without its pooler tensors
    let mut f = files("bert-random-classifier");
    let weights = f.weights().unwrap();
    let kept: Vec<(String, Vec<usize>, Vec<f32>)> = weights
        .tensors()
        .iter()
        .filter(|t| !t.name.contains("pooler"))
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                t.to_f32().unwrap().into_owned(),
            )
        })
        .collect();
    assert!(
        kept.len() + 2 == weights.tensors().len(),
        "the fixture has a pooler"
    );
    drop(weights);
    let views: Vec<(&str, &[usize], &[f32])> = kept
        .iter()
        .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice()))
        .collect();
    f.insert("model.safetensors", write_safetensors(&views).unwrap());
    let model = BertModel::load(&f, &Device::Cpu).unwrap();
    assert!(model.pooler.is_some());
    assert_eq!(
        model.newly_initialized,
        ["bert.pooler.dense.weight", "bert.pooler.dense.bias"]
    );
}
