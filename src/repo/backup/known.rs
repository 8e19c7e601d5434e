//! The chunks a backup need not store again: every chunk of a pack that is present and
//! not marked by prune.
//!
//! A backup only asks "is this id stored?", never where: the whole `Index` (a hash map
//! of id → place, ~50-100 bytes per chunk with its load factor, plus the records) is
//! not needed. The index files are read a batch at a time and only their ids kept, and
//! not even those in memory: the full ids go to an unlinked scratch file (list.rs,
//! 32 bytes per stored chunk on disk), and memory holds 6 bytes per id, sorted: the
//! id's bytes 2..4 (a tag) and where its full id is (issue 20: 32 bytes per stored
//! chunk in memory was 128 MiB for a 1 TB repository; 8 with the id's first four bytes
//! in each entry, 128 MiB for 1 TB of 64 KiB chunks beside the pipeline's 50). A
//! lookup is a binary search inside one of 65 536 buckets picked by the id's first two
//! bytes (so the tag makes four bytes compared); an entry whose tag matches is
//! confirmed by reading the full id (one positioned read of 32 bytes, from the page
//! cache once the backup is under way): a truncated id never stands in for the chunk,
//! since "already stored" for a chunk that is not would lose it. About 1 in 2^32
//! misses pays a read; every hit pays one.
//!
//! The entries are gathered as 8-byte words (four id bytes and the place, sorted as
//! one number), then packed from the back into the two 6-byte arrays while the words'
//! memory is given back, so the peak stays near 8 bytes per id while the index is read,
//! before the pipeline's buffers exist, and 6 while the backup runs.

use super::super::error::{RepoError, Result};
use super::super::id::{ChunkId, PackId};
use super::super::{index, verify, Repository};
use super::list::scratch_file;
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Index files read (and parsed) at once: enough to keep a remote store's round trips
/// overlapped, few enough that their parsed entries stay small beside the ids.
const BATCH: usize = 32;

const BUCKETS: usize = 1 << 16;

/// A sorted, deduplicated set of chunk ids.
pub(crate) struct KnownSet {
    /// The ids' bytes 2..4 (big-endian), sorted within each bucket.
    tags: Vec<u16>,
    /// Beside each tag: its full id is the file's `n`th.
    places: Vec<u32>,
    /// `tags[starts[b]..starts[b + 1]]` are the ids whose first two bytes are `b`.
    starts: Vec<u32>,
    file: File,
    path: PathBuf,
}

fn prefix(id: &ChunkId) -> u64 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&id.0[..4]);
    u64::from(u32::from_be_bytes(b))
}

/// Collects ids (any order, duplicates allowed) into a `KnownSet`.
struct Builder {
    out: std::io::BufWriter<File>,
    path: PathBuf,
    entries: Vec<u64>,
}

impl Builder {
    fn new(dir: &Path) -> Result<Builder> {
        let (file, path) = scratch_file(dir)?;
        Ok(Builder {
            out: std::io::BufWriter::with_capacity(256 << 10, file),
            path,
            entries: Vec::new(),
        })
    }

    fn add(&mut self, id: &ChunkId) -> Result<()> {
        // 4 billion ids (a petabyte) is beyond this tool; ids past it are simply not
        // known, so their chunks would be stored again, never lost.
        let Ok(n) = u32::try_from(self.entries.len()) else {
            return Ok(());
        };
        self.out
            .write_all(&id.0)
            .map_err(RepoError::io(&self.path))?;
        self.entries.push(prefix(id) << 32 | u64::from(n));
        Ok(())
    }

