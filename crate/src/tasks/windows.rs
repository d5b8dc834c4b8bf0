//! Texts longer than the model can read. A BERT sees at most `max_position_embeddings` tokens;
//! a longer text is either read in overlapping windows (the tokenizer's overflow with `stride`
//! tokens shared by neighbours, each window with its own [CLS] / [SEP]) whose results the task
//! combines (averaged embeddings, averaged logits), or cut to its first window, or refused with
//! an error naming its length, as the caller chooses.

use crate::tokenizer::{Encoding, Tokenizer, Truncation, TruncationStrategy};
use crate::{Error, Result};

/// What to do with a text longer than `max_length` tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongTexts {
    /// Overlapping windows of `max_length` tokens, `stride` tokens shared by neighbours.
    Windows { stride: usize },
    /// Keep the first `max_length` tokens.
    Truncate,
    /// An `InvalidArgument` error naming the text and its length.
    Refuse,
}

impl LongTexts {
    /// Windows with a quarter of the window shared, the default of the tasks.
    pub fn default_windows(max_length: usize) -> LongTexts {
        LongTexts::Windows {
            stride: max_length / 4,
        }
    }
}

/// One window of one text: the encoding the model reads (no padding).
#[derive(Clone, Debug)]
pub struct Window {
    /// Index of the text it belongs to.
    pub text: usize,
    pub encoding: Encoding,
}

/// The windows of every text, in text order (each text has at least one). `tokenizer` is
/// used as configured except for truncation and padding, which this sets.
pub fn encode_windows<S: AsRef<str>>(
    tokenizer: &Tokenizer,
    texts: &[S],
    max_length: usize,
    long_texts: LongTexts,
) -> Result<Vec<Window>> {
    let mut tokenizer = tokenizer.clone();
    tokenizer.set_padding(None);
    let stride = match long_texts {
        LongTexts::Windows { stride } => stride,
        LongTexts::Truncate | LongTexts::Refuse => 0,
    };
    tokenizer.set_truncation(Some(Truncation {
        max_length,
        stride,
        strategy: TruncationStrategy::LongestFirst,
    }));
    let mut windows = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let text = text.as_ref();
        if long_texts == LongTexts::Refuse {
            let length = tokenizer.count_tokens(text);
            if length > max_length {
                return Err(Error::invalid(format!(
                    "text {index} is {length} tokens long (special tokens included), the model \
                     reads at most {max_length}; allow windows or truncation to read it"
                )));
            }
        }
        let mut encoding = tokenizer.encode(text)?;
        let overflowing = std::mem::take(&mut encoding.overflowing);
        windows.push(Window {
            text: index,
            encoding,
        });
        if matches!(long_texts, LongTexts::Windows { .. }) {
            for window in overflowing {
                windows.push(Window {
                    text: index,
                    encoding: window,
                });
            }
        }
    }
    Ok(windows)
}

/// Batches of window indices of at most `batch_size` windows each, shortest windows together
/// (less padding); every window appears once.
pub fn length_sorted_batches(windows: &[Window], batch_size: usize) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(Error::invalid("batch size must be at least 1"));
    }
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&i| windows[i].encoding.len());
    Ok(order.chunks(batch_size).map(<[usize]>::to_vec).collect())
}

/// Averages per text the rows of `rows (W, width)`, one row per window, into `(texts, width)`.
pub fn average_per_text(
    windows: &[Window],
    rows: &[f32],
    width: usize,
    texts: usize,
) -> Result<Vec<f32>> {
    if rows.len() != windows.len() * width {
        return Err(Error::shape(
            "average over windows: rows",
            format!("({}, {width})", windows.len()),
            rows.len(),
        ));
    }
    let mut sums = vec![0f64; texts * width];
    let mut counts = vec![0usize; texts];
    for (w, row) in windows.iter().zip(rows.chunks(width.max(1))) {
        if w.text >= texts {
            return Err(Error::invalid(format!(
                "window of text {} but only {texts} texts",
                w.text
            )));
        }
        counts[w.text] += 1;
        let sum = &mut sums[w.text * width..(w.text + 1) * width];
        sum.iter_mut().zip(row).for_each(|(s, &x)| *s += x as f64);
    }
    let mut out = vec![0f32; texts * width];
    for t in 0..texts {
        if counts[t] == 0 {
            return Err(Error::invalid(format!("text {t} has no window")));
        }
        for c in 0..width {
            out[t * width + c] = (sums[t * width + c] / counts[t] as f64) as f32;
        }
    }
    Ok(out)
}
