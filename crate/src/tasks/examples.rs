//! Labelled examples for `train_classifier`, and the text formats they are read from:
//!
//! - **rated TSV** (the VADER ground-truth files, Hutto & Gilbert, ICWSM 2014):
//!   `id<TAB>rating<TAB>text` per line, the label being the sign of the rating ("positive" /
//!   "negative"; a rating of exactly 0 has no sentiment and the line is skipped, as is a line
//!   whose text is empty);
//! - **TSV**: `text<TAB>label` per line (a first line `text<TAB>label` is a header), or for
//!   pairs of texts `text<TAB>text_pair<TAB>label` (header `text<TAB>text_pair<TAB>label`);
//!   every line has the columns of the first;
//! - **CSV** (RFC 4180 quoting): a header naming the columns `text` and `label`, and
//!   `text_pair` for pairs of texts;
//! - **lines** (what a person types or pastes, as in the demo): `text,label` or
//!   `text<TAB>label` per line, the label after the line's last tab, or after its last comma
//!   when it has no tab (so the text may hold commas).
//!
//! Text, pair and label are trimmed of surrounding white space; an empty text or label is an
//! error naming the line (but in a rated TSV). Line ends may be `\n` or `\r\n`; empty lines
//! are skipped. A pair TSV whose first line reads as a rated line (a number in the second
//! column) is taken for a rated TSV: give it its header, or `ExampleFormat::Tsv`.

use crate::{Error, Result};

use super::text_pairs::TaskText;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Example {
    pub text: String,
    /// The second text of a pair (read as `classify` reads a pair).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    pub label: String,
}

impl Example {
    /// A single text with its label.
    pub fn new(text: impl Into<String>, label: impl Into<String>) -> Example {
        Example {
            text: text.into(),
            pair: None,
            label: label.into(),
        }
    }

    /// A pair of texts with its label.
    pub fn with_pair(
        text: impl Into<String>,
        pair: impl Into<String>,
        label: impl Into<String>,
    ) -> Example {
        Example {
            text: text.into(),
            pair: Some(pair.into()),
            label: label.into(),
        }
    }
}

impl TaskText for Example {
    fn text(&self) -> &str {
        &self.text
    }
    fn pair(&self) -> Option<&str> {
        self.pair.as_deref()
    }
}

/// How a file of examples is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExampleFormat {
    /// Decided by the name and the first non-empty line, in this order: a `.csv` name is CSV;
    /// a rated line (`id<TAB>number<TAB>text`) a rated TSV; a comma-separated header naming
    /// `text` and `label` CSV; a line with a tab TSV; anything else lines (`text,label`).
    Auto,
    RatedTsv,
    Tsv,
    Csv,
    Lines,
}

impl std::str::FromStr for ExampleFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(ExampleFormat::Auto),
            "rated" => Ok(ExampleFormat::RatedTsv),
            "tsv" => Ok(ExampleFormat::Tsv),
            "csv" => Ok(ExampleFormat::Csv),
            "lines" => Ok(ExampleFormat::Lines),
            other => Err(Error::invalid(format!(
                "the format of labelled examples must be auto, rated, tsv, csv or lines, found {other:?}"
            ))),
        }
    }
}

/// Examples in `content`; `what` names the input in errors (a file name).
pub fn parse_examples(content: &str, format: ExampleFormat, what: &str) -> Result<Vec<Example>> {
    let format = match format {
        ExampleFormat::Auto => detect_format(content, what),
        other => other,
    };
    let examples = match format {
        ExampleFormat::RatedTsv => parse_rated_tsv(content, what)?,
        ExampleFormat::Tsv => parse_tsv(content, what)?,
        ExampleFormat::Csv => parse_csv(content, what)?,
        ExampleFormat::Lines => parse_lines(content, what)?,
        ExampleFormat::Auto => unreachable!("resolved above"),
    };
    if examples.is_empty() {
        return Err(Error::format(what, "no examples"));
    }
    Ok(examples)
}

/// What [`ExampleFormat::Auto`] means for this content and name.
fn detect_format(content: &str, what: &str) -> ExampleFormat {
    if what.to_ascii_lowercase().ends_with(".csv") {
        return ExampleFormat::Csv;
    }
    let first = content.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let names_text_and_label = |header: &[&str]| {
        let has = |name: &str| {
            header
                .iter()
                .any(|h| h.trim().trim_matches('"').eq_ignore_ascii_case(name))
        };
        has("text") && has("label")
    };
    if rated_line(first).is_some() {
        ExampleFormat::RatedTsv
    } else if names_text_and_label(&first.split(',').collect::<Vec<_>>()) {
        ExampleFormat::Csv
    } else if first.contains('\t') {
        ExampleFormat::Tsv
    } else {
        ExampleFormat::Lines
    }
}

/// `(rating, text)` of an `id<TAB>rating<TAB>text` line.
fn rated_line(line: &str) -> Option<(f64, &str)> {
    let mut fields = line.splitn(3, '\t');
    let (_id, rating, text) = (fields.next()?, fields.next()?, fields.next()?);
    let rating: f64 = rating.trim().parse().ok()?;
    Some((rating, text.trim()))
}

