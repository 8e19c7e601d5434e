//! Pack files: many compressed chunks in one file, so a repository of a 1 TB disk is
//! thousands of files rather than a million, each far below FAT32's 4 GiB limit.
//!
//! Packs are self-describing: every record carries its chunk id, lengths and a CRC of
//! the stored bytes, so the index can be rebuilt by scanning packs, and a restore can
//! check every record it needs (CRC) before writing a byte to the target.
//!
//! Layout (little-endian): header `b"ICPACK\0\0"`, u32 version, u32 reserved; then
//! records of `RECORD_HEADER_LEN` bytes followed by the stored bytes:
//! `b"ICCK"`, id[32], raw_len u32, stored_len u32, compression u8, pad[3], crc32 u32.
//!
//! A pack is named by a blake3 hash of its headers (version 2): the pack header and
//! every record header, in order. Each record header holds its chunk's id and the CRC of
//! its stored bytes, so the name still commits to the whole content, and hashing the
//! 0.5 GB of compressed bytes a backup writes again (1.5% of its CPU) is not needed.
//! Version 1 packs were named by the hash of the whole file; they are still read.

use super::error::{RepoError, Result};
use super::fsutil;
use super::id::{ChunkId, PackId};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const PACK_MAGIC: &[u8; 8] = b"ICPACK\0\0";
pub const PACK_VERSION: u32 = 2;
/// Packs named by the hash of the whole file.
const PACK_VERSION_WHOLE_FILE_ID: u32 = 1;
pub const PACK_HEADER_LEN: u64 = 16;
pub const RECORD_MAGIC: &[u8; 4] = b"ICCK";
pub const RECORD_HEADER_LEN: u64 = 52;

/// How a record's bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Stored as is (incompressible data).
    None,
    Zstd,
}

impl Compression {
    fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Zstd => 1,
        }
    }
    fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(Compression::None),
            1 => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// A chunk ready to be appended to a pack.
pub struct Record {
    pub id: ChunkId,
    pub raw_len: u32,
    pub compression: Compression,
    pub data: Vec<u8>,
}

/// Where a record lives, as the index stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordInfo {
    pub id: ChunkId,
    /// Byte offset of the record header in the pack.
    pub offset: u64,
    pub raw_len: u32,
    pub stored_len: u32,
    pub compression: Compression,
    pub crc32: u32,
}

pub fn pack_path(packs_dir: &Path, id: &PackId) -> PathBuf {
    let hex = id.to_hex();
    packs_dir.join(&hex[..2]).join(format!("{hex}.pack"))
}

fn encode_header(r: &RecordInfo) -> [u8; RECORD_HEADER_LEN as usize] {
    let mut h = [0u8; RECORD_HEADER_LEN as usize];
    h[0..4].copy_from_slice(RECORD_MAGIC);
    h[4..36].copy_from_slice(&r.id.0);
    h[36..40].copy_from_slice(&r.raw_len.to_le_bytes());
    h[40..44].copy_from_slice(&r.stored_len.to_le_bytes());
    h[44] = r.compression.code();
    h[48..52].copy_from_slice(&r.crc32.to_le_bytes());
    h
}

