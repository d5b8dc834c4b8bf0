//! Looking inside a model: for one text (or a pair of texts) its tokens, the hidden state of
//! every layer and, when asked, every layer's attention probabilities, as transformers'
//! `output_hidden_states=True, output_attentions=True` (eager attention) give them; and one
//! vector per word (the mean of its WordPiece vectors at one layer), to compare a word across
//! sentences.
//!
//! ```text
//! hidden_states  (S, T, C)        S selected of the L + 1: 0 = embeddings, l = layer l's output
//! attentions     (A, NH, T, T)    A layers, post-softmax, rows sum to 1
//! word vectors   (W, C)           mean over each word's pieces of hidden state `layer`
//! ```
//!
//! Inspection reads a text in one window: a text (or pair) longer than the model's positions
//! is refused with its length named. A pair is encoded as the tokenizer encodes pairs
//! (`[CLS] a [SEP] b [SEP]`, type ids 0 then 1); DistilBERT has no token-type embeddings, so
//! for it the type ids are reported but do not reach the model (as in transformers).
//!
//! Layer selection ([`LayerSelection`]): the indices of the hidden states to report; the
//! attentions reported are those of the layers that produced a selected hidden state (hidden
//! state K >= 1 is layer K's output, its attention is transformers' `attentions[K - 1]`); the
//! embeddings (K = 0) have none.

use std::str::FromStr;

use crate::models::{EncoderInput, StatesToKeep};
use crate::tokenizer::{char_offsets_to_utf16, Encoding};
use crate::{Error, Result};

use super::pipeline::Pipeline;

/// Which of the L + 1 hidden states to report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LayerSelection {
    /// 0 (the embeddings) to L.
    #[default]
    All,
    /// These indices, reported in increasing order (duplicates once).
    Only(Vec<usize>),
}

