//! Build script: the WGSL shaders as the library embeds them (`ops/shaders.rs`), with comments,
//! indentation and the blanks between tokens that need none removed. The files in `shaders/`
//! are written to be read and taught from, so a third of their bytes are comments; the wasm
//! module would carry them all. Every line is kept
//! (only emptied), so a line number in a shader compiler's message still points into the file.
//!
//! WGSL has no imports: a shader that uses a piece of `shaders/lib/` says so with a line
//! `#include "lib/NAME.wgsl"`. That line is emptied and the library file appended after the
//! shader's last line (WGSL declarations may come in any order), so the shader's own line
//! numbers stay true; a line number past the shader's end is in the appended library.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let sources = Path::new(&manifest).join("../shaders");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out_dir).join("shaders");
    std::fs::create_dir_all(&out).expect("create OUT_DIR/shaders");
    println!("cargo:rerun-if-changed={}", sources.display());
    let entries = std::fs::read_dir(&sources)
        .unwrap_or_else(|e| panic!("reading {}: {e}", sources.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let file = path.file_name().expect("a file name");
        std::fs::write(out.join(file), with_includes(&text, &path, &sources))
            .unwrap_or_else(|e| panic!("writing the stripped {}: {e}", path.display()));
    }
}

/// `text` without comments (see [`without_comments`]), each `#include "lib/NAME.wgsl"` line
/// emptied and the file it names (relative to `shaders/`, itself without includes) appended.
fn with_includes(text: &str, path: &Path, sources: &Path) -> String {
    let mut appended = String::new();
    let lines: Vec<&str> = text
        .lines()
        .map(|line| {
            let Some(rest) = line.trim().strip_prefix("#include ") else {
                return line;
            };
            let name = rest
                .trim()
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or_else(|| {
                    panic!("{}: expected #include \"lib/NAME.wgsl\"", path.display())
                });
            let library = sources.join(name);
            println!("cargo:rerun-if-changed={}", library.display());
            let included = std::fs::read_to_string(&library).unwrap_or_else(|e| {
                panic!("{}: #include {}: {e}", path.display(), library.display())
            });
            assert!(
                !included.lines().any(|l| l.trim().starts_with("#include")),
                "{}: includes are one level deep",
                library.display()
            );
            appended.push('\n');
            appended.push_str(&without_comments(&included, &library));
            ""
        })
        .collect();
    without_comments(&lines.join("\n"), path) + &appended
}

/// `text` with every `//` comment, the indentation of every line and the blanks that separate
/// nothing (see [`without_inner_blanks`]) removed, line for line. WGSL has no string literals,
/// so `//` always starts a comment; block comments (`/* */`) are not used in this repository
/// and are refused here rather than mishandled.
fn without_comments(text: &str, path: &Path) -> String {
    assert!(
        !text.contains("/*"),
        "{}: block comments are not supported by build.rs's comment stripper",
        path.display()
    );
    text.lines()
        .map(|line| without_inner_blanks(line.split("//").next().unwrap_or("").trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `line` without the blanks (spaces, tabs) that WGSL's tokens do not need: a run of blanks is
/// kept (as one space) only between two word characters (identifiers, keywords, numbers,
/// attributes: `var x`, `@compute @workgroup_size`) or between two operator characters (where
/// removing it could make another token: `a - -b` is not `a--b`); next to a delimiter
/// (`( ) [ ] { } , ; :`) or between a word and an operator it goes (`x + 1` -> `x+1`). WGSL
/// parses the same either way (its template-list discovery skips blanks too). About 11% of the
/// embedded shaders' bytes (all shaders: 57,006 bytes before, 51,232 after, with the 16-bit
/// weights' additions to matmul.wgsl).
fn without_inner_blanks(line: &str) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '.');
    let delimiter = |c: char| matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | ',' | ';' | ':');
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ' ' && c != '\t' {
            out.push(c);
            continue;
        }
        while chars.next_if(|&n| n == ' ' || n == '\t').is_some() {}
        let (Some(before), Some(&after)) = (out.chars().last(), chars.peek()) else {
            continue;
        };
        if delimiter(before) || delimiter(after) || word(before) != word(after) {
            continue;
        }
        out.push(' ');
    }
    out
}
