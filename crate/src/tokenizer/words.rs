//! Words as the tokenizer sees them: the spans that the pre-tokenizer splits a text into
//! (BERT's: whitespace, and every punctuation or CJK character a word of its own), plus the
//! added tokens found in the text, each one word. Every WordPiece token of the text lies in
//! exactly one of them; `tasks/inspect.rs` averages a word's pieces into one vector.

use super::{count_chars, Scratch, Tokenizer};

impl Tokenizer {
    /// (start, end) of every word of `text`, in Unicode code points, in order.
    pub fn word_spans(&self, text: &str) -> Vec<(usize, usize)> {
        let mut spans = Vec::new();
        let mut scratch = Scratch::default();
        let mut rest = text;
        let mut first_char = 0usize;
        while let Some((start, end, _)) = self.added_tokens.find(rest) {
            let before = &rest[..start];
            self.segment_word_spans(before, first_char, &mut scratch, &mut spans);
            first_char += count_chars(before);
            let n = count_chars(&rest[start..end]);
            spans.push((first_char, first_char + n));
            first_char += n;
            rest = &rest[end..];
        }
        self.segment_word_spans(rest, first_char, &mut scratch, &mut spans);
        spans
    }

    fn segment_word_spans(
        &self,
        text: &str,
        first_char: usize,
        scratch: &mut Scratch,
        spans: &mut Vec<(usize, usize)>,
    ) {
        self.pre_tokenizer.for_each_word(
            &self.normalizer,
            text,
            first_char as u32,
            &mut scratch.word,
            |word| {
                if let (Some(&first), Some(&last)) =
                    (word.char_of_byte.first(), word.char_of_byte.last())
                {
                    spans.push((first as usize, last as usize + 1));
                }
            },
        );
    }
}
