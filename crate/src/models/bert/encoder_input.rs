//! What goes into the encoder: a padded batch of token ids on a device ([`EncoderInput`]), and
//! how to run it ([`RunMode`]: dropout on or off, the dropout seed, and the freezing policy
//! [`Freeze`] that decides which activations the forward keeps for the backward).

use crate::device::Device;
use crate::tensor::Tensor;
use crate::tokenizer::Encoding;
use crate::{Error, Result};

/// A padded batch on a device: B rows of T tokens, row-major.
pub struct EncoderInput {
    pub batch: usize,
    pub seq: usize,
    /// (B*T) token ids, 0 (`[PAD]` in BERT vocabularies) after each row's end.
    pub ids: Tensor<u32>,
    /// (B*T) segment ids (0 or 1 for BERT; ignored by DistilBERT).
    pub type_ids: Tensor<u32>,
    /// (B*T) 1 = a real token, 0 = padding (host copy: the additive mask is made from it).
    pub attention_mask: Vec<u8>,
    /// (B*T) the ids again on the host, to validate them against the vocabulary (the GPU
    /// embedding kernel does not read them back) and to re-upload them for the backward.
    pub host_ids: Vec<u32>,
    /// (B*T) the segment ids on the host.
    pub host_type_ids: Vec<u32>,
}

impl EncoderInput {
    /// Rows of different lengths, padded with id 0 and mask 0 to the longest row.
    /// `type_ids` may be empty (all zeros) or give one id per token of each row.
    pub fn from_ids(device: &Device, ids: &[Vec<u32>], type_ids: &[Vec<u32>]) -> Result<Self> {
        if ids.is_empty() {
            return Err(Error::invalid("encoder input: no rows"));
        }
        if !type_ids.is_empty() && type_ids.len() != ids.len() {
            return Err(Error::invalid(format!(
                "encoder input: {} rows of ids but {} rows of type ids",
                ids.len(),
                type_ids.len()
            )));
        }
        let batch = ids.len();
        let seq = ids.iter().map(Vec::len).max().unwrap_or(0);
        if seq == 0 {
            return Err(Error::invalid("encoder input: every row is empty"));
        }
        let mut host_ids = vec![0u32; batch * seq];
        let mut host_type_ids = vec![0u32; batch * seq];
        let mut attention_mask = vec![0u8; batch * seq];
        for (b, row) in ids.iter().enumerate() {
            host_ids[b * seq..b * seq + row.len()].copy_from_slice(row);
            attention_mask[b * seq..b * seq + row.len()].fill(1);
            if let Some(types) = type_ids.get(b) {
                if types.len() != row.len() {
                    return Err(Error::invalid(format!(
                        "encoder input row {b}: {} ids but {} type ids",
                        row.len(),
                        types.len()
                    )));
                }
                host_type_ids[b * seq..b * seq + row.len()].copy_from_slice(types);
            }
        }
        Self::from_padded(device, batch, seq, host_ids, host_type_ids, attention_mask)
    }

    /// Tokenizer encodings, with their own attention masks; rows shorter than the longest are
    /// padded with id 0 and mask 0.
    pub fn from_encodings(device: &Device, encodings: &[Encoding]) -> Result<Self> {
        let batch = encodings.len();
        let seq = encodings.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        if batch == 0 || seq == 0 {
            return Err(Error::invalid("encoder input: no tokens"));
        }
        let mut ids = vec![0u32; batch * seq];
        let mut types = vec![0u32; batch * seq];
        let mut mask = vec![0u8; batch * seq];
        for (b, e) in encodings.iter().enumerate() {
            let n = e.ids.len();
            if e.type_ids.len() != n || e.attention_mask.len() != n {
                return Err(Error::invalid(format!(
                    "encoder input: encoding {b} has {n} ids, {} type ids, {} mask values",
                    e.type_ids.len(),
                    e.attention_mask.len()
                )));
            }
            ids[b * seq..b * seq + n].copy_from_slice(&e.ids);
            types[b * seq..b * seq + n].copy_from_slice(&e.type_ids);
            for (m, &v) in mask[b * seq..b * seq + n].iter_mut().zip(&e.attention_mask) {
                *m = (v != 0) as u8;
            }
        }
        Self::from_padded(device, batch, seq, ids, types, mask)
    }

