//! The chunk index: chunk id → (pack, record). One index file per pack, written right
//! after the pack is durable, so a killed backup leaves its finished packs findable
//! and the next run reuses their chunks. Each file carries a blake3 checksum of its
//! entries, so a flipped byte is detected rather than followed to the wrong place.

use super::error::{RepoError, Result};
use super::fsutil;
use super::id::{ChunkId, PackId};
use super::pack::RecordInfo;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Index files are small (a few hundred entries); bound what we read.
const MAX_INDEX_FILE: u64 = 64 << 20;

#[derive(Serialize, Deserialize)]
pub struct IndexFile {
    pub version: u32,
    pub pack: PackId,
    pub entries: Vec<RecordInfo>,
    /// blake3 (hex) of the JSON of `pack` and `entries`.
    pub checksum: String,
}

fn checksum(pack: &PackId, entries: &[RecordInfo]) -> String {
    let body = serde_json::to_vec(&(pack, entries)).unwrap_or_default();
    blake3::hash(&body).to_hex().to_string()
}

pub fn index_path(index_dir: &Path, pack: &PackId) -> PathBuf {
    index_dir.join(format!("{}.json", pack.to_hex()))
}

pub fn write(
    index_dir: &Path,
    tmp_dir: &Path,
    pack: &PackId,
    entries: Vec<RecordInfo>,
) -> Result<()> {
    let f = IndexFile {
        version: 1,
        checksum: checksum(pack, &entries),
        pack: *pack,
        entries,
    };
    let path = index_path(index_dir, pack);
    let body = serde_json::to_vec(&f).map_err(|e| RepoError::CorruptIndex {
        path: path.clone(),
        what: e.to_string(),
    })?;
    fsutil::write_atomic(tmp_dir, &path, &body)
}

pub fn read(path: &Path) -> Result<IndexFile> {
    let bytes = fsutil::read_bounded(path, MAX_INDEX_FILE)?;
    parse(path, &bytes)
}

/// Decodes and checks the index file `path` whose contents are `bytes`.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<IndexFile> {
    let bad = |what: String| RepoError::CorruptIndex {
        path: path.to_path_buf(),
        what,
    };
    let f: IndexFile = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if f.version != 1 {
        return Err(bad(format!("index version {}", f.version)));
    }
    if checksum(&f.pack, &f.entries) != f.checksum {
        return Err(bad("checksum mismatch".into()));
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    if stem != f.pack.to_hex() {
        return Err(bad(format!("names pack {} but is called {stem}", f.pack)));
    }
    Ok(f)
}

/// Where one chunk lives.
#[derive(Clone, Copy, Debug)]
pub struct Location {
    pub pack: PackId,
    pub record: RecordInfo,
}

/// The whole index in memory, plus the index files that could not be read.
#[derive(Default)]
pub struct Index {
    pub chunks: HashMap<ChunkId, Location>,
    /// Packs named by at least one readable index file.
    pub packs: HashMap<PackId, usize>,
    pub problems: Vec<RepoError>,
    /// Packs named by an index file whose pack file does not exist.
    pub missing_packs: std::collections::HashSet<PackId>,
}

impl Index {
    /// Loads every index file; `packs_dir` is used to prefer, for a chunk stored more
    /// than once, a copy whose pack file exists (a pack lost and its chunks stored again).
    pub fn load(index_dir: &Path, packs_dir: &Path) -> Result<Index> {
        let mut idx = Index::default();
        let rd = match std::fs::read_dir(index_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(idx),
            Err(e) => return Err(RepoError::io(index_dir)(e)),
        };
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for p in paths {
            match read(&p) {
                Ok(f) => {
                    if !super::pack::pack_path(packs_dir, &f.pack).exists() {
                        idx.missing_packs.insert(f.pack);
                    }
                    idx.add(f.pack, &f.entries)
                }
                Err(e) => idx.problems.push(e),
            }
        }
        Ok(idx)
    }

    /// Records where `pack`'s chunks are. A chunk already known from a pack whose file
    /// is missing moves to this copy when this pack is present, whatever order the
    /// index files were read in (a lost pack's chunks stored again by a later backup).
    pub fn add(&mut self, pack: PackId, entries: &[RecordInfo]) {
        *self.packs.entry(pack).or_default() += entries.len();
        let here_present = !self.missing_packs.contains(&pack);
        for r in entries {
            let loc = Location { pack, record: *r };
            match self.chunks.entry(r.id) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(loc);
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    if here_present && self.missing_packs.contains(&o.get().pack) {
                        o.insert(loc);
                    }
                }
            }
        }
    }
}
