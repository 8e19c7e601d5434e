//! Checking every record of a pack (verify, repair-index, the fuzz target): the framing
//! on one thread, in file order, then every record's CRC, decompression and hashes on
//! every core.
//!
//! A pack is read a window at a time (`WINDOW`, plus the one record that crosses its
//! end), not whole: a verify or repair-index held a whole pack, 128 MiB on a local
//! disk and up to `MAX_PACK_SIZE` for a pack written with a larger size, more than
//! the rest of a verify of 1 TB. The records framed in a window are checked before the
//! next is read; the framing, and so every result, is the same as for the whole file
//! at once (`scan_bytes`, which the tests compare it with for every window size).

use super::record::{decode_header, decode_lens, RecordInfo, FRAME_HEADER_LEN, MAX_MEMBERS};
use super::{
    decode_record_with, frame_members, Entry, PACK_HEADER_LEN, PACK_MAGIC, PACK_VERSION,
    PACK_VERSION_WHOLE_FILE_ID,
};
use crate::repo::crypto::Keys;
use crate::repo::error::{RepoError, Result};
use crate::repo::id::{ChunkId, PackId};
use crate::repo::storage::ObjectReader;
use crate::repo::Repository;
use std::path::Path;

/// Outcome of scanning a whole pack file.
pub struct PackScan {
    /// Records whose CRC, decompression and hashes all check out, with the chunks of
    /// each frame (ids recomputed from the bytes).
    pub good: Vec<Entry>,
    /// Records (or positions) that are damaged, with why, in pack order.
    pub bad: Vec<(u64, Option<ChunkId>, String)>,
    /// False when the file's hash no longer matches its name.
    pub name_matches: bool,
}

/// Bytes read at a time: a few 8 MiB frames for every core to decode.
pub const WINDOW: usize = 32 << 20;

/// The longest record header: a frame of `MAX_MEMBERS` chunks with their lengths.
const MAX_HEADER: u64 = FRAME_HEADER_LEN + 4 * MAX_MEMBERS as u64;

/// Checks every record of pack `name`, `len` bytes as the listing gives it, read in
/// windows through `buf`. `expected` is the id from its name.
///
/// Why a buffer from the caller: `verify` and `repair-index` read pack after pack; a
/// fresh buffer per pack was mapped, faulted in page by page and unmapped again by the
/// allocator, a fifth of a verify's time.
pub fn scan(
    repo: &Repository,
    name: &str,
    len: u64,
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
    if len > max {
        return Err(RepoError::io(&path)(crate::repo::storage::too_big(
            len, max,
        )));
    }
    let file = repo.store().open(name).map_err(RepoError::io(&path))?;
    let mut s = Scanner::new(&path, expected, max_chunk, repo.keys(), len);
    scan_reader(&mut s, file.as_ref(), buf, WINDOW).map_err(RepoError::io(&path))?;
    Ok(s.finish())
}

/// `scan_bytes` as `scan` reads a pack, `window` bytes at a time: the fuzz target
/// checks that both give the same result for any bytes and window.
pub fn scan_bytes_windowed(
    path: &Path,
    data: &[u8],
    window: usize,
    expected: Option<&PackId>,
    max_chunk: u32,
    keys: Option<&Keys>,
) -> PackScan {
    struct Bytes<'a>(&'a [u8]);
    impl ObjectReader for Bytes<'_> {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            let at = usize::try_from(offset).unwrap_or(usize::MAX);
            let src = at
                .checked_add(buf.len())
                .and_then(|end| self.0.get(at..end))
                .ok_or(std::io::ErrorKind::UnexpectedEof)?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }
    let mut s = Scanner::new(path, expected, max_chunk, keys, data.len() as u64);
    match scan_reader(&mut s, &Bytes(data), &mut Vec::new(), window.max(1)) {
        // Every read lies inside `data`.
        Ok(()) => s.finish(),
        Err(e) => PackScan {
            good: vec![],
            bad: vec![(0, None, e.to_string())],
            name_matches: false,
        },
    }
}

