//! Added tokens (HF `AddedVocabulary`): special tokens such as `[MASK]` are found in the raw
//! text before normalization and become one token each, so "the [MASK] sat" keeps its mask.
//! Matching is leftmost-longest, as HF's Aho-Corasick automaton does it. Only tokens with
//! `normalized: false` and no lstrip/rstrip/single_word are supported (BERT's are all so);
//! tokenizer_json.rs refuses the others by name.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedToken {
    pub content: String,
    pub id: u32,
    pub special: bool,
}

#[derive(Debug, Clone, Default)]
pub struct AddedTokens {
    tokens: Vec<AddedToken>, // longest content first (leftmost-longest)
    first_byte: Vec<bool>,   // (256,) some token starts with this byte
}

impl AddedTokens {
    pub fn new(mut tokens: Vec<AddedToken>) -> AddedTokens {
        tokens.retain(|t| !t.content.is_empty());
        crate::sort::sort_by(&mut tokens, |a, b| {
            b.content.len().cmp(&a.content.len()).then(a.id.cmp(&b.id))
        });
        let mut first_byte = vec![false; 256];
        for t in &tokens {
            first_byte[t.content.as_bytes()[0] as usize] = true;
        }
        AddedTokens { tokens, first_byte }
    }

    pub fn tokens(&self) -> &[AddedToken] {
        &self.tokens
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.tokens.iter().any(|t| t.special && t.id == id)
    }

    /// The leftmost (then longest) match in `text`: (start byte, end byte, id).
    #[inline]
    pub fn find(&self, text: &str) -> Option<(usize, usize, u32)> {
        if self.tokens.is_empty() {
            return None;
        }
        let bytes = text.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if !self.first_byte[b as usize] {
                continue;
            }
            for t in &self.tokens {
                if bytes[i..].starts_with(t.content.as_bytes()) {
                    return Some((i, i + t.content.len(), t.id));
                }
            }
        }
        None
    }
}
