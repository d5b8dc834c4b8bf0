//! A reader for the subset of HDF5 that h5py writes in AllenNLP's ELMo files: enough to list
//! every dataset and read it as f32. Structures follow the HDF5 File Format Specification
//! (version 3.0, sections II-IV: superblock, B-tree v1, symbol table nodes, local heaps, object
//! headers v1/v2, and the dataspace, datatype, layout, filter pipeline, link and symbol table
//! messages).
//!
//! Supported: superblock versions 0-3; object header versions 1 and 2 with continuation blocks;
//! groups stored as symbol tables (B-tree v1 + local heap) or as compact link messages; datasets
//! with little-endian float (32/64-bit) or integer (8-64-bit) elements, laid out compact,
//! contiguous or chunked (B-tree v1 chunk index) with the deflate, shuffle and fletcher32 filters.
//! Not supported (refused by name): dense link storage (fractal heaps), layout version 4 chunk
//! indexes, other filters, shared datatypes, big-endian data, strings and compound types.
//!
//! Why not a crate: `hdf5-pure` 0.45 (pure Rust) also reads these files, builds for wasm32 and
//! survived the same fuzzing, but it is ~120k lines; a wasm32 cdylib that lists and sums every
//! dataset measured 474 KB with it against 108 KB with this reader (opt-level "s", fat LTO,
//! panic=abort, no wasm-opt; 2026-11-27). The package size is a feature, so the subset stays here.
//!
//! The file is hostile input: every address is checked against the bytes, structures that could
//! loop (B-trees, continuation blocks, hard links) are walked with visited sets and depth limits,
//! and the size of a dataset is bounded by what the file can back before anything is allocated.

use std::collections::HashSet;

use super::byte_reader::{checked_product, ByteReader};
use crate::{Error, Result};

// The reader's parts, each an `impl Hdf5File` block over one part of the format:
mod chunks; // chunked datasets: the chunk B-tree and the filters (deflate, shuffle, fletcher32)
mod dataset; // a dataset's messages: dataspace, datatype, layout, filter pipeline
mod groups; // groups: symbol tables (B-tree v1 + local heap) and link messages
mod object_header; // object headers v1 and v2, their messages and continuation blocks

use chunks::ChunkReader;
use object_header::find_message;

const SIGNATURE: [u8; 8] = [0x89, b'H', b'D', b'F', b'\r', b'\n', 0x1a, b'\n'];
const MAX_DEPTH: usize = 64;
const MAX_HEADER_BLOCKS: usize = 1024;
const MAX_RANK: usize = 32;
/// No dataset read allocates more than this (1 GiB), whatever its header says.
const MAX_DATASET_BYTES: usize = 1 << 30;
/// Deflate cannot expand data by more than about 1032x (zlib technical details), so a chunked
/// dataset larger than that multiple of the file is a lie.
const MAX_DEFLATE_RATIO: usize = 1032;

// Object header message types (spec IV.A.2).
const MSG_DATASPACE: u16 = 0x01;
const MSG_LINK_INFO: u16 = 0x02;
const MSG_DATATYPE: u16 = 0x03;
const MSG_LINK: u16 = 0x06;
const MSG_LAYOUT: u16 = 0x08;
const MSG_FILTER_PIPELINE: u16 = 0x0b;
const MSG_CONTINUATION: u16 = 0x10;
const MSG_SYMBOL_TABLE: u16 = 0x11;

const FILTER_DEFLATE: u16 = 1;
const FILTER_SHUFFLE: u16 = 2;
const FILTER_FLETCHER32: u16 = 3;

/// An HDF5 file held in memory.
pub struct Hdf5File<'a> {
    file: String,
    bytes: &'a [u8],
    /// Addresses in the file are relative to this (non-zero when there is a user block).
    base: u64,
    offset_size: usize,
    length_size: usize,
    root: u64,
}

/// Element type of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hdf5Type {
    F32,
    F64,
    Int { size: usize, signed: bool },
}

impl Hdf5Type {
    fn size(self) -> usize {
        match self {
            Hdf5Type::F32 => 4,
            Hdf5Type::F64 => 8,
            Hdf5Type::Int { size, .. } => size,
        }
    }
}

struct Message<'a> {
    kind: u16,
    data: &'a [u8],
}

#[derive(Clone, Copy)]
struct Filter {
    id: u16,
}

enum Layout<'a> {
    Compact(&'a [u8]),
    Contiguous { address: u64 },
    Chunked { btree: u64, chunk: Vec<usize> },
}

