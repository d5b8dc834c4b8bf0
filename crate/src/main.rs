//! The `webnlu` command line: JSON lines on stdout, errors on stderr with a non-zero exit.
//! This file only dispatches; each subcommand lives in `cli/<name>.rs`.

mod cli;

const USAGE: &str = "usage: webnlu <command> [options]

commands:
  tokenize --tokenizer PATH [--pair] [--max-length N] [--stride N] [--count] [--no-lowercase]
      one text per line on stdin (a pair: two texts separated by a tab); one JSON object
      {\"ids\",\"type_ids\",\"tokens\",\"offsets\"} per line on stdout
  elmo --options PATH --weights PATH [--batch-size N] [--stateful] [--device auto|gpu|cpu]
      one sentence per line on stdin (tokens separated by spaces); one JSON object
      {\"layers\": [layer0, layer1, layer2]} per line (per-token vectors, boundaries removed)
  elmo-train --options PATH --weights PATH --data TSV [--train N] [--test N] [--epochs E]
             [--batch-size B] [--lr X] [--seed S] [--mix | --end-to-end] [--device auto|gpu|cpu]
      sentiment classifier on ELMo features (label = sign of the rating in id<TAB>rating<TAB>text);
      one JSON line per epoch (train loss/accuracy, held-out accuracy and chance)
  bench tokenizer [--input FILE] [--tokenizer PATH] [--repeat N] [--json]
      single-thread throughput of webnlu vs the `tokenizers` crate (build with --features bench-peers)
  bench elmo [--options P --weights P] [--input FILE] [--sentences N] [--batch-size B]
             [--device cpu|gpu|both] [--repeat R] [--json]
      ELMo biLM sentences/s per device (default: AllenNLP's fixture model, movie-review sentences)
  bench ops [--json] [--device cpu|gpu] [--threads N]
      matmul GFLOP/s at BERT-base shapes and per-op times, CPU and GPU, numpy/OpenBLAS alongside
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("tokenize") => cli::tokenize::run(&args[1..]),
        Some("elmo") => cli::elmo::run(&args[1..]),
        Some("elmo-train") => cli::elmo_train::run(&args[1..]),
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
