//! WordPiece decoder (HF `tokenizers::decoders::wordpiece`): tokens back to text. A token with
//! the continuing prefix (`##`) is glued to the previous one, any other token gets a space in
//! front; with `cleanup`, HF's clean-up of English tokenization spaces is applied to each
//! token (" ." -> ".", " n't" -> "n't", " do not" -> " don't", ...).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordPieceDecoder {
    pub prefix: String,
    pub cleanup: bool,
}

impl Default for WordPieceDecoder {
    fn default() -> Self {
        WordPieceDecoder {
            prefix: "##".to_string(),
            cleanup: true,
        }
    }
}

/// The replacements of HF `decoders::wordpiece::cleanup`, applied in this order.
const CLEANUP: [(&str, &str); 11] = [
    (" .", "."),
    (" ?", "?"),
    (" !", "!"),
    (" ,", ","),
    (" ' ", "'"),
    (" n't", "n't"),
    (" 'm", "'m"),
    (" do not", " don't"),
    (" 's", "'s"),
    (" 've", "'ve"),
    (" 're", "'re"),
];

impl WordPieceDecoder {
    pub fn decode<'a>(&self, tokens: impl IntoIterator<Item = &'a str>) -> String {
        let mut out = String::new();
        let mut piece = String::new();
        for (i, token) in tokens.into_iter().enumerate() {
            piece.clear();
            if i == 0 {
                piece.push_str(token);
            } else if let Some(rest) = token.strip_prefix(self.prefix.as_str()) {
                piece.push_str(rest);
            } else {
                piece.push(' ');
                piece.push_str(token);
            }
            if self.cleanup && piece.contains(' ') {
                let mut cleaned = piece.clone();
                for (from, to) in CLEANUP {
                    if cleaned.contains(from) {
                        cleaned = cleaned.replace(from, to);
                    }
                }
                out.push_str(&cleaned);
            } else {
                out.push_str(&piece);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_pieces_and_cleans_up() {
        let d = WordPieceDecoder::default();
        let tokens = [
            "hello", "##s", ",", "i", "don", "'", "t", "un", "##aff", "##able", ".",
        ];
        // HF cleans each token (with its leading space) on its own: " '" alone is left as is.
        assert_eq!(d.decode(tokens), "hellos, i don ' t unaffable.");
        assert_eq!(d.decode(["it", "do", "##n't", "'s"]), "it don't's");
    }
}