impl<'a> Hdf5File<'a> {
    /// Reads the superblock. `file` names the file in errors.
    pub fn parse(file: &str, bytes: &'a [u8]) -> Result<Self> {
        // The superblock sits at 0, 512, 1024, 2048, ... (after an optional user block).
        let mut at = 0usize;
        let start = loop {
            if at.checked_add(8).is_none_or(|end| end > bytes.len()) {
                return Err(Error::format(
                    file,
                    "not an HDF5 file: no superblock signature",
                ));
            }
            if bytes[at..at + 8] == SIGNATURE {
                break at;
            }
            at = if at == 0 { 512 } else { at * 2 };
        };
        let mut r = ByteReader::at(file, bytes, start as u64 + 8)?;
        let version = r.u8()?;
        let (offset_size, length_size, base, root);
        match version {
            0 | 1 => {
                r.skip(4)?; // free-space, root symbol table entry, reserved, shared header version
                offset_size = r.u8()? as usize;
                length_size = r.u8()? as usize;
                r.skip(1 + 2 + 2 + 4)?; // reserved, group K values, consistency flags
                if version == 1 {
                    r.skip(4)?; // indexed storage K + reserved
                }
                check_sizes(file, offset_size, length_size)?;
                base = r.uint(offset_size)?;
                r.skip(3 * offset_size)?; // free space, end of file, driver info addresses
                                          // Root group symbol table entry: link name offset, then the object header address.
                r.skip(offset_size)?;
                root = r.uint(offset_size)?;
            }
            2 | 3 => {
                offset_size = r.u8()? as usize;
                length_size = r.u8()? as usize;
                r.skip(1)?; // consistency flags
                check_sizes(file, offset_size, length_size)?;
                base = r.uint(offset_size)?;
                r.skip(2 * offset_size)?; // superblock extension, end of file
                root = r.uint(offset_size)?;
            }
            v => {
                return Err(Error::unsupported(format!(
                    "{file}: HDF5 superblock version {v}"
                )))
            }
        }
        Ok(Hdf5File {
            file: file.to_string(),
            bytes,
            base,
            offset_size,
            length_size,
            root,
        })
    }

    fn err(&self, detail: impl Into<String>) -> Error {
        Error::format(&self.file, detail.into())
    }

    fn undefined(&self, address: u64) -> bool {
        self.offset_size == 8 && address == u64::MAX
            || self.offset_size < 8 && address == (1u64 << (8 * self.offset_size)) - 1
    }

    /// A reader at a file address (relative to the base), checked to lie inside the file.
    fn reader(&self, address: u64) -> Result<ByteReader<'_, 'a>> {
        let absolute = self
            .base
            .checked_add(address)
            .ok_or_else(|| self.err(format!("address {address} overflows")))?;
        ByteReader::at(&self.file, self.bytes, absolute)
    }

