//! The one error type of webnlu. Every public function that can fail returns `Result<T>`;
//! a message names the thing that is wrong (file, tensor, token, expected vs found), so the
//! person reading it can act without a debugger. Conversion to JS errors happens only in the
//! wasm bindings.

use std::fmt;

/// Everything that can go wrong in webnlu, grouped by where it happens.
#[derive(Debug)]
pub enum Error {
    /// Reading a file failed (missing, unreadable). `path` is the file as the caller named it.
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A file or in-memory input is malformed: a vocab, a tokenizer.json, a config, weights.
    /// `what` names the input (file name or "tokenizer.json"), `detail` says what is wrong.
    Format { what: String, detail: String },
    /// A feature that exists upstream but that webnlu does not implement (for example a
    /// tokenizer.json normalizer type). `what` names the unsupported thing by its upstream name.
    Unsupported { what: String },
    /// Caller-supplied arguments that cannot work together (bad option values, empty input
    /// where some is required, a text longer than allowed).
    InvalidArgument(String),
    /// Tensor shapes that do not fit an op or a weight file. `context` names the tensor or op.
    Shape {
        context: String,
        expected: String,
        found: String,
    },
    /// The GPU said no: no adapter, a limit exceeded, a validation or internal error.
    Gpu(String),
    /// The GPU device is gone (destroyed, a driver reset, the browser's GPU process crashed).
    /// `reason` is WebGPU's / wgpu's: "destroyed" or "unknown". Every later call on that
    /// device fails the same way; open a new device (or use the CPU) to go on.
    DeviceLost { reason: String, message: String },
    /// An allocation was refused before or when it was made: `what` names the tensor or
    /// buffer, `bytes` is what it needed, `detail` which bound it hit. Nothing is left
    /// half-done: smaller work on the same device goes on (see `crate::memory_limit`).
    OutOfMemory {
        what: String,
        bytes: u64,
        detail: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn format(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Format {
            what: what.into(),
            detail: detail.into(),
        }
    }
    pub fn unsupported(what: impl Into<String>) -> Self {
        Error::Unsupported { what: what.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
    pub fn shape(
        context: impl Into<String>,
        expected: impl fmt::Debug,
        found: impl fmt::Debug,
    ) -> Self {
        Error::Shape {
            context: context.into(),
            expected: format!("{expected:?}"),
            found: format!("{found:?}"),
        }
    }
    pub fn out_of_memory(what: impl Into<String>, bytes: u64, detail: impl Into<String>) -> Self {
        Error::OutOfMemory {
            what: what.into(),
            bytes,
            detail: detail.into(),
        }
    }
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "cannot read {path}: {source}"),
            Error::Format { what, detail } => write!(f, "{what}: {detail}"),
            Error::Unsupported { what } => write!(f, "unsupported: {what}"),
            Error::InvalidArgument(message) => write!(f, "invalid argument: {message}"),
            Error::Shape {
                context,
                expected,
                found,
            } => {
                write!(f, "{context}: expected shape {expected}, found {found}")
            }
            Error::Gpu(message) => write!(f, "GPU error: {message}"),
            Error::DeviceLost { reason, message } => {
                write!(f, "the GPU device was lost ({reason}): {message}")
            }
            Error::OutOfMemory {
                what,
                bytes,
                detail,
            } => write!(
                f,
                "out of memory: {what} needs {bytes} bytes ({:.1} MiB); {detail}",
                *bytes as f64 / 1048576.0
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
