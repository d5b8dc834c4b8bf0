//! `webnlu inspect --model DIR [--attentions] [--layers all|K,..] [--device auto|gpu|cpu]`
//!
//! Reads one text per line from stdin, or a pair as two texts separated by the first tab, and
//! writes one JSON object per line:
//!
//! ```text
//! {"tokens": [...], "offsets": [[start, end], ...], "type_ids": [...],
//!  "layers": [K, ...], "hidden_states": [S][T][C],
//!  "attention_layers": [l, ...], "attentions": [A][NH][T][T]}      (the last two with --attentions)
//! ```
//!
//! Offsets are code points of the token's own text (the second text's for a pair's second
//! part), as `classify-tokens` gives them; (0, 0) for [CLS] / [SEP]. `hidden_states[0]` is the
//! embeddings' output and `hidden_states[l]` layer l's (transformers' `output_hidden_states`);
//! with `--layers K,..` only those indices, listed in `layers`. The attentions are the
//! post-softmax probabilities of the layers that produced a selected hidden state (K >= 1 gives
//! layer K's, transformers' `attentions[K - 1]`; `attention_layers` lists those 0-based
//! indices). A line longer than the model's positions is refused with its length: inspection
//! reads one window.

use std::io::Write;

use pollster::block_on;

use clap::Args;

use super::model_tasks::{open_device, read_lines};
use webnlu::device::DeviceChoice;
use webnlu::tasks::{InspectOptions, Pipeline};
use webnlu::{Error, Result};

/// `inspect`'s options.
#[derive(Args)]
pub struct InspectArgs {
    /// The model directory
    #[arg(long, value_name = "DIR")]
    pub model: String,
    /// Also the attention probabilities of the layers that made the selected hidden states
    #[arg(long)]
    pub attentions: bool,
    /// The hidden states to report: all, or indices (0 = the embeddings) like 0,3,6
    #[arg(long, value_name = "all|K,..", default_value = "all")]
    pub layers: String,
    /// Where the model runs
    #[arg(long, value_name = "auto|gpu|cpu", default_value = "auto")]
    pub device: DeviceChoice,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let dir = args.model.as_str();
    let options = InspectOptions {
        layers: args.layers.parse()?,
        attentions: args.attentions,
    };
    let pipeline = Pipeline::load_dir(dir, &open_device(args.device, false)?)?;
    super::model_tasks::warn_newly_initialized(&pipeline, dir);
    options.layers.indices(pipeline.model.num_layers())?; // a bad --layers before any input
    let lines = read_lines(std::io::stdin().lock(), "<stdin>")?;
    if lines.is_empty() {
        return Err(Error::invalid("inspect: no texts on stdin"));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (number, line) in lines.iter().enumerate() {
        let (text, pair) = match line.split_once('\t') {
            Some((a, b)) => (a, Some(b)),
            None => (line.as_str(), None),
        };
        let inspection = block_on(pipeline.inspect(text, pair, &options)).map_err(|e| match e {
            Error::InvalidArgument(m) => Error::invalid(format!("line {}: {m}", number + 1)),
            other => other,
        })?;
        let (t, c, heads) = (inspection.seq(), inspection.hidden_size, inspection.heads);
        let line = Line {
            tokens: &inspection.tokens,
            offsets: inspection.offsets.iter().map(|&(s, e)| [s, e]).collect(),
            type_ids: &inspection.type_ids,
            layers: &inspection.layers,
            // (S, T, C)
            hidden_states: inspection
                .hidden_states
                .chunks(t * c)
                .map(|state| state.chunks(c).collect())
                .collect(),
            attention_layers: options.attentions.then_some(&inspection.attention_layers),
            // (A, NH, T, T)
            attentions: options.attentions.then(|| {
                inspection
                    .attentions
                    .chunks(heads * t * t)
                    .map(|layer| {
                        layer
                            .chunks(t * t)
                            .map(|head| head.chunks(t).collect())
                            .collect()
                    })
                    .collect()
            }),
        };
        serde_json::to_writer(&mut out, &line).map_err(|e| Error::invalid(e.to_string()))?;
        writeln!(out).map_err(|e| Error::io("<stdout>", e))?;
    }
    out.flush().map_err(|e| Error::io("<stdout>", e))
}

/// One output line, fields in this order; numbers written as the shortest f32 that reads back.
#[derive(serde::Serialize)]
struct Line<'a> {
    tokens: &'a [String],
    offsets: Vec<[usize; 2]>,
    type_ids: &'a [u32],
    layers: &'a [usize],
    hidden_states: Vec<Vec<&'a [f32]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attention_layers: Option<&'a Vec<usize>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attentions: Option<Vec<Vec<Vec<&'a [f32]>>>>,
}
