//! AllenNLP's ELMo `options.json` (see `allennlp/modules/elmo.py`, `_ElmoCharacterEncoder` and
//! `_ElmoBiLm`): the character CNN and the LSTM language model's sizes.

use serde::Deserialize;

use crate::{Error, Result};

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ElmoOptions {
    pub char_cnn: CharCnnOptions,
    pub lstm: LstmOptions,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CharCnnOptions {
    /// "relu" or "tanh" (AllenNLP accepts these two).
    pub activation: String,
    pub embedding: CharEmbeddingOptions,
    /// (width, number of filters) per convolution.
    pub filters: Vec<(usize, usize)>,
    pub max_characters_per_token: usize,
    /// 262 in AllenNLP (it overrides the 261 of the original TensorFlow options).
    #[serde(default = "default_n_characters")]
    pub n_characters: usize,
    pub n_highway: usize,
}

fn default_n_characters() -> usize {
    262
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CharEmbeddingOptions {
    pub dim: usize,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct LstmOptions {
    pub dim: usize,
    pub projection_dim: usize,
    pub n_layers: usize,
    pub cell_clip: f32,
    pub proj_clip: f32,
    #[serde(default)]
    pub use_skip_connections: bool,
}

impl ElmoOptions {
    pub fn from_json(file: &str, text: &str) -> Result<ElmoOptions> {
        let options: ElmoOptions = serde_json::from_str(text)
            .map_err(|e| Error::format(file, format!("not a valid ELMo options.json: {e}")))?;
        let cnn = &options.char_cnn;
        if cnn.activation != "relu" && cnn.activation != "tanh" {
            return Err(Error::unsupported(format!(
                "{file}: char_cnn activation {:?} (AllenNLP supports relu and tanh)",
                cnn.activation
            )));
        }
        if cnn.filters.is_empty() || cnn.filters.iter().any(|&(w, n)| w == 0 || n == 0) {
            return Err(Error::format(
                file,
                "char_cnn.filters must be non-empty (width, count) pairs",
            ));
        }
        if cnn
            .filters
            .iter()
            .any(|&(w, _)| w > cnn.max_characters_per_token)
        {
            return Err(Error::format(
                file,
                "a char_cnn filter is wider than max_characters_per_token",
            ));
        }
        if options.lstm.n_layers == 0 || options.lstm.dim == 0 || options.lstm.projection_dim == 0 {
            return Err(Error::format(
                file,
                "lstm dim, projection_dim and n_layers must be positive",
            ));
        }
        Ok(options)
    }

    /// Total filters = width of the CNN output (the highway layers' size).
    pub fn n_filters(&self) -> usize {
        self.char_cnn.filters.iter().map(|f| f.1).sum()
    }
}
