//! Repository verification: every pack record is decompressed and hashed, every index
//! entry is checked against the pack it names, every manifest's root hash is checked,
//! and every chunk reference is resolved. Damage is reported in the user's terms:
//! which image, which area (partition), which byte range of the disk it touches.
//!
//! On a large remote repository reading every pack is slow and costs egress, so
//! `DataSubset` limits the data read (restic's `--read-data-subset`): only the
//! chosen packs are read and hashed; the structure is always checked whole (every
//! manifest, every index file, every pack's existence and that it is long enough for
//! the records its index names, every chunk reference resolved).

use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::id_set::gather_ids;
use super::index::Index;
use super::index_wanted::IdSource;
use super::lock::ReadLock;
use super::manifest_stream::Spilled;
use super::pack;
use super::restore_chunks::{AreaChunks, SpilledIds};
use super::Repository;
use crate::progress::{Progress, ProgressEvent};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Which packs `verify` reads and hashes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DataSubset {
    /// Every pack (the default).
    All,
    /// `n/m`: the packs whose id, read as a big-endian number from its first four
    /// bytes, is `n - 1` modulo `m`. Deterministic: runs 1/m .. m/m read each pack once.
    Bucket { n: u32, m: u32 },
    /// `x%`: that share of the packs (rounded up), drawn at random on each run, so
    /// repeated runs cover the repository over time.
    Percent(f64),
}

impl std::str::FromStr for DataSubset {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let x: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?}: not a percentage (e.g. 10%)"))?;
            if !(x > 0.0 && x <= 100.0) {
                return Err(format!(
                    "{s:?}: the percentage must be over 0 and at most 100"
                ));
            }
            return Ok(DataSubset::Percent(x));
        }
        let (n, m) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected n/m (e.g. 1/10) or x% (e.g. 5%)"))?;
        let num = |v: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: {v:?} is not a whole number"))
        };
        let (n, m) = (num(n)?, num(m)?);
        if n == 0 || m == 0 || n > m {
            return Err(format!("{s:?}: n/m needs 1 <= n <= m"));
        }
        Ok(DataSubset::Bucket { n, m })
    }
}

impl DataSubset {
    /// The packs of `all` whose data this subset reads.
    fn select(&self, all: &[(PackId, String, u64)]) -> HashSet<PackId> {
        match *self {
            DataSubset::All => all.iter().map(|(p, ..)| *p).collect(),
            DataSubset::Bucket { n, m } => all
                .iter()
                .map(|(p, ..)| *p)
                .filter(|p| {
                    let b = p.0;
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) % m == n - 1
                })
                .collect(),
            DataSubset::Percent(x) => {
                // Ranked by a hash keyed with a fresh random key: a new sample each run.
                let key = *blake3::hash(uuid::Uuid::new_v4().as_bytes()).as_bytes();
                let mut ranked: Vec<([u8; 32], PackId)> = all
                    .iter()
                    .map(|(p, ..)| (*blake3::keyed_hash(&key, &p.0).as_bytes(), *p))
                    .collect();
                ranked.sort();
                let want = (all.len() as f64 * x / 100.0).ceil() as usize;
                ranked.into_iter().take(want).map(|(_, p)| p).collect()
            }
        }
    }
}

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
    /// Packs whose data was not read (`DataSubset`); their structure was checked.
    pub packs_not_read: usize,
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

/// Verifies the image `name`, or the whole repository when `None`, reading every pack.
pub fn verify(
    repo: &Repository,
    name: Option<&str>,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    verify_subset(repo, name, DataSubset::All, progress)
}

