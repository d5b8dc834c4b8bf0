//! `BertNormalizer` (HF `tokenizers::normalizers::bert`): in this order,
//! 1. clean_text: drop U+0000, U+FFFD and control characters (Unicode C* except \t \n \r),
//!    then turn every whitespace character into ' ';
//! 2. handle_chinese_chars: put a space on each side of a CJK ideograph;
//! 3. strip_accents (unset = follow lowercase): canonical decomposition (NFD), then drop
//!    non-spacing marks (Mn);
//! 4. lowercase: Unicode lowercase mapping (one character may become several).
//!
//! Every step maps one character to zero or more characters, so webnlu normalizes character by
//! character and each normalized character remembers the original character it came from: that
//! is exactly the alignment HF's `NormalizedString` keeps (inserted characters share the
//! alignment of the character they were made from), and it gives token offsets for free.
//!
//! Character tables: `unicode_categories` (C*, Mn) and `unicode-normalization-alignments`
//! (NFD, Unicode 9), the crates HF uses, so both agree on every character. One difference is
//! known: HF's NFD also reorders runs of combining marks by combining class; webnlu decomposes
//! without reordering. Both drop Mn marks when stripping accents, so the results differ only for
//! a spacing mark (Mc) with a non-zero combining class (a handful of musical symbols) placed
//! after another mark, with strip_accents on.

use unicode_categories::UnicodeCategories;

/// Marks an ASCII byte that clean_text removes.
pub const REMOVED: u8 = 0xFF;

#[derive(Debug, Clone)]
pub struct BertNormalizer {
    pub clean_text: bool,
    pub handle_chinese_chars: bool,
    pub strip_accents: Option<bool>,
    pub lowercase: bool,
    /// (128,) what each ASCII byte becomes: the byte, its lowercase, ' ' or REMOVED.
    ascii: [u8; 128],
    strip: bool,
}

impl Default for BertNormalizer {
    fn default() -> Self {
        BertNormalizer::new(true, true, None, true)
    }
}

/// HF: '\t' '\n' '\r' count as whitespace, then `char::is_whitespace`.
#[inline]
pub fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// HF: '\t' '\n' '\r' are not control characters; otherwise any C* category (Cc, Cf, Co, Cn...).
#[inline]
pub fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// The CJK ideograph blocks BERT pads with spaces (BERT's `_is_chinese_char`).
#[inline]
pub fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

impl BertNormalizer {
    pub fn new(
        clean_text: bool,
        handle_chinese_chars: bool,
        strip_accents: Option<bool>,
        lowercase: bool,
    ) -> BertNormalizer {
        let mut ascii = [0u8; 128];
        for (b, slot) in ascii.iter_mut().enumerate() {
            let c = b as u8 as char;
            *slot = if clean_text && (b == 0 || is_control(c)) {
                REMOVED
            } else if clean_text && is_whitespace(c) {
                b' '
            } else if lowercase {
                c.to_ascii_lowercase() as u8
            } else {
                b as u8
            };
        }
        let strip = strip_accents.unwrap_or(lowercase);
        BertNormalizer {
            clean_text,
            handle_chinese_chars,
            strip_accents,
            lowercase,
            ascii,
            strip,
        }
    }

    /// What an ASCII byte becomes (ASCII has no decomposition, no marks, no CJK).
    #[inline(always)]
    pub fn ascii(&self, byte: u8) -> u8 {
        self.ascii[byte as usize]
    }

    /// Normalizes one (non-ASCII or ASCII) character, calling `emit` for each output character.
    #[inline]
    pub fn normalize_char(&self, c: char, emit: &mut impl FnMut(char)) {
        let mut c = c;
        if self.clean_text {
            if c == '\0' || c == '\u{FFFD}' || is_control(c) {
                return;
            }
            if is_whitespace(c) {
                c = ' ';
            }
        }
        if self.handle_chinese_chars && is_chinese_char(c) {
            emit(' ');
            self.accents_and_case(c, emit);
            emit(' ');
        } else {
            self.accents_and_case(c, emit);
        }
    }

    #[inline]
    fn accents_and_case(&self, c: char, emit: &mut impl FnMut(char)) {
        if self.strip && !c.is_ascii() {
            unicode_normalization_alignments::char::decompose_canonical(c, |d| {
                if !d.is_mark_nonspacing() {
                    self.case(d, emit);
                }
            });
        } else {
            self.case(c, emit);
        }
    }

    #[inline]
    fn case(&self, c: char, emit: &mut impl FnMut(char)) {
        if !self.lowercase {
            emit(c);
        } else if c.is_ascii() {
            emit(c.to_ascii_lowercase());
        } else {
            for l in c.to_lowercase() {
                emit(l);
            }
        }
    }

    /// The whole normalized text (for inspection and tests; the tokenizer never builds it).
    pub fn normalize_str(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            self.normalize_char(c, &mut |n| out.push(n));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_uncased() {
        let n = BertNormalizer::default();
        assert_eq!(
            n.normalize_str("Héllo\tWörld\u{0}\u{200B}!"),
            "hello world!"
        );
        assert_eq!(n.normalize_str("中文"), " 中  文 ");
        assert_eq!(n.normalize_str("İ"), "i");
    }

    #[test]
    fn cased_keeps_accents() {
        let n = BertNormalizer::new(true, true, None, false);
        assert_eq!(n.normalize_str("Héllo"), "Héllo");
    }
}
