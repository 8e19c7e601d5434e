//! The image's chunk list on disk while the backup runs (issue 20: a backup's memory
//! must not grow ~120 bytes per chunk with the manifest it is building).
//!
//! Every chunk of the cut gets one fixed-size record at its index in an anonymous
//! scratch file: its offset in the area, its length and its id. Workers write the
//! records of their piece themselves (positioned writes: pieces finish out of order,
//! and a record's place is known from its index), before they claim any of its
//! chunks, so a record named by the claimed-chunk table is always whole (claimed.rs
//! reads the full id back from here to confirm a prefix match). The manifest is then
//! written by streaming these records (manifest_out.rs).
//!
//! The file is created in the repository's `tmp/` (a local repository: the same disk,
//! not the live system's RAM) or `$TMPDIR`, and unlinked at once: it is deleted on
//! every exit path, a killed backup included, and never has a name that could look
//! like an image.

use super::super::error::{RepoError, Result};
use super::super::fsutil;
use super::super::id::ChunkId;
use super::super::manifest::ChunkRef;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// offset u64 | len u32 | state u8 | id [32].
pub(crate) const RECORD: usize = 45;

/// A record never written (a chunk no worker hashed: a bug, refused).
const UNWRITTEN: u8 = 0;
/// An all-zero chunk (not stored, `"id": null`).
const ZERO: u8 = 1;
const STORED: u8 = 2;

/// An unlinked file under `dir` (created if missing): it disappears with the last
/// handle, however the process ends.
pub(crate) fn scratch_file(dir: &Path) -> Result<(File, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(RepoError::io(dir))?;
    let path = fsutil::temp_path(dir, "scratch");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(RepoError::io(&path))?;
    std::fs::remove_file(&path).map_err(RepoError::io(&path))?;
    Ok((f, path))
}

/// Refuses a backup whose chunk list cannot fit under `dir` (RECORD bytes per
/// chunk), before any pack is written: a tmpfs that fills half-way through would
/// end the backup there, or the live system with it. The ids already stored are in
/// that folder by now, so what is free is what the list can have.
pub(crate) fn check_room(dir: &Path, chunks: usize) -> Result<()> {
    let need = (chunks as u64).saturating_mul(RECORD as u64);
    let room = crate::meminfo::room_in(dir).map_err(|e| RepoError::io(dir)(e.into()))?;
    // Some slack: the filesystem's own metadata and the other scratch file's tail.
    if room.bytes < need.saturating_add(need / 16) {
        return Err(RepoError::ScratchRoom {
            dir: dir.to_path_buf(),
            need,
            free: room.bytes,
            in_ram: room.in_ram,
        });
    }
    Ok(())
}

/// One chunk as the manifest lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub offset: u64,
    pub len: u32,
    pub id: Option<ChunkId>,
}

impl From<&ChunkRef> for Entry {
    fn from(c: &ChunkRef) -> Entry {
        Entry {
            offset: c.offset,
            len: c.len,
            id: c.id,
        }
    }
}

impl From<Entry> for ChunkRef {
    fn from(e: Entry) -> ChunkRef {
        ChunkRef {
            offset: e.offset,
            len: e.len,
            id: e.id,
        }
    }
}

pub(crate) struct ChunkList {
    file: File,
    /// Where the file was created, for messages.
    path: PathBuf,
    len: usize,
}

fn encode(e: &Entry, out: &mut [u8]) {
    out[..8].copy_from_slice(&e.offset.to_le_bytes());
    out[8..12].copy_from_slice(&e.len.to_le_bytes());
    match e.id {
        Some(id) => {
            out[12] = STORED;
            out[13..RECORD].copy_from_slice(&id.0);
        }
        None => {
            out[12] = ZERO;
            out[13..RECORD].fill(0);
        }
    }
}

impl ChunkList {
    /// A list of `len` chunks in a scratch file under `dir`.
    pub fn new(dir: &Path, len: usize) -> Result<ChunkList> {
        let (file, path) = scratch_file(dir)?;
        // Its full length at once (sparse where the filesystem allows): a record no
        // worker wrote then reads as zeros, which say so, rather than as an end of file.
        let bytes = (len as u64).saturating_mul(RECORD as u64);
        file.set_len(bytes).map_err(RepoError::io(&path))?;
        Ok(ChunkList { file, path, len })
    }

    /// A list appended to in order while its length is not known yet (a manifest
    /// being read, manifest_stream.rs); `finish` fixes the length.
    pub fn growing(dir: &Path) -> Result<ChunkList> {
        let (file, path) = scratch_file(dir)?;
        Ok(ChunkList {
            file,
            path,
            len: usize::MAX / RECORD,
        })
    }

