//! The chunk index: chunk id → (pack, record, bytes inside the record). One index file per pack, written right
//! after the pack is durable, so a killed backup leaves its finished packs findable
//! and the next run reuses their chunks. Each file carries a blake3 checksum of its
//! entries, so a flipped byte is detected rather than followed to the wrong place.

use super::crypto::Aad;
use super::error::{RepoError, Result};
use super::fsutil;
use super::id::{ChunkId, PackId};
use super::index_wanted::{Buckets, IdSource, Wanted};
use super::pack::{Entry, RecordInfo};
use super::Repository;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Index files are small (a 128 MiB pack of 4 KiB chunks is 32 K entries, 3 MB); bound
/// what we read.
const MAX_INDEX_FILE: u64 = 64 << 20;

/// A pack is closed before its index file's JSON could pass this (`PackWriter::full`),
/// well under what readers take: chunks that compress to a few bytes (a 4 MiB frame
/// of 64 unique, nearly empty chunks stored in 873 bytes, measured) would otherwise fill
/// a 128 MiB pack with ten million chunks, whose index no reader would open.
pub(crate) const MAX_INDEX_JSON: u64 = 48 << 20;

/// At least the bytes of JSON one entry of a record with `members` chunks takes in an
/// index file: the record's fields with every number at its widest (210 bytes), and
/// 81 for each `["<id>",len]` of a frame's chunk.
pub(crate) fn entry_json_bound(members: usize) -> u64 {
    224 + 96 * members as u64
}
/// Version 2 index files may list frames (`Entry::chunks`); version 1 lists chunk
/// records only and is read as well (its JSON is the same without `members`/`chunks`).
pub const INDEX_VERSION: u32 = 2;

#[derive(Serialize, Deserialize)]
pub struct IndexFile {
    pub version: u32,
    pub pack: PackId,
    pub entries: Vec<Entry>,
    /// blake3 (hex) of the JSON of `pack` and `entries`.
    pub checksum: String,
}

/// The JSON is hashed as it is written, not built first: for a pack of many small
/// records it was the largest allocation of every job that loads the index (67 MB for
/// a pack of 512 Ki chunks).
fn checksum(pack: &PackId, entries: &[Entry]) -> String {
    let mut h = blake3::Hasher::new();
    {
        // serde_json writes a token at a time; hashing 64 KiB at a time keeps blake3
        // on its wide path.
        let mut w = std::io::BufWriter::with_capacity(64 << 10, &mut h);
        // Neither the types nor the hasher can fail to serialise or write.
        let _ = serde_json::to_writer(&mut w, &(pack, entries));
        let _ = std::io::Write::flush(&mut w);
    }
    h.finalize().to_hex().to_string()
}

/// The object name of `pack`'s index file.
pub fn index_name(pack: &PackId) -> String {
    format!("index/{}.json", pack.to_hex())
}

/// The index files' names (`index/*.json`), sorted: readers add them in this order so
/// that what they build does not depend on the store's listing order.
pub fn file_names(repo: &Repository) -> Result<Vec<String>> {
    let mut names: Vec<String> = repo
        .store()
        .list("index/")
        .map_err(RepoError::io(repo.loc("index")))?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    Ok(names)
}

pub fn write(repo: &Repository, pack: &PackId, entries: Vec<Entry>) -> Result<()> {
    let f = IndexFile {
        version: INDEX_VERSION,
        checksum: checksum(pack, &entries),
        pack: *pack,
        entries,
    };
    let name = index_name(pack);
    let bad = |what: String| RepoError::CorruptIndex {
        path: repo.loc(&name),
        what,
    };
    let mut body = fsutil::compress_json(&f).map_err(|e| bad(e.to_string()))?;
    if let Some(k) = repo.keys() {
        k.seal_vec(&Aad::index(pack), &mut body)
            .map_err(|e| bad(e.to_string()))?;
    }
    repo.put(&name, &body)
}

pub fn read(repo: &Repository, name: &str) -> Result<IndexFile> {
    let path = &repo.loc(name);
    let bytes = repo
        .store()
        .get(name, MAX_INDEX_FILE)
        .map_err(RepoError::io(path))?;
    let bytes = match repo.keys() {
        None => bytes,
        // The AAD is the pack id of the file's name: an index file renamed to another
        // pack's name does not open.
        Some(k) => {
            let bad = |what: String| RepoError::CorruptIndex {
                path: path.to_path_buf(),
                what,
            };
            let stem = name
                .rsplit('/')
                .next()
                .and_then(|n| n.strip_suffix(".json"))
                .unwrap_or("");
            let pack =
                PackId::from_hex(stem).ok_or_else(|| bad(format!("{stem:?} is not a pack id")))?;
            k.open(&Aad::index(&pack), &bytes)
                .map_err(|e| bad(e.to_string()))?
        }
    };
    let bytes =
        fsutil::unpack_json(bytes, MAX_INDEX_FILE).map_err(|what| RepoError::CorruptIndex {
            path: path.to_path_buf(),
            what,
        })?;
    parse(path, &bytes)
}

