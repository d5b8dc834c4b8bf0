//! Labelled sentences for the ELMo sentiment classifier (`tasks/elmo_training.rs`): the rated
//! TSV of VADER's ground-truth files (Hutto & Gilbert, ICWSM 2014), read by the one examples
//! parser of the tasks ([`parse_examples`], rated format: `id<TAB>rating<TAB>text`, the label
//! the rating's sign, rating 0 left out), then split into the whitespace-separated words that
//! ELMo reads (as the `webnlu elmo` CLI). Sentences without words are left out.

use crate::Result;

use super::examples::{parse_examples, ExampleFormat};

/// One labelled sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct RatedSentence {
    pub tokens: Vec<String>,
    /// 1 = positive rating, 0 = negative
    pub label: u32,
}

/// Parses the file's text; `name` names it in errors. A line without three tab-separated
/// fields, or whose rating is not a finite number, is an error naming the line.
pub fn parse_rated_sentences(name: &str, text: &str) -> Result<Vec<RatedSentence>> {
    let examples = parse_examples(text, ExampleFormat::RatedTsv, name)?;
    Ok(examples
        .into_iter()
        .map(|example| RatedSentence {
            tokens: example
                .text
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            label: (example.label == "positive") as u32,
        })
        .filter(|sentence| !sentence.tokens.is_empty())
        .collect())
}
