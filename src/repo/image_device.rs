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
use super::index_wanted::{AreaIds, IdSource};
use super::lock::ReadLock;
use super::manifest::{ChunkRef, Manifest};
use super::pack;
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
        let m = repo.load_manifest(image)?;
        let found = m.areas.iter().enumerate().find(|(_, a)| a.name == area);
        let Some((area_no, a)) = found else {
            return Err(RepoError::NoArea {
                image: image.to_string(),
                area: area.to_string(),
                have: m.areas.iter().map(|a| a.name.clone()).collect(),
            });
        };
        // The manifest's own list when it is sorted, as a backup writes it: a copy of
        // it was 48 bytes a chunk beside the repository's copy of the manifest.
        let sorted = a.chunks.windows(2).all(|w| w[0].offset <= w[1].offset);
        let chunks = match sorted {
            true => Sorted::Manifest(Arc::clone(&m), area_no),
            false => {
                let mut copy = a.chunks.clone();
                copy.sort_by_key(|c| c.offset);
                Sorted::Copy(Arc::new(copy))
            }
        };
        for w in chunks.list().windows(2) {
            if let [x, y] = w {
                if x.offset
                    .checked_add(u64::from(x.len))
                    .is_none_or(|end| end > y.offset)
                {
                    return Err(RepoError::CorruptManifest {
                        image: image.to_string(),
                        path: repo.loc(&Repository::manifest_name(image)),
                        what: format!(
                            "area {area}: chunks at {} and {} overlap",
                            x.offset, y.offset
                        ),
                    });
                }
            }
        }
        let ids: Arc<dyn IdSource> = match &chunks {
            Sorted::Manifest(m, i) => Arc::new(AreaIds::new(Arc::clone(m), [*i])),
            Sorted::Copy(v) => v.clone(),
        };
        let locs = Index::load_refs(repo, ids)?;
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

/// An area's chunk references sorted by offset: the manifest's (its index in the
/// manifest's areas), or a sorted copy when the manifest's are not in order.
enum Sorted {
    Manifest(Arc<Manifest>, usize),
    Copy(Arc<Vec<ChunkRef>>),
}

impl Sorted {
    fn list(&self) -> &[ChunkRef] {
        match self {
            Sorted::Manifest(m, i) => m.areas.get(*i).map_or(&[], |a| &a.chunks),
            Sorted::Copy(v) => v,
        }
    }
}

impl BlockDevice for ImageDevice {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::result::Result<(), DeviceError> {
        self.check_range(offset, buf.len() as u64)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let rest = &mut buf[done..];
            // The first chunk that ends after `pos`.
            let i = self
                .chunks
                .list()
                .partition_point(|c| c.offset.saturating_add(u64::from(c.len)) <= pos);
            let n = match self.chunks.list().get(i) {
                Some(c) if c.offset <= pos => {
                    let within = pos - c.offset;
                    let n = (u64::from(c.len) - within).min(rest.len() as u64) as usize;
                    match c.id {
                        None => rest[..n].fill(0),
                        Some(id) => {
                            let data = self.chunk(c, id)?;
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
