//! Labelled sentences for the ELMo sentiment classifier, read from the ground-truth files of
//! VADER (Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis of
//! Social Media Text", ICWSM 2014), e.g. `movieReviewSnippets_GroundTruth.txt`: one snippet per
//! line, `id<TAB>rating<TAB>text` (CRLF line ends), the rating the mean of human scores in
//! [-4, 4]. The label is the sign of the rating: 1 = positive, 0 = negative; rating 0 has no
//! sign and is left out. Tokens are the whitespace-separated words (as the `webnlu elmo` CLI).

use crate::{Error, Result};

/// One labelled sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct RatedSentence {
    pub tokens: Vec<String>,
    /// 1 = positive rating, 0 = negative
    pub label: u32,
}

/// Parses the file's text; `name` names it in errors. Lines with rating 0 or no words are
/// skipped; a line without three tab-separated fields or with a rating that is not a number is
/// an error naming the line.
pub fn parse_rated_sentences(name: &str, text: &str) -> Result<Vec<RatedSentence>> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.splitn(3, '\t');
        let (_id, rating, sentence) = match (fields.next(), fields.next(), fields.next()) {
            (Some(id), Some(rating), Some(sentence)) => (id, rating, sentence),
            _ => {
                return Err(Error::format(
                    name,
                    format!("line {}: expected id<TAB>rating<TAB>text", number + 1),
                ))
            }
        };
        let rating: f64 = rating.trim().parse().map_err(|_| {
            Error::format(
                name,
                format!("line {}: rating {rating:?} is not a number", number + 1),
            )
        })?;
        if rating == 0.0 || rating.is_nan() {
            continue;
        }
        let tokens: Vec<String> = sentence.split_whitespace().map(str::to_string).collect();
        if tokens.is_empty() {
            continue;
        }
        out.push(RatedSentence {
            tokens,
            label: (rating > 0.0) as u32,
        });
    }
    Ok(out)
}

/// A deterministic shuffle (Fisher-Yates driven by SplitMix64 with `seed`), so that train and
/// test draw from both halves of a file whose lines are grouped by label.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}
