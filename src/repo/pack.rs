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

use super::crypto::{self, Aad, Keys};
use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::storage::{ObjectReader, ObjectWriter, Storage};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const PACK_MAGIC: &[u8; 8] = b"ICPACK\0\0";
/// Version 3 packs may hold frame records; versions 1 and 2 hold chunk records only.
pub const PACK_VERSION: u32 = 3;
/// Packs named by the hash of the whole file.
const PACK_VERSION_WHOLE_FILE_ID: u32 = 1;
pub const PACK_HEADER_LEN: u64 = 16;

mod record;
mod scan;

pub use record::{
    decode_header, decode_lens, frame_id, Compression, Member, RecordInfo, FRAME_HEADER_LEN,
    MAX_MEMBERS,
};
pub use scan::{scan, scan_bytes, scan_bytes_windowed, PackScan};

/// A record ready to be appended to a pack: one chunk (`members` empty) or a frame of
/// the chunks in `members`, whose ids and lengths `id` and `raw_len` must agree with.
pub struct Record {
    pub id: ChunkId,
    pub raw_len: u32,
    pub compression: Compression,
    pub data: Vec<u8>,
    pub members: Vec<Member>,
}

/// A record as the index knows it: where it is, and the chunks a frame holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(flatten)]
    pub record: RecordInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<Member>,
}

/// The object name of pack `id`: `packs/<first two hex digits>/<hex>.pack`.
pub fn pack_name(id: &PackId) -> String {
    let hex = id.to_hex();
    format!("packs/{}/{hex}.pack", &hex[..2])
}

/// Appends records to a new object; `finish` names it by its hash and publishes it.
pub struct PackWriter {
    out: Box<dyn ObjectWriter>,
    /// Where the pack is being written, for messages.
    tmp: PathBuf,
    /// Hash of the headers written so far: the pack's id once finished.
    hasher: blake3::Hasher,
    len: u64,
    records: Vec<Entry>,
    /// An upper bound of the JSON of `records` in the pack's index file.
    index_json: u64,
}

impl PackWriter {
    pub fn create(store: &dyn Storage) -> Result<Self> {
        let tmp = store.location("tmp");
        let out = store.writer().map_err(RepoError::io(&tmp))?;
        let mut w = PackWriter {
            out,
            tmp,
            hasher: blake3::Hasher::new(),
            len: 0,
            records: Vec::new(),
            index_json: 0,
        };
        let mut header = [0u8; PACK_HEADER_LEN as usize];
        header[..8].copy_from_slice(PACK_MAGIC);
        header[8..12].copy_from_slice(&PACK_VERSION.to_le_bytes());
        // A random salt in the (formerly zero) reserved word, hashed into the id: two
        // writers storing the same chunks in the same order (two machines with the
        // same disk, or a backup storing again what prune marked for deletion) get
        // two packs, never one name that prune could sweep from under the other
        // (docs/FORMAT.md, "Concurrent writers"). Readers never looked at the word.
        let salt = uuid::Uuid::new_v4();
        header[12..16].copy_from_slice(salt.as_bytes().get(..4).unwrap_or(&[0; 4]));
        w.hasher.update(&header);
        w.put(&header)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.out.write_all(b).map_err(RepoError::io(&self.tmp))?;
        self.len += b.len() as u64;
        Ok(())
    }

    /// Whether the pack should be closed: `pack_size` bytes written, or so many
    /// records that its index file nears what readers accept (index::MAX_INDEX_JSON).
    pub fn full(&self, pack_size: u64) -> bool {
        self.len >= pack_size || self.index_json >= super::index::MAX_INDEX_JSON
    }

    pub fn add(&mut self, r: &Record) -> Result<()> {
        let stored_len = u32::try_from(r.data.len()).map_err(|_| {
            RepoError::Pipeline(format!("record of {} bytes is too large", r.data.len()))
        })?;
        let members = u32::try_from(r.members.len())
            .ok()
            .filter(|&n| n <= MAX_MEMBERS)
            .ok_or_else(|| RepoError::Pipeline(format!("frame of {} chunks", r.members.len())))?;
        let info = RecordInfo {
            id: r.id,
            offset: self.len,
            raw_len: r.raw_len,
            stored_len,
            compression: r.compression,
            crc32: crc32fast::hash(&r.data),
            members,
        };
        let header = record::encode_header(&info, &r.members);
        self.hasher.update(&header);
        self.put(&header)?;
        self.put(&r.data)?;
        self.records.push(Entry {
            record: info,
            chunks: r.members.clone(),
        });
        self.index_json += super::index::entry_json_bound(r.members.len());
        Ok(())
    }

