//! The `webnlu` command line: JSON lines on stdout, errors on stderr with a non-zero exit.
//! This file only dispatches; each subcommand lives in `cli/<name>.rs`.

mod cli;

const USAGE: &str = "usage: webnlu <command> [options]

commands:
  tokenize --tokenizer PATH [--pair] [--max-length N] [--stride N] [--count] [--no-lowercase]
      one text per line on stdin (a pair: two texts separated by a tab); one JSON object
      {\"ids\",\"type_ids\",\"tokens\",\"offsets\"} per line on stdout
  bench tokenizer [--input FILE] [--tokenizer PATH] [--repeat N] [--json]
      single-thread throughput of webnlu vs the `tokenizers` crate (build with --features bench-peers)
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("tokenize") => cli::tokenize::run(&args[1..]),
        Some("bench") => cli::bench::run(&args[1..]),
        Some("-h") | Some("--help") | Some("help") => {
            print!("{USAGE}");
            return;
        }
        Some(other) => Err(webnlu::Error::invalid(format!(
            "unknown command {other:?}\n{USAGE}"
        ))),
        None => Err(webnlu::Error::invalid(format!("no command given\n{USAGE}"))),
    };
    if let Err(error) = result {
        eprintln!("webnlu: {error}");
        std::process::exit(1);
    }
}
