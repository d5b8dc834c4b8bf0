//! Groups (spec III.A-C, IV.A.2.g-l): old-style groups stored as symbol tables (a B-tree v1 of
//! symbol table nodes, names in a local heap) and new-style compact groups (link messages), and
//! the walk that lists every dataset below the root.

use super::*;

impl<'a> Hdf5File<'a> {
    /// (name, object header address) of each member of the group at `address`, or None if the
    /// object is not a group.
    pub(super) fn group_members(&self, address: u64) -> Result<Option<Vec<(String, u64)>>> {
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
    pub(super) fn parse_link(&self, data: &[u8]) -> Result<Option<(String, u64)>> {
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
    pub(super) fn local_heap(&self, address: u64) -> Result<&'a [u8]> {
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

    pub(super) fn walk_group_btree(
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
    pub(super) fn read_symbol_node(
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

    pub(super) fn collect_datasets(
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
}
