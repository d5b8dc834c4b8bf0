//! Chunked datasets (spec III.A.1, IV.A.2.i and IV.A.2.l): the chunk B-tree and the filters a
//! chunk passes through on the way out (deflate, shuffle, fletcher32).

use super::*;

/// Walks a chunk B-tree (spec III.A.1, node type 1) and copies each chunk into the output.
pub(super) struct ChunkReader<'h, 'a> {
    pub(super) hdf: &'h Hdf5File<'a>,
    pub(super) path: &'h str,
    pub(super) shape: &'h [usize],
    pub(super) chunk: &'h [usize],
    pub(super) elem: usize,
    pub(super) filters: &'h [Filter],
    pub(super) out: &'h mut [u8],
    pub(super) seen: HashSet<u64>,
    /// How many more chunks the dataset's grid has room for.
    pub(super) chunks_left: usize,
}

impl<'h, 'a> ChunkReader<'h, 'a> {
    pub(super) fn walk(&mut self, address: u64, depth: usize) -> Result<()> {
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

    pub(super) fn copy_chunk(
        &mut self,
        address: u64,
        size: u64,
        mask: u32,
        offsets: &[u64],
    ) -> Result<()> {
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

pub(super) fn unreachable_filter(hdf: &Hdf5File, path: &str, id: u16) -> Result<Vec<u8>> {
    Err(Error::unsupported(format!(
        "{}: dataset {path}: HDF5 filter {id}",
        hdf.file
    )))
}

/// The shuffle filter stores byte 0 of every element, then byte 1, ...; put them back.
pub(super) fn unshuffle(data: &[u8], elem: usize) -> Vec<u8> {
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