impl FromStr for LayerSelection {
    type Err = Error;
    /// "all" or "K,K,..." (indices into the L + 1 hidden states).
    fn from_str(s: &str) -> Result<Self> {
        if s == "all" {
            return Ok(LayerSelection::All);
        }
        let indices = s
            .split(',')
            .map(|part| {
                part.trim().parse::<usize>().map_err(|_| {
                    Error::invalid(format!(
                        "layers must be 'all' or indices like 0,3,6, got {s:?} ({part:?} is not \
                         a non-negative integer)"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LayerSelection::Only(indices))
    }
}

impl LayerSelection {
    /// The selected indices for a model of `n_layers` layers, sorted, each once; an index
    /// beyond L is an error naming it.
    pub fn indices(&self, n_layers: usize) -> Result<Vec<usize>> {
        match self {
            LayerSelection::All => Ok((0..=n_layers).collect()),
            LayerSelection::Only(indices) => {
                if indices.is_empty() {
                    return Err(Error::invalid("layers: no index given"));
                }
                if let Some(&bad) = indices.iter().find(|&&i| i > n_layers) {
                    return Err(Error::invalid(format!(
                        "layers: hidden state {bad} does not exist, the model has {n_layers} \
                         layers (hidden states 0 = embeddings to {n_layers})"
                    )));
                }
                let mut sorted = indices.clone();
                crate::sort::sort_dedup(&mut sorted);
                Ok(sorted)
            }
        }
    }
}

/// What to report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InspectOptions {
    pub layers: LayerSelection,
    /// Report the attention probabilities too.
    pub attentions: bool,
}

/// The inside of the model for one text or pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// (T) WordPiece tokens, special tokens included.
    pub tokens: Vec<String>,
    /// (T) code-point offsets of each token in its own text (the pair's second text for a token
    /// of it); (0, 0) for special tokens.
    pub offsets: Vec<(usize, usize)>,
    /// (T) 0 for the first text, 1 for the second of a pair.
    pub type_ids: Vec<u32>,
    /// (T) 1 for the tokens the tokenizer added ([CLS], [SEP]).
    pub special_tokens_mask: Vec<u32>,
    /// The indices (into the L + 1 hidden states) of `hidden_states`, increasing.
    pub layers: Vec<usize>,
    /// (S, T, C) the selected hidden states, S = layers.len().
    pub hidden_states: Vec<f32>,
    /// The encoder layers (0-based: transformers' index into `attentions`) of `attentions`.
    pub attention_layers: Vec<usize>,
    /// (A, NH, T, T) post-softmax attention probabilities, A = attention_layers.len(); empty
    /// unless asked for.
    pub attentions: Vec<f32>,
    /// C
    pub hidden_size: usize,
    /// NH
    pub heads: usize,
}

impl Inspection {
    /// T
    pub fn seq(&self) -> usize {
        self.tokens.len()
    }

    /// The offsets in UTF-16 code units (what JavaScript's `String.prototype.slice` takes) of
    /// `text` for the first text's tokens and of `pair` for the second's. Which text a token
    /// belongs to follows the layout `[CLS] a [SEP] b [SEP]`: after the second special token.
    pub fn offsets_utf16(&self, text: &str, pair: Option<&str>) -> Vec<(usize, usize)> {
        let first = char_offsets_to_utf16(text, &self.offsets);
        let second = pair.map(|b| char_offsets_to_utf16(b, &self.offsets));
        let mut specials_seen = 0;
        (0..self.seq())
            .map(|t| {
                if self.special_tokens_mask[t] != 0 {
                    specials_seen += 1;
                    return (0, 0);
                }
                match &second {
                    Some(second) if specials_seen >= 2 => second[t],
                    _ => first[t],
                }
            })
            .collect()
    }

    /// (T, C) hidden state `index` (an index into the L + 1), if it was selected.
    pub fn hidden_state(&self, index: usize) -> Option<&[f32]> {
        let position = self.layers.iter().position(|&l| l == index)?;
        let size = self.seq() * self.hidden_size;
        Some(&self.hidden_states[position * size..(position + 1) * size])
    }

    /// (NH, T, T) the attention probabilities of encoder layer `layer` (0-based), if reported.
    pub fn attention(&self, layer: usize) -> Option<&[f32]> {
        let position = self.attention_layers.iter().position(|&l| l == layer)?;
        let size = self.heads * self.seq() * self.seq();
        Some(&self.attentions[position * size..(position + 1) * size])
    }
}

/// One word of a text: its span and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordSpan {
    /// The word as written in the text (`text[start..end]` in code points).
    pub word: String,
    /// Code-point offsets in the text.
    pub start: usize,
    pub end: usize,
    /// How many WordPiece tokens it has.
    pub pieces: usize,
}

/// One vector per word: the mean of the word's WordPiece vectors at one hidden state.
#[derive(Clone, Debug, PartialEq)]
pub struct WordVectors {
    pub words: Vec<WordSpan>,
    /// (W, C) row w is words[w]'s vector.
    pub vectors: Vec<f32>,
    /// C
    pub hidden_size: usize,
    /// The hidden state they were read from (0 = embeddings, L = last layer).
    pub layer: usize,
}

impl Pipeline {
    /// The encoding inspection reads: the text or the pair as the tokenizer encodes it, with
    /// no truncation; longer than the model's positions is an error naming the length.
    pub fn inspection_encoding(&self, text: &str, pair: Option<&str>) -> Result<Encoding> {
        let encoding = match pair {
            None => self.tokenizer.encode_with_truncation(text, None)?,
            Some(b) => self.tokenizer.encode_pair_with_truncation(text, b, None)?,
        };
        let positions = self.model.max_positions();
        if encoding.len() > positions {
            let what = if pair.is_some() {
                "the pair"
            } else {
                "the text"
            };
            return Err(Error::invalid(format!(
                "{what} is {} tokens long (special tokens included), the model reads at most \
                 {positions}; inspection reads one window, so shorten it",
                encoding.len()
            )));
        }
        Ok(encoding)
    }

    /// Tokens, hidden states and (when asked) attention probabilities of `text` (or of the
    /// pair `text`, `pair`).
    pub async fn inspect(
        &self,
        text: &str,
        pair: Option<&str>,
        options: &InspectOptions,
    ) -> Result<Inspection> {
        let encoding = self.inspection_encoding(text, pair)?;
        let n_layers = self.model.num_layers();
        let layers = options.layers.indices(n_layers)?;
        let attention_layers: Vec<usize> = if options.attentions {
            layers.iter().filter(|&&k| k >= 1).map(|&k| k - 1).collect()
        } else {
            Vec::new()
        };
        let keep = StatesToKeep {
            hidden_states: layers.clone(),
            attentions: attention_layers.clone(),
        };
        let input = EncoderInput::from_encodings(self.device(), std::slice::from_ref(&encoding))?;
        let states = self.model.encode_states(&input, &keep)?;
        let (t, c) = (encoding.len(), self.hidden_size());
        let mut hidden_states = Vec::with_capacity(layers.len() * t * c);
        for (_, state) in &states.hidden_states {
            hidden_states.extend(state.to_vec().await?); // (1, T, C)
        }
        let heads = self.model.layers.first().map_or(0, |layer| layer.heads);
        let mut attentions = Vec::with_capacity(attention_layers.len() * heads * t * t);
        for (_, probabilities) in &states.attentions {
            attentions.extend(probabilities.to_vec().await?); // (1, NH, T, T)
        }
        Ok(Inspection {
            tokens: encoding.tokens.iter().map(|t| t.to_string()).collect(),
            offsets: encoding.offsets.clone(),
            type_ids: encoding.type_ids.clone(),
            special_tokens_mask: encoding.special_tokens_mask.clone(),
            layers,
            hidden_states,
            attention_layers,
            attentions,
            hidden_size: c,
            heads,
        })
    }

    /// One vector per word of `text` (see [`Tokenizer::word_spans`](crate::tokenizer::Tokenizer::word_spans)):
    /// the mean of its WordPiece tokens' vectors at hidden state `layer` (default the last,
    /// L); special tokens left out.
    pub async fn word_vectors(&self, text: &str, layer: Option<usize>) -> Result<WordVectors> {
        let n_layers = self.model.num_layers();
        let layer = layer.unwrap_or(n_layers);
        let options = InspectOptions {
            layers: LayerSelection::Only(vec![layer]),
            attentions: false,
        };
        let inspection = self.inspect(text, None, &options).await?;
        let hidden = inspection
            .hidden_state(layer)
            .ok_or_else(|| Error::invalid(format!("hidden state {layer} was not computed")))?; // (T, C)
        let c = inspection.hidden_size;
        let spans = self.tokenizer.word_spans(text);
        // (W) the tokens of each word, by a walk over both (both are in text order)
        let mut pieces: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        let mut w = 0;
        for (t, &(start, end)) in inspection.offsets.iter().enumerate() {
            if inspection.special_tokens_mask[t] != 0 {
                continue;
            }
            while w < spans.len() && spans[w].1 <= start {
                w += 1;
            }
            match spans.get(w) {
                Some(&(word_start, word_end)) if word_start <= start && end <= word_end => {
                    pieces[w].push(t)
                }
                _ => {
                    return Err(Error::invalid(format!(
                    "word vectors: token {t} {:?} at {start}..{end} lies in no word of the text",
                    inspection.tokens[t]
                )))
                }
            }
        }
        let characters: Vec<char> = text.chars().collect();
        let mut words = Vec::with_capacity(spans.len());
        let mut vectors = Vec::with_capacity(spans.len() * c);
        for (&(start, end), tokens) in spans.iter().zip(&pieces) {
            if tokens.is_empty() {
                continue; // cannot happen for WordPiece (an unknown word is one [UNK]); kept safe
            }
            let mut mean = vec![0f32; c];
            for &t in tokens {
                for (m, &x) in mean.iter_mut().zip(&hidden[t * c..(t + 1) * c]) {
                    *m += x;
                }
            }
            let n = tokens.len() as f32;
            vectors.extend(mean.into_iter().map(|m| m / n));
            words.push(WordSpan {
                word: characters[start..end].iter().collect(),
                start,
                end,
                pieces: tokens.len(),
            });
        }
        Ok(WordVectors {
            words,
            vectors,
            hidden_size: c,
            layer,
        })
    }
}
