//! The part of the ZIP format (PKWARE APPNOTE.TXT) that `torch.save` writes: stored
//! (uncompressed) entries listed in a central directory, optionally with ZIP64 records. Entry
//! data is returned as slices of the archive's bytes (no copy). Compressed entries are refused.

use super::byte_reader::ByteReader;
use crate::{Error, Result};

const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_END_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY: u32 = 0x0606_4b50;
const CENTRAL_FILE_HEADER: u32 = 0x0201_4b50;
const LOCAL_FILE_HEADER: u32 = 0x0403_4b50;

/// Zip files start with a local file header.
pub fn looks_like_zip(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..4] == LOCAL_FILE_HEADER.to_le_bytes()
}

pub struct ZipEntry<'a> {
    pub name: String,
    pub data: &'a [u8],
}

/// Lists the entries of a zip archive, each with its (stored) data.
pub fn read_stored_entries<'a>(what: &str, bytes: &'a [u8]) -> Result<Vec<ZipEntry<'a>>> {
    let err = |detail: String| Error::format(what, format!("zip archive: {detail}"));
    // The end-of-central-directory record is 22 bytes plus a comment of up to 65535 bytes.
    let search_from = bytes.len().saturating_sub(22 + 65535);
    let eocd = (search_from..=bytes.len().saturating_sub(22))
        .rev()
        .find(|&i| bytes.len() >= 22 && bytes[i..i + 4] == END_OF_CENTRAL_DIRECTORY.to_le_bytes())
        .ok_or_else(|| err("no end-of-central-directory record (truncated file?)".into()))?;
    let mut r = ByteReader::at(what, bytes, eocd as u64 + 10)?;
    let mut count = r.u16()? as u64;
    let _directory_size = r.u32()?;
    let mut directory_offset = r.u32()? as u64;

    if count == 0xffff || directory_offset == 0xffff_ffff {
        // ZIP64: a locator sits just before the classic record and points to the ZIP64 record.
        let locator = eocd
            .checked_sub(20)
            .ok_or_else(|| err("ZIP64 locator missing".into()))?;
        let mut r = ByteReader::at(what, bytes, locator as u64)?;
        if r.u32()? != ZIP64_END_LOCATOR {
            return Err(err("ZIP64 locator missing".into()));
        }
        r.skip(4)?;
        let record = r.u64()?;
        let mut r = ByteReader::at(what, bytes, record).map_err(|_| {
            err(format!(
                "ZIP64 record offset {record} is past the end ({} bytes)",
                bytes.len()
            ))
        })?;
        if r.u32()? != ZIP64_END_OF_CENTRAL_DIRECTORY {
            return Err(err("ZIP64 end-of-central-directory record missing".into()));
        }
        r.skip(8 + 2 + 2 + 4 + 4 + 8)?;
        count = r.u64()?;
        let _size = r.u64()?;
        directory_offset = r.u64()?;
    }
    // Each central header is at least 46 bytes: a count the file cannot hold is a lie.
    if count > (bytes.len() / 46) as u64 {
        return Err(err(format!(
            "claims {count} entries, more than the file can hold"
        )));
    }

    let mut entries = Vec::with_capacity(count as usize);
    let mut r = ByteReader::at(what, bytes, directory_offset).map_err(|_| {
        err(format!(
            "central directory offset {directory_offset} is past the end ({} bytes)",
            bytes.len()
        ))
    })?;
    for _ in 0..count {
        if r.u32()? != CENTRAL_FILE_HEADER {
            return Err(r.error("zip archive: bad central directory entry signature"));
        }
        r.skip(6)?; // version made by, version needed, flags
        let method = r.u16()?;
        r.skip(8)?; // time, date, crc
        let mut compressed = r.u32()? as u64;
        let mut uncompressed = r.u32()? as u64;
        let name_len = r.u16()? as usize;
        let extra_len = r.u16()? as usize;
        let comment_len = r.u16()? as usize;
        r.skip(8)?; // disk number, internal + external attributes
        let mut local_offset = r.u32()? as u64;
        let name = String::from_utf8_lossy(r.take(name_len)?).into_owned();
        let extra = r.take(extra_len)?;
        r.skip(comment_len)?;
        // ZIP64 extended information (header id 1): the 0xffffffff fields, in order.
        let mut x = ByteReader::new(what, extra);
        while x.remaining() >= 4 {
            let id = x.u16()?;
            let len = x.u16()? as usize;
            let body = x.take(len)?;
            if id == 1 {
                let mut b = ByteReader::new(what, body);
                if uncompressed == 0xffff_ffff {
                    uncompressed = b.u64()?;
                }
                if compressed == 0xffff_ffff {
                    compressed = b.u64()?;
                }
                if local_offset == 0xffff_ffff {
                    local_offset = b.u64()?;
                }
            }
        }
        if method != 0 {
            return Err(err(format!(
                "entry {name} is compressed (method {method}); PyTorch archives store entries uncompressed"
            )));
        }
        if compressed != uncompressed {
            return Err(err(format!(
                "entry {name}: stored sizes disagree ({compressed} vs {uncompressed})"
            )));
        }
        let mut local = ByteReader::at(what, bytes, local_offset).map_err(|_| {
            err(format!(
                "entry {name}: local header offset {local_offset} is past the end ({} bytes)",
                bytes.len()
            ))
        })?;
        if local.u32()? != LOCAL_FILE_HEADER {
            return Err(err(format!(
                "entry {name}: bad local header at {local_offset}"
            )));
        }
        local.skip(22)?;
        let local_name_len = local.u16()? as usize;
        let local_extra_len = local.u16()? as usize;
        local.skip(local_name_len + local_extra_len)?;
        let size =
            usize::try_from(compressed).map_err(|_| err(format!("entry {name} too large")))?;
        let data = local.take(size).map_err(|_| {
            err(format!(
                "entry {name}: {size} bytes at {} run past the end of the archive ({} bytes)",
                local.pos,
                bytes.len()
            ))
        })?;
        entries.push(ZipEntry { name, data });
    }
    Ok(entries)
}