    /// The list with its first `len` records, all written.
    pub fn finish(mut self, len: usize) -> ChunkList {
        self.len = len;
        self
    }

    /// A growing list fixed at `len` records, some written and the rest to be: the
    /// file gets its full length, so a record never written reads as one (zeros), not
    /// as the end of the file (as `new`).
    pub fn sized(self, len: usize) -> Result<ChunkList> {
        let bytes = (len as u64).saturating_mul(RECORD as u64);
        self.file.set_len(bytes).map_err(self.io())?;
        Ok(self.finish(len))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn pos(&self, index: usize) -> Result<u64> {
        if index >= self.len {
            return Err(RepoError::Pipeline(format!(
                "chunk {index} is past the cut's {} chunks",
                self.len
            )));
        }
        Ok(index as u64 * RECORD as u64)
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> RepoError {
        RepoError::io(self.path.clone())
    }

    /// Records `entries` as chunks `first..`: one write.
    pub fn put(&self, first: usize, entries: &[Entry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let at = self.pos(first)?;
        self.pos(first + entries.len() - 1)?;
        let mut buf = vec![0u8; entries.len() * RECORD];
        for (e, out) in entries.iter().zip(buf.chunks_exact_mut(RECORD)) {
            encode(e, out);
        }
        self.file
            .write_all_at(&buf, at)
            .map_err(|e| self.full_or_io(e, at))
    }

    /// A write's error; a full folder is told as such, with what to do about it.
    fn full_or_io(&self, e: std::io::Error, written: u64) -> RepoError {
        if e.kind() != std::io::ErrorKind::StorageFull {
            return self.io()(e);
        }
        let dir = self.path.parent().unwrap_or(&self.path).to_path_buf();
        let in_ram = crate::meminfo::room_in(&dir).is_ok_and(|r| r.in_ram);
        RepoError::ScratchFull {
            dir,
            written,
            in_ram,
        }
    }

    /// The id recorded for chunk `index`; `None` for a zero chunk or one not written.
    pub fn id(&self, index: usize) -> Result<Option<ChunkId>> {
        let mut rec = [0u8; RECORD];
        self.file
            .read_exact_at(&mut rec, self.pos(index)?)
            .map_err(self.io())?;
        Ok(match rec[12] {
            STORED => {
                let mut id = [0u8; 32];
                id.copy_from_slice(&rec[13..RECORD]);
                Some(ChunkId(id))
            }
            _ => None,
        })
    }

    /// Chunks `range`, in order, read in large blocks.
    pub fn read(&self, range: std::ops::Range<usize>) -> Reader<'_> {
        Reader {
            list: self,
            next: range.start,
            end: range.end.min(self.len),
            buf: Vec::new(),
            buf_first: 0,
        }
    }
}

/// Records per read: 64 KiB at a time, a fixed cost whatever the list's length.
const BLOCK: usize = (64 << 10) / RECORD;

pub(crate) struct Reader<'a> {
    list: &'a ChunkList,
    next: usize,
    end: usize,
    buf: Vec<u8>,
    /// The index of the first record in `buf`.
    buf_first: usize,
}

impl Reader<'_> {
    /// The next entry; an error for a record no worker wrote.
    pub fn next_entry(&mut self) -> Result<Option<Entry>> {
        let index = self.next;
        if index >= self.end {
            return Ok(None);
        }
        let held = self.buf.len() / RECORD;
        if index < self.buf_first || index >= self.buf_first + held {
            let n = (self.end - index).min(BLOCK);
            self.buf.resize(n * RECORD, 0);
            let pos = self.list.pos(index)?;
            self.list
                .file
                .read_exact_at(&mut self.buf, pos)
                .map_err(self.list.io())?;
            self.buf_first = index;
        }
        let at = (index - self.buf_first) * RECORD;
        let rec = self.buf.get(at..at + RECORD).unwrap_or(&[]);
        let e = self.list.decode(index, rec)?;
        self.next += 1;
        Ok(Some(e))
    }
}

impl ChunkList {
    /// Chunk `index`'s record: one positioned read.
    pub fn entry(&self, index: usize) -> Result<Entry> {
        let mut rec = [0u8; RECORD];
        self.file
            .read_exact_at(&mut rec, self.pos(index)?)
            .map_err(self.io())?;
        self.decode(index, &rec)
    }

