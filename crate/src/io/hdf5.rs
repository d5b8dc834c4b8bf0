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

    /// All messages of the object header at `address`, continuation blocks included.
    fn messages(&self, address: u64) -> Result<Vec<Message<'a>>> {
        let mut r = self.reader(address)?;
        let mut out = Vec::new();
        let mut blocks: Vec<(u64, u64)> = Vec::new(); // continuation (address, length)
        let mut seen = HashSet::new();
        seen.insert(address);
        if r.remaining() >= 4 && r.bytes[r.pos..r.pos + 4] == *b"OHDR" {
            // Version 2 (spec IV.A.1.b).
            r.skip(4)?;
            let version = r.u8()?;
            if version != 2 {
                return Err(r.error(format!("object header version {version}, expected 2")));
            }
            let flags = r.u8()?;
            if flags & 0x20 != 0 {
                r.skip(16)?; // access, modification, change, birth times
            }
            if flags & 0x10 != 0 {
                r.skip(4)?; // attribute phase change values
            }
            let chunk_len = r.uint(1 << (flags & 3))?;
            let start = r.pos as u64 - self.base;
            self.read_messages_v2(start, chunk_len, flags, &mut out, &mut blocks)?;
            let mut i = 0;
            while i < blocks.len() {
                let (addr, len) = blocks[i];
                i += 1;
                if i > MAX_HEADER_BLOCKS || !seen.insert(addr) {
                    return Err(self.err(format!("object header at {address}: continuation loop")));
                }
                let block = self.slice(addr, len, "object header continuation")?;
                if len < 8 || block[..4] != *b"OCHK" {
                    return Err(self.err(format!(
                        "object header continuation at {addr}: no OCHK signature"
                    )));
                }
                self.read_messages_v2(addr + 4, len - 8, flags, &mut out, &mut blocks)?;
            }
        } else {
            // Version 1 (spec IV.A.1.a): 16-byte prefix, messages 8-byte aligned.
            let version = r.u8()?;
            if version != 1 {
                return Err(r.error(format!("object header version {version}, expected 1 or 2")));
            }
            r.skip(1)?;
            let count = r.u16()? as usize;
            r.skip(4)?; // reference count
            let len = r.u32()? as u64;
            blocks.push((address + 16, len));
            let mut i = 0;
            while i < blocks.len() && out.len() < count {
                let (addr, len) = blocks[i];
                i += 1;
                if i > MAX_HEADER_BLOCKS || (i > 1 && !seen.insert(addr)) {
                    return Err(self.err(format!("object header at {address}: continuation loop")));
                }
                let block = self.slice(addr, len, "object header")?;
                let mut m = ByteReader::new(&self.file, block);
                while m.remaining() >= 8 && out.len() < count {
                    let kind = m.u16()?;
                    let size = m.u16()? as usize;
                    let flags = m.u8()?;
                    m.skip(3)?;
                    let data = m.take(size)?;
                    self.push_message(kind, flags, data, &mut out, &mut blocks)?;
                }
            }
        }
        Ok(out)
    }

    fn read_messages_v2(
        &self,
        start: u64,
        len: u64,
        header_flags: u8,
        out: &mut Vec<Message<'a>>,
        blocks: &mut Vec<(u64, u64)>,
    ) -> Result<()> {
        let block = self.slice(start, len, "object header")?;
        let mut m = ByteReader::new(&self.file, block);
        let prefix = if header_flags & 0x04 != 0 { 6 } else { 4 };
        while m.remaining() >= prefix {
            let kind = m.u8()? as u16;
            let size = m.u16()? as usize;
            let flags = m.u8()?;
            if header_flags & 0x04 != 0 {
                m.skip(2)?; // creation order
            }
            let data = m.take(size)?;
            self.push_message(kind, flags, data, out, blocks)?;
        }
        Ok(())
    }

    fn push_message(
        &self,
        kind: u16,
        flags: u8,
        data: &'a [u8],
        out: &mut Vec<Message<'a>>,
        blocks: &mut Vec<(u64, u64)>,
    ) -> Result<()> {
        if flags & 0x02 != 0 {
            return Err(Error::unsupported(format!(
                "{}: shared object header message (type {kind})",
                self.file
            )));
        }
        if kind == MSG_CONTINUATION {
            let mut c = ByteReader::new(&self.file, data);
            let addr = c.uint(self.offset_size)?;
            let len = c.uint(self.length_size)?;
            blocks.push((addr, len));
        } else {
            out.push(Message { kind, data });
        }
        Ok(())
    }

    /// (name, object header address) of each member of the group at `address`, or None if the
    /// object is not a group.
    fn group_members(&self, address: u64) -> Result<Option<Vec<(String, u64)>>> {
        let messages = self.messages(address)?;
        let mut members = Vec::new();
        let mut is_group = false;
        for m in &messages {
            match m.kind {
                MSG_SYMBOL_TABLE => {
                    is_group = true;
                    let mut r = ByteReader::new(&self.file, m.data);
                    let btree = r.uint(self.offset_size)?;
                    let heap = r.uint(self.offset_size)?;
                    let heap = self.local_heap(heap)?;
                    let mut seen = HashSet::new();
                    self.walk_group_btree(btree, heap, 0, &mut seen, &mut members)?;
                }
                MSG_LINK_INFO => {
                    is_group = true;
                    let mut r = ByteReader::new(&self.file, m.data);
                    r.skip(1)?;
                    let flags = r.u8()?;
                    if flags & 1 != 0 {
                        r.skip(8)?;
                    }
                    let fractal_heap = r.uint(self.offset_size)?;
                    if !self.undefined(fractal_heap) {
                        return Err(Error::unsupported(format!(
                            "{}: group with dense link storage (fractal heap)",
                            self.file
                        )));
                    }
                }
                MSG_LINK => {
                    is_group = true;
                    if let Some(member) = self.parse_link(m.data)? {
                        members.push(member);
                    }
                }
                _ => {}
            }
        }
        Ok(is_group.then_some(members))
    }

    /// Link message (spec IV.A.2.g): hard links only; soft and external links are skipped.
    fn parse_link(&self, data: &[u8]) -> Result<Option<(String, u64)>> {
        let mut r = ByteReader::new(&self.file, data);
        let version = r.u8()?;
        if version != 1 {
            return Err(r.error(format!("link message version {version}")));
        }
        let flags = r.u8()?;
        let link_type = if flags & 0x08 != 0 { r.u8()? } else { 0 };
        if flags & 0x04 != 0 {
            r.skip(8)?;
        }
        if flags & 0x10 != 0 {
            r.skip(1)?;
        }
        let name_len = r.uint(1 << (flags & 3))?;
        let name_len = usize::try_from(name_len).map_err(|_| r.error("link name too long"))?;
        let name = String::from_utf8_lossy(r.take(name_len)?).into_owned();
        if link_type != 0 {
            return Ok(None);
        }
        Ok(Some((name, r.uint(self.offset_size)?)))
    }

    /// The data segment of a local heap (spec III.D).
    fn local_heap(&self, address: u64) -> Result<&'a [u8]> {
        let mut r = self.reader(address)?;
        if r.take(4)? != b"HEAP" {
            return Err(self.err(format!("no local heap at address {address}")));
        }
        r.skip(4)?; // version + reserved
        let size = r.uint(self.length_size)?;
        r.skip(self.length_size)?; // free list head
        let data = r.uint(self.offset_size)?;
        self.slice(data, size, "local heap data")
    }

    fn walk_group_btree(
        &self,
        address: u64,
        heap: &'a [u8],
        depth: usize,
        seen: &mut HashSet<u64>,
        members: &mut Vec<(String, u64)>,
    ) -> Result<()> {
        if depth > MAX_DEPTH || !seen.insert(address) {
            return Err(self.err(format!("group B-tree at {address}: cycle or too deep")));
        }
        let mut r = self.reader(address)?;
        if r.take(4)? != b"TREE" {
            return Err(self.err(format!("no B-tree node at address {address}")));
        }
        let node_type = r.u8()?;
        if node_type != 0 {
            return Err(self.err(format!(
                "B-tree node at {address} has type {node_type}, expected a group node"
            )));
        }
        let level = r.u8()?;
        let entries = r.u16()?;
        r.skip(2 * self.offset_size)?; // siblings
        for _ in 0..entries {
            r.skip(self.length_size)?; // key: heap offset of the last name below
            let child = r.uint(self.offset_size)?;
            if level > 0 {
                self.walk_group_btree(child, heap, depth + 1, seen, members)?;
            } else {
                if !seen.insert(child) {
                    return Err(self.err(format!("symbol table node at {child} appears twice")));
                }
                self.read_symbol_node(child, heap, members)?;
            }
        }
        Ok(())
    }

    /// Symbol table node (spec III.C): entries of (name offset in the heap, object header).
    fn read_symbol_node(
        &self,
        address: u64,
        heap: &[u8],
        members: &mut Vec<(String, u64)>,
    ) -> Result<()> {
        let mut r = self.reader(address)?;
        if r.take(4)? != b"SNOD" {
            return Err(self.err(format!("no symbol table node at address {address}")));
        }
        r.skip(2)?;
        let count = r.u16()?;
        for _ in 0..count {
            let name_offset = r.uint(self.offset_size)?;
            let header = r.uint(self.offset_size)?;
            r.skip(4 + 4 + 16)?; // cache type, reserved, scratch pad
            let rest = usize::try_from(name_offset)
                .ok()
                .and_then(|o| heap.get(o..))
                .ok_or_else(|| {
                    self.err(format!(
                        "symbol name offset {name_offset} outside the local heap"
                    ))
                })?;
            let end = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| self.err("unterminated symbol name in the local heap"))?;
            members.push((String::from_utf8_lossy(&rest[..end]).into_owned(), header));
        }
        Ok(())
    }

    /// Every dataset's path ("CNN/W_cnn_0", ...), sorted.
    pub fn dataset_paths(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.collect_datasets(self.root, String::new(), 0, &mut seen, &mut out)?;
        out.sort_unstable();
        Ok(out)
    }

    fn collect_datasets(
        &self,
        address: u64,
        path: String,
        depth: usize,
        seen: &mut HashSet<u64>,
        out: &mut Vec<String>,
    ) -> Result<()> {
        if depth > MAX_DEPTH || !seen.insert(address) {
            return Err(self.err(format!("group {path:?}: link cycle or nesting too deep")));
        }
        match self.group_members(address)? {
            Some(members) => {
                for (name, child) in members {
                    let child_path = if path.is_empty() {
                        name
                    } else {
                        format!("{path}/{name}")
                    };
                    self.collect_datasets(child, child_path, depth + 1, seen, out)?;
                }
            }
            None => out.push(path),
        }
        Ok(())
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
            Layout::Contiguous { address } if self.undefined(address) => vec![0; bytes_needed],
            Layout::Contiguous { address } => self
                .slice(address, bytes_needed as u64, &format!("dataset {path}"))?
                .to_vec(),
            Layout::Chunked { btree, chunk } => {
                if bytes_needed / MAX_DEFLATE_RATIO > self.bytes.len() {
                    return Err(self.err(format!(
                        "dataset {path}: shape {shape:?} is far larger than the file could hold"
                    )));
                }
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

    /// Dataspace message (spec IV.A.2.b): the dataset's dimensions.
    fn dataspace(&self, path: &str, messages: &[Message]) -> Result<Vec<usize>> {
        let m = find_message(messages, MSG_DATASPACE)
            .ok_or_else(|| self.err(format!("{path} is not a dataset (no dataspace)")))?;
        let mut r = ByteReader::new(&self.file, m);
        let version = r.u8()?;
        let rank = r.u8()? as usize;
        let _flags = r.u8()?;
        match version {
            1 => r.skip(5)?,
            2 => {
                let kind = r.u8()?;
                if kind == 2 {
                    return Ok(vec![0]); // null dataspace: no elements
                }
            }
            v => return Err(self.err(format!("dataset {path}: dataspace version {v}"))),
        }
        if rank > MAX_RANK {
            return Err(self.err(format!("dataset {path}: rank {rank} exceeds {MAX_RANK}")));
        }
        (0..rank)
            .map(|_| {
                let d = r.uint(self.length_size)?;
                usize::try_from(d)
                    .map_err(|_| self.err(format!("dataset {path}: dimension {d} overflows")))
            })
            .collect()
    }

    /// Datatype message (spec IV.A.2.d): little-endian fixed-point or IEEE float.
    fn datatype(&self, path: &str, messages: &[Message]) -> Result<Hdf5Type> {
        let m = find_message(messages, MSG_DATATYPE)
            .ok_or_else(|| self.err(format!("dataset {path} has no datatype")))?;
        let mut r = ByteReader::new(&self.file, m);
        let class_version = r.u8()?;
        let bits = r.u8()?;
        r.skip(2)?;
        let size = r.u32()? as usize;
        let class = class_version & 0x0f;
        let big_endian = bits & 0x01 != 0;
        let t = match (class, size) {
            (1, 4) if bits & 0x40 == 0 && !big_endian => Hdf5Type::F32,
            (1, 8) if bits & 0x40 == 0 && !big_endian => Hdf5Type::F64,
            (0, 1 | 2 | 4 | 8) if !big_endian => Hdf5Type::Int { size, signed: bits & 0x08 != 0 },
            _ => {
                return Err(Error::unsupported(format!(
                    "{}: dataset {path} has datatype class {class}, {size} bytes{} (webnlu reads little-endian numbers)",
                    self.file,
                    if big_endian { ", big endian" } else { "" }
                )))
            }
        };
        Ok(t)
    }

    /// Data layout message (spec IV.A.2.i), versions 1-3, and version 4 without chunk indexes.
    fn layout(&self, path: &str, messages: &[Message<'a>]) -> Result<Layout<'a>> {
        let m = messages
            .iter()
            .find(|m| m.kind == MSG_LAYOUT)
            .ok_or_else(|| self.err(format!("dataset {path} has no data layout")))?;
        let mut r = ByteReader::new(&self.file, m.data);
        let version = r.u8()?;
        match version {
            1 | 2 => {
                let rank = r.u8()? as usize;
                let class = r.u8()?;
                r.skip(5)?;
                let address = if class != 0 {
                    Some(r.uint(self.offset_size)?)
                } else {
                    None
                };
                if rank > MAX_RANK + 1 {
                    return Err(self.err(format!("dataset {path}: layout rank {rank}")));
                }
                let dims: Vec<usize> = (0..rank)
                    .map(|_| r.u32().map(|d| d as usize))
                    .collect::<Result<_>>()?;
                match (class, address) {
                    (0, _) => {
                        let size = r.u32()? as usize;
                        Ok(Layout::Compact(r.take(size)?))
                    }
                    (1, Some(address)) => Ok(Layout::Contiguous { address }),
                    (2, Some(btree)) => Ok(Layout::Chunked {
                        btree,
                        chunk: dims[..rank.saturating_sub(1)].to_vec(),
                    }),
                    _ => Err(self.err(format!("dataset {path}: layout class {class}"))),
                }
            }
            3 | 4 => {
                let class = r.u8()?;
                match class {
                    0 => {
                        let size = r.u16()? as usize;
                        Ok(Layout::Compact(r.take(size)?))
                    }
                    1 => Ok(Layout::Contiguous {
                        address: r.uint(self.offset_size)?,
                    }),
                    2 if version == 3 => {
                        let rank = r.u8()? as usize;
                        if rank == 0 || rank > MAX_RANK + 1 {
                            return Err(self.err(format!("dataset {path}: chunk rank {rank}")));
                        }
                        let btree = r.uint(self.offset_size)?;
                        let dims: Vec<usize> = (0..rank)
                            .map(|_| r.u32().map(|d| d as usize))
                            .collect::<Result<_>>()?;
                        Ok(Layout::Chunked {
                            btree,
                            chunk: dims[..rank - 1].to_vec(),
                        })
                    }
                    _ => Err(Error::unsupported(format!(
                        "{}: dataset {path} uses layout version {version} class {class}",
                        self.file
                    ))),
                }
            }
            v => Err(self.err(format!("dataset {path}: layout message version {v}"))),
        }
    }

    /// Filter pipeline message (spec IV.A.2.l), versions 1 and 2.
    fn filters(&self, path: &str, messages: &[Message]) -> Result<Vec<Filter>> {
        let Some(m) = find_message(messages, MSG_FILTER_PIPELINE) else {
            return Ok(Vec::new());
        };
        let mut r = ByteReader::new(&self.file, m);
        let version = r.u8()?;
        let count = r.u8()?;
        if version == 1 {
            r.skip(6)?;
        }
        let mut filters = Vec::new();
        for _ in 0..count {
            let id = r.u16()?;
            let name_len = if version == 1 || id >= 256 {
                r.u16()? as usize
            } else {
                0
            };
            let _flags = r.u16()?;
            let values = r.u16()? as usize;
            if version == 1 {
                r.skip(name_len.div_ceil(8) * 8)?;
                r.skip(4 * values + if values % 2 == 1 { 4 } else { 0 })?;
            } else {
                r.skip(name_len)?;
                r.skip(4 * values)?;
            }
            if !matches!(id, FILTER_DEFLATE | FILTER_SHUFFLE | FILTER_FLETCHER32) {
                return Err(Error::unsupported(format!(
                    "{}: dataset {path} uses HDF5 filter {id} (webnlu reads deflate, shuffle, fletcher32)",
                    self.file
                )));
            }
            filters.push(Filter { id });
        }
        Ok(filters)
    }
}

/// Walks a chunk B-tree (spec III.A.1, node type 1) and copies each chunk into the output.
struct ChunkReader<'h, 'a> {
    hdf: &'h Hdf5File<'a>,
    path: &'h str,
    shape: &'h [usize],
    chunk: &'h [usize],
    elem: usize,
    filters: &'h [Filter],
    out: &'h mut [u8],
    seen: HashSet<u64>,
    /// How many more chunks the dataset's grid has room for.
    chunks_left: usize,
}

impl<'h, 'a> ChunkReader<'h, 'a> {
    fn walk(&mut self, address: u64, depth: usize) -> Result<()> {
        let hdf = self.hdf;
        if depth > MAX_DEPTH || !self.seen.insert(address) {
            return Err(hdf.err(format!(
                "dataset {}: chunk B-tree cycle or too deep",
                self.path
            )));
        }
        let mut r = hdf.reader(address)?;
        if r.take(4)? != b"TREE" || r.u8()? != 1 {
            return Err(hdf.err(format!(
                "dataset {}: no chunk B-tree node at {address}",
                self.path
            )));
        }
        let level = r.u8()?;
        let entries = r.u16()?;
        r.skip(2 * hdf.offset_size)?;
        let rank = self.shape.len();
        for _ in 0..entries {
            let size = r.u32()? as u64;
            let mask = r.u32()?;
            let offsets: Vec<u64> = (0..=rank).map(|_| r.u64()).collect::<Result<_>>()?;
            let child = r.uint(hdf.offset_size)?;
            if level > 0 {
                self.walk(child, depth + 1)?;
            } else {
                if !self.seen.insert(child) {
                    return Err(hdf.err(format!(
                        "dataset {}: chunk at {child} listed twice",
                        self.path
                    )));
                }
                self.copy_chunk(child, size, mask, &offsets[..rank])?;
            }
        }
        Ok(())
    }

    fn copy_chunk(&mut self, address: u64, size: u64, mask: u32, offsets: &[u64]) -> Result<()> {
        let hdf = self.hdf;
        let path = self.path;
        self.chunks_left = self.chunks_left.checked_sub(1).ok_or_else(|| {
            hdf.err(format!(
                "dataset {path}: the chunk index lists more chunks than the dataset has"
            ))
        })?;
        let chunk_bytes = checked_product(self.chunk)
            .and_then(|n| n.checked_mul(self.elem))
            .filter(|&n| n <= MAX_DATASET_BYTES)
            .ok_or_else(|| hdf.err(format!("dataset {path}: chunk {:?} too large", self.chunk)))?;
        let mut data = hdf
            .slice(address, size, &format!("dataset {path} chunk"))?
            .to_vec();
        // Filters were applied in pipeline order when writing; undo them in reverse.
        for (i, filter) in self.filters.iter().enumerate().rev() {
            if mask & (1 << i) != 0 {
                continue; // this filter was skipped for this chunk
            }
            data = match filter.id {
                FILTER_DEFLATE => {
                    miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&data, chunk_bytes)
                        .map_err(|e| {
                            hdf.err(format!(
                                "dataset {path}: chunk at {address} does not inflate: {:?}",
                                e.status
                            ))
                        })?
                }
                FILTER_SHUFFLE => unshuffle(&data, self.elem),
                FILTER_FLETCHER32 => {
                    let keep = data.len().checked_sub(4).ok_or_else(|| {
                        hdf.err(format!(
                            "dataset {path}: chunk at {address} lacks its checksum"
                        ))
                    })?;
                    data.truncate(keep);
                    data
                }
                _ => unreachable_filter(hdf, path, filter.id)?,
            };
        }
        if data.len() != chunk_bytes {
            return Err(Error::shape(
                format!("{}: dataset {path} chunk at {address} (bytes)", hdf.file),
                chunk_bytes,
                data.len(),
            ));
        }
        // Chunk origin, checked to be a chunk boundary inside the dataset.
        let rank = self.shape.len();
        let mut origin = Vec::with_capacity(rank);
        for d in 0..rank {
            let o = usize::try_from(offsets[d]).unwrap_or(usize::MAX);
            if o >= self.shape[d].max(1) || self.chunk[d] == 0 || o % self.chunk[d] != 0 {
                return Err(hdf.err(format!(
                    "dataset {path}: chunk offset {offsets:?} is not a chunk boundary inside shape {:?}",
                    self.shape
                )));
            }
            origin.push(o);
        }
        if rank == 0 {
            let n = self.out.len().min(data.len());
            self.out[..n].copy_from_slice(&data[..n]);
            return Ok(());
        }
        // Copy row by row (last dimension contiguous), clipping the chunk at the dataset's edge.
        let last = rank - 1;
        let run = self.chunk[last].min(self.shape[last] - origin[last]) * self.elem;
        let mut index = vec![0usize; last]; // position inside the chunk over dims 0..last
        loop {
            if index
                .iter()
                .enumerate()
                .all(|(d, &i)| origin[d] + i < self.shape[d])
            {
                let mut src = 0usize;
                let mut dst = 0usize;
                for d in 0..last {
                    src = src * self.chunk[d] + index[d];
                    dst = dst * self.shape[d] + origin[d] + index[d];
                }
                src = src * self.chunk[last] * self.elem;
                dst = (dst * self.shape[last] + origin[last]) * self.elem;
                self.out[dst..dst + run].copy_from_slice(&data[src..src + run]);
            }
            // Next index (odometer over the chunk's leading dimensions).
            let mut d = last;
            loop {
                if d == 0 {
                    return Ok(());
                }
                d -= 1;
                index[d] += 1;
                if index[d] < self.chunk[d] {
                    break;
                }
                index[d] = 0;
            }
        }
    }
}

fn unreachable_filter(hdf: &Hdf5File, path: &str, id: u16) -> Result<Vec<u8>> {
    Err(Error::unsupported(format!(
        "{}: dataset {path}: HDF5 filter {id}",
        hdf.file
    )))
}

/// The shuffle filter stores byte 0 of every element, then byte 1, ...; put them back.
fn unshuffle(data: &[u8], elem: usize) -> Vec<u8> {
    if elem <= 1 || !data.len().is_multiple_of(elem) {
        return data.to_vec(); // the filter leaves such buffers untouched
    }
    let n = data.len() / elem;
    let mut out = vec![0u8; data.len()];
    for b in 0..elem {
        for i in 0..n {
            out[i * elem + b] = data[b * n + i];
        }
    }
    out
}

fn find_message<'a>(messages: &[Message<'a>], kind: u16) -> Option<&'a [u8]> {
    messages.iter().find(|m| m.kind == kind).map(|m| m.data)
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