fn parse_rated_tsv(content: &str, what: &str) -> Result<Vec<Example>> {
    let mut examples = Vec::new();
    for (number, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (rating, text) = rated_line(line).ok_or_else(|| {
            Error::format(
                what,
                format!(
                    "line {}: expected id<TAB>rating<TAB>text with a numeric rating",
                    number + 1
                ),
            )
        })?;
        if !rating.is_finite() {
            return Err(Error::format(
                what,
                format!("line {}: rating {rating}", number + 1),
            ));
        }
        if text.is_empty() {
            continue; // a rating of no words: nothing to learn from (as a rating of 0)
        }
        let label = if rating > 0.0 {
            "positive"
        } else if rating < 0.0 {
            "negative"
        } else {
            continue;
        };
        push_example(&mut examples, text, None, label, what, number + 1)?;
    }
    Ok(examples)
}

fn parse_tsv(content: &str, what: &str) -> Result<Vec<Example>> {
    let mut examples = Vec::new();
    // 2 (text, label) or 3 (text, text_pair, label): the first line's
    let mut columns = None;
    for (number, line) in content.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let expected = *columns.get_or_insert(fields.len());
        if !(2..=3).contains(&fields.len()) || fields.len() != expected {
            let layout = match expected {
                3 => "text<TAB>text_pair<TAB>label",
                _ => "text<TAB>label (or text<TAB>text_pair<TAB>label for pairs)",
            };
            return Err(Error::format(
                what,
                format!(
                    "line {}: {} tab-separated fields, expected {layout}",
                    number + 1,
                    fields.len()
                ),
            ));
        }
        let header = match fields.as_slice() {
            [text, label] => [text.trim(), label.trim()] == ["text", "label"],
            [text, pair, label] => {
                [text.trim(), pair.trim(), label.trim()] == ["text", "text_pair", "label"]
            }
            _ => false,
        };
        if examples.is_empty() && header {
            continue;
        }
        let (text, pair, label) = match fields.as_slice() {
            [text, label] => (*text, None, *label),
            [text, pair, label] => (*text, Some(*pair), *label),
            _ => unreachable!("2 or 3 fields, checked above"),
        };
        push_example(&mut examples, text, pair, label, what, number + 1)?;
    }
    Ok(examples)
}

fn push_example(
    examples: &mut Vec<Example>,
    text: &str,
    pair: Option<&str>,
    label: &str,
    what: &str,
    line: usize,
) -> Result<()> {
    let (text, label) = (text.trim(), label.trim());
    if text.is_empty() {
        return Err(Error::format(what, format!("line {line}: empty text")));
    }
    if label.is_empty() {
        return Err(Error::format(what, format!("line {line}: empty label")));
    }
    examples.push(Example {
        text: text.to_string(),
        pair: pair.map(|p| p.trim().to_string()),
        label: label.to_string(),
    });
    Ok(())
}

/// One example per line: the label after the last tab, or after the last comma in a line
/// without tabs.
fn parse_lines(content: &str, what: &str) -> Result<Vec<Example>> {
    let mut examples = Vec::new();
    for (number, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let separator = if line.contains('\t') { '\t' } else { ',' };
        let Some((text, label)) = line.rsplit_once(separator) else {
            return Err(Error::format(
                what,
                format!(
                    "line {}: no label: write \"text,label\" or \"text<TAB>label\"",
                    number + 1
                ),
            ));
        };
        push_example(&mut examples, text, None, label, what, number + 1)?;
    }
    Ok(examples)
}

/// CSV records (RFC 4180: fields in double quotes may hold commas, newlines and `""`).
fn csv_records(content: &str, what: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => in_quotes = false,
            ('"', false) if field.is_empty() => in_quotes = true,
            (',', false) => record.push(std::mem::take(&mut field)),
            ('\r', false) if chars.peek() == Some(&'\n') => {}
            ('\n', false) => {
                record.push(std::mem::take(&mut field));
                if !(record.len() == 1 && record[0].is_empty()) {
                    records.push((record_line, std::mem::take(&mut record)));
                }
                record.clear();
                line += 1;
                record_line = line;
            }
            (c, _) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
        }
    }
    if in_quotes {
        return Err(Error::format(
            what,
            format!("record at line {record_line}: a quoted field is not closed"),
        ));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push((record_line, record));
    }
    Ok(records)
}

fn parse_csv(content: &str, what: &str) -> Result<Vec<Example>> {
    let records = csv_records(content, what)?;
    let Some(((_, header), rows)) = records.split_first() else {
        return Ok(Vec::new());
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::format(
                    what,
                    format!("the header {header:?} has no column named {name:?}"),
                )
            })
    };
    let (text_column, label_column) = (column("text")?, column("label")?);
    let pair_column = column("text_pair").ok();
    let mut examples = Vec::with_capacity(rows.len());
    for (line, row) in rows {
        if row.len() != header.len() {
            return Err(Error::format(
                what,
                format!(
                    "record at line {line} has {} fields, the header {}",
                    row.len(),
                    header.len()
                ),
            ));
        }
        push_example(
            &mut examples,
            &row[text_column],
            pair_column.map(|c| row[c].as_str()),
            &row[label_column],
            what,
            *line,
        )?;
    }
    Ok(examples)
}

/// The distinct labels, sorted (class `i` is `labels[i]`), and each example's class.
pub fn label_classes(examples: &[Example]) -> (Vec<String>, Vec<u32>) {
    let mut labels: Vec<String> = examples.iter().map(|e| e.label.clone()).collect();
    crate::sort::sort_dedup(&mut labels);
    let classes = examples
        .iter()
        .map(|e| {
            labels
                .binary_search(&e.label)
                .expect("label is in the list") as u32
        })
        .collect();
    (labels, classes)
}
