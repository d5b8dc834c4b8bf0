//! The `webnlu` command line: JSON lines on stdout, errors on stderr with a non-zero exit.

mod cli;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") if args.get(1).map(String::as_str) == Some("ops") => {
            cli::bench_ops::run(&args[2..])
        }
        _ => Err(webnlu::Error::invalid(
            "usage: webnlu bench ops [--json] [--device cpu|gpu] [--threads N]",
        )),
    };
    if let Err(error) = result {
        eprintln!("webnlu: {error}");
        std::process::exit(2);
    }
}
