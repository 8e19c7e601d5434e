//! Image manifests: one JSON file per image under `images/`, naming every chunk the
//! image needs. A manifest is self-contained (it never refers to another image) and
//! carries a root hash over its own canonical serialisation, so any change to it —
//! bit rot or a careless edit — is detected before a restore trusts it.

use super::error::{RepoError, Result};
use super::id::ChunkId;
use super::plan::{AreaKind, SourceInfo};
use crate::rescue::owners::DamageReport;
use crate::units::human_bytes;
use crate::usedmap::ByteExtent;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Manifests are bounded (a damaged one is refused before it fills a disk or memory):
/// at most `MAX_CHUNK_JSON` bytes of JSON per chunk, so 16 GiB covers 130 million chunks,
/// 8 TB of the 64 KiB chunks an unknown filesystem is cut into, 34 TB of 256 KiB file
/// chunks. It was 2 GiB (20 million) until 2026-12-06, which an 8 TB disk full of large
/// files passes (30 million): the backup wrote a manifest no job would read. A backup
/// that would pass it is refused before it writes (`max_chunks`). Jobs read manifests as
/// a stream (manifest_stream.rs), so the bound costs no memory.
pub const MAX_MANIFEST: u64 = 16 << 30;

/// More than the JSON of one chunk reference takes: `{"offset":` and 20 digits,
/// `,"len":` and 10, `,"id":"` and 64 hex digits, `"},` (121 bytes).
pub const MAX_CHUNK_JSON: u64 = 128;

/// The most chunks one image may have: its manifest's chunk lists within
/// `MAX_MANIFEST`, with a quarter left for everything else it holds.
pub fn max_chunks() -> u64 {
    MAX_MANIFEST / 4 * 3 / MAX_CHUNK_JSON
}

/// One piece of an area: `len` bytes at `offset` (relative to the area start).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub offset: u64,
    pub len: u32,
    /// `None` for an all-zero piece, which is not stored.
    pub id: Option<ChunkId>,
}

/// One area of an image. `C` holds its chunk list: the list itself, or where a restore
/// put it instead of holding it (manifest_stream.rs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AreaManifest<C = Vec<ChunkRef>> {
    pub name: String,
    pub kind: AreaKind,
    pub offset: u64,
    pub len: u64,
    pub extents: Vec<ByteExtent>,
    pub meta: serde_json::Value,
    pub chunks: C,
    /// Ranges (relative to the area) that could not be read from the source; their
    /// chunks hold zeros. Filled by rescue reading (issue 9), empty otherwise.
    #[serde(default)]
    pub unreadable: Vec<ByteExtent>,
    /// Who owns the unreadable bytes (ext and NTFS partitions). Absent in images
    /// without damage, so their canonical form (and root hash) is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage: Option<DamageReport>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageStats {
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Bytes that were all zero and not stored.
    pub zero_bytes: u64,
    /// Raw bytes of chunks that were new to the repository.
    pub new_bytes: u64,
    /// Bytes written to packs for those new chunks (after compression).
    pub new_stored_bytes: u64,
    /// Raw bytes of chunks already in the repository.
    pub dedup_bytes: u64,
    /// Distinct non-zero chunks the image references.
    pub chunks: u64,
    /// Bytes that could not be read from the source (stored as zeros). Left out of
    /// the JSON when zero, so older manifests keep their root hash.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub unreadable_bytes: u64,
    /// Bytes not read because a changed-block tracker knew them unchanged since the
    /// previous image, whose chunks the image references for them. Left out of the
    /// JSON when zero, like `unreadable_bytes`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub unchanged_bytes: u64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest<C = Vec<ChunkRef>> {
    pub version: u32,
    pub name: String,
    /// Seconds since the Unix epoch (UTC).
    pub created_unix: u64,
    pub source: SourceInfo,
    pub chunk_size: u32,
    pub areas: Vec<AreaManifest<C>>,
    pub stats: ImageStats,
    /// blake3 (hex) of this manifest serialised with `root` empty.
    pub root: String,
}

