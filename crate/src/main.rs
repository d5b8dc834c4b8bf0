//! The `webnlu` command line: JSON lines on stdout, errors on stderr with a non-zero exit.

fn main() {
    eprintln!("webnlu: no subcommands yet");
    std::process::exit(2);
}
