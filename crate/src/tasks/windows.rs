//! Texts longer than the model can read. A BERT sees at most `max_position_embeddings` tokens;
//! a longer text is either read in overlapping windows (the tokenizer's overflow with `stride`
//! tokens shared by neighbours, each window with its own [CLS] / [SEP]) whose results the task
//! combines (averaged embeddings, averaged logits), or cut to its first window, or refused with
//! an error naming its length, as the caller chooses. A pair of texts is never windowed: cut
//! (`longest_first`) or refused, see [`encode_item`].
//!
//! [`WindowAverage`] is the same averaging as [`average_per_text`] on a device, with its
//! backward, for training: `rows (E, width) = A (E, W) @ window_rows (W, width)` where
//! `A[e, w] = 1 / n_e` when window `w` is one of the `n_e` windows of example `e`, so each
//! window's gradient is its example's divided by `n_e` (`A^T @ d_rows`).

use std::ops::Range;

use crate::device::Device;
use crate::ops::matmul::{matmul_backward, matmul_forward, MatmulOptions};
use crate::tensor::Tensor;
use crate::tokenizer::{Encoding, Tokenizer, Truncation, TruncationStrategy};
use crate::{Error, Result};

use super::text_pairs::TaskText;

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

/// The windows of every item, in item order (each has at least one). `tokenizer` is used as
/// configured except for truncation and padding, which this sets. See [`encode_item`].
pub fn encode_windows<S: TaskText>(
    tokenizer: &Tokenizer,
    items: &[S],
    max_length: usize,
    long_texts: LongTexts,
) -> Result<Vec<Window>> {
    let mut windows = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        encode_item(tokenizer, index, item, max_length, long_texts, &mut windows)?;
    }
    Ok(windows)
}

/// The windows of item `index` (a text or a pair) appended to `windows`.
///
/// A text longer than `max_length` is read by `long_texts`. A pair longer than `max_length`
/// is never read in windows: the overflow of a pair is every window of one text against every
/// window of the other, and no task has a sound way to combine those (which part of `b`
/// follows which part of `a`?). So a long pair is cut under `Truncate`, as the tokenizer cuts
/// it (HF `longest_first`: tokens go from the longer text first, both end at about half the
/// room when both are long), and refused otherwise with an error naming both lengths.
pub fn encode_item<S: TaskText + ?Sized>(
    tokenizer: &Tokenizer,
    index: usize,
    item: &S,
    max_length: usize,
    long_texts: LongTexts,
    windows: &mut Vec<Window>,
) -> Result<()> {
    let text = item.text();
    if let Some(pair) = item.pair() {
        let (in_a, in_b, special) = tokenizer.count_pair_tokens(text, pair);
        let length = in_a + in_b + special;
        let truncation = match long_texts {
            _ if length <= max_length => None,
            LongTexts::Truncate => Some(Truncation {
                max_length,
                stride: 0,
                strategy: TruncationStrategy::LongestFirst,
            }),
            LongTexts::Windows { .. } | LongTexts::Refuse => {
                return Err(Error::invalid(format!(
                    "pair {index} is {length} tokens long ({in_a} + {in_b} of its two texts and \
                     {special} special tokens), the model reads at most {max_length}; pairs are \
                     not read in windows: allow truncation (longest_first: the longer text is \
                     cut first) to read it"
                )));
            }
        };
        let mut encoding =
            tokenizer.encode_pair_with_truncation(text, pair, truncation.as_ref())?;
        encoding.overflowing.clear();
        windows.push(Window {
            text: index,
            encoding,
        });
        return Ok(());
    }
    let stride = match long_texts {
        LongTexts::Windows { stride } => stride,
        LongTexts::Truncate | LongTexts::Refuse => 0,
    };
    let truncation = Truncation {
        max_length,
        stride,
        strategy: TruncationStrategy::LongestFirst,
    };
    if long_texts == LongTexts::Refuse {
        let length = tokenizer.count_tokens(text);
        if length > max_length {
            return Err(Error::invalid(format!(
                "text {index} is {length} tokens long (special tokens included), the model \
                 reads at most {max_length}; allow windows or truncation to read it"
            )));
        }
    }
    let mut encoding = tokenizer.encode_with_truncation(text, Some(&truncation))?;
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
    Ok(())
}

