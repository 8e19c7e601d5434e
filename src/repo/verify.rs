//! Repository verification: every pack record is decompressed and hashed, every index
//! entry is checked against the pack it names, every manifest's root hash is checked,
//! and every chunk reference is resolved. Damage is reported in the user's terms:
//! which image, which area (partition), which byte range of the disk it touches.

use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::lock::ReadLock;
use super::manifest::Manifest;
use super::pack;
use super::Repository;
use crate::progress::{Progress, ProgressEvent};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One damaged piece of one image.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Damage {
    pub image: String,
    /// The area (partition) name, or "(manifest)" when the manifest itself is bad.
    pub area: String,
    /// Byte range relative to the area start.
    pub area_offset: u64,
    pub len: u64,
    /// The same range as a byte offset on the source disk.
    pub disk_offset: u64,
    pub chunk: Option<ChunkId>,
    pub what: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub images: Vec<String>,
    pub packs_checked: usize,
    pub chunks_checked: usize,
    pub bytes_checked: u64,
    pub damages: Vec<Damage>,
    /// Damage not tied to an image (index files, pack names, unreferenced packs).
    pub problems: Vec<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.damages.is_empty() && self.problems.is_empty()
    }
}

/// Every `packs/xx/<id>.pack` object, with the id its name claims and its length.
pub(crate) fn list_packs(repo: &Repository) -> Result<Vec<(PackId, String, u64)>> {
    let mut out: Vec<(PackId, String, u64)> = repo
        .store()
        .list("packs/")
        .map_err(RepoError::io(repo.loc("packs")))?
        .into_iter()
        .filter_map(|(name, len)| {
            let file = name.strip_prefix("packs/")?.split_once('/')?.1;
            let id = PackId::from_hex(file.strip_suffix(".pack")?)?;
            Some((id, name, len))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Verifies the image `name`, or the whole repository when `None`.
pub fn verify(
    repo: &Repository,
    name: Option<&str>,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let _reading = ReadLock::acquire(repo, "verify")?;
    let mut rep = VerifyReport::default();
    let names = match name {
        Some(n) => vec![n.to_string()],
        None => repo.image_names()?,
    };
    let mut manifests: Vec<Manifest> = Vec::new();
    for n in &names {
        rep.images.push(n.clone());
        match repo.load_manifest(n) {
            Ok(m) => manifests.push(m),
            Err(e @ RepoError::NoImage { .. }) => return Err(e),
            Err(e) => rep.damages.push(Damage {
                image: n.clone(),
                area: "(manifest)".into(),
                area_offset: 0,
                len: 0,
                disk_offset: 0,
                chunk: None,
                what: e.to_string(),
            }),
        }
    }
    let idx = repo.load_index()?;
    // The packs are self-describing, so every index problem has the same cure.
    let repair = format!("ironclone repair-index {}", repo.path().display());
    for p in &idx.problems {
        rep.problems.push(format!("index: {p} (run `{repair}`)"));
    }
    // A pack's id hashes its headers, so an index file only ever describes one pack's
    // contents; one naming a pack that is gone is stale: an old file put back after
    // prune replaced the pack, or one left by a crash.
    let mut stale: Vec<&PackId> = idx.missing_packs.iter().collect();
    stale.sort();
    for p in stale {
        rep.problems.push(format!(
            "index: {} names pack {p}, which does not exist (a stale or replayed index file: remove it)",
            repo.loc(&super::index::index_name(p)).display()
        ));
    }
    let needed: HashSet<ChunkId> = manifests.iter().flat_map(|m| m.chunk_ids()).collect();
    // The records holding them: damage elsewhere is a problem, not an image's damage.
    let needed_records: HashSet<(PackId, u64)> = needed
        .iter()
        .filter_map(|id| idx.locate(id).map(|l| (l.pack, l.record.offset)))
        .collect();
    let all_packs = list_packs(repo)?;
    let to_scan: Vec<&(PackId, String, u64)> = if name.is_some() {
        let wanted: HashSet<PackId> = needed
            .iter()
            .filter_map(|id| idx.locate(id).map(|l| l.pack))
            .collect();
        all_packs
            .iter()
            .filter(|(p, ..)| wanted.contains(p))
            .collect()
    } else {
        all_packs.iter().collect()
    };
    let total: u64 = to_scan.iter().map(|(.., len)| len).sum();
    progress.report(ProgressEvent::JobStart {
        job: "verify".into(),
        total_bytes: total,
    });
    progress.report(ProgressEvent::PhaseStart {
        name: "packs".into(),
        total_bytes: total,
    });
    // (pack, record offset, chunk id, its start in the record) of every chunk that
    // checked out; (pack, record offset) → why a record did not.
    let mut good: HashSet<(PackId, u64, ChunkId, u32)> = HashSet::new();
    let mut bad: HashMap<(PackId, u64), String> = HashMap::new();
    let on_disk: HashSet<PackId> = all_packs.iter().map(|(p, ..)| *p).collect();
    for (pid, name, size) in to_scan {
        let (path, size) = (repo.loc(name), *size);
        match pack::scan(repo, name, Some(pid), repo.config().chunk_size) {
            Ok(s) => {
                if !s.name_matches {
                    rep.problems.push(format!(
                        "{}: contents no longer match the pack's name (hash)",
                        path.display()
                    ));
                }
                rep.chunks_checked += s.bad.len();
                for e in &s.good {
                    let r = &e.record;
                    if !r.is_frame() {
                        good.insert((*pid, r.offset, r.id, 0));
                    }
                    let mut start = 0u32;
                    for m in &e.chunks {
                        good.insert((*pid, r.offset, m.id, start));
                        start = start.saturating_add(m.len);
                    }
                    rep.chunks_checked += e.chunks.len().max(1);
                }
                for (off, id, why) in s.bad {
                    let what = format!("{} at byte {off}: {why}", path.display());
                    if id.is_none() || !needed_records.contains(&(*pid, off)) {
                        rep.problems.push(what.clone());
                    }
                    bad.insert((*pid, off), what);
                }
                if !idx.packs.contains_key(pid) {
                    rep.problems.push(format!(
                        "{}: pack has no index file (run `{repair}`)",
                        path.display()
                    ));
                }
            }
            Err(e) => rep.problems.push(e.to_string()),
        }
        rep.packs_checked += 1;
        rep.bytes_checked += size;
        progress.report(ProgressEvent::Advance { bytes: size });
    }
    progress.report(ProgressEvent::PhaseEnd {
        name: "packs".into(),
    });
    for m in &manifests {
        for a in &m.areas {
            for c in &a.chunks {
                let Some(id) = c.id else { continue };
                let what = match idx.locate(&id) {
                    None => Some("chunk is not in the index".to_string()),
                    Some(l) if good.contains(&(l.pack, l.record.offset, id, l.start)) => None,
                    Some(l) if !on_disk.contains(&l.pack) => Some(format!(
                        "pack {} is missing",
                        repo.loc(&pack::pack_name(&l.pack)).display()
                    )),
                    Some(l) => Some(bad.get(&(l.pack, l.record.offset)).cloned().unwrap_or_else(|| {
                        format!(
                            "index points to pack {} byte {}, where this chunk is not (truncated pack or bad index)",
                            l.pack, l.record.offset
                        )
                    })),
                };
                if let Some(what) = what {
                    rep.damages.push(Damage {
                        image: m.name.clone(),
                        area: a.name.clone(),
                        area_offset: c.offset,
                        len: u64::from(c.len),
                        disk_offset: a.offset.saturating_add(c.offset),
                        chunk: Some(id),
                        what,
                    });
                }
            }
        }
    }
    progress.report(ProgressEvent::JobEnd { ok: rep.ok() });
    Ok(rep)
}
