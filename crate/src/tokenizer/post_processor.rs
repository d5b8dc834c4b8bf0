//! Post-processing (HF `BertProcessing` / BERT-shaped `TemplateProcessing`), truncation
//! (HF `utils::truncation`) and padding (HF `utils::padding`).
//!
//! Order, as in HF `TokenizerImpl::post_process`: truncate each text's tokens to
//! `max_length - number of special tokens` (the rest becomes overflow windows, `stride` tokens
//! overlapping), add the special tokens to every window, combine the windows of a pair, then pad.

use std::sync::Arc;

use super::encoding::Encoding;
use super::vocab::Vocab;
use crate::error::{Error, Result};

/// The tokens of one text before post-processing.
#[derive(Debug, Clone, Default)]
pub struct Sequence {
    pub ids: Vec<u32>,                // (n,)
    pub offsets: Vec<(usize, usize)>, // (n,) code points of that text
}

/// One element of a template: a special token, or the tokens of text A or B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Special { ids: Vec<u32>, type_id: u32 },
    A { type_id: u32 },
    B { type_id: u32 },
}

/// `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` with type ids 0 / 1, or any template of that
/// kind read from a tokenizer.json `TemplateProcessing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BertProcessing {
    pub single: Vec<Piece>,
    pub pair: Vec<Piece>,
}

impl BertProcessing {
    /// HF `BertProcessing::new((sep, sep_id), (cls, cls_id))`.
    pub fn bert(cls_id: u32, sep_id: u32) -> BertProcessing {
        let special = |id: u32, type_id: u32| Piece::Special {
            ids: vec![id],
            type_id,
        };
        // [CLS] A [SEP], the single template and the start of the pair's
        let single = vec![
            special(cls_id, 0),
            Piece::A { type_id: 0 },
            special(sep_id, 0),
        ];
        let mut pair = single.clone();
        pair.extend([Piece::B { type_id: 1 }, special(sep_id, 1)]);
        BertProcessing { single, pair }
    }

    /// No special tokens (a tokenizer.json with `"post_processor": null`).
    pub fn none() -> BertProcessing {
        BertProcessing {
            single: vec![Piece::A { type_id: 0 }],
            pair: vec![Piece::A { type_id: 0 }, Piece::B { type_id: 1 }],
        }
    }

    /// How many special tokens the template adds.
    pub fn added_tokens(&self, is_pair: bool) -> usize {
        let template = if is_pair { &self.pair } else { &self.single };
        template
            .iter()
            .map(|p| match p {
                Piece::Special { ids, .. } => ids.len(),
                _ => 0,
            })
            .sum()
    }

    /// One window of A (and of B) with the special tokens around it.
    fn assemble(
        &self,
        vocab: &Vocab,
        a: (&Sequence, (usize, usize)),
        b: Option<(&Sequence, (usize, usize))>,
    ) -> Encoding {
        let template = if b.is_some() {
            &self.pair
        } else {
            &self.single
        };
        let n = a.1 .1 - a.1 .0 + b.map_or(0, |b| b.1 .1 - b.1 .0) + self.added_tokens(b.is_some());
        let mut e = Encoding {
            ids: Vec::with_capacity(n),
            type_ids: Vec::with_capacity(n),
            tokens: Vec::with_capacity(n),
            offsets: Vec::with_capacity(n),
            attention_mask: vec![1; n],
            special_tokens_mask: Vec::with_capacity(n),
            overflowing: Vec::new(),
        };
        for piece in template {
            match piece {
                Piece::Special { ids, type_id } => {
                    for &id in ids {
                        e.ids.push(id);
                        e.type_ids.push(*type_id);
                        e.offsets.push((0, 0));
                        e.special_tokens_mask.push(1);
                    }
                }
                Piece::A { type_id } | Piece::B { type_id } => {
                    let part = if matches!(piece, Piece::A { .. }) {
                        Some(a)
                    } else {
                        b
                    };
                    if let Some((sequence, (start, end))) = part {
                        e.ids.extend_from_slice(&sequence.ids[start..end]);
                        e.offsets.extend_from_slice(&sequence.offsets[start..end]);
                        e.type_ids.resize(e.ids.len(), *type_id);
                        e.special_tokens_mask.resize(e.ids.len(), 0);
                    }
                }
            }
        }
        e.tokens.extend(e.ids.iter().map(|&id| token_of(vocab, id)));
        e
    }

