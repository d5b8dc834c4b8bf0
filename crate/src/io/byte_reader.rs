//! A bounds-checked little-endian cursor over untrusted bytes. Every read either returns the
//! bytes that are there or a `Format` error naming the file and the offset; nothing panics.

use crate::{Error, Result};

pub struct ByteReader<'w, 'a> {
    /// The file (or entry) being read, for error messages.
    pub what: &'w str,
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'w, 'a> ByteReader<'w, 'a> {
    pub fn new(what: &'w str, bytes: &'a [u8]) -> Self {
        ByteReader {
            what,
            bytes,
            pos: 0,
        }
    }

    pub fn at(what: &'w str, bytes: &'a [u8], pos: u64) -> Result<Self> {
        let pos = usize::try_from(pos)
            .ok()
            .filter(|&p| p <= bytes.len())
            .ok_or_else(|| {
                Error::format(
                    what,
                    format!(
                        "offset {pos} is past the end of the data ({} bytes)",
                        bytes.len()
                    ),
                )
            })?;
        Ok(ByteReader { what, bytes, pos })
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn error(&self, detail: impl Into<String>) -> Error {
        Error::format(
            self.what,
            format!("at byte {}: {}", self.pos, detail.into()),
        )
    }

    /// The next `n` bytes, or an error saying how many were wanted and how many are left.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(self.error(format!(
                "truncated: needs {n} more bytes, only {} left",
                self.remaining()
            )));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or([0; 2]),
        ))
    }
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or([0; 4]),
        ))
    }
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or([0; 8]),
        ))
    }
    pub fn i32(&mut self) -> Result<i32> {
        Ok(self.u32()? as i32)
    }
    pub fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }
    pub fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64()?))
    }

    /// An unsigned little-endian integer of `size` bytes (1..=8), as HDF5 writes offsets/lengths.
    pub fn uint(&mut self, size: usize) -> Result<u64> {
        if !(1..=8).contains(&size) {
            return Err(self.error(format!("integer size {size} is not 1..=8 bytes")));
        }
        let raw = self.take(size)?;
        Ok(raw.iter().rev().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }
}

/// `a * b * ...` over a shape, or None on overflow.
pub fn checked_product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}
