//! A BERT checkpoint with random weights, made in memory: `config.json` and `model.safetensors`
//! of a given shape, for what needs a model of some size and not its knowledge (the CLI's
//! `bench model` at bert-base's shape, the tests of a vocabulary too large for one GPU binding).
//! Linear weights and embeddings are uniform with the standard deviation of normal(0, 0.02)
//! (BERT's initializer range), biases too; LayerNorms are weight 1, bias 0.

use serde_json::json;

use super::model_files::ModelFiles;
use super::safetensors::write_safetensors;
use crate::train::SplitMix64;
use crate::Result;

/// The sizes of a random BERT and the head it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomBert {
    pub layers: usize,
    /// C
    pub hidden: usize,
    pub heads: usize,
    pub intermediate: usize,
    /// V
    pub vocab: usize,
    /// the longest sequence (max_position_embeddings)
    pub positions: usize,
    /// true: the masked-LM head (`cls.predictions.*`, a `BertForMaskedLM`); false: the pooler
    /// (`pooler.dense`, a `BertModel`).
    pub masked_lm: bool,
}

impl RandomBert {
    /// The checkpoint, its values drawn from SplitMix64(`seed`): the embeddings, then each
    /// layer's linear layers in order, then the head's (the same seed gives the same values).
    pub fn files(&self, seed: u64) -> Result<ModelFiles> {
        let RandomBert {
            layers,
            hidden: c,
            heads,
            intermediate: inter,
            vocab,
            positions,
            masked_lm,
        } = *self;
        let mut rng = SplitMix64::new(seed);
        let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        let mut random = |name: String, shape: Vec<usize>| {
            let n: usize = shape.iter().product();
            // uniform on (-0.5, 0.5) * 0.0693: the standard deviation 0.02 of normal(0, 0.02)
            let values = (0..n)
                .map(|_| ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.0693)
                .collect();
            tensors.push((name, shape, values));
        };
        random("embeddings.word_embeddings.weight".into(), vec![vocab, c]);
        random(
            "embeddings.position_embeddings.weight".into(),
            vec![positions, c],
        );
        random("embeddings.token_type_embeddings.weight".into(), vec![2, c]);
        let mut norms = vec!["embeddings.LayerNorm".to_string()];
        for l in 0..layers {
            let p = format!("encoder.layer.{l}");
            for (module, out, inp) in [
                ("attention.self.query", c, c),
                ("attention.self.key", c, c),
                ("attention.self.value", c, c),
                ("attention.output.dense", c, c),
                ("intermediate.dense", inter, c),
                ("output.dense", c, inter),
            ] {
                random(format!("{p}.{module}.weight"), vec![out, inp]);
                random(format!("{p}.{module}.bias"), vec![out]);
            }
            norms.push(format!("{p}.attention.output.LayerNorm"));
            norms.push(format!("{p}.output.LayerNorm"));
        }
        if masked_lm {
            random("cls.predictions.transform.dense.weight".into(), vec![c, c]);
            random("cls.predictions.transform.dense.bias".into(), vec![c]);
            random("cls.predictions.bias".into(), vec![vocab]);
            norms.push("cls.predictions.transform.LayerNorm".into());
        } else {
            random("pooler.dense.weight".into(), vec![c, c]);
            random("pooler.dense.bias".into(), vec![c]);
        }
        for norm in norms {
            tensors.push((format!("{norm}.weight"), vec![c], vec![1.0; c]));
            tensors.push((format!("{norm}.bias"), vec![c], vec![0.0; c]));
        }
        let views: Vec<(&str, &[usize], &[f32])> = tensors
            .iter()
            .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice()))
            .collect();
        let mut files = ModelFiles::new("random weights");
        files.insert("model.safetensors", write_safetensors(&views)?);
        let architecture = if masked_lm {
            "BertForMaskedLM"
        } else {
            "BertModel"
        };
        let config = json!({
            "model_type": "bert", "architectures": [architecture], "vocab_size": vocab,
            "hidden_size": c, "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": inter, "hidden_act": "gelu", "max_position_embeddings": positions,
            "type_vocab_size": 2, "layer_norm_eps": 1e-12,
        });
        files.insert("config.json", config.to_string().into_bytes());
        Ok(files)
    }
}