/// Decodes and checks the index file `path` whose contents are `bytes`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<IndexFile> {
    let bad = |what: String| RepoError::CorruptIndex {
        path: path.to_path_buf(),
        what,
    };
    let f: IndexFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if !(1..=INDEX_VERSION).contains(&f.version) {
        return Err(bad(format!("index version {}", f.version)));
    }
    if checksum(&f.pack, &f.entries) != f.checksum {
        return Err(bad("checksum mismatch".into()));
    }
    for e in &f.entries {
        let r = &e.record;
        let sum = e
            .chunks
            .iter()
            .try_fold(0u32, |a, m| a.checked_add(m.len).filter(|_| m.len > 0));
        let fits = match r.is_frame() {
            true => e.chunks.len() == r.members as usize && sum == Some(r.raw_len),
            false => e.chunks.is_empty(),
        };
        if !fits {
            return Err(bad(format!(
                "record at byte {} lists chunks that do not make up its {} bytes",
                r.offset, r.raw_len
            )));
        }
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem != f.pack.to_hex() {
        return Err(bad(format!("names pack {} but is called {stem}", f.pack)));
    }
    Ok(f)
}

/// Where one chunk lives: bytes `start..start + len` of a record's raw bytes (the
/// whole record for a chunk record).
#[derive(Clone, Copy, Debug)]
pub struct Location {
    pub pack: PackId,
    pub record: RecordInfo,
    pub start: u32,
    pub len: u32,
}

/// A chunk's place in `Index::records`; 12 bytes, since a 2 TB disk has millions of
/// chunks (docs/FORMAT.md, "Index").
#[derive(Clone, Copy, Debug)]
struct Slot {
    record: u32,
    start: u32,
    len: u32,
}

/// Where each chunk is: every chunk the repository holds, or (`Index::load_only`,
/// `Index::load_refs`, for a restore, a browse or a verify) only the chunks of some
/// images, as slots beside their sorted ids (index_wanted). The latter is 12 bytes a
/// chunk beside the ids (8 or 32, index_wanted says why) where the map is 45 to 90 (its
/// table doubles), and the repository's other chunks (a fleet's other machines) take
/// nothing.
enum Chunks {
    All(HashMap<ChunkId, Slot>),
    Only {
        wanted: Wanted,
        slots: Vec<Slot>,
        buckets: Buckets,
    },
    /// `Only` after `Index::number`: each chunk of the source by its number, as the
    /// position of its slot (`NO_POS`: a zero chunk, or one not found); the ids'
    /// tags and buckets are let go.
    Numbered {
        slots: Vec<Slot>,
        pos: Vec<u32>,
    },
}

/// A `Numbered` chunk without a slot.
const NO_POS: u32 = u32::MAX;

impl Default for Chunks {
    fn default() -> Self {
        Chunks::All(HashMap::new())
    }
}

/// An `Only` slot no index file filled (yet).
const NO_RECORD: u32 = u32::MAX;

impl Slot {
    /// A place not known yet (filled by the first index file naming the chunk).
    const EMPTY: Slot = Slot {
        record: NO_RECORD,
        start: 0,
        len: 0,
    };
}

impl Chunks {
    fn get(&self, id: &ChunkId) -> Option<&Slot> {
        match self {
            Chunks::All(map) => map.get(id),
            Chunks::Only {
                wanted, buckets, ..
            } => self.at(buckets.find(wanted, id)?),
            Chunks::Numbered { .. } => None,
        }
    }

    /// The filled slot of the k-th wanted id (`Only`); `None` for a whole index.
    fn at(&self, k: usize) -> Option<&Slot> {
        let (Chunks::Only { slots, .. } | Chunks::Numbered { slots, .. }) = self else {
            return None;
        };
        slots.get(k).filter(|s| s.record != NO_RECORD)
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (ChunkId, &Slot)> + '_> {
        match self {
            Chunks::All(map) => Box::new(map.iter().map(|(id, s)| (*id, s))),
            Chunks::Only { wanted, slots, .. } => Box::new(
                (0..wanted.len())
                    .filter_map(|k| Some((wanted.id(k)?, slots.get(k)?)))
                    .filter(|(_, s)| s.record != NO_RECORD),
            ),
            Chunks::Numbered { .. } => Box::new(std::iter::empty()),
        }
    }
}