    /// Records `first..first + n` (clamped to the list) into `buf`, one read; the
    /// number read.
    pub fn read_raw(&self, first: usize, n: usize, buf: &mut Vec<u8>) -> Result<usize> {
        let n = n.min(self.len.saturating_sub(first));
        buf.resize(n * RECORD, 0);
        if n > 0 {
            self.file
                .read_exact_at(buf, self.pos(first)?)
                .map_err(self.io())?;
        }
        Ok(n)
    }

    /// Record `index` from its bytes `rec` (as `read_raw` gives them).
    pub fn decode(&self, index: usize, rec: &[u8]) -> Result<Entry> {
        let (Some(offset), Some(len), Some(&state), Some(id)) = (
            rec.get(..8),
            rec.get(8..12),
            rec.get(12),
            rec.get(13..RECORD),
        ) else {
            return Err(RepoError::Pipeline("short chunk list record".into()));
        };
        let mut b8 = [0u8; 8];
        b8.copy_from_slice(offset);
        let mut b4 = [0u8; 4];
        b4.copy_from_slice(len);
        let id = match state {
            ZERO => None,
            STORED => {
                let mut b = [0u8; 32];
                b.copy_from_slice(id);
                Some(ChunkId(b))
            }
            UNWRITTEN => {
                return Err(RepoError::Pipeline(format!(
                    "chunk {index} of the image was never hashed"
                )))
            }
            s => {
                return Err(RepoError::Pipeline(format!(
                    "chunk {index}: bad record state {s} in {}",
                    self.path.display()
                )))
            }
        };
        Ok(Entry {
            offset: u64::from_le_bytes(b8),
            len: u32::from_le_bytes(b4),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder that fills up (here `/dev/full`, whose every write fails with "no space
    /// left") is named with what to do, not as a bare I/O error.
    #[test]
    fn a_full_scratch_folder_says_so() {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/full")
            .unwrap();
        let list = ChunkList {
            file,
            path: PathBuf::from("/dev/full"),
            len: 10,
        };
        let e = Entry {
            offset: 0,
            len: 4096,
            id: None,
        };
        let err = list.put(3, &[e]).unwrap_err();
        assert!(
            matches!(&err, RepoError::ScratchFull { dir, written: 135, .. } if dir == Path::new("/dev")),
            "{err:?}"
        );
        assert!(err.to_string().contains("--scratch"), "{err}");
    }

    #[test]
    fn records_round_trip_in_any_write_order_and_gaps_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let n = 3 * BLOCK + 7;
        let list = ChunkList::new(dir.path(), n).unwrap();
        // The file is already unlinked: nothing is left to look like an image.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let entry = |i: usize| Entry {
            offset: i as u64 * 4096,
            len: 4096 + i as u32,
            id: (i % 3 != 0).then(|| ChunkId::of(&i.to_le_bytes())),
        };
        // Written backwards, in pieces of 5.
        let mut starts: Vec<usize> = (0..n).step_by(5).collect();
        starts.reverse();
        for s in starts {
            let piece: Vec<Entry> = (s..(s + 5).min(n)).map(entry).collect();
            list.put(s, &piece).unwrap();
        }
        let mut r = list.read(0..n);
        for i in 0..n {
            assert_eq!(r.next_entry().unwrap(), Some(entry(i)), "{i}");
        }
        assert_eq!(r.next_entry().unwrap(), None);
        assert_eq!(list.id(4).unwrap(), entry(4).id);
        assert_eq!(list.entry(4).unwrap(), entry(4));
        assert_eq!(list.entry(n - 1).unwrap(), entry(n - 1));
        assert!(list.entry(n).is_err());
        let mut r = list.read(BLOCK - 1..BLOCK + 2);
        for i in BLOCK - 1..BLOCK + 2 {
            assert_eq!(r.next_entry().unwrap(), Some(entry(i)));
        }
        assert_eq!(r.next_entry().unwrap(), None);
        assert!(list.put(n, &[entry(0)]).is_err());
        assert!(list.put(n - 1, &[entry(0), entry(1)]).is_err());
        // A chunk no worker recorded is an error, never a silent zero chunk.
        let gap = ChunkList::new(dir.path(), 3).unwrap();
        gap.put(0, &[entry(1)]).unwrap();
        gap.put(2, &[entry(2)]).unwrap();
        let mut r = gap.read(0..3);
        assert!(r.next_entry().unwrap().is_some());
        let e = r.next_entry().unwrap_err().to_string();
        assert!(e.contains("chunk 1 of the image was never hashed"), "{e}");
    }
}