/// A manifest chunk reference that does not fit its area (or the chunk size).
#[derive(Debug, thiserror::Error)]
#[error("area {area}: chunk at {offset} (+{len}) outside the area ({area_len} bytes)")]
pub struct ChunkOutside {
    pub area: String,
    pub offset: u64,
    pub len: u32,
    pub area_len: u64,
}

/// A manifest as serialised for its root hash: the same fields in the same order, with
/// `root` empty, borrowed. Hashing it streams the JSON into blake3: a manifest of
/// millions of chunks is neither cloned nor held as text (about 100 bytes per chunk).
#[derive(Serialize)]
struct Unsealed<'a> {
    version: u32,
    name: &'a str,
    created_unix: u64,
    source: &'a SourceInfo,
    chunk_size: u32,
    areas: &'a [AreaManifest],
    stats: &'a ImageStats,
    root: &'a str,
}

impl Manifest {
    /// A copy without the chunk lists (what a restore plans from): copying them too
    /// would double a restore's largest structure.
    pub fn clone_head(&self) -> Manifest {
        Manifest {
            version: self.version,
            name: self.name.clone(),
            created_unix: self.created_unix,
            source: self.source.clone(),
            chunk_size: self.chunk_size,
            areas: self
                .areas
                .iter()
                .map(|a| AreaManifest {
                    name: a.name.clone(),
                    kind: a.kind,
                    offset: a.offset,
                    len: a.len,
                    extents: a.extents.clone(),
                    meta: a.meta.clone(),
                    chunks: Vec::new(),
                    unreadable: a.unreadable.clone(),
                    damage: a.damage.clone(),
                })
                .collect(),
            stats: self.stats.clone(),
            root: self.root.clone(),
        }
    }

    pub fn compute_root(&self) -> String {
        let view = Unsealed {
            version: self.version,
            name: &self.name,
            created_unix: self.created_unix,
            source: &self.source,
            chunk_size: self.chunk_size,
            areas: &self.areas,
            stats: &self.stats,
            root: "",
        };
        // serde_json::Value maps are BTreeMaps (no preserve_order feature), so the
        // serialisation is canonical.
        // Buffered: serde_json writes a few bytes at a time, and blake3 is fast on
        // large updates only.
        let mut h = std::io::BufWriter::with_capacity(64 << 10, blake3::Hasher::new());
        if serde_json::to_writer(&mut h, &view).is_err() {
            return String::new();
        }
        match h.into_inner() {
            Ok(h) => h.finalize().to_hex().to_string(),
            Err(_) => String::new(),
        }
    }

    pub fn seal(&mut self) {
        self.root = self.compute_root();
    }

    pub fn parse(image: &str, path: &Path, bytes: &[u8]) -> Result<Manifest> {
        let m = serde_json::from_slice(bytes);
        Self::checked(image, path, m)
    }

    /// `parse` from a stream (`fsutil::json_reader`): only the parsed manifest is
    /// held, not its text as well (about 100 bytes per chunk beside 48).
    pub fn parse_from(image: &str, path: &Path, r: impl std::io::Read) -> Result<Manifest> {
        let mut m = serde_json::from_reader::<_, Manifest>(r);
        // The chunk lists grew by doubling: up to half of each is spare.
        if let Ok(m) = m.as_mut() {
            for a in &mut m.areas {
                a.chunks.shrink_to_fit();
                a.extents.shrink_to_fit();
            }
        }
        Self::checked(image, path, m)
    }

    fn checked(image: &str, path: &Path, m: serde_json::Result<Manifest>) -> Result<Manifest> {
        let bad = |what: String| RepoError::CorruptManifest {
            image: image.to_string(),
            path: path.to_path_buf(),
            what,
        };
        let m = m.map_err(|e| bad(e.to_string()))?;
        if m.version != 1 {
            return Err(bad(format!("manifest version {}", m.version)));
        }
        let root = m.compute_root();
        if root != m.root {
            return Err(bad(format!(
                "root hash mismatch (stored {}, computed {root})",
                m.root
            )));
        }
        if m.name != image {
            return Err(bad(format!("names image {:?}", m.name)));
        }
        m.check_chunks().map_err(|e| bad(e.to_string()))?;
        Ok(m)
    }

