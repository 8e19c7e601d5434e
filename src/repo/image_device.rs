//! One area of a stored image as a read-only `BlockDevice`, read straight from the
//! repository: so filesystem readers can list directories and copy files out of an
//! image without restoring it first (partclone#86).
//!
//! An offset maps to its chunk through the manifest; the chunk is found through the
//! index, its record (a frame of several chunks, or the chunk alone) CRC-checked and
//! decompressed, and the chunk's bytes checked against its blake3 id, exactly as a
//! restore does, so a damaged repository gives an error naming the image, area
//! and byte, never wrong bytes. Bytes that were not backed up (free blocks) and zero
//! chunks read as zeros, as they would after a restore. Decoded chunks are kept
//! (`ChunkCache`, up to 64 MiB), because filesystem readers come back to the same
//! metadata again and again.

use super::chunk_cache::ChunkCache;
use super::crypto::{chunk_id, Keys};
use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::index::{Index, Location};
use super::index_wanted::IdSource;
use super::lock::ReadLock;
use super::manifest::ChunkRef;
use super::manifest_stream::Spilled;
use super::pack;
use super::restore_chunks::{AreaChunks, SpilledIds};
use super::storage::{ObjectReader, Storage};
use super::Repository;
use crate::device::{Access, BlockDevice, DeviceError};
use crate::usedmap::ByteExtent;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Decoded bytes kept: 8 frames of the default 8 MiB (and the chunks taken from them), so that the metadata a
/// filesystem walk touches for every file (MFT, directory indexes, inode tables)
/// stays decoded while file data streams past (why: repo/chunk_cache.rs). Browsing
/// alone uses this; restore and verify read packs in order and keep nothing.
const CACHE_BYTES: usize = 64 << 20;
/// ...and never fewer than this many chunks of a repository with larger chunks.
const CACHE_MIN_CHUNKS: usize = 4;

/// A read-only view of one area of an image.
pub struct ImageDevice {
    image: String,
    area: String,
    len: u64,
    chunk_size: u32,
    /// Sorted by offset, non-overlapping (checked at open).
    chunks: Sorted,
    /// Where the area's chunks are: only theirs, referring to `chunks` for their ids
    /// (`Index::load_refs`), 22 bytes a chunk.
    locs: Index,
    store: Arc<dyn Storage>,
    /// An encrypted repository's keys (records are opened, ids are keyed).
    keys: Option<Arc<Keys>>,
    unreadable: Vec<ByteExtent>,
    files: Mutex<HashMap<PackId, Arc<dyn ObjectReader>>>,
    cache: Mutex<ChunkCache>,
    /// Chunks read from a pack and decoded so far (cache misses).
    decoded: AtomicU64,
    _lock: ReadLock,
}