/// Feeds `s` the file through `buf`, `window` bytes a read (more when one record is
/// longer). The buffer keeps its size from pack to pack; only its first `valid`
/// bytes are the file's, from offset `base` on.
fn scan_reader(
    s: &mut Scanner,
    file: &dyn ObjectReader,
    buf: &mut Vec<u8>,
    window: usize,
) -> std::io::Result<()> {
    let (mut base, mut valid, mut read) = (0u64, 0usize, 0u64);
    // At least once: an empty file is fed too (and is no pack).
    loop {
        let want = (window as u64).max(s.need.saturating_sub(read));
        let n = usize::try_from(want.min(s.len - read)).unwrap_or(usize::MAX);
        let end = valid.saturating_add(n);
        if buf.len() < end {
            buf.resize(end, 0);
        }
        // An empty object is no pack, and a remote store may refuse an empty range.
        if n > 0 {
            file.read_exact_at(&mut buf[valid..end], read)?;
        }
        let fresh = valid;
        valid = end;
        read += n as u64;
        let mut used = valid;
        // Nothing is used before the pack header is read: the bytes read before it
        // are still at the buffer's start, for the whole file's hash.
        let from = if s.version.is_some() { fresh } else { 0 };
        if !s.stopped {
            used = s.feed(&buf[..valid], base, read == s.len);
        }
        // Framing may have ended at damage; a version 1 pack's name still hashes
        // every byte.
        s.whole_file(&buf[from..valid]);
        let v1 = s.version == Some(PACK_VERSION_WHOLE_FILE_ID);
        if read == s.len || (s.stopped && !v1) {
            break;
        }
        buf.copy_within(used..valid, 0);
        valid -= used;
        base += used as u64;
    }
    Ok(())
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
    let mut s = Scanner::new(path, expected, max_chunk, keys, data.len() as u64);
    s.feed(data, 0, true);
    s.whole_file(data);
    s.finish()
}

/// A pack's records framed and checked in file order, whatever pieces its bytes come in.
struct Scanner<'a> {
    path: &'a Path,
    expected: Option<&'a PackId>,
    max_chunk: u32,
    keys: Option<&'a Keys>,
    /// The file's length.
    len: u64,
    /// Where the next record starts (after the pack header once it is read).
    next: u64,
    /// The pack's version, once its header is read.
    version: Option<u32>,
    /// Version 2 and 3 packs are named by their headers, version 1 by the whole file.
    headers: blake3::Hasher,
    file: blake3::Hasher,
    /// Framing ended: damage, or a header that is not a pack's.
    stopped: bool,
    /// The offset up to which the bytes must be buffered before framing goes on.
    need: u64,
    out: PackScan,
}

impl<'a> Scanner<'a> {
    fn new(
        path: &'a Path,
        expected: Option<&'a PackId>,
        max_chunk: u32,
        keys: Option<&'a Keys>,
        len: u64,
    ) -> Self {
        Scanner {
            path,
            expected,
            max_chunk,
            keys,
            len,
            next: 0,
            version: None,
            headers: blake3::Hasher::new(),
            file: blake3::Hasher::new(),
            stopped: false,
            need: 0,
            out: PackScan {
                good: vec![],
                bad: vec![],
                name_matches: true,
            },
        }
    }

    /// Every byte of the file, in order, once its header is read: the name of a
    /// version 1 pack hashes them (later versions' names do not: a second pass of
    /// blake3 over everything a verify reads).
    fn whole_file(&mut self, b: &[u8]) {
        if self.version == Some(PACK_VERSION_WHOLE_FILE_ID) {
            self.file.update(b);
        }
    }

    /// Frames and checks the records wholly inside `data` (the file's bytes from
    /// `base` on; `last`: up to its end); returns how many bytes of `data` it used.
    fn feed(&mut self, data: &[u8], base: u64, last: bool) -> usize {
        let at = |off: u64| usize::try_from(off - base).unwrap_or(usize::MAX);
        if self.version.is_none() {
            if !last && data.len() < PACK_HEADER_LEN as usize {
                self.need = PACK_HEADER_LEN;
                return 0;
            }
            if !self.pack_header(data) {
                self.stopped = true;
                return data.len();
            }
            self.next = PACK_HEADER_LEN;
        }
        // (record, member lengths of a frame, start of its stored bytes in `data`)
        let mut pending: Vec<(RecordInfo, Vec<u32>, usize)> = vec![];
        let end = base + data.len() as u64;
        while self.next < self.len {
            let pos = self.next;
            let rest = data.get(at(pos)..).unwrap_or(&[]);
            // A header is decoded once its fixed part (the longer, a frame's) is here,
            // and framed once its member lengths are: the same bytes a whole file gives.
            if !last && (rest.len() as u64) < FRAME_HEADER_LEN {
                self.need = (pos + FRAME_HEADER_LEN).min(self.len);
                break;
            }
            let framed = decode_header(self.path, pos, rest).and_then(|info| {
                if !last && (rest.len() as u64) < info.header_len() {
                    return Ok(None);
                }
                let lens = match info.is_frame() {
                    true => decode_lens(
                        self.path,
                        &info,
                        rest.get(FRAME_HEADER_LEN as usize..).unwrap_or(&[]),
                    )?,
                    false => Vec::new(),
                };
                Ok(Some((info, lens)))
            });
            let (info, lens) = match framed {
                Ok(Some(f)) => f,
                Ok(None) => {
                    // A frame's member lengths are not all here yet.
                    self.need = self.len.min(pos + MAX_HEADER);
                    break;
                }
                Err(e) => {
                    // Without a trustworthy header the rest cannot be framed.
                    self.out.bad.push((pos, None, e.to_string()));
                    self.stopped = true;
                    break;
                }
            };
            let hlen = info.header_len();
            let start = pos + hlen;
            let stop = start.checked_add(u64::from(info.stored_len));
            match stop {
                Some(stop) if stop <= self.len && info.raw_len <= self.max_chunk => {
                    if stop > end {
                        self.need = stop;
                        break;
                    }
                    self.headers.update(&rest[..hlen as usize]);
                    pending.push((info, lens, at(start)));
                    self.next = stop;
                }
                _ => {
                    self.headers
                        .update(rest.get(..hlen as usize).unwrap_or(&[]));
                    self.out.bad.push((
                        pos,
                        Some(info.id),
                        "record runs past the end of the pack".into(),
                    ));
                    self.stopped = true;
                    break;
                }
            }
        }
        self.check(data, pending);
        if self.stopped || self.next >= self.len {
            return data.len();
        }
        at(self.next)
    }