    /// Chunks must lie inside their areas; a restore trusts these offsets.
    fn check_chunks(&self) -> std::result::Result<(), ChunkOutside> {
        for a in &self.areas {
            for c in &a.chunks {
                let end = c.offset.checked_add(u64::from(c.len));
                if end.map_or(true, |e| e > a.len) || c.len > self.chunk_size {
                    return Err(ChunkOutside {
                        area: a.name.clone(),
                        offset: c.offset,
                        len: c.len,
                        area_len: a.len,
                    });
                }
            }
        }
        Ok(())
    }

    /// Every distinct stored chunk the image needs.
    pub fn chunk_ids(&self) -> impl Iterator<Item = ChunkId> + '_ {
        self.areas
            .iter()
            .flat_map(|a| a.chunks.iter())
            .filter_map(|c| c.id)
    }

    /// The damage an image carries, in plain words: one line per area with
    /// unreadable bytes, then one per damaged file and structure. Empty for a clean
    /// image. Backup, `images` and restore all print this same list.
    pub fn damage_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for a in &self.areas {
            if a.unreadable.is_empty() {
                continue;
            }
            let bytes: u64 = a.unreadable.iter().map(|e| e.len).sum();
            out.push(format!(
                "area {}: {} unreadable in {} range(s), stored as zeros",
                a.name,
                human_bytes(bytes),
                a.unreadable.len()
            ));
            let Some(d) = &a.damage else {
                continue;
            };
            for m in &d.metadata {
                out.push(format!(
                    "area {}: {} metadata hit: {} ({} lost)",
                    a.name,
                    d.fs,
                    m.what,
                    human_bytes(m.bad_bytes)
                ));
            }
            let record = if d.fs.starts_with("ext") {
                "inode"
            } else {
                "MFT record"
            };
            for f in &d.files {
                let who = f.path.as_deref().unwrap_or("<no path found>");
                let mut line = format!(
                    "area {}: file {} ({record} {}): {} lost",
                    a.name,
                    who,
                    f.id,
                    human_bytes(f.bad_bytes)
                );
                if f.record_hit {
                    line.push_str(", its own record is unreadable");
                }
                out.push(line);
            }
            if d.unowned_bytes > 0 {
                out.push(format!(
                    "area {}: {} in free space or of unknown owner",
                    a.name,
                    human_bytes(d.unowned_bytes)
                ));
            }
            for w in &d.warnings {
                out.push(format!("area {}: note: {w}", a.name));
            }
        }
        out
    }

    /// Bytes a restore writes.
    pub fn data_bytes(&self) -> u64 {
        self.areas
            .iter()
            .flat_map(|a| a.chunks.iter())
            .map(|c| u64::from(c.len))
            .sum()
    }
}

