//! A restore's chunk lists, read from the scratch file the manifest was spilled into
//! (manifest_stream.rs) instead of held: in order for the passes over an area
//! (planning, the read-back), by position for the few chunks a record's plan names.
//!
//! Why not in memory: a chunk reference is 48 bytes, 192 MiB for a 1 TB image of
//! 256 KiB chunks, more than issue 20's whole budget once the index and the plan are
//! added. A read by position is one `pread` of 45 bytes from the page cache (about a
//! microsecond); a restore makes a few per chunk, seconds per TB written.

use super::backup::list::{ChunkList, Reader, RECORD};
use super::error::{RepoError, Result};
use super::id::ChunkId;
use super::index::Index;
use super::index_wanted::IdSource;
use super::manifest::ChunkRef;
use super::manifest_stream::Spilled;
use super::Repository;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// One area's chunk list.
#[derive(Clone)]
pub(super) struct AreaChunks<'a> {
    list: &'a ChunkList,
    range: Range<usize>,
}

impl<'a> AreaChunks<'a> {
    /// Area `i`'s list in `s`.
    pub fn of(s: &'a Spilled, i: usize) -> Option<AreaChunks<'a>> {
        Some(AreaChunks {
            list: &s.chunks,
            range: s.areas.get(i)?.clone(),
        })
    }

    /// Chunks `r` (positions in the area) of area `i` in `s`, as a list of their own:
    /// a restore in passes (restore_passes) takes an area a part at a time. The
    /// chunks' offsets stay relative to the area's start.
    pub fn part_of(s: &'a Spilled, i: usize, r: Range<usize>) -> Option<AreaChunks<'a>> {
        let whole = s.areas.get(i)?;
        let (start, end) = (
            whole.start.checked_add(r.start)?,
            whole.start.checked_add(r.end)?,
        );
        (start <= end && end <= whole.end).then_some(AreaChunks {
            list: &s.chunks,
            range: start..end,
        })
    }

    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Chunk `ci` of the area.
    pub fn get(&self, ci: usize) -> Result<ChunkRef> {
        if ci >= self.range.len() {
            return Err(RepoError::Pipeline(format!(
                "chunk {ci} past the area's {} chunks",
                self.range.len()
            )));
        }
        self.list.entry(self.range.start + ci).map(ChunkRef::from)
    }

    /// Chunks `r` of the area, in one read.
    pub fn slice(&self, r: Range<usize>) -> Result<Vec<ChunkRef>> {
        let mut out = Vec::with_capacity(r.len());
        let mut it = self.read(r.clone());
        for _ in r {
            match it.next() {
                Some(c) => out.push(c?),
                None => return Err(RepoError::Pipeline("chunk past its area".into())),
            }
        }
        Ok(out)
    }

    /// Every chunk in order, read in large blocks.
    pub fn iter(&self) -> Chunks<'a> {
        self.read(0..self.len())
    }

    /// Chunks `r` of the area, in order (read in blocks of at most `r`'s length).
    fn read(&self, r: Range<usize>) -> Chunks<'a> {
        let at = |ci: usize| self.range.start.saturating_add(ci).min(self.range.end);
        Chunks(self.list.read(at(r.start)..at(r.end)))
    }

    /// Bytes of all chunks, and of the zero ones: one pass.
    pub fn bytes(&self) -> Result<(u64, u64)> {
        let (mut all, mut zero) = (0u64, 0u64);
        for c in self.iter() {
            let c = c?;
            all += u64::from(c.len);
            if c.id.is_none() {
                zero += u64::from(c.len);
            }
        }
        Ok((all, zero))
    }
}

/// Chunks `first..=last` of an area when a record uses `n` of them: read at once when
/// they lie close together (a frame's chunks usually are neighbours), else one read
/// each as they are asked for.
pub(super) struct Lookup<'c, 'a> {
    chunks: &'c AreaChunks<'a>,
    first: usize,
    held: Vec<ChunkRef>,
}

impl<'a> AreaChunks<'a> {
    pub fn lookup(&self, first: usize, last: usize, n: usize) -> Result<Lookup<'_, 'a>> {
        let span = last.saturating_sub(first).saturating_add(1);
        let held = match span <= n.saturating_mul(4).saturating_add(16) {
            true => self.slice(first..first + span)?,
            false => Vec::new(),
        };
        Ok(Lookup {
            chunks: self,
            first,
            held,
        })
    }
}

