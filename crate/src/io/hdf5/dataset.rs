//! A dataset's own messages (spec IV.A.2): its dataspace (shape), datatype (element type),
//! layout (compact, contiguous or chunked) and filter pipeline.

use super::*;

impl<'a> Hdf5File<'a> {
    /// Dataspace message (spec IV.A.2.b): the dataset's dimensions.
    pub(super) fn dataspace(&self, path: &str, messages: &[Message]) -> Result<Vec<usize>> {
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
    pub(super) fn datatype(&self, path: &str, messages: &[Message]) -> Result<Hdf5Type> {
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
    pub(super) fn layout(&self, path: &str, messages: &[Message<'a>]) -> Result<Layout<'a>> {
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
    pub(super) fn filters(&self, path: &str, messages: &[Message]) -> Result<Vec<Filter>> {
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
