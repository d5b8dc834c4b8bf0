//! Object headers (spec IV.A): versions 1 and 2, their message lists and continuation blocks.
//! Every object (group or dataset) is described by the messages of its header.

use super::*;

impl<'a> Hdf5File<'a> {
    /// All messages of the object header at `address`, continuation blocks included.
    pub(super) fn messages(&self, address: u64) -> Result<Vec<Message<'a>>> {
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

    pub(super) fn read_messages_v2(
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

    pub(super) fn push_message(
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
}

/// The data of the first message of `kind`, if the header has one.
pub(super) fn find_message<'a>(messages: &[Message<'a>], kind: u16) -> Option<&'a [u8]> {
    messages.iter().find(|m| m.kind == kind).map(|m| m.data)
}
