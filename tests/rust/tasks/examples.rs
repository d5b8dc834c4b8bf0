//! The examples parser's formats beyond the CLI's files (tasks/examples.rs): the `lines` format
//! that people type or paste (the demo's), what `Auto` picks without a file name, trimming, and
//! errors that name the line. The rated, TSV and CSV files of the CLI are tested in train.rs.

use webnlu::tasks::examples::{parse_examples, Example, ExampleFormat};

fn auto(content: &str) -> Vec<Example> {
    parse_examples(content, ExampleFormat::Auto, "examples").unwrap()
}

#[test]
fn lines_take_the_label_after_the_last_tab_or_else_the_last_comma() {
    let content = "a gorgeous, moving film ,positive\r\nso dull\tnegative\n\n  fine, I guess\t, ok \tneutral\n";
    let examples = parse_examples(content, ExampleFormat::Lines, "pasted").unwrap();
    assert_eq!(
        examples,
        [
            Example::new("a gorgeous, moving film", "positive"),
            Example::new("so dull", "negative"),
            Example::new("fine, I guess\t, ok", "neutral"),
        ]
    );
    // Auto reads comma lines (no tab in the first line) as lines
    assert_eq!(
        auto("great,positive\nawful,negative\n"),
        [
            Example::new("great", "positive"),
            Example::new("awful", "negative"),
        ]
    );
}

#[test]
fn auto_picks_the_format_by_the_first_line_without_a_file_name() {
    // a CSV header naming text and label (any case, quoted or not, any order) is CSV
    let csv = "\n Label ,\"TEXT\"\npositive,\"good, \"\"really\"\"\"\nnegative, bad \n";
    assert_eq!(
        auto(csv),
        [
            Example::new("good, \"really\"", "positive"),
            Example::new("bad", "negative"),
        ]
    );
    // a rated line is a rated TSV (the label the rating's sign, 0 left out, the text trimmed)
    let rated = "1\t2.5\t  a fine film \n2\t0\tneither\n3\t-1.2\tdull\n";
    assert_eq!(
        auto(rated),
        [
            Example::new("a fine film", "positive"),
            Example::new("dull", "negative"),
        ]
    );
    // a first line with a tab is TSV: its header skipped, pairs read
    assert_eq!(
        auto("text\tlabel\nnice\tpos\n"),
        [Example::new("nice", "pos")]
    );
    assert_eq!(auto("a\tb\tsame\n"), [Example::with_pair("a", "b", "same")]);
}

#[test]
fn formats_by_name() {
    for (name, format) in [
        ("auto", ExampleFormat::Auto),
        ("rated", ExampleFormat::RatedTsv),
        ("tsv", ExampleFormat::Tsv),
        ("csv", ExampleFormat::Csv),
        ("lines", ExampleFormat::Lines),
    ] {
        assert_eq!(name.parse::<ExampleFormat>().unwrap(), format);
    }
    let error = "json".parse::<ExampleFormat>().unwrap_err().to_string();
    assert!(
        error.contains("\"json\"") && error.contains("lines"),
        "{error}"
    );
}

#[test]
fn bad_lines_are_errors_naming_the_line() {
    for (content, format, expected) in [
        (
            "good,positive\nno label here\n",
            ExampleFormat::Lines,
            "line 2: no label",
        ),
        (
            "good,positive\n\nso dull,\n",
            ExampleFormat::Lines,
            "line 3: empty label",
        ),
        (" ,positive\n", ExampleFormat::Lines, "line 1: empty text"),
        (
            "text,label\nfine,pos\n\"\",neg\n",
            ExampleFormat::Csv,
            "line 3: empty text",
        ),
        (
            "text\tlabel\n \tpos\n",
            ExampleFormat::Tsv,
            "line 2: empty text",
        ),
        ("1\t2\t   \n", ExampleFormat::RatedTsv, "no examples"), // rated: no text, left out
        ("\n\n", ExampleFormat::Lines, "no examples"),
    ] {
        let error = parse_examples(content, format, "pasted")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("pasted: ") && error.contains(expected),
            "{content:?} as {format:?}: {error}"
        );
    }
}
