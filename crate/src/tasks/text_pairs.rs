//! What a task reads for one item: one text, or a pair of texts (sentence-pair classification,
//! next-sentence prediction, question + passage). A pair is encoded as the tokenizer encodes
//! it, `[CLS] a [SEP] b [SEP]` with token type 0 for `a` and its `[SEP]`, 1 for `b` and the
//! last `[SEP]` (transformers' `tokenizer(a, b)`).
//!
//! Every task that takes texts takes `&[S]` with `S: TaskText`: strings (`&str`, `String`)
//! are single texts, [`TextPair`] may carry a second text. The encoding itself is
//! [`encode_windows`](super::windows::encode_windows) (long pairs: see there), the model's
//! side of it [`Pipeline::check_pairs`](super::Pipeline::check_pairs).

/// One item of a task: a text and, for a pair, the second text.
pub trait TaskText {
    fn text(&self) -> &str;
    fn pair(&self) -> Option<&str>;
}

impl<T: AsRef<str> + ?Sized> TaskText for T {
    fn text(&self) -> &str {
        self.as_ref()
    }
    fn pair(&self) -> Option<&str> {
        None
    }
}

/// A text with an optional second text (`pair: None` reads like the text alone).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct TextPair {
    pub text: String,
    pub pair: Option<String>,
}

impl TextPair {
    /// The pair `(text, pair)`.
    pub fn new(text: impl Into<String>, pair: impl Into<String>) -> TextPair {
        TextPair {
            text: text.into(),
            pair: Some(pair.into()),
        }
    }

    /// A single text.
    pub fn single(text: impl Into<String>) -> TextPair {
        TextPair {
            text: text.into(),
            pair: None,
        }
    }
}

impl TaskText for TextPair {
    fn text(&self) -> &str {
        &self.text
    }
    fn pair(&self) -> Option<&str> {
        self.pair.as_deref()
    }
}
