//! Word-labelled examples for token classification (named entities, parts of speech), and the
//! text formats they are read from:
//!
//! - **CoNLL** (CoNLL-2003 and its kin): one word per line, columns separated by spaces or tabs,
//!   the word first and its label last (`EU NNP B-NP B-ORG`, `Paris B-LOC`); a blank line ends a
//!   sentence; `-DOCSTART-` lines are document marks, not words;
//! - **JSON lines**: one `{"words": [...], "labels": [...]}` object per line.
//!
//! Line ends may be `\n` or `\r\n`. Every example is checked: as many labels as words, no empty
//! word or label, at least one word ([`check_word_examples`]).

use serde::Deserialize;

use crate::{Error, Result};

/// A sentence as words, each with its label.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct WordExample {
    pub words: Vec<String>,
    pub labels: Vec<String>,
}

/// How a file of word-labelled examples is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordExampleFormat {
    /// JSON lines when the first non-blank line starts with `{`, CoNLL otherwise.
    Auto,
    Conll,
    JsonLines,
}

impl std::str::FromStr for WordExampleFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(WordExampleFormat::Auto),
            "conll" => Ok(WordExampleFormat::Conll),
            "jsonl" => Ok(WordExampleFormat::JsonLines),
            other => Err(Error::invalid(format!(
                "the format of word-labelled examples must be auto, conll or jsonl, found {other:?}"
            ))),
        }
    }
}

/// The examples in `content`; `what` names the input in errors (a file name).
pub fn parse_word_examples(
    content: &str,
    format: WordExampleFormat,
    what: &str,
) -> Result<Vec<WordExample>> {
    let format = match format {
        WordExampleFormat::Auto => {
            let first = content.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if first.trim_start().starts_with('{') {
                WordExampleFormat::JsonLines
            } else {
                WordExampleFormat::Conll
            }
        }
        other => other,
    };
    let examples = match format {
        WordExampleFormat::Conll => parse_conll(content, what)?,
        WordExampleFormat::JsonLines => parse_json_lines(content, what)?,
        WordExampleFormat::Auto => unreachable!("resolved above"),
    };
    check_word_examples(&examples, what)?;
    Ok(examples)
}

fn parse_conll(content: &str, what: &str) -> Result<Vec<WordExample>> {
    let mut examples = Vec::new();
    let mut current = WordExample {
        words: Vec::new(),
        labels: Vec::new(),
    };
    let end_sentence = |current: &mut WordExample, examples: &mut Vec<WordExample>| {
        if !current.words.is_empty() {
            examples.push(std::mem::replace(
                current,
                WordExample {
                    words: Vec::new(),
                    labels: Vec::new(),
                },
            ));
        }
    };
    for (number, line) in content.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            end_sentence(&mut current, &mut examples);
            continue;
        }
        let columns: Vec<&str> = line.split_whitespace().collect();
        if columns[0] == "-DOCSTART-" {
            end_sentence(&mut current, &mut examples);
            continue;
        }
        if columns.len() < 2 {
            return Err(Error::format(
                what,
                format!(
                    "line {}: expected a word and its label (CoNLL columns), found {line:?}",
                    number + 1
                ),
            ));
        }
        current.words.push(columns[0].to_string());
        current.labels.push(columns[columns.len() - 1].to_string());
    }
    end_sentence(&mut current, &mut examples);
    Ok(examples)
}

fn parse_json_lines(content: &str, what: &str) -> Result<Vec<WordExample>> {
    let mut examples = Vec::new();
    for (number, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let example: WordExample = serde_json::from_str(line).map_err(|e| {
            Error::format(
                what,
                format!(
                    "line {}: expected {{\"words\": [...], \"labels\": [...]}}: {e}",
                    number + 1
                ),
            )
        })?;
        examples.push(example);
    }
    Ok(examples)
}

/// Errors naming the example (0-based) and word: no examples, an example without words, a
/// different number of labels than words, an empty (or all-blank) word or label.
pub fn check_word_examples(examples: &[WordExample], what: &str) -> Result<()> {
    if examples.is_empty() {
        return Err(Error::invalid(format!("{what}: no examples")));
    }
    for (e, example) in examples.iter().enumerate() {
        if example.words.is_empty() {
            return Err(Error::invalid(format!("{what}: example {e} has no words")));
        }
        if example.words.len() != example.labels.len() {
            return Err(Error::invalid(format!(
                "{what}: example {e} has {} words but {} labels (one label per word)",
                example.words.len(),
                example.labels.len()
            )));
        }
        if let Some(w) = example.words.iter().position(|w| w.trim().is_empty()) {
            return Err(Error::invalid(format!(
                "{what}: word {w} of example {e} is empty"
            )));
        }
        if let Some(w) = example.labels.iter().position(|l| l.trim().is_empty()) {
            return Err(Error::invalid(format!(
                "{what}: the label of word {w} of example {e} is empty"
            )));
        }
    }
    Ok(())
}

/// The distinct labels, sorted (class `i` is `labels[i]`), and each example's word classes.
pub fn word_label_classes(examples: &[WordExample]) -> (Vec<String>, Vec<Vec<u32>>) {
    let mut labels: Vec<String> = examples
        .iter()
        .flat_map(|e| e.labels.iter().cloned())
        .collect();
    crate::sort::sort_dedup(&mut labels);
    let classes = examples
        .iter()
        .map(|e| {
            e.labels
                .iter()
                .map(|l| labels.binary_search(l).expect("label is in the list") as u32)
                .collect()
        })
        .collect();
    (labels, classes)
}