/// `verify`, reading only the packs of `subset`.
pub fn verify_subset(
    repo: &Repository,
    name: Option<&str>,
    subset: DataSubset,
    progress: &dyn Progress,
) -> Result<VerifyReport> {
    let _reading = ReadLock::acquire(repo, "verify")?;
    let mut rep = VerifyReport::default();
    let names = match name {
        Some(n) => vec![n.to_string()],
        None => repo.image_names()?,
    };
    // The images whose manifests read, and the distinct chunks they need. A manifest
    // is read as a stream into a scratch file of its chunk lists (manifest_load.rs), not
    // held: its stored bytes and parsed lists were over 100 bytes a chunk, and a
    // fleet's repository holds many images of 1 TB. The last pass reads them again,
    // only when some chunk did not check out.
    let mut loaded: Vec<&String> = Vec::new();
    let mut needed: Vec<ChunkId> = Vec::new();
    // One image's chunks are named by their number in its scratch file, as a
    // restore's are (index_wanted.rs): 8 bytes a chunk where an id gathered is 32.
    // Several images share most chunks, which the gathered ids keep once.
    // Its scratch list is kept, and read again by the damage pass below.
    let mut one: Option<(Arc<Spilled>, Arc<SpilledIds>)> = None;
    for n in &names {
        rep.images.push(n.clone());
        let gathered = repo.load_spilled(n).and_then(|s| match name {
            Some(_) => Ok((s.data_bytes()?, s)),
            None => Ok((gather_ids(&s, &mut needed)?, s)),
        });
        match gathered {
            Ok((data_bytes, s)) => {
                if let Some(p) = super::summary::check(repo, &s.head, data_bytes) {
                    rep.problems.push(format!("image {n}: {p}"));
                }
                if name.is_some() {
                    let ids = Arc::new(SpilledIds::new(Arc::clone(&s), 0..s.areas.len()));
                    one = Some((s, ids));
                }
                loaded.push(n);
            }
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
    // Only the images' chunks are kept (22 or 46 bytes each): the whole index as a
    // map was about 90 bytes for every chunk the repository holds.
    let idx = match &one {
        Some((_, ids)) => {
            let idx = Index::load_refs(repo, Arc::clone(ids) as Arc<dyn IdSource>)?;
            // A failed read of the scratch file would look like a missing chunk.
            ids.check()?;
            idx
        }
        None => Index::load_only(repo, needed)?,
    };
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
    // The records holding them: damage elsewhere is a problem, not an image's damage.
    // By position: no id is read (from the scratch file, for one image).
    let needed_records: HashSet<(PackId, u64)> = (0..idx.wanted_len())
        .filter_map(|k| idx.locate_at(k).map(|l| (l.pack, l.record.offset)))
        .collect();
    let all_packs = list_packs(repo)?;
    let chosen = subset.select(&all_packs);
    let to_scan: Vec<&(PackId, String, u64)> = if name.is_some() {
        let wanted: HashSet<PackId> = (0..idx.wanted_len())
            .filter_map(|k| idx.locate_at(k).map(|l| l.pack))
            .collect();
        all_packs
            .iter()
            .filter(|(p, ..)| wanted.contains(p) && chosen.contains(p))
            .collect()
    } else {
        all_packs
            .iter()
            .filter(|(p, ..)| chosen.contains(p))
            .collect()
    };
    // The structure of the packs not read: indexed, and long enough for their records.
    let not_read: HashMap<PackId, u64> = all_packs
        .iter()
        .filter(|(p, ..)| !chosen.contains(p))
        .map(|(p, _, len)| (*p, *len))
        .collect();
    rep.packs_not_read = not_read.len();
    for (pid, pname, _) in all_packs.iter().filter(|(p, ..)| not_read.contains_key(p)) {
        if !idx.packs.contains_key(pid) {
            rep.problems.push(format!(
                "{}: pack has no index file (run `{repair}`)",
                repo.loc(pname).display()
            ));
        }
    }
    let fits = |l: &super::index::Location| {
        not_read.get(&l.pack).is_some_and(|&size| {
            l.record
                .offset
                .checked_add(l.record.header_len())
                .and_then(|e| e.checked_add(u64::from(l.record.stored_len)))
                .is_some_and(|end| end <= size)
        })
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
    // Each needed chunk found by the scan exactly where the index says it is (by its
    // position in `needed`: a set of every good chunk was ~100 bytes a chunk);
    // (pack, record offset) → why a record did not check out.
    let mut good = vec![false; idx.wanted_len()];
    let mut confirm = |pid: &PackId, offset: u64, id: &ChunkId, start: u32| {
        let Some(k) = idx.position(id) else {
            return;
        };
        let here = idx
            .locate_at(k)
            .is_some_and(|l| l.pack == *pid && l.record.offset == offset && l.start == start);
        if let (true, Some(g)) = (here, good.get_mut(k)) {
            *g = true;
        }
    };
    let mut bad: HashMap<(PackId, u64), String> = HashMap::new();
    let on_disk: HashSet<PackId> = all_packs.iter().map(|(p, ..)| *p).collect();
    let mut buf = Vec::new();
    let chunk_size = repo.config().chunk_size;
    for (pid, name, size) in to_scan {
        let (path, size) = (repo.loc(name), *size);
        match pack::scan(repo, name, size, &mut buf, Some(pid), chunk_size) {
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
                        confirm(pid, r.offset, &r.id, 0);
                    }
                    let mut start = 0u32;
                    for m in &e.chunks {
                        confirm(pid, r.offset, &m.id, start);
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
    if let Some((_, ids)) = &one {
        // The scan confirmed what it found against ids read from the scratch file.
        ids.check()?;
    }
    // The k-th needed chunk checked out in the scan, or was not read (a subset) and its
    // place fits its pack. The index holds only needed chunks: any other id is unsound.
    let sound_at =
        |k: usize| good.get(k) == Some(&true) || idx.locate_at(k).is_some_and(|l| fits(&l));
    let sound = |id: &ChunkId| idx.position(id).is_some_and(sound_at);
    // Every chunk sound: no image has damage, and no manifest is read again. By
    // position: no id looked up.
    let damaged = !(0..idx.wanted_len()).all(sound_at);
    for n in loaded.into_iter().filter(|_| damaged) {
        let again = |e: RepoError| format!("image {n}: its manifest could not be read again: {e}");
        // One image's list is still held; a remote store's would be a second download.
        let held = one.as_ref().map(|(s, _)| Ok(Arc::clone(s)));
        let s = match held.unwrap_or_else(|| repo.load_spilled(n)) {
            Ok(s) => s,
            Err(e) => {
                rep.problems.push(again(e));
                continue;
            }
        };
        for (i, a) in s.head.areas.iter().enumerate() {
            let Some(list) = AreaChunks::of(&s, i) else {
                continue;
            };
            for c in list.iter() {
                let c = match c {
                    Ok(c) => c,
                    Err(e) => {
                        rep.problems.push(again(e));
                        break;
                    }
                };
                let Some(id) = c.id else { continue };
                let what = match idx.locate(&id) {
                    None => Some("chunk is not in the index".to_string()),
                    Some(_) if sound(&id) => None,
                    Some(l) if not_read.contains_key(&l.pack) => Some(format!(
                        "pack {} is shorter than the record at byte {} its index names",
                        repo.loc(&pack::pack_name(&l.pack)).display(),
                        l.record.offset
                    )),
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
                        image: s.head.name.clone(),
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
    if let Some((_, ids)) = &one {
        // The damage above was looked up by id, read from the scratch file too.
        ids.check()?;
    }
    progress.report(ProgressEvent::JobEnd { ok: rep.ok() });
    Ok(rep)
}