    /// Already padded (B*T) arrays.
    pub fn from_padded(
        device: &Device,
        batch: usize,
        seq: usize,
        ids: Vec<u32>,
        type_ids: Vec<u32>,
        attention_mask: Vec<u8>,
    ) -> Result<Self> {
        let n = batch * seq;
        for (what, len) in [
            ("ids", ids.len()),
            ("type ids", type_ids.len()),
            ("attention mask", attention_mask.len()),
        ] {
            if len != n {
                return Err(Error::shape(
                    format!("encoder input {what}"),
                    [batch, seq],
                    len,
                ));
            }
        }
        Ok(EncoderInput {
            batch,
            seq,
            ids: Tensor::from_vec(device, &[n], ids.clone(), "input_ids")?,
            type_ids: Tensor::from_vec(device, &[n], type_ids.clone(), "token_type_ids")?,
            attention_mask,
            host_ids: ids,
            host_type_ids: type_ids,
        })
    }

    /// Number of real (unpadded) tokens.
    pub fn token_count(&self) -> usize {
        self.attention_mask.iter().filter(|&&m| m != 0).count()
    }
}

/// Which parameters a training step updates (the course's three ways of fine-tuning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freeze {
    /// Only the task head (pooler included, see `heads.rs`); the encoder keeps no activations.
    Head,
    /// The head and the top `k` encoder layers; the backward stops below them.
    Top(usize),
    /// Everything, embeddings included.
    All,
}

impl std::str::FromStr for Freeze {
    type Err = Error;
    /// "head" | "top:k" | "all".
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "head" => Ok(Freeze::Head),
            "all" => Ok(Freeze::All),
            _ => match s.strip_prefix("top:").map(str::parse::<usize>) {
                Some(Ok(k)) => Ok(Freeze::Top(k)),
                _ => Err(Error::invalid(format!(
                    "freeze policy must be head, top:K (K a number of layers) or all, found {s:?}"
                ))),
            },
        }
    }
}

impl std::fmt::Display for Freeze {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Freeze::Head => write!(f, "head"),
            Freeze::Top(k) => write!(f, "top:{k}"),
            Freeze::All => write!(f, "all"),
        }
    }
}

impl Freeze {
    /// The index of the lowest encoder layer that trains (`layers` = none does).
    pub fn lowest_trained_layer(self, layers: usize) -> usize {
        match self {
            Freeze::Head => layers,
            Freeze::Top(k) => layers - k.min(layers),
            Freeze::All => 0,
        }
    }

    pub fn trains_embeddings(self) -> bool {
        self == Freeze::All
    }
}

/// How to run a forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunMode {
    /// Dropout on (training) or off (evaluation, `model.eval()`).
    pub train: bool,
    /// Key of the dropout masks (Threefry): change it every step. Every dropout site of a step
    /// draws its own stream from it.
    pub seed: u64,
    /// Which parameters will receive gradients.
    pub freeze: Freeze,
    /// Keep what the backward needs (per `freeze`); false for pure inference.
    pub backward: bool,
}

impl RunMode {
    /// Inference: no dropout, nothing kept.
    pub fn inference() -> Self {
        RunMode {
            train: false,
            seed: 0,
            freeze: Freeze::Head,
            backward: false,
        }
    }

    /// A training step: dropout on with `seed`, activations kept for `freeze`.
    pub fn training(seed: u64, freeze: Freeze) -> Self {
        RunMode {
            train: true,
            seed,
            freeze,
            backward: true,
        }
    }

    /// Gradients without dropout (what the PyTorch fixtures compute under `model.eval()`).
    pub fn gradients_without_dropout(freeze: Freeze) -> Self {
        RunMode {
            train: false,
            seed: 0,
            freeze,
            backward: true,
        }
    }
}
