//! `Encoding`: what the tokenizer returns for one text or one pair of texts (HF
//! `tokenizers::Encoding`, without the word ids and sequence ranges).

use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoding {
    pub ids: Vec<u32>,         // (T,) vocab ids
    pub type_ids: Vec<u32>,    // (T,) 0 for the first text, 1 for the second
    pub tokens: Vec<Arc<str>>, // (T,) token strings (shared with the vocab)
    /// (T,) (start, end) in Unicode code points of the original text (of its own text for the
    /// second text of a pair); (0, 0) for special and padding tokens.
    pub offsets: Vec<(usize, usize)>,
    pub attention_mask: Vec<u32>, // (T,) 1 = real token, 0 = padding
    pub special_tokens_mask: Vec<u32>, // (T,) 1 = added by post-processing or padding
    /// The next windows of a text longer than the truncation length (sliding window with
    /// `stride` tokens of overlap), each a complete encoding with its own special tokens.
    pub overflowing: Vec<Encoding>,
}

impl Encoding {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// This encoding's offsets converted to UTF-16 code units of `text` (what JavaScript's
    /// `String.prototype.slice` expects). `text` must be the text the offsets refer to.
    pub fn offsets_utf16(&self, text: &str) -> Vec<(usize, usize)> {
        char_offsets_to_utf16(text, &self.offsets)
    }
}

/// Converts (start, end) code-point offsets of `text` to UTF-16 code-unit offsets.
pub fn char_offsets_to_utf16(text: &str, offsets: &[(usize, usize)]) -> Vec<(usize, usize)> {
    if text.is_ascii() {
        return offsets.to_vec();
    }
    // (C+1,) UTF-16 position of each code point boundary.
    let mut utf16_at = Vec::with_capacity(text.len() + 1);
    let mut position = 0usize;
    utf16_at.push(0);
    for c in text.chars() {
        position += c.len_utf16();
        utf16_at.push(position);
    }
    let last = utf16_at.len() - 1;
    offsets
        .iter()
        .map(|&(s, e)| (utf16_at[s.min(last)], utf16_at[e.min(last)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_offsets_count_astral_characters_twice() {
        // "a😀b": code points a=0, 😀=1, b=2; UTF-16 units a=0, 😀=1..3, b=3.
        let text = "a\u{1F600}b";
        assert_eq!(
            char_offsets_to_utf16(text, &[(0, 1), (1, 2), (2, 3), (0, 0)]),
            [(0, 1), (1, 3), (3, 4), (0, 0)]
        );
        assert_eq!(char_offsets_to_utf16("abc", &[(1, 2)]), [(1, 2)]);
    }
}