/// Parses a record header found at `offset` in `path`.
pub fn decode_header(path: &Path, offset: u64, h: &[u8]) -> Result<RecordInfo> {
    let bad = |what: String| RepoError::CorruptPack {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let h: &[u8; RECORD_HEADER_LEN as usize] = h
        .try_into()
        .map_err(|_| bad("short record header".into()))?;
    if &h[0..4] != RECORD_MAGIC {
        return Err(bad("bad record magic".into()));
    }
    let mut id = [0u8; 32];
    id.copy_from_slice(&h[4..36]);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let compression = Compression::from_code(h[44])
        .ok_or_else(|| bad(format!("unknown compression {}", h[44])))?;
    Ok(RecordInfo {
        id: ChunkId(id),
        offset,
        raw_len: u32_at(36),
        stored_len: u32_at(40),
        compression,
        crc32: u32_at(48),
    })
}

/// Appends records to a temporary file; `finish` names it by its hash and publishes it.
/// Records go to the file without a user-space buffer: they are megabytes each, and a
/// buffer would only add a copy of every byte.
pub struct PackWriter {
    tmp: PathBuf,
    out: File,
    /// Hash of the headers written so far: the pack's id once finished.
    hasher: blake3::Hasher,
    len: u64,
    records: Vec<RecordInfo>,
    /// Bytes handed to the kernel since its writeback was last started.
    unkicked: u64,
}

/// Bytes after which a pack's writeback is started, so the disk writes while chunks
/// are compressed and `finish`'s fsync waits for little (it was 1-2 s a backup).
const WRITEBACK_EVERY: u64 = 16 << 20;

impl PackWriter {
    pub fn create(tmp_dir: &Path) -> Result<Self> {
        let tmp = fsutil::temp_path(tmp_dir, "pack");
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(RepoError::io(&tmp))?;
        let mut w = PackWriter {
            out,
            tmp,
            hasher: blake3::Hasher::new(),
            len: 0,
            records: Vec::new(),
            unkicked: 0,
        };
        let mut header = [0u8; PACK_HEADER_LEN as usize];
        header[..8].copy_from_slice(PACK_MAGIC);
        header[8..12].copy_from_slice(&PACK_VERSION.to_le_bytes());
        w.hasher.update(&header);
        w.put(&header)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(RepoError::io(&self.tmp))?;
        self.len += b.len() as u64;
        Ok(())
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn add(&mut self, r: &Record) -> Result<()> {
        let stored_len = u32::try_from(r.data.len()).map_err(|_| {
            RepoError::Pipeline(format!("record of {} bytes is too large", r.data.len()))
        })?;
        let info = RecordInfo {
            id: r.id,
            offset: self.len,
            raw_len: r.raw_len,
            stored_len,
            compression: r.compression,
            crc32: crc32fast::hash(&r.data),
        };
        let header = encode_header(&info);
        self.hasher.update(&header);
        self.put(&header)?;
        self.put(&r.data)?;
        self.records.push(info);
        self.unkicked += u64::from(stored_len);
        if self.unkicked >= WRITEBACK_EVERY {
            self.unkicked = 0;
            crate::device::start_file_writeback(&self.out);
        }
        Ok(())
    }

    /// Syncs and publishes the pack; returns its id, final path and records.
    pub fn finish(self, packs_dir: &Path) -> Result<(PackId, PathBuf, Vec<RecordInfo>)> {
        let PackWriter {
            tmp,
            out,
            hasher,
            records,
            ..
        } = self;
        out.sync_all().map_err(RepoError::io(&tmp))?;
        drop(out);
        let id = PackId(*hasher.finalize().as_bytes());
        let dest = pack_path(packs_dir, &id);
        fsutil::publish(&tmp, &dest)?;
        Ok((id, dest, records))
    }
}

/// Reads one record's stored bytes and checks them against what the index says.
pub fn read_record(file: &File, path: &Path, expect: &RecordInfo, max_len: u32) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    read_record_into(file, path, expect, max_len, &mut data)?;
    Ok(data)
}

/// `read_record` into a caller's (recycled) buffer.
pub fn read_record_into(
    file: &File,
    path: &Path,
    expect: &RecordInfo,
    max_len: u32,
    data: &mut Vec<u8>,
) -> Result<()> {
    let bad = |what: String| RepoError::CorruptPack {
        path: path.to_path_buf(),
        offset: expect.offset,
        what,
    };
    if expect.stored_len > max_len {
        return Err(bad(format!(
            "stored length {} over limit",
            expect.stored_len
        )));
    }
    let mut h = [0u8; RECORD_HEADER_LEN as usize];
    file.read_exact_at(&mut h, expect.offset)
        .map_err(|e| bad(format!("cannot read record header: {e}")))?;
    let got = decode_header(path, expect.offset, &h)?;
    if got != *expect {
        return Err(bad(format!(
            "record header does not match the index (chunk {})",
            expect.id
        )));
    }
    // Not cleared first: the read overwrites every byte, so only growth is zeroed.
    data.resize(expect.stored_len as usize, 0);
    let at = expect
        .offset
        .checked_add(RECORD_HEADER_LEN)
        .ok_or_else(|| bad("offset overflow".into()))?;
    file.read_exact_at(data, at).map_err(|e| {
        bad(format!(
            "cannot read {} stored bytes: {e}",
            expect.stored_len
        ))
    })?;
    if crc32fast::hash(data) != expect.crc32 {
        return Err(bad(format!("CRC mismatch in chunk {}", expect.id)));
    }
    Ok(())
}

/// Why a record's stored bytes do not give back its chunk. The callers add the pack,
/// byte and image.
#[derive(Debug, thiserror::Error)]
pub enum ChunkDecodeError {
    #[error("raw length {0} over the chunk limit")]
    OverLimit(u32),
    #[error("length {got} instead of {want}")]
    Length { got: usize, want: u32 },
    #[error("zstd: {0}")]
    Zstd(#[source] std::io::Error),
    #[error("blake3 hash mismatch")]
    HashMismatch,
}

/// Turns stored bytes back into the chunk and checks its hash.
pub fn decode_chunk(
    info: &RecordInfo,
    data: &[u8],
) -> std::result::Result<Vec<u8>, ChunkDecodeError> {
    if info.raw_len > super::config::MAX_CHUNK_SIZE {
        return Err(ChunkDecodeError::OverLimit(info.raw_len));
    }
    let mut raw = vec![0u8; info.raw_len as usize];
    let mut d = zstd::bulk::Decompressor::new().map_err(ChunkDecodeError::Zstd)?;
    decode_chunk_to(&mut d, info, data, &mut raw)?;
    Ok(raw)
}

/// `decode_chunk` into a slice of exactly the chunk's length (an aligned piece of a
/// recycled buffer, for direct writes).
pub fn decode_chunk_to(
    d: &mut zstd::bulk::Decompressor<'static>,
    info: &RecordInfo,
    data: &[u8],
    out: &mut [u8],
) -> std::result::Result<(), ChunkDecodeError> {
    let length = |got: usize| ChunkDecodeError::Length {
        got,
        want: info.raw_len,
    };
    if out.len() != info.raw_len as usize {
        return Err(length(out.len()));
    }
    match info.compression {
        Compression::None if data.len() == out.len() => out.copy_from_slice(data),
        Compression::None => return Err(length(data.len())),
        Compression::Zstd => {
            let n = d
                .decompress_to_buffer(data, out)
                .map_err(ChunkDecodeError::Zstd)?;
            if n != out.len() {
                return Err(length(n));
            }
        }
    }
    if ChunkId::of(out) != info.id {
        return Err(ChunkDecodeError::HashMismatch);
    }
    Ok(())
}

/// Outcome of scanning a whole pack file (verify, repair-index).
pub struct PackScan {
    /// Records whose CRC, decompression and hash all check out.
    pub good: Vec<RecordInfo>,
    /// Records (or positions) that are damaged, with why.
    pub bad: Vec<(u64, Option<ChunkId>, String)>,
    /// False when the file's hash no longer matches its name.
    pub name_matches: bool,
}

/// Reads a whole pack and checks every record. `expected` is the id from its name.
pub fn scan(path: &Path, expected: Option<&PackId>, max_chunk: u32) -> Result<PackScan> {
    let data = fsutil::read_bounded(path, super::config::MAX_PACK_SIZE + (1 << 20))?;
    Ok(scan_bytes(path, &data, expected, max_chunk))
}

/// `scan` of a pack already in memory (`path` only names it in errors): the decoding
/// apart from the file, so it can be fuzzed without a file per input.
pub fn scan_bytes(path: &Path, data: &[u8], expected: Option<&PackId>, max_chunk: u32) -> PackScan {
    let mut out = PackScan {
        good: vec![],
        bad: vec![],
        name_matches: true,
    };
    let header = data.get(..PACK_HEADER_LEN as usize);
    let version = header.and_then(|h| crate::bytes::le32(h, 8));
    // The id is checked once the records are framed (version 2 names a pack by them).
    let mut id = blake3::Hasher::new();
    match (header, version) {
        (Some(h), Some(v)) if h.starts_with(PACK_MAGIC) && (1..=PACK_VERSION).contains(&v) => {
            if v == PACK_VERSION_WHOLE_FILE_ID {
                out.name_matches = expected.map_or(true, |e| PackId::of(data) == *e);
            } else {
                id.update(h);
            }
        }
        (Some(h), Some(v)) if h.starts_with(PACK_MAGIC) => {
            out.name_matches = expected.is_none();
            out.bad.push((
                0,
                None,
                format!("pack version {v}, not one this ironclone reads (1 to {PACK_VERSION})"),
            ));
            return out;
        }
        _ => {
            out.name_matches = expected.is_none();
            out.bad.push((0, None, "bad pack header magic".into()));
            return out;
        }
    }
    let by_headers = version != Some(PACK_VERSION_WHOLE_FILE_ID);
    let mut pos = PACK_HEADER_LEN as usize;
    let mut pending: Vec<(RecordInfo, usize)> = vec![];
    while pos < data.len() {
        let Some(h) = data.get(pos..pos + RECORD_HEADER_LEN as usize) else {
            out.bad
                .push((pos as u64, None, "truncated record header".into()));
            break;
        };
        let info = match decode_header(path, pos as u64, h) {
            Ok(i) => i,
            Err(e) => {
                // Without a trustworthy header the rest cannot be framed.
                out.bad.push((pos as u64, None, e.to_string()));
                break;
            }
        };
        id.update(h);
        let start = pos + RECORD_HEADER_LEN as usize;
        let end = start.checked_add(info.stored_len as usize);
        match end {
            Some(end) if end <= data.len() && info.raw_len <= max_chunk => {
                pending.push((info, start));
                pos = end;
            }
            _ => {
                out.bad.push((
                    pos as u64,
                    Some(info.id),
                    "record runs past the end of the pack".into(),
                ));
                break;
            }
        }
    }
    if by_headers {
        out.name_matches = expected.map_or(true, |e| PackId(*id.finalize().as_bytes()) == *e);
    }
    use rayon::prelude::*;
    let checked: Vec<(RecordInfo, Option<String>)> = pending
        .into_par_iter()
        .map(|(info, start)| {
            let stored = &data[start..start + info.stored_len as usize];
            if crc32fast::hash(stored) != info.crc32 {
                return (info, Some("CRC mismatch".to_string()));
            }
            (
                info,
                decode_chunk(&info, stored).err().map(|e| e.to_string()),
            )
        })
        .collect();
    for (info, err) in checked {
        match err {
            None => out.good.push(info),
            Some(e) => out.bad.push((info.offset, Some(info.id), e)),
        }
    }
    out
}

#[cfg(test)]
mod tests;
