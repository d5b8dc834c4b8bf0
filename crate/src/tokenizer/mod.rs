//! WordPiece tokenization with Hugging Face `tokenizers` parity (ids, type ids and offsets),
//! for BERT-family models. One file per pipeline stage, named like HF's:
//!
//! ```text
//! text ─ added_tokens ([MASK] ...) ─ normalizer (BertNormalizer) ─ pre_tokenizer (BertPreTokenizer)
//!      ─ wordpiece (WordPiece, LinMaxMatch) ─ post_processor (truncation, [CLS]/[SEP], windows,
//!      padding) ─ Encoding;     ids ─ decoder (WordPiece) ─ text
//! ```
//!
//! Normalization and pre-tokenization run as one pass over the text, character by character,
//! with a table-driven path for ASCII; each word goes to the LinMaxMatch trie; offsets come from
//! the original character index each normalized byte remembers. No per-character allocation.

pub mod added_tokens;
pub mod decoder;
pub mod elmo_chars;
pub mod encoding;
pub mod normalizer;
pub mod post_processor;
pub mod pre_tokenizer;
pub mod tokenizer_json;
pub mod vocab;
pub mod wordpiece;
mod words;

use std::path::Path;

pub use added_tokens::{AddedToken, AddedTokens};
pub use decoder::WordPieceDecoder;
pub use encoding::{char_offsets_to_utf16, Encoding};
pub use normalizer::BertNormalizer;
pub use post_processor::{
    BertProcessing, Padding, PaddingDirection, PaddingStrategy, Piece, Sequence, Truncation,
    TruncationStrategy,
};
pub use pre_tokenizer::{BertPreTokenizer, Word};
pub use vocab::Vocab;
pub use wordpiece::{WordPiece, WordPieceToken};

use crate::error::{Error, Result};

/// Options for a tokenizer built from a bare `vocab.txt` (the defaults are bert-base-uncased's,
/// as HF `BertWordPieceTokenizer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VocabOptions {
    pub lowercase: bool,
    /// `None`: strip accents exactly when lowercasing (BERT's rule).
    pub strip_accents: Option<bool>,
    pub clean_text: bool,
    pub handle_chinese_chars: bool,
    pub unk_token: String,
    pub continuing_subword_prefix: String,
    pub max_input_chars_per_word: usize,
}

impl Default for VocabOptions {
    fn default() -> Self {
        VocabOptions {
            lowercase: true,
            strip_accents: None,
            clean_text: true,
            handle_chinese_chars: true,
            unk_token: "[UNK]".to_string(),
            continuing_subword_prefix: "##".to_string(),
            max_input_chars_per_word: 100,
        }
    }
}

/// A BERT WordPiece tokenizer: the whole HF pipeline for one vocab.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: Vocab,
    normalizer: BertNormalizer,
    pre_tokenizer: BertPreTokenizer,
    model: WordPiece,
    post_processor: BertProcessing,
    decoder: WordPieceDecoder,
    added_tokens: AddedTokens,
    truncation: Option<Truncation>,
    padding: Option<Padding>,
}

/// Reusable buffers of one encode call (or of a whole batch).
#[derive(Default)]
struct Scratch {
    word: Word,
    pieces: Vec<WordPieceToken>,
}

/// The buffers one caller reuses from encode to encode (the wasm `Tokenizer` keeps one, so a
/// call allocates only the encoding it returns): the word being split, its pieces, and the
/// token sequences of the two texts.
#[derive(Default)]
pub struct EncodeBuffers {
    scratch: Scratch,
    a: Sequence,
    b: Sequence,
}

