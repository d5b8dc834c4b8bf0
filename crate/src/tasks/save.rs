//! Saving a pipeline as a model directory that webnlu and transformers load: config.json and
//! model.safetensors from the model (`BertModel::save`: the tensors of the architecture the
//! config names and no others, so a classifier trained from an MLM checkpoint loads in
//! transformers without unexpected-key warnings), with `"classifier_pooling": "mean"`
//! added for a mean-pooled classifier (see classifier.rs), and the tokenizer files it was loaded
//! with, unchanged.

use crate::io::ModelFiles;
use crate::{Error, Result};

use super::classifier::{ClassifierInput, CLASSIFIER_POOLING_KEY};
use super::pipeline::Pipeline;
use super::problem::{ProblemType, PROBLEM_TYPE_KEY};

/// The tokenizer files a saved directory carries over from the loaded one.
pub const TOKENIZER_FILES: [&str; 4] = [
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

impl Pipeline {
    /// (file name, bytes) of a model directory holding this pipeline.
    pub async fn save(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let saved = self.model.save().await?;
        let mut config: serde_json::Value = serde_json::from_str(&saved.config_json)
            .map_err(|e| Error::format("saved config.json", e.to_string()))?;
        if self.model.sequence_classifier.is_some()
            && self.classifier_input == ClassifierInput::MeanPooled
        {
            config[CLASSIFIER_POOLING_KEY] = "mean".into();
        }
        // transformers chooses the loss (and readers the scores) by it; single-label
        // classification is what a config without it means for several labels
        if self.model.sequence_classifier.is_some() && self.problem_type != ProblemType::SingleLabel
        {
            config[PROBLEM_TYPE_KEY] = self.problem_type.name().into();
        }
        let config = serde_json::to_string_pretty(&config).expect("a JSON value serialises");
        let mut files = vec![
            ("config.json".to_string(), config.into_bytes()),
            ("model.safetensors".to_string(), saved.safetensors),
        ];
        for (name, bytes) in &self.tokenizer_files {
            files.push((name.clone(), bytes.clone()));
        }
        Ok(files)
    }

    /// The saved files as [`ModelFiles`] (what `Pipeline::load` takes).
    pub async fn save_to_files(&self) -> Result<ModelFiles> {
        let mut files = ModelFiles::new("saved model");
        for (name, bytes) in self.save().await? {
            files.insert(name, bytes);
        }
        Ok(files)
    }

    /// Native only: writes the saved files into `dir` (created if needed).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_dir(&self, dir: impl AsRef<std::path::Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        for (name, bytes) in pollster::block_on(self.save())? {
            let path = dir.join(&name);
            std::fs::write(&path, bytes).map_err(|e| Error::io(path.display().to_string(), e))?;
        }
        Ok(())
    }
}