impl Lookup<'_, '_> {
    pub fn get(&self, ci: usize) -> Result<ChunkRef> {
        match ci.checked_sub(self.first).and_then(|i| self.held.get(i)) {
            Some(c) => Ok(*c),
            None => self.chunks.get(ci),
        }
    }
}

pub(super) struct Chunks<'a>(Reader<'a>);

impl Iterator for Chunks<'_> {
    type Item = Result<ChunkRef>;
    fn next(&mut self) -> Option<Result<ChunkRef>> {
        self.0
            .next_entry()
            .map(|e| e.map(ChunkRef::from))
            .transpose()
    }
}

/// The chunks of some areas of a spilled manifest, numbered one after another, for
/// an index that names them by number (index_wanted). `IdSource` has no way to fail,
/// so a failed read of the scratch file is kept here and `check` reports it: the ids
/// it could not read were left out, so the index is not to be trusted then.
pub(super) struct SpilledIds {
    s: Arc<Spilled>,
    /// (first chunk's number, the area's records in the scratch file).
    areas: Vec<(usize, Range<usize>)>,
    count: usize,
    failed: Mutex<Option<RepoError>>,
    /// The last block of records read (its first record and bytes). An id is asked
    /// for to confirm a match, in the order of an index file (a first backup's packs
    /// hold its chunks in image order) or of a pass over an area: a read of 45 bytes
    /// each was a third of a restore's system time at 4 KiB chunks.
    cache: Mutex<(usize, Vec<u8>)>,
}

/// Records per cached block: 4 KiB.
const ID_BLOCK: usize = 4096 / RECORD;

impl SpilledIds {
    pub fn new(s: Arc<Spilled>, areas: impl IntoIterator<Item = usize>) -> SpilledIds {
        let whole: Vec<_> = areas
            .into_iter()
            .filter_map(|i| Some((i, 0..s.areas.get(i)?.len())))
            .collect();
        SpilledIds::parts(s, whole)
    }

    /// Chunks `r` (positions in the area) of each area `i` given as `(i, r)`: a part
    /// past its area's end is cut to it.
    pub fn parts(
        s: Arc<Spilled>,
        parts: impl IntoIterator<Item = (usize, Range<usize>)>,
    ) -> SpilledIds {
        let mut count = 0usize;
        let mut list = Vec::new();
        for (i, part) in parts {
            let Some(whole) = s.areas.get(i) else {
                continue;
            };
            let at = |ci: usize| whole.start.saturating_add(ci).min(whole.end);
            let r = at(part.start)..at(part.end).max(at(part.start));
            list.push((count, r.clone()));
            count = count.saturating_add(r.len());
        }
        SpilledIds {
            s,
            areas: list,
            count,
            failed: Mutex::new(None),
            cache: Mutex::new((0, Vec::new())),
        }
    }

    /// The index of chunks `parts` (`(area, chunks)`) of `s`, and their ids, to which
    /// it refers instead of copying them (index_wanted): what a restore's pass and a
    /// verify's pass load.
    pub fn index(
        repo: &Repository,
        s: &Arc<Spilled>,
        parts: &[(usize, Range<usize>)],
    ) -> Result<(Arc<SpilledIds>, Index)> {
        let ids = Arc::new(SpilledIds::parts(Arc::clone(s), parts.iter().cloned()));
        let idx = Index::load_refs(repo, Arc::clone(&ids) as Arc<dyn IdSource>)?;
        // A failed read of the scratch file would look like a missing chunk.
        ids.check()?;
        Ok((ids, idx))
    }

    /// The first failed read of the scratch file, if any.
    pub fn check(&self) -> Result<()> {
        match self.failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn fail(&self, e: RepoError) {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(e);
    }

    /// Chunk number `g`'s record in the scratch file.
    fn record(&self, g: usize) -> Option<usize> {
        let n = self.areas.partition_point(|(first, _)| *first <= g);
        let (first, r) = self.areas.get(n.checked_sub(1)?)?;
        let at = r.start.checked_add(g - first)?;
        (at < r.end).then_some(at)
    }
}

impl IdSource for SpilledIds {
    fn count(&self) -> usize {
        self.count
    }

