//! `webnlu elmo --options PATH --weights PATH [--batch-size N] [--stateful] [--device auto|gpu|cpu]`
//!
//! Reads one sentence per line from stdin (tokens separated by whitespace, as AllenNLP's
//! `sentence.split()`; a '\r' before the '\n' is dropped) and writes, per line in input order,
//! `{"layers": [layer0, layer1, ...]}`: each layer a list of per-token vectors (forward half
//! then backward half; the token layer twice), sentence boundaries removed. Lines are run in
//! batches of N (default 32) in input order; `--stateful` carries each batch row's LSTM states
//! to the same row of the next batch (AllenNLP's biLM; `--batch-size 3 --stateful` reproduces
//! its test fixture). Without it every batch starts from zeros.

use std::io::{BufRead, BufWriter, Write};

use clap::Args;
use webnlu::device::{DeviceChoice, GpuOptions};
use webnlu::models::elmo::{ElmoBiLm, ElmoOutput};
use webnlu::{Device, Error, Result};

/// The biLM files and the device of the commands that run ELMo (`elmo`, `elmo-train`).
#[derive(Args)]
pub struct BiLmArgs {
    /// The biLM's options.json
    #[arg(long, value_name = "PATH")]
    pub options: String,
    /// The biLM's weights (.hdf5)
    #[arg(long, value_name = "PATH")]
    pub weights: String,
    /// Where the biLM runs
    #[arg(long, value_name = "auto|gpu|cpu", default_value = "auto")]
    pub device: DeviceChoice,
}

/// `elmo`'s options.
#[derive(Args)]
pub struct ElmoArgs {
    #[command(flatten)]
    pub bilm: BiLmArgs,
    /// Sentences per batch
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub batch_size: usize,
    /// Carry each batch row's LSTM states to the same row of the next batch (AllenNLP's biLM)
    #[arg(long)]
    pub stateful: bool,
}

/// The biLM of `--options PATH --weights PATH` on `--device`, with its device.
pub(super) fn load_bilm(args: &BiLmArgs) -> Result<(ElmoBiLm, Device)> {
    let device = Device::new_blocking(args.device, &GpuOptions::default())?;
    let options_bytes = webnlu::io::read_file(&args.options)?;
    let options_text = std::str::from_utf8(&options_bytes)
        .map_err(|_| Error::format(&args.options, "not UTF-8 text"))?;
    let weights = webnlu::io::read_file(&args.weights)?;
    let bilm = ElmoBiLm::load(options_text, &args.weights, &weights, &device)?;
    Ok((bilm, device))
}

pub fn run(args: ElmoArgs) -> Result<()> {
    let batch_size = args.batch_size;
    if batch_size == 0 {
        return Err(Error::invalid("--batch-size must be at least 1"));
    }
    let (mut bilm, _device) = load_bilm(&args.bilm)?;
    bilm.set_stateful(args.stateful);

    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut lines: Vec<String> = Vec::with_capacity(batch_size);
    let mut raw = Vec::new();
    let mut number = 0usize;
    loop {
        raw.clear();
        let n = input
            .read_until(b'\n', &mut raw)
            .map_err(|e| Error::io("<stdin>", e))?;
        if n > 0 {
            number += 1;
            if raw.last() == Some(&b'\n') {
                raw.pop();
                if raw.last() == Some(&b'\r') {
                    raw.pop();
                }
            }
            let text = String::from_utf8(raw.clone()).map_err(|e| {
                Error::format(
                    "<stdin>",
                    format!(
                        "line {number} is not valid UTF-8 (invalid byte at column {})",
                        e.utf8_error().valid_up_to() + 1
                    ),
                )
            })?;
            lines.push(text);
        }
        if lines.len() == batch_size || (n == 0 && !lines.is_empty()) {
            let sentences: Vec<Vec<&str>> = lines
                .iter()
                .map(|l| l.split_whitespace().collect())
                .collect();
            let output = bilm.embed_sentences_blocking(&sentences)?;
            write_batch(&mut out, &output).map_err(|e| Error::io("<stdout>", e))?;
            lines.clear();
        }
        if n == 0 {
            break;
        }
    }
    out.flush().map_err(|e| Error::io("<stdout>", e))
}

/// One JSON line per row of the batch.
fn write_batch<W: Write>(out: &mut W, output: &ElmoOutput) -> std::io::Result<()> {
    for b in 0..output.batch {
        out.write_all(b"{\"layers\":[")?;
        for k in 0..output.layers.len() {
            if k > 0 {
                out.write_all(b",")?;
            }
            out.write_all(b"[")?;
            for t in 0..output.lengths[b] {
                if t > 0 {
                    out.write_all(b",")?;
                }
                out.write_all(b"[")?;
                for (i, v) in output.vector(k, b, t).iter().enumerate() {
                    if i > 0 {
                        out.write_all(b",")?;
                    }
                    // Rust's shortest round-trip form of an f32: parses back to the same value.
                    write!(out, "{v:?}")?;
                }
                out.write_all(b"]")?;
            }
            out.write_all(b"]")?;
        }
        out.write_all(b"]}\n")?;
    }
    Ok(())
}