    /// Reads the pack header at the start of `data`; false (with why in `bad`) when
    /// the file is not a pack this ironclone reads.
    fn pack_header(&mut self, data: &[u8]) -> bool {
        let header = data.get(..PACK_HEADER_LEN as usize);
        let version = header.and_then(|h| crate::bytes::le32(h, 8));
        match (header, version) {
            (Some(h), Some(v)) if h.starts_with(PACK_MAGIC) && (1..=PACK_VERSION).contains(&v) => {
                self.version = Some(v);
                if v != PACK_VERSION_WHOLE_FILE_ID {
                    self.headers.update(h);
                }
                true
            }
            (Some(h), Some(v)) if h.starts_with(PACK_MAGIC) => {
                self.out.bad.push((
                    0,
                    None,
                    format!("pack version {v}, not one this ironclone reads (1 to {PACK_VERSION})"),
                ));
                false
            }
            _ => {
                self.out.bad.push((0, None, "bad pack header magic".into()));
                false
            }
        }
    }

    /// Every framed record's CRC, decompression and hashes, on every core.
    fn check(&mut self, data: &[u8], pending: Vec<(RecordInfo, Vec<u32>, usize)>) {
        use rayon::prelude::*;
        let keys = self.keys;
        let checked: Vec<(RecordInfo, std::result::Result<Vec<super::Member>, String>)> = pending
            .into_par_iter()
            .map(|(info, lens, start)| {
                let stored = &data[start..start + info.stored_len as usize];
                let checked = check_record(&info, &lens, stored, keys);
                (info, checked)
            })
            .collect();
        for (record, res) in checked {
            match res {
                Ok(chunks) => self.out.good.push(Entry { record, chunks }),
                Err(e) => self.out.bad.push((record.offset, Some(record.id), e)),
            }
        }
    }

    fn finish(mut self) -> PackScan {
        self.out.name_matches = match (self.version, self.expected) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(PACK_VERSION_WHOLE_FILE_ID), Some(e)) => {
                PackId(*self.file.finalize().as_bytes()) == *e
            }
            (Some(_), Some(e)) => PackId(*self.headers.finalize().as_bytes()) == *e,
        };
        // A framing error is found before the records framed with it are checked.
        self.out.bad.sort_by_key(|b| b.0);
        self.out
    }
}

thread_local! {
    /// Each checking thread's decompressor and buffer, kept from window to window and
    /// pack to pack: a fresh zero-filled buffer per record was a page fault per 4 KiB
    /// (about a sixth of a verify), and one per window still a tenth.
    static DECODER: std::cell::RefCell<Option<(zstd::bulk::Decompressor<'static>, Vec<u8>)>> =
        const { std::cell::RefCell::new(None) };
}

/// One record's CRC, decompression and hashes; the chunks of a frame.
fn check_record(
    info: &RecordInfo,
    lens: &[u32],
    stored: &[u8],
    keys: Option<&Keys>,
) -> std::result::Result<Vec<super::Member>, String> {
    if crc32fast::hash(stored) != info.crc32 {
        return Err("CRC mismatch".to_string());
    }
    DECODER.with(|cell| {
        let mut held = cell.borrow_mut();
        if held.is_none() {
            let d = zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?;
            *held = Some((d, Vec::new()));
        }
        let Some((d, raw)) = held.as_mut() else {
            return Err("no zstd decompressor".to_string());
        };
        decode_record_with(d, info, stored, raw, keys)
            .and_then(|()| match info.is_frame() {
                true => frame_members(info, lens, raw, keys),
                false => Ok(Vec::new()),
            })
            .map_err(|e| e.to_string())
    })
}