    /// Truncates (with overflow windows) and adds the special tokens.
    pub fn process(
        &self,
        vocab: &Vocab,
        a: &Sequence,
        b: Option<&Sequence>,
        truncation: Option<&Truncation>,
    ) -> Result<Encoding> {
        let (windows_a, windows_b) = match truncation {
            Some(t) => t.windows(
                a.ids.len(),
                b.map(|b| b.ids.len()),
                self.added_tokens(b.is_some()),
            )?,
            None => (vec![(0, a.ids.len())], b.map(|b| vec![(0, b.ids.len())])),
        };
        match (b, windows_b) {
            (None, _) | (_, None) => {
                let mut main = self.assemble(vocab, (a, windows_a[0]), None);
                for &w in &windows_a[1..] {
                    main.overflowing.push(self.assemble(vocab, (a, w), None));
                }
                Ok(main)
            }
            (Some(b), Some(windows_b)) => {
                // HF `Encoding::merge_with` order: each later window of A with the first window
                // of B then with each later window of B; then the first window of A with each
                // later window of B.
                let mut main = self.assemble(vocab, (a, windows_a[0]), Some((b, windows_b[0])));
                for &wa in &windows_a[1..] {
                    for &wb in &windows_b {
                        main.overflowing
                            .push(self.assemble(vocab, (a, wa), Some((b, wb))));
                    }
                }
                for &wb in &windows_b[1..] {
                    main.overflowing
                        .push(self.assemble(vocab, (a, windows_a[0]), Some((b, wb))));
                }
                Ok(main)
            }
        }
    }
}

#[inline]
fn token_of(vocab: &Vocab, id: u32) -> Arc<str> {
    vocab.token(id).cloned().unwrap_or_else(|| Arc::from(""))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncationStrategy {
    /// Remove tokens from the longer of the two texts first (HF `longest_first`).
    LongestFirst,
    OnlyFirst,
    OnlySecond,
}

impl TruncationStrategy {
    pub fn parse(name: &str) -> Result<TruncationStrategy> {
        match name {
            "longest_first" | "LongestFirst" => Ok(TruncationStrategy::LongestFirst),
            "only_first" | "OnlyFirst" => Ok(TruncationStrategy::OnlyFirst),
            "only_second" | "OnlySecond" => Ok(TruncationStrategy::OnlySecond),
            other => Err(Error::unsupported(format!("truncation strategy {other:?}"))),
        }
    }
}

/// Truncation to `max_length` tokens (special tokens included), from the right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncation {
    pub max_length: usize,
    pub stride: usize,
    pub strategy: TruncationStrategy,
}

impl Truncation {
    /// The windows (start, end) of A and of B. The first window of each is the main encoding.
    #[allow(clippy::type_complexity)]
    pub fn windows(
        &self,
        len_a: usize,
        len_b: Option<usize>,
        added: usize,
    ) -> Result<(Vec<(usize, usize)>, Option<Vec<(usize, usize)>>)> {
        if self.max_length <= added {
            return Err(Error::invalid(format!(
                "max_length {} leaves no room for text next to the {added} special tokens",
                self.max_length
            )));
        }
        let max_length = self.max_length - added;
        let whole = |len: usize| vec![(0, len)];
        let total = len_a + len_b.unwrap_or(0);
        if total <= max_length {
            return Ok((whole(len_a), len_b.map(whole)));
        }
        let to_remove = total - max_length;
        match (self.strategy, len_b) {
            (TruncationStrategy::LongestFirst, Some(len_b)) => {
                // HF: n1 = the shorter length; only the longer one is cut if that suffices,
                // otherwise both are cut to half of max_length (the odd token goes to the longer).
                let (mut n1, mut n2) = (len_a, len_b);
                let swap = n1 > n2;
                if swap {
                    std::mem::swap(&mut n1, &mut n2);
                }
                if n1 > max_length {
                    n2 = n1;
                } else {
                    n2 = n1.max(max_length - n1);
                }
                if n1 + n2 > max_length {
                    n1 = max_length / 2;
                    n2 = n1 + max_length % 2;
                }
                if swap {
                    std::mem::swap(&mut n1, &mut n2);
                }
                Ok((
                    self.split(len_a, n1, "the first text")?,
                    Some(self.split(len_b, n2, "the second text")?),
                ))
            }
            (TruncationStrategy::LongestFirst, None) => {
                Ok((self.split(len_a, max_length, "the text")?, None))
            }
            (TruncationStrategy::OnlyFirst, _) => {
                if len_a <= to_remove {
                    return Err(Error::invalid(format!(
                        "truncation only_first: the first text has {len_a} tokens, {to_remove} must go"
                    )));
                }
                Ok((
                    self.split(len_a, len_a - to_remove, "the first text")?,
                    len_b.map(whole),
                ))
            }
            (TruncationStrategy::OnlySecond, None) => Err(Error::invalid(
                "truncation only_second needs a pair of texts, got a single text that is too long",
            )),
            (TruncationStrategy::OnlySecond, Some(len_b)) => {
                if len_b <= to_remove {
                    return Err(Error::invalid(format!(
                        "truncation only_second: the second text has {len_b} tokens, {to_remove} must go"
                    )));
                }
                Ok((
                    whole(len_a),
                    Some(self.split(len_b, len_b - to_remove, "the second text")?),
                ))
            }
        }
    }