    fn finish(self) -> Result<KnownSet> {
        let Builder {
            out,
            path,
            mut entries,
        } = self;
        let file = out
            .into_inner()
            .map_err(|e| RepoError::io(&path)(e.into_error()))?;
        entries.sort_unstable();
        let mut set = KnownSet {
            tags: Vec::new(),
            places: Vec::new(),
            starts: Vec::new(),
            file,
            path,
        };
        // The same chunk listed twice (prune copies, two writers): one entry each, so
        // that `position` names one place per distinct id. Equal prefixes are rare
        // beyond true repeats, so this reads few full ids.
        let mut kept = 0usize;
        let mut i = 0usize;
        while let Some(&first) = entries.get(i) {
            let mut j = i + 1;
            while entries.get(j).is_some_and(|e| e >> 32 == first >> 32) {
                j += 1;
            }
            let mut seen: Vec<ChunkId> = Vec::new();
            for k in i..j {
                let Some(&e) = entries.get(k) else { break };
                if j - i > 1 {
                    let id = set.full_id(e as u32)?;
                    if seen.contains(&id) {
                        continue;
                    }
                    seen.push(id);
                }
                if let Some(slot) = entries.get_mut(kept) {
                    *slot = e;
                }
                kept += 1;
            }
            i = j;
        }
        entries.truncate(kept);
        entries.shrink_to_fit();
        let mut starts = Vec::with_capacity(BUCKETS + 1);
        let mut at = 0usize;
        for b in 0..BUCKETS as u64 {
            starts.push(u32::try_from(at).unwrap_or(u32::MAX));
            while entries.get(at).is_some_and(|e| e >> 48 == b) {
                at += 1;
            }
        }
        starts.push(u32::try_from(at).unwrap_or(u32::MAX));
        set.starts = starts;
        pack(entries, &mut set.tags, &mut set.places);
        Ok(set)
    }
}

/// Words given back to the allocator at a time while packing (8 MiB).
const GIVE_BACK: usize = 1 << 20;

/// Moves sorted `words` into `tags` and `places`, from the back, shrinking `words` as
/// it goes so that both forms are never held whole at once.
fn pack(mut words: Vec<u64>, tags: &mut Vec<u16>, places: &mut Vec<u32>) {
    let n = words.len();
    tags.reserve_exact(n);
    places.reserve_exact(n);
    let mut popped = 0usize;
    while let Some(w) = words.pop() {
        tags.push((w >> 32) as u16);
        places.push(w as u32);
        popped += 1;
        if popped % GIVE_BACK == 0 {
            words.shrink_to_fit();
        }
    }
    tags.reverse();
    places.reverse();
}

impl KnownSet {
    /// The set of `ids` (any order, duplicates allowed), its full ids in a scratch
    /// file under `dir`.
    #[cfg(test)]
    pub(crate) fn new_in(dir: &Path, ids: Vec<ChunkId>) -> Result<KnownSet> {
        let mut b = Builder::new(dir)?;
        for id in &ids {
            b.add(id)?;
        }
        b.finish()
    }

    /// `new_in` the system's temporary directory (tests).
    #[cfg(test)]
    pub(crate) fn new(ids: Vec<ChunkId>) -> KnownSet {
        match KnownSet::new_in(&std::env::temp_dir(), ids) {
            Ok(s) => s,
            Err(e) => panic!("known set: {e}"),
        }
    }

    /// The full id at place `n` of the scratch file.
    fn full_id(&self, n: u32) -> Result<ChunkId> {
        let mut id = [0u8; 32];
        self.file
            .read_exact_at(&mut id, u64::from(n) * 32)
            .map_err(RepoError::io(&self.path))?;
        Ok(ChunkId(id))
    }

    /// `id`'s position in the sorted set, if it is there.
    pub(crate) fn position(&self, id: &ChunkId) -> Result<Option<usize>> {
        let p = prefix(id);
        let b = (p >> 16) as usize;
        let (Some(&lo), Some(&hi)) = (self.starts.get(b), self.starts.get(b + 1)) else {
            return Ok(None);
        };
        let (lo, hi) = (lo as usize, hi as usize);
        let (Some(tags), Some(places)) = (self.tags.get(lo..hi), self.places.get(lo..hi)) else {
            return Ok(None);
        };
        let tag = p as u16;
        let first = tags.partition_point(|&t| t < tag);
        for (i, (&t, &n)) in tags.iter().zip(places).enumerate().skip(first) {
            if t != tag {
                break;
            }
            if self.full_id(n)? == *id {
                return Ok(Some(lo + i));
            }
        }
        Ok(None)
    }