    /// Makes the pack durable and publishes it; returns its id, object name and records.
    pub fn finish(self, store: &dyn Storage) -> Result<(PackId, String, Vec<Entry>)> {
        let PackWriter {
            out,
            hasher,
            records,
            ..
        } = self;
        let id = PackId(*hasher.finalize().as_bytes());
        let name = pack_name(&id);
        out.finish(&name)
            .map_err(RepoError::io(store.location(&name)))?;
        Ok((id, name, records))
    }
}

/// Reads one record's stored bytes and checks them against what the index says.
pub fn read_record(
    file: &dyn ObjectReader,
    path: &Path,
    expect: &RecordInfo,
    max_len: u32,
) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    read_record_into(file, path, expect, max_len, &mut data)?;
    Ok(data)
}

/// `read_record` into a caller's (recycled) buffer.
pub fn read_record_into(
    file: &dyn ObjectReader,
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
    let hlen = usize::try_from(expect.header_len()).map_err(|_| bad("header length".into()))?;
    let mut h = vec![0u8; hlen];
    // Not cleared first: the read overwrites every byte, so only growth is zeroed.
    data.resize(expect.stored_len as usize, 0);
    // Header and stored bytes in one read (one request on a remote store); the lengths
    // come from the index and are bounded above, the header is checked before the bytes
    // are used.
    file.read_two_at(&mut h, data, expect.offset).map_err(|e| {
        bad(format!(
            "cannot read the record header and its {} stored bytes: {e}",
            expect.stored_len
        ))
    })?;
    check_record(path, expect, &h, data)
}

/// Checks a record's header `h` and stored bytes `data`, read from `path`, against what
/// the index says `expect`s there (`read_record_into`, and the restore's check, which
/// reads neighbouring records with one request).
pub fn check_record(path: &Path, expect: &RecordInfo, h: &[u8], data: &[u8]) -> Result<()> {
    let bad = |what: String| RepoError::CorruptPack {
        path: path.to_path_buf(),
        offset: expect.offset,
        what,
    };
    let got = decode_header(path, expect.offset, h)?;
    if got != *expect {
        return Err(bad(format!(
            "record header does not match the index (record {})",
            expect.id
        )));
    }
    if got.is_frame() {
        decode_lens(
            path,
            &got,
            h.get(FRAME_HEADER_LEN as usize..).unwrap_or(&[]),
        )?;
    }
    if crc32fast::hash(data) != expect.crc32 {
        return Err(bad(format!("CRC mismatch in record {}", expect.id)));
    }
    Ok(())
}

/// The AAD of a record: what its header says the bytes are (crypto::Aad::record).
fn record_aad(frame: bool, id: &ChunkId, raw_len: u32, c: Compression, members: u32) -> Aad {
    Aad::record(frame, id, raw_len, c.code(), members)
}

/// The AAD a stored record was sealed with, from its decoded header.
fn info_aad(info: &RecordInfo) -> Aad {
    record_aad(
        info.is_frame(),
        &info.id,
        info.raw_len,
        info.compression,
        info.members,
    )
}

/// Seals a record's stored bytes in an encrypted repository, bound to its header. Its
/// bytes start with `crypto::NONCE_LEN` bytes of room for the nonce
/// (`compress::Room`), so nothing is moved.
pub fn seal_record(keys: &Keys, r: &mut Record) -> Result<()> {
    let aad = sealed_record_aad(r);
    keys.seal_in_place(&aad, &mut r.data)
        .map_err(|e| RepoError::Pipeline(format!("sealing record {}: {e}", r.id)))
}

/// The AAD a record about to be written is sealed with.
fn sealed_record_aad(r: &Record) -> Aad {
    let members = u32::try_from(r.members.len()).unwrap_or(u32::MAX);
    record_aad(
        !r.members.is_empty(),
        &r.id,
        r.raw_len,
        r.compression,
        members,
    )
}

/// An encrypted record's stored bytes opened: the plaintext compressed bytes (deploy
/// streams them so the key stays on the sender; repo/transfer.rs).
pub fn open_record(
    keys: &Keys,
    info: &RecordInfo,
    data: &[u8],
) -> std::result::Result<Vec<u8>, ChunkDecodeError> {
    keys.open(&info_aad(info), data)
        .map_err(ChunkDecodeError::Sealed)
}

