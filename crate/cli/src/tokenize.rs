//! `webnlu tokenize --tokenizer PATH [--pair] [--max-length N] [--stride N] [--count] [--no-lowercase]`
//!
//! Reads one text per line from stdin ('\n' separated; a '\r' before it is dropped, so CRLF
//! files work), a pair being two texts separated by the first tab. Writes one JSON object per
//! line: `{"ids": [...], "type_ids": [...], "tokens": [...], "offsets": [[start, end], ...]}`
//! with offsets in Unicode code points of the line (of each text, for a pair), plus
//! `"overflowing": [...]` (the same objects) when truncation left overflow windows.
//! `--count` prints only `{"texts": N, "tokens": M}` (M counts overflow windows too).
//! PATH is a tokenizer.json (its truncation and padding apply) or a vocab.txt (uncased BERT
//! options unless --no-lowercase). Invalid UTF-8 on stdin stops with an error naming the line.

use std::io::{BufRead, BufWriter, Write};

use clap::Args;
use webnlu::tokenizer::{Encoding, Tokenizer, VocabOptions};
use webnlu::{Error, Result};

pub fn load_tokenizer(path: &str, lowercase: bool) -> Result<Tokenizer> {
    if path.to_ascii_lowercase().ends_with(".json") {
        Tokenizer::from_tokenizer_json_file(path)
    } else {
        let options = VocabOptions {
            lowercase,
            ..VocabOptions::default()
        };
        Tokenizer::from_vocab_file(path, &options)
    }
}

/// `tokenize`'s options.
#[derive(Args)]
pub struct TokenizeArgs {
    /// A tokenizer.json (its truncation and padding apply) or a vocab.txt (uncased BERT's
    /// options unless --no-lowercase)
    #[arg(long, value_name = "PATH")]
    pub tokenizer: String,
    /// Each line is a pair of texts separated by a tab
    #[arg(long)]
    pub pair: bool,
    /// Truncate to N tokens (the rest in "overflowing" windows)
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,
    /// Tokens shared by consecutive overflow windows [default: 0]
    #[arg(long, value_name = "N")]
    pub stride: Option<usize>,
    /// Print only {"texts": N, "tokens": M}
    #[arg(long)]
    pub count: bool,
    /// A vocab.txt keeps case and accents
    #[arg(long)]
    pub no_lowercase: bool,
}

pub fn run(args: TokenizeArgs) -> Result<()> {
    let mut tokenizer = load_tokenizer(&args.tokenizer, !args.no_lowercase)?;
    let stride = args.stride;
    match args.max_length {
        Some(max_length) => tokenizer.set_max_length(max_length, stride.unwrap_or(0)),
        None if stride.is_some() => {
            let t = tokenizer.truncation().copied().ok_or_else(|| {
                Error::invalid("--stride needs --max-length (or a tokenizer.json with truncation)")
            })?;
            tokenizer.set_max_length(t.max_length, stride.unwrap_or(0));
        }
        None => {}
    }
    let pair = args.pair;
    let count = args.count;

    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut line = Vec::new();
    let (mut texts, mut tokens) = (0usize, 0usize);
    let mut number = 0usize;
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io("<stdin>", e))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        let text = std::str::from_utf8(&line).map_err(|e| {
            Error::format(
                "<stdin>",
                format!(
                    "line {number} is not valid UTF-8 (invalid byte at column {})",
                    e.valid_up_to() + 1
                ),
            )
        })?;
        let encoding = if pair {
            let (a, b) = text.split_once('\t').ok_or_else(|| {
                Error::invalid(format!(
                    "line {number}: --pair needs two texts separated by a tab"
                ))
            })?;
            tokenizer.encode_pair(a, b)
        } else {
            tokenizer.encode(text)
        }
        .map_err(|e| Error::invalid(format!("line {number}: {e}")))?;
        texts += 1;
        tokens += encoding.len()
            + encoding
                .overflowing
                .iter()
                .map(Encoding::len)
                .sum::<usize>();
        if !count {
            write_encoding(&mut out, &encoding, true).map_err(|e| Error::io("<stdout>", e))?;
            out.write_all(b"\n").map_err(|e| Error::io("<stdout>", e))?;
        }
    }
    if count {
        writeln!(out, "{{\"texts\":{texts},\"tokens\":{tokens}}}")
            .map_err(|e| Error::io("<stdout>", e))?;
    }
    out.flush().map_err(|e| Error::io("<stdout>", e))
}

fn write_list<W: Write>(out: &mut W, values: impl Iterator<Item = u32>) -> std::io::Result<()> {
    out.write_all(b"[")?;
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(out, "{v}")?;
    }
    out.write_all(b"]")
}

fn write_encoding<W: Write>(out: &mut W, e: &Encoding, with_overflow: bool) -> std::io::Result<()> {
    out.write_all(b"{\"ids\":")?;
    write_list(out, e.ids.iter().copied())?;
    out.write_all(b",\"type_ids\":")?;
    write_list(out, e.type_ids.iter().copied())?;
    out.write_all(b",\"tokens\":")?;
    serde_json::to_writer(
        &mut *out,
        &e.tokens.iter().map(|t| &**t).collect::<Vec<&str>>(),
    )?;
    out.write_all(b",\"offsets\":[")?;
    for (i, (s, t)) in e.offsets.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(out, "[{s},{t}]")?;
    }
    out.write_all(b"]")?;
    if with_overflow && !e.overflowing.is_empty() {
        out.write_all(b",\"overflowing\":[")?;
        for (i, o) in e.overflowing.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            write_encoding(out, o, false)?;
        }
        out.write_all(b"]")?;
    }
    out.write_all(b"}")
}