/// Image names become file names on FAT32 too: keep them plain.
pub fn check_name(name: &str) -> Result<()> {
    let bad = |why| RepoError::BadName {
        name: name.to_string(),
        why,
    };
    if name.is_empty() || name.len() > 100 {
        return Err(bad("must be 1 to 100 characters"));
    }
    if name.starts_with('.') {
        return Err(bad("must not start with a dot"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
    {
        return Err(bad("only letters, digits, '-', '_', '.', '+' are allowed"));
    }
    Ok(())
}

#[cfg(test)]
impl Manifest {
    /// A manifest of partition areas at offset 0, each `(name, chunks)` as long as its
    /// chunks reach, for unit tests.
    pub(crate) fn of_areas(chunk_size: u32, areas: Vec<(&str, Vec<ChunkRef>)>) -> Manifest {
        let areas = areas
            .into_iter()
            .map(|(name, chunks)| AreaManifest {
                name: name.into(),
                kind: AreaKind::Partition,
                offset: 0,
                len: chunks
                    .iter()
                    .map(|c| c.offset + u64::from(c.len))
                    .max()
                    .unwrap_or(0),
                extents: Vec::new(),
                meta: serde_json::Value::Null,
                chunks,
                unreadable: Vec::new(),
                damage: None,
            })
            .collect();
        Manifest {
            version: 2,
            name: "m".into(),
            created_unix: 0,
            source: SourceInfo::default(),
            chunk_size,
            areas,
            stats: ImageStats::default(),
            root: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest {
            version: 1,
            name: "x".into(),
            created_unix: 1,
            source: SourceInfo::default(),
            chunk_size: 1 << 20,
            areas: vec![AreaManifest {
                name: "p1".into(),
                kind: AreaKind::Partition,
                offset: 1 << 20,
                len: 4 << 20,
                extents: vec![],
                meta: serde_json::json!({"b": 1, "a": [1, 2]}),
                chunks: vec![ChunkRef {
                    offset: 0,
                    len: 4096,
                    id: Some(ChunkId::of(b"x")),
                }],
                unreadable: vec![],
                damage: None,
            }],
            stats: ImageStats::default(),
            root: String::new(),
        };
        m.seal();
        m
    }

    #[test]
    fn root_hash_detects_changes_and_bounds_are_checked() {
        let m = sample();
        let p = Path::new("x.json");
        let body = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse("x", p, &body).unwrap(), m);
        assert!(
            Manifest::parse("y", p, &body).is_err(),
            "name must match the file"
        );
        let mut changed = m.clone();
        changed.areas[0].chunks[0].len = 8192;
        let body = serde_json::to_vec(&changed).unwrap();
        assert!(Manifest::parse("x", p, &body).is_err());
        // A sealed manifest whose chunk runs past its area is still refused.
        let mut out = m;
        out.areas[0].chunks[0].offset = 4 << 20;
        out.seal();
        let body = serde_json::to_vec(&out).unwrap();
        assert!(Manifest::parse("x", p, &body).is_err());
    }

    #[test]
    fn damage_fields_keep_old_manifests_valid_and_round_trip() {
        // An image without damage serialises exactly as before issue 9, so manifests
        // written by older builds keep their root hash.
        let m = sample();
        let v = serde_json::to_value(&m).unwrap();
        assert!(v["areas"][0].get("damage").is_none());
        assert!(v["stats"].get("unreadable_bytes").is_none());
        // The root is computed over the re-serialised struct: a manifest written
        // before `unreadable` existed still parses with its stored root.
        let mut old = v.clone();
        old["areas"][0]
            .as_object_mut()
            .unwrap()
            .remove("unreadable");
        let body = serde_json::to_vec(&old).unwrap();
        assert_eq!(Manifest::parse("x", Path::new("x.json"), &body).unwrap(), m);
        let mut d = sample();
        d.areas[0].unreadable = vec![ByteExtent {
            offset: 4096,
            len: 512,
        }];
        d.areas[0].damage = Some(DamageReport {
            fs: "ext4".into(),
            files: vec![crate::rescue::owners::DamagedFile {
                id: 12,
                path: Some("/a/b.txt".into()),
                bad_bytes: 512,
                record_hit: false,
            }],
            metadata: vec![crate::rescue::owners::DamagedMeta {
                what: "journal (inode 8)".into(),
                bad_bytes: 0,
            }],
            unowned_bytes: 0,
            warnings: vec![],
        });
        d.stats.unreadable_bytes = 512;
        d.seal();
        let body = serde_json::to_vec(&d).unwrap();
        let back = Manifest::parse("x", Path::new("x.json"), &body).unwrap();
        assert_eq!(back, d);
        let lines = back.damage_lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("area p1: 512 B unreadable in 1 range(s)"),
            "{lines:?}"
        );
        assert!(lines[1].contains("journal (inode 8)"));
        assert!(lines[2].contains("/a/b.txt (inode 12)"), "{lines:?}");
    }

    #[test]
    fn names() {
        assert!(check_name("laptop-2026.01_01+x").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", "..", &"x".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