    pub(crate) fn contains(&self, id: &ChunkId) -> Result<bool> {
        Ok(self.position(id)?.is_some())
    }

    pub(crate) fn len(&self) -> usize {
        self.tags.len()
    }
}

/// The chunks of every readable index file whose pack exists and is not in `marked`,
/// and the index files that could not be read (reported as warnings: their chunks are
/// stored again).
pub(crate) fn load(
    repo: &Repository,
    marked: &HashSet<PackId>,
    scratch: &Path,
) -> Result<(KnownSet, Vec<RepoError>)> {
    use rayon::prelude::*;
    let names = index::file_names(repo)?;
    let present: HashSet<PackId> = verify::list_packs(repo)?
        .into_iter()
        .map(|(id, ..)| id)
        .filter(|id| !marked.contains(id))
        .collect();
    let mut ids = Builder::new(scratch)?;
    let mut problems = Vec::new();
    for batch in names.chunks(BATCH) {
        let files: Vec<Result<index::IndexFile>> =
            batch.par_iter().map(|n| index::read(repo, n)).collect();
        for f in files {
            match f {
                Ok(f) if present.contains(&f.pack) => {
                    for e in &f.entries {
                        match e.record.is_frame() {
                            true => {
                                for m in &e.chunks {
                                    ids.add(&m.id)?;
                                }
                            }
                            false => ids.add(&e.record.id)?,
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => problems.push(e),
            }
        }
    }
    Ok((ids.finish()?, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> ChunkId {
        ChunkId::of(&n.to_le_bytes())
    }

    #[test]
    fn finds_every_member_and_nothing_else() {
        let mut ids: Vec<ChunkId> = (0..5000).map(id).collect();
        ids.extend((0..100).map(id)); // duplicates
        let dir = tempfile::tempdir().unwrap();
        let set = KnownSet::new_in(dir.path(), ids).unwrap();
        // The full ids are in an unlinked file: nothing is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(set.len(), 5000);
        for n in 0..5000 {
            assert!(set.contains(&id(n)).unwrap(), "{n}");
        }
        for n in 5000..10000 {
            assert!(!set.contains(&id(n)).unwrap(), "{n}");
        }
        // Ids sharing the first four bytes (what memory holds) differ only further
        // on: the full id decides, and repeats of each are one entry.
        let mut a = ChunkId([7; 32]);
        let b = a;
        a.0[31] = 8;
        let mut c = a;
        c.0[4] = 0;
        let set = KnownSet::new(vec![a, c, a, c, a]);
        assert_eq!(set.len(), 2);
        assert!(set.contains(&a).unwrap() && set.contains(&c).unwrap());
        assert!(!set.contains(&b).unwrap());
        assert_ne!(set.position(&a).unwrap(), set.position(&c).unwrap());
        assert!(!KnownSet::new(Vec::new()).contains(&a).unwrap());
        let edge = [ChunkId([0; 32]), ChunkId([0xff; 32])];
        let set = KnownSet::new(edge.to_vec());
        assert!(edge.iter().all(|e| set.contains(e).unwrap()));
        assert_eq!(set.position(&edge[1]).unwrap(), Some(1));
    }

    #[test]
    fn packing_keeps_every_word_in_order_past_each_give_back() {
        let n = 2 * GIVE_BACK + 3;
        let words: Vec<u64> = (0..n as u64)
            .map(|i| (i * 7919 % 65536) << 32 | (i ^ 0x5a5a))
            .collect();
        let (mut tags, mut places) = (Vec::new(), Vec::new());
        pack(words.clone(), &mut tags, &mut places);
        assert_eq!(tags.len(), n);
        for (i, w) in words.iter().enumerate() {
            assert_eq!((tags[i], places[i]), ((w >> 32) as u16, *w as u32), "{i}");
        }
    }
}