    fn id(&self, g: usize) -> Option<ChunkId> {
        let r = self.record(g)?;
        let list = &self.s.chunks;
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (first, bytes) = &mut *c;
        let held = bytes.len() / RECORD;
        if r < *first || r >= *first + held {
            *first = r - r % ID_BLOCK;
            if let Err(e) = list.read_raw(*first, ID_BLOCK, bytes) {
                bytes.clear();
                self.fail(e);
                return None;
            }
        }
        let at = (r - *first) * RECORD;
        let rec = bytes.get(at..at + RECORD)?;
        match list.decode(r, rec) {
            Ok(e) => e.id,
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn each(&self, f: &mut dyn FnMut(usize, Option<ChunkId>)) {
        for (first, r) in &self.areas {
            let mut rd = self.s.chunks.read(r.clone());
            for g in *first..first + r.len() {
                match rd.next_entry() {
                    Ok(Some(e)) => f(g, e.id),
                    Ok(None) => break,
                    Err(e) => return self.fail(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::manifest::Manifest;

    fn refs(n: u64, salt: u64) -> Vec<ChunkRef> {
        (0..n)
            .map(|i| ChunkRef {
                offset: i * 4096,
                len: 4096 - (i % 7) as u32,
                id: (i % 5 != 0).then(|| ChunkId::of(&(i + salt).to_le_bytes())),
            })
            .collect()
    }

    #[test]
    fn areas_read_by_position_in_order_and_ids_numbered_across_areas() {
        let m = Manifest::of_areas(
            65536,
            vec![
                ("p1", refs(300, 0)),
                ("p2", refs(0, 0)),
                ("p3", refs(1000, 5000)),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Spilled::from_manifest(&m, dir.path()).unwrap());
        for (i, a) in m.areas.iter().enumerate() {
            let c = AreaChunks::of(&s, i).unwrap();
            assert_eq!(c.len(), a.chunks.len());
            let all: Vec<ChunkRef> = c.iter().map(|r| r.unwrap()).collect();
            assert_eq!(all, a.chunks, "area {i} in order");
            for ci in (0..a.chunks.len()).step_by(37) {
                assert_eq!(c.get(ci).unwrap(), a.chunks[ci]);
            }
            assert!(c.get(a.chunks.len()).is_err(), "past the area");
            let bytes: u64 = a.chunks.iter().map(|c| u64::from(c.len)).sum();
            let zeros = a.chunks.iter().filter(|c| c.id.is_none());
            let zero: u64 = zeros.map(|c| u64::from(c.len)).sum();
            assert_eq!(c.bytes().unwrap(), (bytes, zero));
        }
        let p3 = AreaChunks::of(&s, 2).unwrap();
        assert_eq!(p3.slice(10..20).unwrap(), m.areas[2].chunks[10..20]);
        // Near (held at once) and far apart (read one by one): the same chunks.
        for (first, last, n) in [(10, 20, 11), (0, 999, 2)] {
            let l = p3.lookup(first, last, n).unwrap();
            for ci in [first, (first + last) / 2, last] {
                assert_eq!(l.get(ci).unwrap(), m.areas[2].chunks[ci]);
            }
        }
        // Areas 0 and 2 numbered one after another; ids read by number (across
        // the cached blocks, backwards too) and in order are the manifest's.
        let ids = SpilledIds::new(s.clone(), [0, 2]);
        assert_eq!(ids.count(), 1300);
        let want: Vec<Option<ChunkId>> = m.areas[0]
            .chunks
            .iter()
            .chain(&m.areas[2].chunks)
            .map(|c| c.id)
            .collect();
        for g in (0..1300).rev().chain(0..1300).step_by(3) {
            assert_eq!(ids.id(g), want[g], "chunk {g}");
        }
        assert_eq!(ids.id(1300), None);
        let mut got = Vec::new();
        ids.each(&mut |g, id| got.push((g, id)));
        assert_eq!(got.len(), 1300);
        assert!(got.iter().all(|&(g, id)| id == want[g]));
        ids.check().unwrap();
    }
}