/// Batches of window indices of at most `batch_size` windows each, in length order, cut where
/// padding would cost more than another forward pass ([`batches_by_length`]); every window
/// appears once.
pub fn length_sorted_batches(windows: &[Window], batch_size: usize) -> Result<Vec<Vec<usize>>> {
    let lengths: Vec<usize> = windows.iter().map(|w| w.encoding.len()).collect();
    batches_by_length(&lengths, batch_size)
}

/// What one more forward pass costs, in padded tokens: the per-pass work that does not grow
/// with the tokens (small products, per-op set-up). Measured on the CPU path with
/// tests/bench/node-cpu-bench.mjs; the choice changes speed only, never a result.
const PASS_COST_IN_TOKENS: usize = 24;

/// Batches of at most `batch_size` items, of indices into `lengths`, that read every item with
/// the least work: items sorted by length, then cut into runs so that the padded tokens (each
/// batch pads to its longest item) plus [`PASS_COST_IN_TOKENS`] per batch is smallest (dynamic
/// programming over the sorted lengths, O(n * batch_size)). A batch's results do not depend on
/// its padding (padding gets exactly zero attention), so only the speed changes.
pub fn batches_by_length(lengths: &[usize], batch_size: usize) -> Result<Vec<Vec<usize>>> {
    if batch_size == 0 {
        return Err(Error::invalid("batch size must be at least 1"));
    }
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    crate::sort::sort_indices(&mut order, &|a, b| lengths[a].cmp(&lengths[b])); // ties in text order
    let n = order.len();
    // best[i]: least cost of the first i sorted items; cut[i]: where their last batch starts.
    let mut best = vec![usize::MAX; n + 1];
    let mut cut = vec![0usize; n + 1];
    best[0] = 0;
    for end in 1..=n {
        let longest = lengths[order[end - 1]];
        for start in end.saturating_sub(batch_size)..end {
            let cost = best[start] + (end - start) * longest + PASS_COST_IN_TOKENS;
            if cost < best[end] {
                best[end] = cost;
                cut[end] = start;
            }
        }
    }
    let mut batches = Vec::new();
    let mut end = n;
    while end > 0 {
        batches.push(order[cut[end]..end].to_vec());
        end = cut[end];
    }
    batches.reverse();
    Ok(batches)
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

/// The mean of each example's window rows, on the device of the rows, forward and backward.
pub struct WindowAverage {
    /// (E, W) A[e, w] = 1 / n_e for the windows of example e, else 0
    weights: Tensor,
}

impl WindowAverage {
    /// `windows[e]`: the rows (W, width) of example e, in row order: contiguous, together
    /// covering 0..W.
    pub fn new(device: &Device, windows: &[Range<usize>]) -> Result<WindowAverage> {
        let total = windows.last().map_or(0, |r| r.end);
        let mut next = 0;
        let mut weights = vec![0f32; windows.len() * total];
        for (e, range) in windows.iter().enumerate() {
            if range.start != next || range.is_empty() {
                return Err(Error::invalid(format!(
                    "average over windows: example {e} has windows {range:?}, expected a \
                     non-empty range starting at {next}"
                )));
            }
            next = range.end;
            let share = 1.0 / range.len() as f32;
            weights[e * total + range.start..e * total + range.end].fill(share);
        }
        let weights = Tensor::from_vec(
            device,
            &[windows.len(), total],
            weights,
            "window_average.weights",
        )?;
        Ok(WindowAverage { weights })
    }

    /// rows (E, width) = the mean of each example's window_rows (W, width).
    pub fn forward(&self, window_rows: &Tensor) -> Result<Tensor> {
        let (e, w) = (self.weights.shape()[0], self.weights.shape()[1]);
        let width = window_rows.shape().get(1).copied().unwrap_or(0);
        window_rows.expect_shape("window average", &[w, width])?;
        let mut rows = Tensor::uninit(&window_rows.device(), &[e, width], "window_average.rows")?;
        matmul_forward(
            &mut rows,
            &self.weights,
            window_rows,
            None,
            MatmulOptions::default(),
        )?;
        Ok(rows)
    }

    /// d_window_rows (W, width) from d_rows (E, width): each window gets its example's
    /// gradient divided by the example's number of windows.
    pub fn backward(&self, d_rows: &Tensor, window_rows: &Tensor) -> Result<Tensor> {
        let mut d_window_rows = Tensor::zeros(
            &d_rows.device(),
            window_rows.shape(),
            "window_average.d_window_rows",
        )?;
        matmul_backward(
            None,
            Some(&mut d_window_rows),
            None,
            d_rows,
            &self.weights,
            window_rows,
            MatmulOptions::default(),
        )?;
        Ok(d_window_rows)
    }
}

/// Where one token of a text is read from: a window (index into the windows list) and its
/// position in that window's encoding (special tokens counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenSource {
    pub window: usize,
    pub position: usize,
}

