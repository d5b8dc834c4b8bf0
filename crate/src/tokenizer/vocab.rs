//! The WordPiece vocabulary: token string <-> id, read from a `vocab.txt` (one token per line,
//! the line number is the id, as BERT's original release and HF `BertWordPieceTokenizer` read it)
//! or from the `model.vocab` map of a tokenizer.json.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};

/// Token strings by id and ids by token string. Token strings are shared (`Arc<str>`) so that an
/// `Encoding` can carry its tokens without one allocation per token.
#[derive(Debug, Clone)]
pub struct Vocab {
    tokens: Vec<Arc<str>>,       // (V,) token string of each id
    ids: HashMap<Arc<str>, u32>, // V entries
}

impl Vocab {
    /// Reads a vocab.txt: one token per line, id = line number (from 0). A trailing '\r' is part
    /// of the line ending, not of the token. An empty line is an empty token (refused), and a
    /// token that appears twice is refused (HF would silently let the later line win).
    pub fn from_vocab_txt(text: &str, what: &str) -> Result<Vocab> {
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        let mut entries = Vec::with_capacity(lines.len());
        for (number, line) in lines.iter().enumerate() {
            let token = line.strip_suffix('\r').unwrap_or(line);
            if token.is_empty() {
                return Err(Error::format(
                    what,
                    format!("line {}: empty token", number + 1),
                ));
            }
            entries.push((token.to_string(), number as u32));
        }
        Vocab::from_entries(entries, what)
    }

    /// Builds a vocab from (token, id) pairs; ids must be unique and dense (0..V).
    pub fn from_entries(entries: Vec<(String, u32)>, what: &str) -> Result<Vocab> {
        if entries.is_empty() {
            return Err(Error::format(what, "the vocabulary is empty"));
        }
        let size = entries.len();
        let mut tokens: Vec<Option<Arc<str>>> = vec![None; size];
        let mut ids: HashMap<Arc<str>, u32> = HashMap::with_capacity(size);
        for (token, id) in entries {
            let shared: Arc<str> = Arc::from(token.as_str());
            if let Some(previous) = ids.get(&shared) {
                return Err(Error::format(
                    what,
                    format!("duplicate token {token:?} (ids {previous} and {id})"),
                ));
            }
            let slot = tokens.get_mut(id as usize).ok_or_else(|| {
                Error::format(
                    what,
                    format!("token {token:?} has id {id}, outside 0..{size}"),
                )
            })?;
            if let Some(other) = slot {
                return Err(Error::format(
                    what,
                    format!("id {id} is given to both {other:?} and {token:?}"),
                ));
            }
            *slot = Some(shared.clone());
            ids.insert(shared, id);
        }
        let tokens = tokens
            .into_iter()
            .map(|t| t.expect("dense ids checked above"))
            .collect();
        Ok(Vocab { tokens, ids })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub fn id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    pub fn token(&self, id: u32) -> Option<&Arc<str>> {
        self.tokens.get(id as usize)
    }

    /// All tokens in id order.
    pub fn tokens(&self) -> &[Arc<str>] {
        &self.tokens
    }
}
