//! Saving a model as transformers' `save_pretrained` does: config.json and model.safetensors for
//! the architecture the model now is ([`BertModel::architecture`]), with neither missing nor
//! unexpected tensors, so `from_pretrained` of the folder loads it.

use crate::io::{write_safetensors, ModelConfig};
use crate::ops::matmul::WeightDtype;
use crate::tensor::Tensor;
use crate::{Error, Result};

use super::{BertModel, Family};

/// What [`BertModel::save`] produces: the two files transformers loads.
pub struct SavedModel {
    pub config_json: String,
    pub safetensors: Vec<u8>,
}

impl BertModel {
    /// config.json + model.safetensors that transformers loads (`from_pretrained` of the
    /// directory holding them) into the architecture named in the config, with neither
    /// missing nor unexpected tensors: [`BertModel::saved_parameters`], and the layer weights
    /// held packed only ([`BertModel::pack_for_inference`]), unpacked into the file.
    pub async fn save(&self) -> Result<SavedModel> {
        let dtype = self.weight_dtype();
        if dtype != WeightDtype::Fp32 {
            return Err(Error::unsupported(format!(
                "saving a model loaded with dtype {} with 16-bit layers left: load it with dtype \
                 fp32, or train all its layers (freeze all widens them to fp32), to save it",
                dtype.name()
            )));
        }
        let mut tensors = Vec::new();
        for (name, t) in self.saved_parameters() {
            tensors.push((name, t.shape().to_vec(), t.to_vec().await?));
        }
        // layer weights held packed only (`pack_for_inference`): their values, value for value,
        // unpacked for the file alone (the model keeps its panels)
        let task = self.saved_task();
        for layer in &self.layers {
            for w in layer
                .linears()
                .into_iter()
                .filter_map(|l| l.packed_only_weight())
            {
                let name = self.saved_name(task, w.name());
                tensors.push((name, w.shape().to_vec(), w.unpack_values()));
            }
        }
        let views: Vec<(&str, &[usize], &[f32])> = tensors
            .iter()
            .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice()))
            .collect();
        Ok(SavedModel {
            config_json: self.config_json(),
            safetensors: write_safetensors(&views)?,
        })
    }

    /// Native only: [`BertModel::save`], blocking.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn save_blocking(&self) -> Result<SavedModel> {
        pollster::block_on(self.save())
    }

    /// The head the saved model is: a task head (sequence, then token classifier) wins over
    /// the pretraining heads (MLM and NSP), which the task model does not have.
    fn saved_task(&self) -> SavedTask {
        if self.sequence_classifier.is_some() {
            SavedTask::SequenceClassification
        } else if self.token_classifier.is_some() {
            SavedTask::TokenClassification
        } else if self.masked_lm.is_some() && self.next_sentence.is_some() {
            SavedTask::PreTraining
        } else if self.masked_lm.is_some() {
            SavedTask::MaskedLm
        } else if self.next_sentence.is_some() {
            SavedTask::NextSentencePrediction
        } else {
            SavedTask::Base
        }
    }

    /// The transformers class that the saved model is (`saved_task`).
    pub fn architecture(&self) -> String {
        let task = match self.saved_task() {
            SavedTask::SequenceClassification => "ForSequenceClassification",
            SavedTask::TokenClassification => "ForTokenClassification",
            SavedTask::PreTraining => "ForPreTraining",
            SavedTask::MaskedLm => "ForMaskedLM",
            SavedTask::NextSentencePrediction => "ForNextSentencePrediction",
            SavedTask::Base => "Model",
        };
        match self.family {
            Family::Bert => format!("Bert{task}"),
            Family::DistilBert => format!("DistilBert{task}"),
        }
    }

    /// The parameters that transformers' `save_pretrained` writes for [`Self::architecture`],
    /// under its names: the encoder (`bert.` / `distilbert.` prefix; none for the bare
    /// `BertModel` / `DistilBertModel`), the pooler where that class has one
    /// (BertForSequenceClassification, BertForPreTraining, BertForNextSentencePrediction,
    /// BertModel; not BertForMaskedLM or BertForTokenClassification, built without a pooling
    /// layer), and that class's heads only. A tied decoder is the word embeddings (written once).
    pub fn saved_parameters(&self) -> Vec<(String, &Tensor)> {
        let task = self.saved_task();
        let mut p: Vec<&Tensor> = self.embeddings.parameters();
        for layer in &self.layers {
            p.extend(layer.parameters());
        }
        let with_pooler = matches!(
            task,
            SavedTask::SequenceClassification
                | SavedTask::PreTraining
                | SavedTask::NextSentencePrediction
                | SavedTask::Base
        );
        if let (true, Some(pooler)) = (with_pooler, &self.pooler) {
            pooler.dense.push_parameters(&mut p);
        }
        if let (SavedTask::PreTraining | SavedTask::MaskedLm, Some(head)) = (task, &self.masked_lm)
        {
            p.extend(head.parameters());
        }
        if let (SavedTask::PreTraining | SavedTask::NextSentencePrediction, Some(head)) =
            (task, &self.next_sentence)
        {
            head.seq_relationship.push_parameters(&mut p);
        }
        if let (SavedTask::SequenceClassification, Some(head)) = (task, &self.sequence_classifier) {
            p.extend(head.parameters());
        }
        if let (SavedTask::TokenClassification, Some(head)) = (task, &self.token_classifier) {
            head.classifier.push_parameters(&mut p);
        }
        p.into_iter()
            .map(|t| (self.saved_name(task, t.name()), t))
            .collect()
    }

    /// The name a tensor is saved under for `task`: its own, without the model prefix
    /// (`bert.` / `distilbert.`) for the bare model.
    fn saved_name(&self, task: SavedTask, name: &str) -> String {
        let name = match task {
            SavedTask::Base => name.strip_prefix(self.model_prefix()).unwrap_or(name),
            _ => name,
        };
        name.to_string()
    }

    /// config.json text for this model (transformers' field names).
    pub fn config_json(&self) -> String {
        let labels = self.config.labels();
        // filled by insert, not collected: a map collected from an iterator sorts its entries
        // first, one more copy of the stable sort in the wasm module per iterator type
        let mut id2label = serde_json::Map::new();
        let mut label2id = serde_json::Map::new();
        for (i, label) in labels.id2label.iter().enumerate() {
            id2label.insert(i.to_string(), label.clone().into());
            label2id.insert(label.clone(), i.into());
        }
        let mut json = match &self.config {
            ModelConfig::Bert(c) => {
                let mut object = config_object(c, "bert");
                object.insert("position_embedding_type".into(), "absolute".into());
                object
            }
            ModelConfig::DistilBert(c) => config_object(c, "distilbert"),
        };
        json.insert("architectures".into(), vec![self.architecture()].into());
        json.insert("id2label".into(), id2label.into());
        json.insert("label2id".into(), label2id.into());
        if labels.num_labels == 1 {
            json.insert("problem_type".into(), "regression".into());
        }
        serde_json::to_string_pretty(&serde_json::Value::Object(json))
            .expect("a JSON map serialises")
    }
}

/// Which transformers class a saved model is (the `*For...` part of its name).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SavedTask {
    SequenceClassification,
    TokenClassification,
    PreTraining,
    MaskedLm,
    NextSentencePrediction,
    Base,
}

/// `config` as a JSON object, with `model_type` and the fields its struct declares.
fn config_object(
    config: &impl serde::Serialize,
    model_type: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let mut object = match serde_json::to_value(config) {
        Ok(serde_json::Value::Object(object)) => object,
        _ => unreachable!("a config struct serializes to a JSON object"),
    };
    object.insert("model_type".into(), model_type.into());
    object
}