/// For every token of text `text` (special tokens excluded), in order, the window it is read
/// from. Neighbouring windows share `stride` tokens, so a token near a cut is in two windows;
/// it is read from the one where it is farthest from a cut, counting on each side the tokens
/// of context that window gives it (a side that reaches the text's own start or end is not a
/// cut: nothing more could be seen there). The token then has the most context on both sides
/// of any window, and every token of the text appears exactly once. Ties go to the earlier
/// window. `windows` is what [`encode_windows`] gave; `stride` the one it used (0 without
/// windows).
pub fn token_sources(windows: &[Window], text: usize, stride: usize) -> Result<Vec<TokenSource>> {
    // (window index, positions of its text tokens in the encoding)
    let of_text: Vec<(usize, Vec<usize>)> = windows
        .iter()
        .enumerate()
        .filter(|(_, w)| w.text == text)
        .map(|(i, w)| {
            let positions = (0..w.encoding.len())
                .filter(|&t| w.encoding.special_tokens_mask[t] == 0)
                .collect();
            (i, positions)
        })
        .collect();
    if of_text.is_empty() {
        return Err(Error::invalid(format!("text {text} has no window")));
    }
    // the first token of each window in the text's token order: a window starts `stride`
    // tokens before the end of the previous one
    let mut starts = Vec::with_capacity(of_text.len());
    let mut start = 0usize;
    for (k, (_, positions)) in of_text.iter().enumerate() {
        if k > 0 {
            let previous = of_text[k - 1].1.len();
            if previous <= stride {
                return Err(Error::invalid(format!(
                    "window {k} of text {text}: the previous one has {previous} tokens, \
                     not more than the stride {stride}"
                )));
            }
            start += previous - stride;
        }
        starts.push(start);
        if positions.is_empty() && of_text.len() > 1 {
            return Err(Error::invalid(format!(
                "window {k} of text {text} is empty"
            )));
        }
    }
    let last = of_text.len() - 1;
    let length = starts[last] + of_text[last].1.len();
    let mut best: Vec<Option<(usize, TokenSource)>> = vec![None; length];
    for (k, (window, positions)) in of_text.iter().enumerate() {
        let n = positions.len();
        for (p, &position) in positions.iter().enumerate() {
            let token = starts[k] + p;
            // context on the left / right within this window; a side ending at the text's
            // start / end is complete
            let left = if k == 0 { usize::MAX } else { p };
            let right = if k == last { usize::MAX } else { n - 1 - p };
            let margin = left.min(right);
            let source = TokenSource {
                window: *window,
                position,
            };
            match best[token] {
                Some((m, s)) => {
                    // the token seen twice must be the same token
                    let (a, b) = (&windows[s.window].encoding, &windows[*window].encoding);
                    if a.ids[s.position] != b.ids[position]
                        || a.offsets[s.position] != b.offsets[position]
                    {
                        return Err(Error::invalid(format!(
                            "windows of text {text} do not overlap by the stride {stride} at token {token}"
                        )));
                    }
                    if margin > m {
                        best[token] = Some((margin, source));
                    }
                }
                None => best[token] = Some((margin, source)),
            }
        }
    }
    best.into_iter()
        .enumerate()
        .map(|(token, b)| {
            b.map(|(_, s)| s).ok_or_else(|| {
                Error::invalid(format!("token {token} of text {text} is in no window"))
            })
        })
        .collect()
}
