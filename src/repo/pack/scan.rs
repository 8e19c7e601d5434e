//! Reading a whole pack and checking every record in it (verify, repair-index, the
//! fuzz target): the framing first, on one thread, then every record's CRC,
//! decompression and hashes on every core.

use super::record::{decode_header, decode_lens, RecordInfo};
use super::{
    decode_record_with, frame_members, Entry, PACK_HEADER_LEN, PACK_MAGIC, PACK_VERSION,
    PACK_VERSION_WHOLE_FILE_ID,
};
use crate::repo::crypto::Keys;
use crate::repo::error::{RepoError, Result};
use crate::repo::id::{ChunkId, PackId};
use crate::repo::Repository;
use std::path::Path;

/// Outcome of scanning a whole pack file.
pub struct PackScan {
    /// Records whose CRC, decompression and hashes all check out, with the chunks of
    /// each frame (ids recomputed from the bytes).
    pub good: Vec<Entry>,
    /// Records (or positions) that are damaged, with why.
    pub bad: Vec<(u64, Option<ChunkId>, String)>,
    /// False when the file's hash no longer matches its name.
    pub name_matches: bool,
}

/// Reads a whole pack (object `name`) into `buf` and checks every record. `expected`
/// is the id from its name.
///
/// Why a buffer from the caller: `verify` and `repair-index` read pack after pack,
/// each up to 128 MiB; a fresh one per pack was mapped, faulted in page by page and
/// unmapped again by the allocator, a fifth of a verify's time.
pub fn scan(
    repo: &Repository,
    name: &str,
    buf: &mut Vec<u8>,
    expected: Option<&PackId>,
    max_chunk: u32,
) -> Result<PackScan> {
    let path = repo.loc(name);
    // A writer closes a pack once it reaches its size, so the last record may pass it
    // by one whole chunk (and its header and any zstd growth).
    let max = crate::repo::config::MAX_PACK_SIZE
        + u64::from(crate::repo::config::MAX_CHUNK_SIZE)
        + (2 << 20);
    repo.store()
        .get_into(name, max, buf)
        .map_err(RepoError::io(&path))?;
    Ok(scan_bytes(&path, buf, expected, max_chunk, repo.keys()))
}

/// `scan` of a pack already in memory (`path` only names it in errors): the decoding
/// apart from the file, so it can be fuzzed without a file per input.
pub fn scan_bytes(
    path: &Path,
    data: &[u8],
    expected: Option<&PackId>,
    max_chunk: u32,
    keys: Option<&Keys>,
) -> PackScan {
    let mut out = PackScan {
        good: vec![],
        bad: vec![],
        name_matches: true,
    };
    let header = data.get(..PACK_HEADER_LEN as usize);
    let version = header.and_then(|h| crate::bytes::le32(h, 8));
    // The id is checked once the records are framed (versions 2 and 3 name a pack by them).
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
    // (record, member lengths of a frame, start of its stored bytes)
    let mut pending: Vec<(RecordInfo, Vec<u32>, usize)> = vec![];
    while pos < data.len() {
        let rest = data.get(pos..).unwrap_or(&[]);
        let framed = decode_header(path, pos as u64, rest).and_then(|info| {
            let hlen = info.header_len() as usize;
            let lens = match info.is_frame() {
                true => decode_lens(
                    path,
                    &info,
                    rest.get(super::FRAME_HEADER_LEN as usize..).unwrap_or(&[]),
                )?,
                false => Vec::new(),
            };
            Ok((info, lens, hlen))
        });
        let (info, lens, hlen) = match framed {
            Ok(f) => f,
            Err(e) => {
                // Without a trustworthy header the rest cannot be framed.
                out.bad.push((pos as u64, None, e.to_string()));
                break;
            }
        };
        if let Some(h) = rest.get(..hlen) {
            id.update(h);
        }
        let start = pos + hlen;
        let end = start.checked_add(info.stored_len as usize);
        match end {
            Some(end) if end <= data.len() && info.raw_len <= max_chunk => {
                pending.push((info, lens, start));
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
    // Each rayon worker keeps one decompressor and one buffer: a fresh zero-filled
    // buffer per record was a page fault per 4 KiB, about a sixth of a verify.
    let checked: Vec<(RecordInfo, std::result::Result<Vec<super::Member>, String>)> = pending
        .into_par_iter()
        .map_init(
            || (zstd::bulk::Decompressor::new().ok(), Vec::new()),
            |(d, raw), (info, lens, start)| {
                let stored = &data[start..start + info.stored_len as usize];
                if crc32fast::hash(stored) != info.crc32 {
                    return (info, Err("CRC mismatch".to_string()));
                }
                let Some(d) = d.as_mut() else {
                    return (info, Err("no zstd decompressor".to_string()));
                };
                let checked = decode_record_with(d, &info, stored, raw, keys).and_then(|()| {
                    match info.is_frame() {
                        true => frame_members(&info, &lens, raw, keys),
                        false => Ok(Vec::new()),
                    }
                });
                (info, checked.map_err(|e| e.to_string()))
            },
        )
        .collect();
    for (record, res) in checked {
        match res {
            Ok(chunks) => out.good.push(Entry { record, chunks }),
            Err(e) => out.bad.push((record.offset, Some(record.id), e)),
        }
    }
    out
}