/// Index files read and added at once: each is parsed whole (a 128 MiB pack of 4 KiB
/// chunks is 32 Ki entries), and a large repository has thousands.
pub(super) const LOAD_BATCH: usize = 32;

/// The whole index in memory, plus the index files that could not be read.
#[derive(Default)]
pub struct Index {
    records: Vec<(PackId, RecordInfo)>,
    chunks: Chunks,
    /// Packs named by at least one readable index file, with their number of chunks.
    pub packs: HashMap<PackId, usize>,
    pub problems: Vec<RepoError>,
    /// Packs named by an index file whose pack file does not exist.
    pub missing_packs: std::collections::HashSet<PackId>,
}

impl Index {
    /// Loads every index file; the pack listing is used to prefer, for a chunk stored
    /// more than once, a copy whose pack exists (a pack lost and its chunks stored again).
    /// Index files are fetched in parallel (each is a round trip on a remote store) and
    /// added in name order, so the result does not depend on timing.
    pub fn load(repo: &Repository) -> Result<Index> {
        Self::load_into(repo, Index::default())
    }

    /// `load`, keeping only the chunks in `ids`: what `verify` needs from a repository
    /// that may hold many machines.
    pub fn load_only(repo: &Repository, ids: impl IntoIterator<Item = ChunkId>) -> Result<Index> {
        let (wanted, buckets) = Wanted::owned(ids);
        Self::load_into(repo, Self::only(wanted, buckets))
    }

    /// `load`, keeping only the chunks `src` names, referred to there (a restore's or a
    /// browse's manifest, which they hold anyway: index_wanted).
    pub fn load_refs(repo: &Repository, src: Arc<dyn IdSource>) -> Result<Index> {
        let (wanted, buckets) = Wanted::refs(src)?;
        Self::load_into(repo, Self::only(wanted, buckets))
    }

    fn only(wanted: Wanted, buckets: Buckets) -> Index {
        let slots = vec![Slot::EMPTY; wanted.len()];
        Index {
            chunks: Chunks::Only {
                wanted,
                slots,
                buckets,
            },
            ..Index::default()
        }
    }

    fn load_into(repo: &Repository, mut idx: Index) -> Result<Index> {
        use rayon::prelude::*;
        let names = file_names(repo)?;
        let packs: std::collections::HashSet<PackId> = super::verify::list_packs(repo)?
            .into_iter()
            .map(|(id, ..)| id)
            .collect();
        for batch in names.chunks(LOAD_BATCH) {
            let files: Vec<Result<IndexFile>> = batch.par_iter().map(|n| read(repo, n)).collect();
            for f in files {
                match f {
                    Ok(f) => {
                        if !packs.contains(&f.pack) {
                            idx.missing_packs.insert(f.pack);
                        }
                        idx.add(f.pack, &f.entries)
                    }
                    Err(e) => idx.problems.push(e),
                }
            }
        }
        Ok(idx)
    }

    /// Records where `pack`'s chunks are. A chunk already known from a pack whose file
    /// is missing moves to this copy when this pack is present, whatever order the
    /// index files were read in (a lost pack's chunks stored again by a later backup).
    pub fn add(&mut self, pack: PackId, entries: &[Entry]) {
        let here_present = !self.missing_packs.contains(&pack);
        let mut n = 0usize;
        let mut at: Vec<Option<usize>> = Vec::new();
        for e in entries {
            let whole = [super::pack::Member {
                id: e.record.id,
                len: e.record.raw_len,
            }];
            let members = if e.record.is_frame() {
                &e.chunks[..]
            } else {
                &whole[..]
            };
            n += members.len();
            // Each member's place among the wanted ids, looked up once; a record none of
            // whose chunks is wanted is not kept either.
            at.clear();
            if let Chunks::Only {
                wanted, buckets, ..
            } = &self.chunks
            {
                at.extend(members.iter().map(|m| buckets.find(wanted, &m.id)));
                if at.iter().all(Option::is_none) {
                    continue;
                }
            }
            let record = u32::try_from(self.records.len()).ok();
            let Some(record) = record.filter(|r| *r != NO_RECORD) else {
                return;
            };
            self.records.push((pack, e.record));
            let mut start = 0u32;
            for (i, m) in members.iter().enumerate() {
                let slot = Slot {
                    record,
                    start,
                    len: m.len,
                };
                start = start.saturating_add(m.len);
                let old = match &mut self.chunks {
                    Chunks::All(map) => map.entry(m.id).or_insert(Slot::EMPTY),
                    Chunks::Numbered { .. } => continue,
                    Chunks::Only { slots, .. } => {
                        match at.get(i).copied().flatten().and_then(|k| slots.get_mut(k)) {
                            Some(s) => s,
                            None => continue,
                        }
                    }
                };
                let old_pack = self.records.get(old.record as usize).map(|r| r.0);
                // NO_RECORD names no record: a new place is taken as it comes.
                let moves = old.record == NO_RECORD
                    || here_present && old_pack.is_some_and(|p| self.missing_packs.contains(&p));
                if moves {
                    *old = slot;
                }
            }
        }
        *self.packs.entry(pack).or_default() += n;
    }