    /// HF `Encoding::truncate` (right side): windows of `max_len` tokens starting every
    /// `max_len - stride` tokens until one reaches the end.
    fn split(&self, len: usize, max_len: usize, what: &str) -> Result<Vec<(usize, usize)>> {
        if max_len >= len {
            return Ok(vec![(0, len)]);
        }
        if max_len == 0 {
            return Err(Error::invalid(format!(
                "truncation leaves no token of {what} (max_length {} is too small)",
                self.max_length
            )));
        }
        if self.stride >= max_len {
            return Err(Error::invalid(format!(
                "stride {} must be smaller than the {max_len} tokens left for {what} (max_length {} minus special tokens)",
                self.stride, self.max_length
            )));
        }
        let step = max_len - self.stride;
        let mut windows = Vec::with_capacity(len / step + 1);
        let mut start = 0;
        loop {
            let stop = (start + max_len).min(len);
            windows.push((start, stop));
            if stop == len {
                break;
            }
            start += step;
        }
        Ok(windows)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaddingStrategy {
    /// Pad to the longest encoding of the batch (one text: no padding, but its overflow
    /// windows are padded to its length, as HF does).
    BatchLongest,
    Fixed(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaddingDirection {
    Left,
    Right,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Padding {
    pub strategy: PaddingStrategy,
    pub direction: PaddingDirection,
    pub pad_to_multiple_of: Option<usize>,
    pub pad_id: u32,
    pub pad_type_id: u32,
    pub pad_token: String,
}

impl Default for Padding {
    fn default() -> Self {
        Padding {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id: 0,
            pad_type_id: 0,
            pad_token: "[PAD]".to_string(),
        }
    }
}

impl Padding {
    /// Pads every encoding (and its overflow windows) of a batch (HF `pad_encodings`).
    pub fn pad_batch(&self, encodings: &mut [Encoding]) {
        let mut target = match self.strategy {
            PaddingStrategy::Fixed(n) => n,
            PaddingStrategy::BatchLongest => encodings.iter().map(|e| e.len()).max().unwrap_or(0),
        };
        if let Some(multiple) = self.pad_to_multiple_of {
            if multiple > 0 && target % multiple != 0 {
                target += multiple - target % multiple;
            }
        }
        let token: Arc<str> = Arc::from(self.pad_token.as_str());
        for e in encodings {
            self.pad(e, target, &token);
        }
    }

    fn pad(&self, e: &mut Encoding, target: usize, token: &Arc<str>) {
        for o in &mut e.overflowing {
            self.pad(o, target, token);
        }
        if e.len() >= target {
            return;
        }
        let n = target - e.len();
        match self.direction {
            PaddingDirection::Right => {
                e.ids.extend(std::iter::repeat_n(self.pad_id, n));
                e.type_ids.extend(std::iter::repeat_n(self.pad_type_id, n));
                e.tokens.extend(std::iter::repeat_n(token.clone(), n));
                e.offsets.extend(std::iter::repeat_n((0, 0), n));
                e.attention_mask.extend(std::iter::repeat_n(0, n));
                e.special_tokens_mask.extend(std::iter::repeat_n(1, n));
            }
            PaddingDirection::Left => {
                fn prepend<T: Clone>(v: &mut Vec<T>, value: T, n: usize) {
                    v.splice(0..0, std::iter::repeat_n(value, n));
                }
                prepend(&mut e.ids, self.pad_id, n);
                prepend(&mut e.type_ids, self.pad_type_id, n);
                prepend(&mut e.tokens, token.clone(), n);
                prepend(&mut e.offsets, (0, 0), n);
                prepend(&mut e.attention_mask, 0, n);
                prepend(&mut e.special_tokens_mask, 1, n);
            }
        }
    }
}