impl Tokenizer {
    /// Reads a `vocab.txt` (one token per line). No truncation or padding is set.
    pub fn from_vocab_file(path: impl AsRef<Path>, options: &VocabOptions) -> Result<Tokenizer> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| Error::format(path.display().to_string(), format!("not UTF-8: {e}")))?;
        Self::from_vocab_str_named(&text, options, &path.display().to_string())
    }

    /// A `vocab.txt` given as text.
    pub fn from_vocab_str(text: &str, options: &VocabOptions) -> Result<Tokenizer> {
        Self::from_vocab_str_named(text, options, "vocab.txt")
    }

    fn from_vocab_str_named(text: &str, options: &VocabOptions, what: &str) -> Result<Tokenizer> {
        let vocab = Vocab::from_vocab_txt(text, what)?;
        let model = WordPiece::new(
            &vocab,
            &options.unk_token,
            &options.continuing_subword_prefix,
            options.max_input_chars_per_word,
        )
        .map_err(|e| match e {
            Error::Format { detail, .. } => Error::format(what, detail),
            other => other,
        })?;
        let cls = vocab.id("[CLS]");
        let sep = vocab.id("[SEP]");
        let post_processor = match (cls, sep) {
            (Some(cls), Some(sep)) => BertProcessing::bert(cls, sep),
            _ => {
                return Err(Error::format(
                    what,
                    "the vocabulary has no [CLS] or no [SEP] token",
                ))
            }
        };
        // HF BertWordPieceTokenizer registers these as special added tokens.
        let added = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .filter_map(|t| {
                vocab.id(t).map(|id| AddedToken {
                    content: t.to_string(),
                    id,
                    special: true,
                })
            })
            .collect();
        let normalizer = BertNormalizer::new(
            options.clean_text,
            options.handle_chinese_chars,
            options.strip_accents,
            options.lowercase,
        );
        Ok(Tokenizer {
            vocab,
            normalizer,
            pre_tokenizer: BertPreTokenizer::default(),
            model,
            post_processor,
            decoder: WordPieceDecoder {
                prefix: options.continuing_subword_prefix.clone(),
                cleanup: true,
            },
            added_tokens: AddedTokens::new(added),
            truncation: None,
            padding: None,
        })
    }

    /// Reads a Hugging Face `tokenizer.json` given as text (see tokenizer_json.rs for what is
    /// supported; anything else is refused with an error naming it).
    pub fn from_tokenizer_json(json: &str) -> Result<Tokenizer> {
        tokenizer_json::parse(json, "tokenizer.json")
    }

    pub fn from_tokenizer_json_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::io(name.clone(), e))?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| Error::format(name.clone(), format!("not UTF-8: {e}")))?;
        tokenizer_json::parse(text, &name)
    }

    /// A tokenizer.json (name ends in .json) or a vocab.txt with the default options.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::from_tokenizer_json_file(path)
        } else {
            Self::from_vocab_file(path, &VocabOptions::default())
        }
    }

    // ---- settings --------------------------------------------------------------------------

    pub fn truncation(&self) -> Option<&Truncation> {
        self.truncation.as_ref()
    }
    pub fn set_truncation(&mut self, truncation: Option<Truncation>) {
        self.truncation = truncation;
    }
    /// Truncate to `max_length` tokens with `stride` overlap between windows (strategy kept,
    /// longest_first if none was set).
    pub fn set_max_length(&mut self, max_length: usize, stride: usize) {
        let strategy = self
            .truncation
            .map_or(TruncationStrategy::LongestFirst, |t| t.strategy);
        self.truncation = Some(Truncation {
            max_length,
            stride,
            strategy,
        });
    }
    pub fn padding(&self) -> Option<&Padding> {
        self.padding.as_ref()
    }
    pub fn set_padding(&mut self, padding: Option<Padding>) {
        self.padding = padding;
    }
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }
    pub fn normalizer(&self) -> &BertNormalizer {
        &self.normalizer
    }
    pub fn model(&self) -> &WordPiece {
        &self.model
    }
    pub fn post_processor(&self) -> &BertProcessing {
        &self.post_processor
    }
    pub fn added_tokens(&self) -> &AddedTokens {
        &self.added_tokens
    }
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab.id(token)
    }
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.vocab.token(id).map(|t| &**t)
    }

    // ---- encoding --------------------------------------------------------------------------

    /// Tokens of one text before post-processing (no special tokens, no truncation).
    pub fn tokenize(&self, text: &str) -> Sequence {
        let mut sequence = Sequence::default();
        self.tokenize_into(text, &mut Scratch::default(), &mut sequence);
        sequence
    }

    fn tokenize_into(&self, text: &str, scratch: &mut Scratch, out: &mut Sequence) {
        out.ids.clear();
        out.offsets.clear();
        let mut rest = text;
        let mut first_char = 0u32;
        while let Some((start, end, id)) = self.added_tokens.find(rest) {
            let before = &rest[..start];
            self.tokenize_segment(before, first_char, scratch, out);
            first_char += count_chars(before) as u32;
            let n = count_chars(&rest[start..end]) as u32;
            out.ids.push(id);
            out.offsets
                .push((first_char as usize, (first_char + n) as usize));
            first_char += n;
            rest = &rest[end..];
        }
        self.tokenize_segment(rest, first_char, scratch, out);
    }

    #[inline]
    fn tokenize_segment(
        &self,
        text: &str,
        first_char: u32,
        scratch: &mut Scratch,
        out: &mut Sequence,
    ) {
        let model = &self.model;
        let pieces = &mut scratch.pieces;
        self.pre_tokenizer.for_each_word(
            &self.normalizer,
            text,
            first_char,
            &mut scratch.word,
            |word| {
                pieces.clear();
                model.tokenize_word(&word.bytes, word.chars, pieces);
                for p in pieces.iter() {
                    out.ids.push(p.id);
                    out.offsets.push((
                        word.char_of_byte[p.start as usize] as usize,
                        word.char_of_byte[p.end as usize - 1] as usize + 1,
                    ));
                }
            },
        );
    }

    fn encode_unpadded(
        &self,
        a: &str,
        b: Option<&str>,
        scratch: &mut Scratch,
        sa: &mut Sequence,
        sb: &mut Sequence,
    ) -> Result<Encoding> {
        self.encode_unpadded_with(a, b, self.truncation.as_ref(), scratch, sa, sb)
    }

    fn encode_unpadded_with(
        &self,
        a: &str,
        b: Option<&str>,
        truncation: Option<&Truncation>,
        scratch: &mut Scratch,
        sa: &mut Sequence,
        sb: &mut Sequence,
    ) -> Result<Encoding> {
        self.tokenize_into(a, scratch, sa);
        let pair = match b {
            Some(b) => {
                self.tokenize_into(b, scratch, sb);
                Some(&*sb)
            }
            None => None,
        };
        self.post_processor
            .process(&self.vocab, sa, pair, truncation)
    }

    /// One text, `[CLS] text [SEP]`, cut by `truncation` (its overflow windows in
    /// `overflowing`) instead of the tokenizer's own setting, never padded: what the model
    /// tasks read, without a copy of the tokenizer per call.
    pub fn encode_with_truncation(
        &self,
        text: &str,
        truncation: Option<&Truncation>,
    ) -> Result<Encoding> {
        self.encode_unpadded_with(
            text,
            None,
            truncation,
            &mut Scratch::default(),
            &mut Sequence::default(),
            &mut Sequence::default(),
        )
    }

    /// A pair, `[CLS] a [SEP] b [SEP]`, cut by `truncation` (with its strategy, e.g. HF's
    /// `longest_first`) instead of the tokenizer's own setting, never padded: what the model
    /// tasks read for a pair.
    pub fn encode_pair_with_truncation(
        &self,
        a: &str,
        b: &str,
        truncation: Option<&Truncation>,
    ) -> Result<Encoding> {
        self.encode_unpadded_with(
            a,
            Some(b),
            truncation,
            &mut Scratch::default(),
            &mut Sequence::default(),
            &mut Sequence::default(),
        )
    }

    /// One text: `[CLS] text [SEP]`, truncated and padded as set.
    pub fn encode(&self, text: &str) -> Result<Encoding> {
        self.encode_one(text, None)
    }

    /// A pair: `[CLS] a [SEP] b [SEP]`, type ids 0 then 1.
    pub fn encode_pair(&self, a: &str, b: &str) -> Result<Encoding> {
        self.encode_one(a, Some(b))
    }

    /// One text or pair, with fresh scratch space, truncated and padded as set.
    fn encode_one(&self, a: &str, b: Option<&str>) -> Result<Encoding> {
        self.encode_reusing(
            a,
            b,
            self.truncation.as_ref(),
            self.padding.as_ref(),
            &mut EncodeBuffers::default(),
        )
    }

    /// One text or pair with the given truncation and padding (instead of the tokenizer's
    /// own), in `buffers` kept by the caller between calls.
    pub fn encode_reusing(
        &self,
        a: &str,
        b: Option<&str>,
        truncation: Option<&Truncation>,
        padding: Option<&Padding>,
        buffers: &mut EncodeBuffers,
    ) -> Result<Encoding> {
        let EncodeBuffers {
            scratch,
            a: sa,
            b: sb,
        } = buffers;
        let mut e = self.encode_unpadded_with(a, b, truncation, scratch, sa, sb)?;
        if let Some(p) = padding {
            p.pad_batch(std::slice::from_mut(&mut e));
        }
        Ok(e)
    }

    /// Many texts, on this thread (wasm has none other); padding (if set) is to the longest.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Encoding>> {
        let mut scratch = Scratch::default();
        let (mut sa, mut sb) = (Sequence::default(), Sequence::default());
        let mut out = Vec::with_capacity(texts.len());
        for t in texts {
            out.push(self.encode_unpadded(t.as_ref(), None, &mut scratch, &mut sa, &mut sb)?);
        }
        if let Some(p) = &self.padding {
            p.pad_batch(&mut out);
        }
        Ok(out)
    }

    /// Many pairs, as `encode_batch`.
    pub fn encode_pair_batch<S: AsRef<str>>(&self, pairs: &[(S, S)]) -> Result<Vec<Encoding>> {
        let mut scratch = Scratch::default();
        let (mut sa, mut sb) = (Sequence::default(), Sequence::default());
        let mut out = Vec::with_capacity(pairs.len());
        for (a, b) in pairs {
            out.push(self.encode_unpadded(
                a.as_ref(),
                Some(b.as_ref()),
                &mut scratch,
                &mut sa,
                &mut sb,
            )?);
        }
        if let Some(p) = &self.padding {
            p.pad_batch(&mut out);
        }
        Ok(out)
    }

    /// The number of tokens `encode` would give (special tokens included, no truncation or
    /// padding), without building an Encoding.
    pub fn count_tokens(&self, text: &str) -> usize {
        let mut sequence = Sequence::default();
        self.tokenize_into(text, &mut Scratch::default(), &mut sequence);
        sequence.ids.len() + self.post_processor.added_tokens(false)
    }

    /// The tokens of a pair as `encode_pair` would count them, without building an Encoding:
    /// (tokens of `a`, tokens of `b`, special tokens the pair template adds).
    pub fn count_pair_tokens(&self, a: &str, b: &str) -> (usize, usize, usize) {
        let (mut sequence, mut scratch) = (Sequence::default(), Scratch::default());
        self.tokenize_into(a, &mut scratch, &mut sequence);
        let in_a = sequence.ids.len();
        self.tokenize_into(b, &mut scratch, &mut sequence);
        (
            in_a,
            sequence.ids.len(),
            self.post_processor.added_tokens(true),
        )
    }

    /// Ids back to text: `##` pieces joined, HF's clean-up of spaces before punctuation;
    /// special tokens ([CLS], [PAD], ...) left out when `skip_special_tokens`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let mut tokens = Vec::with_capacity(ids.len());
        for &id in ids {
            let token = self.vocab.token(id).ok_or_else(|| {
                Error::invalid(format!(
                    "token id {id} is outside the vocabulary (size {})",
                    self.vocab.len()
                ))
            })?;
            if skip_special_tokens && self.added_tokens.is_special(id) {
                continue;
            }
            tokens.push(&**token);
        }
        Ok(self.decoder.decode(tokens))
    }
}

#[inline]
fn count_chars(s: &str) -> usize {
    s.bytes().filter(|&b| (b & 0xC0) != 0x80).count()
}