    /// How many ids an index from `load_only` or `load_refs` keeps; 0 for a whole index.
    pub fn wanted_len(&self) -> usize {
        match &self.chunks {
            Chunks::All(_) | Chunks::Numbered { .. } => 0,
            Chunks::Only { wanted, .. } => wanted.len(),
        }
    }

    /// The k-th of the ids an index from `load_only` or `load_refs` keeps (sorted).
    pub fn wanted_id(&self, k: usize) -> Option<ChunkId> {
        match &self.chunks {
            Chunks::All(_) | Chunks::Numbered { .. } => None,
            Chunks::Only { wanted, .. } => wanted.id(k),
        }
    }

    /// The ids an index from `load_only` or `load_refs` keeps, in sorted order.
    pub fn wanted(&self) -> impl Iterator<Item = ChunkId> + '_ {
        (0..self.wanted_len()).filter_map(|k| self.wanted_id(k))
    }

    /// `id`'s position among the wanted ids, if an index from `load_only` or
    /// `load_refs` keeps it.
    pub fn position(&self, id: &ChunkId) -> Option<usize> {
        match &self.chunks {
            Chunks::All(_) | Chunks::Numbered { .. } => None,
            Chunks::Only {
                wanted, buckets, ..
            } => buckets.find(wanted, id),
        }
    }

    /// Names the chunks of `src` (the source given to `load_refs`) by their number
    /// from now on: one pass over `src` finds each one's slot, then the sorted ids'
    /// tags and buckets are let go (9-10 bytes a chunk: a restore's write phase plans
    /// by chunk number, and this was its peak). `locate_number` then finds a chunk,
    /// and nothing is found by id any more.
    pub fn number(&mut self, src: &dyn IdSource) {
        let Chunks::Only {
            wanted,
            slots,
            buckets,
        } = &mut self.chunks
        else {
            return;
        };
        let mut pos = vec![NO_POS; src.count()];
        src.each(&mut |g, id| {
            let k = id.and_then(|id| buckets.find(wanted, &id));
            if let (Some(p), Some(k)) = (pos.get_mut(g), k) {
                *p = u32::try_from(k).unwrap_or(NO_POS);
            }
        });
        let slots = std::mem::take(slots);
        self.chunks = Chunks::Numbered { slots, pos };
    }

    /// Where chunk number `g` lives, after `number`.
    pub fn locate_number(&self, g: usize) -> Option<Location> {
        let Chunks::Numbered { pos, .. } = &self.chunks else {
            return None;
        };
        let k = *pos.get(g)?;
        self.location(self.chunks.at(usize::try_from(k).ok()?)?)
    }

    /// Where chunk `id` lives, if the index knows it.
    pub fn locate(&self, id: &ChunkId) -> Option<Location> {
        self.location(self.chunks.get(id)?)
    }

    /// `locate` of the chunk at position `k` in `wanted()` (no lookup of its id).
    pub fn locate_at(&self, k: usize) -> Option<Location> {
        self.location(self.chunks.at(k)?)
    }

    fn location(&self, s: &Slot) -> Option<Location> {
        let (pack, record) = self.records.get(s.record as usize)?;
        Some(Location {
            pack: *pack,
            record: *record,
            start: s.start,
            len: s.len,
        })
    }

    /// Every chunk the index knows, with the pack holding it.
    pub fn chunk_packs(&self) -> impl Iterator<Item = (ChunkId, PackId)> + '_ {
        self.chunks
            .iter()
            .filter_map(|(id, s)| self.records.get(s.record as usize).map(|(p, _)| (id, *p)))
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
