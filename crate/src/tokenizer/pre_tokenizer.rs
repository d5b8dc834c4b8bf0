//! `BertPreTokenizer` (HF `tokenizers::pre_tokenizers::bert`): split the normalized text on
//! whitespace (dropped) and make every punctuation character a word of its own. Punctuation is
//! ASCII punctuation (`!`..`/`, `:`..`@`, `[`..`` ` ``, `{`..`~`) or any Unicode P* category.
//!
//! webnlu fuses normalization and pre-tokenization into one pass over the original text: each
//! original character is normalized (see normalizer.rs), and each normalized character either
//! ends the current word (whitespace), forms a word alone (punctuation), or extends the word.
//! For each word the caller gets its bytes and, per byte, the index (in Unicode code points) of
//! the original character it came from.

use unicode_categories::UnicodeCategories;

use super::normalizer::{BertNormalizer, REMOVED};

#[inline]
pub fn is_bert_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// One pre-tokenized word, reused from word to word (no allocation per word).
#[derive(Debug, Default, Clone)]
pub struct Word {
    pub bytes: Vec<u8>,         // (B,) normalized UTF-8 of the word
    pub char_of_byte: Vec<u32>, // (B,) original character index (code points) of each byte
    pub chars: usize,           // number of normalized characters
}

impl Word {
    #[inline(always)]
    fn clear(&mut self) {
        self.bytes.clear();
        self.char_of_byte.clear();
        self.chars = 0;
    }
    #[inline(always)]
    fn push_ascii(&mut self, byte: u8, original: u32) {
        self.bytes.push(byte);
        self.char_of_byte.push(original);
        self.chars += 1;
    }
    #[inline(always)]
    fn push_char(&mut self, c: char, original: u32) {
        let mut buf = [0u8; 4];
        let encoded = c.encode_utf8(&mut buf).as_bytes();
        self.bytes.extend_from_slice(encoded);
        for _ in 0..encoded.len() {
            self.char_of_byte.push(original);
        }
        self.chars += 1;
    }
}

/// Byte classes of normalized ASCII for the splitter.
const LETTER: u8 = 0;
const SPACE: u8 = 1;
const PUNCT: u8 = 2;

#[derive(Debug, Clone)]
pub struct BertPreTokenizer {
    ascii_class: [u8; 128], // (128,) LETTER, SPACE or PUNCT for each ASCII byte
}

impl Default for BertPreTokenizer {
    fn default() -> Self {
        let mut ascii_class = [LETTER; 128];
        for (b, class) in ascii_class.iter_mut().enumerate() {
            let c = b as u8 as char;
            *class = if c.is_whitespace() {
                SPACE
            } else if is_bert_punctuation(c) {
                PUNCT
            } else {
                LETTER
            };
        }
        BertPreTokenizer { ascii_class }
    }
}

impl BertPreTokenizer {
    /// Normalizes `text` and calls `on_word` for each word in order. `first_char` is the index
    /// (code points) of `text`'s first character in the whole input.
    #[inline]
    pub fn for_each_word(
        &self,
        normalizer: &BertNormalizer,
        text: &str,
        first_char: u32,
        word: &mut Word,
        mut on_word: impl FnMut(&Word),
    ) {
        word.clear();
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut original = first_char;
        while i < bytes.len() {
            let b = bytes[i];
            if b < 0x80 {
                i += 1;
                let index = original;
                original += 1;
                let n = normalizer.ascii(b);
                if n == REMOVED {
                    continue;
                }
                self.add_ascii(n, index, word, &mut on_word);
            } else {
                // SAFETY of the slicing: i is always on a char boundary (we advance by whole chars).
                let c = text[i..]
                    .chars()
                    .next()
                    .expect("i < len on a char boundary");
                i += c.len_utf8();
                let index = original;
                original += 1;
                normalizer.normalize_char(c, &mut |n: char| {
                    if n.is_ascii() {
                        self.add_ascii(n as u8, index, word, &mut on_word);
                    } else if n.is_whitespace() {
                        end_word(word, &mut on_word);
                    } else if is_bert_punctuation(n) {
                        end_word(word, &mut on_word);
                        word.push_char(n, index);
                        on_word(word);
                        word.clear();
                    } else {
                        word.push_char(n, index);
                    }
                });
            }
        }
        end_word(word, &mut on_word);
    }

    /// The normalized ASCII character `n` (original character `index`): a letter extends the
    /// word, a space ends it, punctuation ends it and is a word of its own.
    #[inline(always)]
    fn add_ascii(&self, n: u8, index: u32, word: &mut Word, on_word: &mut impl FnMut(&Word)) {
        match self.ascii_class[n as usize] {
            LETTER => word.push_ascii(n, index),
            SPACE => end_word(word, on_word),
            _ => {
                end_word(word, on_word);
                word.push_ascii(n, index);
                on_word(word);
                word.clear();
            }
        }
    }
}

/// Hands the word built so far (if any) to `on_word` and starts the next one.
#[inline(always)]
fn end_word(word: &mut Word, on_word: &mut impl FnMut(&Word)) {
    if word.chars > 0 {
        on_word(word);
        word.clear();
    }
}