impl ImageDevice {
    /// Opens area `area` (`p1`, `table-head`, ...) of image `image`. The repository
    /// stays read-locked (no prune) while the device lives.
    pub fn open(repo: &Repository, image: &str, area: &str) -> Result<ImageDevice> {
        let lock = ReadLock::acquire(repo, "browse")?;
        // As a stream into a scratch file (manifest_load.rs): the chunk lists held were
        // 48 bytes a chunk, and the stored manifest beside them while it was read.
        let s = repo.load_spilled(image)?;
        let m = &s.head;
        let found = m.areas.iter().enumerate().find(|(_, a)| a.name == area);
        let (Some((area_no, a)), Some(list)) =
            (found, found.and_then(|(i, _)| AreaChunks::of(&s, i)))
        else {
            return Err(RepoError::NoArea {
                image: image.to_string(),
                area: area.to_string(),
                have: m.areas.iter().map(|a| a.name.clone()).collect(),
            });
        };
        // The list and the first two neighbours in it that overlap, if any.
        let (chunks, overlapping) = match Sorted::spilled(&s, area_no, &list)? {
            Some(found) => found,
            // Out of offset order (not as a backup writes it): a sorted copy.
            None => {
                let mut copy = list.slice(0..list.len())?;
                copy.sort_by_key(|c| c.offset);
                let first = copy
                    .windows(2)
                    .find(|w| overlap(&w[0], &w[1]))
                    .map(|w| (w[0].offset, w[1].offset));
                (Sorted::Copy(Arc::new(copy)), first)
            }
        };
        if let Some((x, y)) = overlapping {
            return Err(RepoError::CorruptManifest {
                image: image.to_string(),
                path: repo.loc(&Repository::manifest_name(image)),
                what: format!("area {area}: chunks at {x} and {y} overlap"),
            });
        }
        let (ids, spilled_ids): (Arc<dyn IdSource>, _) = match &chunks {
            Sorted::Spilled { .. } => {
                let ids = Arc::new(SpilledIds::new(Arc::clone(&s), [area_no]));
                (ids.clone(), Some(ids))
            }
            Sorted::Copy(v) => (v.clone(), None),
        };
        let locs = Index::load_refs(repo, ids)?;
        if let Some(ids) = &spilled_ids {
            // A failed read of the scratch file would have looked like a missing chunk.
            ids.check()?;
        }
        Ok(ImageDevice {
            image: image.to_string(),
            area: area.to_string(),
            len: a.len,
            chunk_size: m.chunk_size,
            chunks,
            locs,
            store: repo.store_arc(),
            keys: repo.keys_arc(),
            unreadable: a.unreadable.clone(),
            files: Mutex::new(HashMap::new()),
            cache: Mutex::new(ChunkCache::new(
                CACHE_BYTES.max(
                    usize::try_from(m.chunk_size)
                        .unwrap_or(usize::MAX)
                        .saturating_mul(CACHE_MIN_CHUNKS),
                ),
            )),
            decoded: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// Ranges (area-relative) that could not be read at backup time: they read as
    /// zeros here, as they do after a restore.
    pub fn unreadable(&self) -> &[ByteExtent] {
        &self.unreadable
    }

    /// How many chunks were read from the packs and decoded so far: every other
    /// read was served from the cache. Lets tests and `browse --json` show the cost
    /// of a walk without timing it.
    pub fn chunks_decoded(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }

    fn fail(&self, offset: u64, len: u64, what: String) -> DeviceError {
        DeviceError::Io {
            device: self.describe(),
            offset,
            len,
            source: std::io::Error::other(what),
        }
    }

    fn pack_file(&self, id: &PackId) -> std::io::Result<(PathBuf, Arc<dyn ObjectReader>)> {
        let name = pack::pack_name(id);
        let path = self.store.location(&name);
        let mut files = self
            .files
            .lock()
            .map_err(|_| std::io::Error::other("pack table poisoned"))?;
        if let Some(f) = files.get(id) {
            return Ok((path, f.clone()));
        }
        let f = self.store.open(&name)?;
        files.insert(*id, f.clone());
        Ok((path, f))
    }

    /// The decoded bytes of chunk `c` (from the cache or the pack).
    fn chunk(&self, c: &ChunkRef, id: ChunkId) -> std::result::Result<Arc<Vec<u8>>, DeviceError> {
        let clen = u64::from(c.len);
        if let Ok(mut cache) = self.cache.lock() {
            if let Some(data) = cache.get(&id) {
                return Ok(data);
            }
        }
        let what = |w: String| {
            format!(
                "chunk {id} (area bytes [{}, {})): {w}",
                c.offset,
                c.offset.saturating_add(clen)
            )
        };
        let loc = self
            .locs
            .locate(&id)
            .ok_or_else(|| self.fail(c.offset, clen, what("not in the index".into())))?;
        if loc.len != c.len {
            return Err(self.fail(
                c.offset,
                clen,
                what(format!(
                    "the index holds {} bytes, manifest says {}",
                    loc.len, c.len
                )),
            ));
        }
        let record = self
            .record(&loc)
            .map_err(|w| self.fail(c.offset, clen, what(w)))?;
        let (start, end) = (loc.start as usize, loc.start as usize + loc.len as usize);
        let data = match record.get(start..end) {
            Some(b) if chunk_id(self.keys.as_deref(), b) == id => b.to_vec(),
            Some(_) => return Err(self.fail(c.offset, clen, what("blake3 hash mismatch".into()))),
            None => {
                return Err(self.fail(
                    c.offset,
                    clen,
                    what(format!("bytes {start}..{end} are outside its record")),
                ))
            }
        };
        let data = Arc::new(data);
        self.decoded.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(id, data.clone());
        }
        Ok(data)
    }

    /// The decoded bytes of the record `loc` points into. A frame is kept in the cache
    /// beside the chunks taken from it: the next chunks a walk needs are often in it.
    fn record(&self, loc: &Location) -> std::result::Result<Arc<Vec<u8>>, String> {
        let rec = &loc.record;
        if rec.is_frame() {
            if let Some(hit) = self.cache.lock().ok().and_then(|mut c| c.get(&rec.id)) {
                return Ok(hit);
            }
        }
        let (path, f) = self
            .pack_file(&loc.pack)
            .map_err(|e| format!("pack {}: {e}", loc.pack))?;
        let mut stored = Vec::new();
        pack::read_record_into(
            f.as_ref(),
            &path,
            rec,
            self.chunk_size.saturating_mul(2),
            &mut stored,
        )
        .map_err(|e| e.to_string())?;
        let data = Arc::new(
            pack::decode_record(rec, &stored, self.keys.as_deref()).map_err(|e| e.to_string())?,
        );
        if rec.is_frame() {
            if let Ok(mut cache) = self.cache.lock() {
                cache.insert(rec.id, data.clone());
            }
        }
        Ok(data)
    }
}

/// Chunks per block of a spilled list: one read of 64 records (2880 bytes) finds the
/// chunk at an offset, and the end of every block's last chunk held in memory (8 bytes
/// per 64 chunks) says which block to read.
const BLOCK: usize = 64;

/// The offsets of the first two neighbouring chunks that overlap, if any.
type FirstOverlap = Option<(u64, u64)>;

/// The end of chunk `c` in its area.
fn end(c: &ChunkRef) -> u64 {
    c.offset.saturating_add(u64::from(c.len))
}

/// Whether `x`, sorted before `y`, runs into it.
fn overlap(x: &ChunkRef, y: &ChunkRef) -> bool {
    x.offset
        .checked_add(u64::from(x.len))
        .is_none_or(|e| e > y.offset)
}

/// An area's chunk references sorted by offset: the manifest's own list in its scratch
/// file (a backup writes it in offset order), or a sorted copy when it is not in order.
enum Sorted {
    Spilled {
        s: Arc<Spilled>,
        area: usize,
        /// `ends[k]`: the end of block `k`'s last chunk.
        ends: Vec<u64>,
        /// The block read last: a filesystem walk reads near where it read before.
        last: Mutex<Option<(usize, Arc<Vec<ChunkRef>>)>>,
    },
    Copy(Arc<Vec<ChunkRef>>),
}

impl Sorted {
    /// Area `area` of `s` (its list `list`) read once for its block ends, with the
    /// first two neighbours that overlap (their offsets) if any; `None` when its chunks
    /// are not in offset order.
    fn spilled(
        s: &Arc<Spilled>,
        area: usize,
        list: &AreaChunks,
    ) -> Result<Option<(Sorted, FirstOverlap)>> {
        let mut ends = Vec::with_capacity(list.len().div_ceil(BLOCK));
        let mut prev: Option<ChunkRef> = None;
        let mut bad = None;
        for (i, c) in list.iter().enumerate() {
            let c = c?;
            if let Some(p) = &prev {
                if p.offset > c.offset {
                    return Ok(None);
                }
                if bad.is_none() && overlap(p, &c) {
                    bad = Some((p.offset, c.offset));
                }
            }
            if i % BLOCK == BLOCK - 1 || i + 1 == list.len() {
                ends.push(end(&c));
            }
            prev = Some(c);
        }
        let sorted = Sorted::Spilled {
            s: Arc::clone(s),
            area,
            ends,
            last: Mutex::new(None),
        };
        Ok(Some((sorted, bad)))
    }

    /// The first chunk that ends after `pos`, if any.
    fn first_ending_after(&self, pos: u64) -> Result<Option<ChunkRef>> {
        let (s, area, ends, last) = match self {
            Sorted::Copy(v) => return Ok(v.get(v.partition_point(|c| end(c) <= pos)).copied()),
            Sorted::Spilled {
                s,
                area,
                ends,
                last,
                ..
            } => (s, *area, ends, last),
        };
        let k = ends.partition_point(|&e| e <= pos);
        if k >= ends.len() {
            return Ok(None);
        }
        let mut held = last.lock().unwrap_or_else(|p| p.into_inner());
        let block = match held.as_ref() {
            Some((at, b)) if *at == k => Arc::clone(b),
            _ => {
                let list = AreaChunks::of(s, area)
                    .ok_or_else(|| RepoError::Pipeline(format!("area {area} is gone")))?;
                let first = k.saturating_mul(BLOCK);
                let b = Arc::new(list.slice(first..first.saturating_add(BLOCK).min(list.len()))?);
                *held = Some((k, Arc::clone(&b)));
                b
            }
        };
        Ok(block.get(block.partition_point(|c| end(c) <= pos)).copied())
    }
}

impl BlockDevice for ImageDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), DeviceError> {
        self.check_range(offset, buf.len() as u64)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let rest = &mut buf[done..];
            let next = self
                .chunks
                .first_ending_after(pos)
                .map_err(|e| self.fail(pos, rest.len() as u64, format!("chunk list: {e}")))?;
            let n = match next {
                Some(c) if c.offset <= pos => {
                    let within = pos - c.offset;
                    let n = (u64::from(c.len) - within).min(rest.len() as u64) as usize;
                    match c.id {
                        None => rest[..n].fill(0),
                        Some(id) => {
                            let data = self.chunk(&c, id)?;
                            let src = data.get(within as usize..within as usize + n).ok_or_else(
                                || self.fail(pos, n as u64, "decoded chunk too short".into()),
                            )?;
                            rest[..n].copy_from_slice(src);
                        }
                    }
                    n
                }
                // Not backed up (free space): zeros up to the next chunk.
                next => {
                    let gap_end = next.map_or(self.len, |c| c.offset);
                    let n = (gap_end - pos).min(rest.len() as u64) as usize;
                    rest[..n].fill(0);
                    n
                }
            };
            if n == 0 {
                return Err(self.fail(pos, rest.len() as u64, "no progress".into()));
            }
            done += n;
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, _buf: &[u8]) -> std::result::Result<(), DeviceError> {
        Err(DeviceError::ReadOnly {
            device: self.describe(),
            offset,
        })
    }

    fn size(&self) -> u64 {
        self.len
    }

    fn logical_sector_size(&self) -> u32 {
        512
    }

    fn flush(&self) -> std::result::Result<(), DeviceError> {
        Ok(())
    }

    fn access(&self) -> Access {
        Access::ReadOnly
    }

    fn describe(&self) -> String {
        format!("image {}, area {}", self.image, self.area)
    }
}