    fn slice(&self, address: u64, len: u64, what: &str) -> Result<&'a [u8]> {
        let len = usize::try_from(len)
            .map_err(|_| self.err(format!("{what}: length {len} overflows")))?;
        let mut r = self.reader(address)?;
        r.take(len).map_err(|_| {
            self.err(format!(
                "{what}: {len} bytes at address {address} run past the end of the file ({} bytes)",
                self.bytes.len()
            ))
        })
    }

    /// Every dataset's path ("CNN/W_cnn_0", ...), sorted.
    pub fn dataset_paths(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.collect_datasets(self.root, String::new(), 0, &mut seen, &mut out)?;
        crate::sort::sort(&mut out);
        Ok(out)
    }

    fn find(&self, path: &str) -> Result<u64> {
        let mut address = self.root;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let members = self.group_members(address)?.ok_or_else(|| {
                self.err(format!("{path}: {part:?} is inside a dataset, not a group"))
            })?;
            address = members
                .into_iter()
                .find(|(name, _)| name == part)
                .map(|(_, a)| a)
                .ok_or_else(|| self.err(format!("no dataset {path} (missing {part:?})")))?;
        }
        Ok(address)
    }

    /// Shape and element type of a dataset.
    pub fn dataset_shape(&self, path: &str) -> Result<(Vec<usize>, Hdf5Type)> {
        let messages = self.messages(self.find(path)?)?;
        let shape = self.dataspace(path, &messages)?;
        let dtype = self.datatype(path, &messages)?;
        Ok((shape, dtype))
    }

    /// Refuses a dataset of `bytes_needed` bytes that even the best compression could not have
    /// made from this file (deflate expands at most [`MAX_DEFLATE_RATIO`] times), and an
    /// unwritten one (read as zeros) claiming as much.
    fn check_fits_file(&self, path: &str, shape: &[usize], bytes_needed: usize) -> Result<()> {
        if bytes_needed / MAX_DEFLATE_RATIO > self.bytes.len() {
            return Err(self.err(format!(
                "dataset {path}: shape {shape:?} is far larger than the file could hold"
            )));
        }
        Ok(())
    }

    /// Reads a dataset as f32 values in row-major order, with its shape.
    pub fn read_dataset_f32(&self, path: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let messages = self.messages(self.find(path)?)?;
        let shape = self.dataspace(path, &messages)?;
        let dtype = self.datatype(path, &messages)?;
        let layout = self.layout(path, &messages)?;
        let filters = self.filters(path, &messages)?;
        let numel = checked_product(&shape);
        let bytes_needed = numel.and_then(|n| n.checked_mul(dtype.size()));
        let bytes_needed = match bytes_needed {
            Some(n) if n <= MAX_DATASET_BYTES => n,
            _ => {
                return Err(self.err(format!(
                    "dataset {path}: shape {shape:?} is larger than {MAX_DATASET_BYTES} bytes"
                )))
            }
        };
        let raw: Vec<u8> = match layout {
            Layout::Compact(data) => data
                .get(..bytes_needed)
                .ok_or_else(|| {
                    Error::shape(
                        format!("{}: dataset {path} (compact data bytes)", self.file),
                        bytes_needed,
                        data.len(),
                    )
                })?
                .to_vec(),
            // Never written: h5py reads the fill value (zeros). Bounded like chunked data, so
            // that a small file cannot make the reader allocate gigabytes of zeros.
            Layout::Contiguous { address } if self.undefined(address) => {
                self.check_fits_file(path, &shape, bytes_needed)?;
                vec![0; bytes_needed]
            }
            Layout::Contiguous { address } => self
                .slice(address, bytes_needed as u64, &format!("dataset {path}"))?
                .to_vec(),
            Layout::Chunked { btree, chunk } => {
                self.check_fits_file(path, &shape, bytes_needed)?;
                if chunk.len() != shape.len() {
                    return Err(Error::shape(
                        format!("{}: dataset {path} chunk rank", self.file),
                        shape.len(),
                        chunk.len(),
                    ));
                }
                // A chunk index may list each chunk of the grid once: bounds the work a lying
                // index can cause (every listed chunk is inflated).
                let mut max_chunks = 1usize;
                for (&d, &c) in shape.iter().zip(&chunk) {
                    if c == 0 {
                        return Err(
                            self.err(format!("dataset {path}: chunk shape {chunk:?} has a zero"))
                        );
                    }
                    max_chunks = max_chunks.saturating_mul(d.div_ceil(c));
                }
                let mut out = vec![0u8; bytes_needed];
                if !self.undefined(btree) {
                    let mut reader = ChunkReader {
                        hdf: self,
                        path,
                        shape: &shape,
                        chunk: &chunk,
                        elem: dtype.size(),
                        filters: &filters,
                        out: &mut out,
                        seen: HashSet::new(),
                        chunks_left: max_chunks,
                    };
                    reader.walk(btree, 0)?;
                }
                out
            }
        };
        Ok((shape, convert_to_f32(&raw, dtype)))
    }
}

fn check_sizes(file: &str, offset_size: usize, length_size: usize) -> Result<()> {
    if ![2, 4, 8].contains(&offset_size) || ![2, 4, 8].contains(&length_size) {
        return Err(Error::format(
            file,
            format!("HDF5 superblock: offset size {offset_size} / length size {length_size} must be 2, 4 or 8"),
        ));
    }
    Ok(())
}

fn convert_to_f32(raw: &[u8], dtype: Hdf5Type) -> Vec<f32> {
    match dtype {
        Hdf5Type::F32 => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Hdf5Type::F64 => raw
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Hdf5Type::Int { size, signed } => raw
            .chunks_exact(size)
            .map(|b| {
                let mut v: u64 = 0;
                for (i, &x) in b.iter().enumerate() {
                    v |= (x as u64) << (8 * i);
                }
                if signed && size < 8 && b[size - 1] & 0x80 != 0 {
                    (v as i64 - (1i64 << (8 * size))) as f32
                } else if signed {
                    v as i64 as f32
                } else {
                    v as f32
                }
            })
            .collect(),
    }
}