thread_local! {
    /// Each decoding thread's buffer for opened records (up to 8 MiB): a fresh one
    /// per record would page-fault its way through every restore.
    static OPENED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Why a record's stored bytes do not give back its chunks. The callers add the pack,
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
    #[error("chunk {index} of the frame (its bytes {start}..{end}) does not match its id")]
    Member { index: usize, start: u64, end: u64 },
    #[error("the frame's member list does not match its id")]
    FrameId,
    #[error("sealed record: {0}")]
    Sealed(#[source] crypto::CryptoError),
}

/// Turns stored bytes back into the record's raw bytes; a chunk record's hash is
/// checked, a frame's members are checked by `check_members` or `frame_members`.
pub fn decode_record(
    info: &RecordInfo,
    data: &[u8],
    keys: Option<&Keys>,
) -> std::result::Result<Vec<u8>, ChunkDecodeError> {
    let mut d = zstd::bulk::Decompressor::new().map_err(ChunkDecodeError::Zstd)?;
    let mut raw = Vec::new();
    decode_record_with(&mut d, info, data, &mut raw, keys)?;
    Ok(raw)
}

/// `decode_record` with a decompressor and a buffer kept from one record to the next
/// (`raw` ends up exactly the record's raw length; its old bytes are overwritten).
pub fn decode_record_with(
    d: &mut zstd::bulk::Decompressor<'static>,
    info: &RecordInfo,
    data: &[u8],
    raw: &mut Vec<u8>,
    keys: Option<&Keys>,
) -> std::result::Result<(), ChunkDecodeError> {
    if info.raw_len > super::config::MAX_CHUNK_SIZE {
        return Err(ChunkDecodeError::OverLimit(info.raw_len));
    }
    raw.resize(info.raw_len as usize, 0);
    decode_record_to(d, info, data, raw, keys)
}

/// `decode_record` into a slice of exactly the record's raw length (an aligned piece
/// of a recycled buffer, for direct writes).
pub fn decode_record_to(
    d: &mut zstd::bulk::Decompressor<'static>,
    info: &RecordInfo,
    data: &[u8],
    out: &mut [u8],
    keys: Option<&Keys>,
) -> std::result::Result<(), ChunkDecodeError> {
    let Some(k) = keys else {
        return decode_plain(d, info, data, out, None);
    };
    let aad = info_aad(info);
    OPENED.with(|buf| {
        let mut buf = buf.borrow_mut();
        k.open_into(&aad, data, &mut buf)
            .map_err(ChunkDecodeError::Sealed)?;
        decode_plain(d, info, &buf, out, Some(k))
    })
}

/// `decode_record_to` of a record's plaintext stored bytes.
fn decode_plain(
    d: &mut zstd::bulk::Decompressor<'static>,
    info: &RecordInfo,
    data: &[u8],
    out: &mut [u8],
    keys: Option<&Keys>,
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
    if !info.is_frame() && crypto::chunk_id(keys, out) != info.id {
        return Err(ChunkDecodeError::HashMismatch);
    }
    Ok(())
}

/// Checks every chunk of frame `info` in its decoded bytes `raw`, and the frame's id.
pub fn check_members(
    info: &RecordInfo,
    members: &[Member],
    raw: &[u8],
    keys: Option<&Keys>,
) -> std::result::Result<(), ChunkDecodeError> {
    if frame_id(members) != info.id {
        return Err(ChunkDecodeError::FrameId);
    }
    let mut start = 0usize;
    for (index, m) in members.iter().enumerate() {
        let end = start.saturating_add(m.len as usize);
        let ok = raw
            .get(start..end)
            .is_some_and(|b| crypto::chunk_id(keys, b) == m.id);
        if !ok {
            return Err(ChunkDecodeError::Member {
                index,
                start: start as u64,
                end: end as u64,
            });
        }
        start = end;
    }
    if start != raw.len() {
        return Err(ChunkDecodeError::Length {
            got: start,
            want: info.raw_len,
        });
    }
    Ok(())
}

/// The members of a frame from its decoded bytes and member lengths (a scan has no
/// index to take the ids from), checked against the frame's id: each member is hashed
/// once, and the ids so found must hash to the frame id the header names.
pub fn frame_members(
    info: &RecordInfo,
    lens: &[u32],
    raw: &[u8],
    keys: Option<&Keys>,
) -> std::result::Result<Vec<Member>, ChunkDecodeError> {
    let mut start = 0usize;
    let mut members = Vec::with_capacity(lens.len());
    for &len in lens {
        let end = start.saturating_add(len as usize);
        let bytes = raw.get(start..end).ok_or(ChunkDecodeError::Length {
            got: raw.len(),
            want: info.raw_len,
        })?;
        members.push(Member {
            id: crypto::chunk_id(keys, bytes),
            len,
        });
        start = end;
    }
    if start != raw.len() {
        return Err(ChunkDecodeError::Length {
            got: start,
            want: info.raw_len,
        });
    }
    if frame_id(&members) != info.id {
        return Err(ChunkDecodeError::FrameId);
    }
    Ok(members)
}

#[cfg(test)]
mod tests;
