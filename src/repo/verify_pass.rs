//! One pass of `verify`: the packs holding the chunks an index keeps are scanned, and
//! the chunks that did not check out are named.
//!
//! A verify of the whole repository is one pass over the ids of every image. A verify
//! of one image is one pass too, unless the image has more than 4 Mi chunks: then its
//! chunks are taken a bounded number at a time (restore_passes.rs says why), each pass
//! loading the index of its own chunks, scanning the packs that hold them and naming
//! the damage among them. A pack holding chunks of two passes is scanned by both; it
//! is counted, and its problems reported, once.

use super::error::Result;
use super::id::{ChunkId, PackId};
use super::index::{Index, Location};
use super::manifest_stream::Spilled;
use super::pack;
use super::restore_chunks::AreaChunks;
use super::verify::{Damage, VerifyReport};
use super::Repository;
use crate::progress::{Progress, ProgressEvent};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

/// What every pass shares: the packs in the store, which are read, and which have
/// been scanned already.
pub(super) struct Packs {
    pub all: Vec<(PackId, String, u64)>,
    pub chosen: HashSet<PackId>,
    /// The packs not read (a data subset), with their lengths.
    pub not_read: HashMap<PackId, u64>,
    pub on_disk: HashSet<PackId>,
    /// The cure for every index problem (the packs are self-describing).
    pub repair: String,
    scanned: HashSet<PackId>,
    /// Damaged records some pass needed, and those a pass scanned without needing
    /// them (with why): the latter are problems (damage not in the image) unless
    /// another pass needed them, known when every pass is done (`finish`).
    bad_needed: HashSet<(PackId, u64)>,
    bad_other: BTreeMap<(PackId, u64), String>,
}

impl Packs {
    pub fn new(
        repo: &Repository,
        all: Vec<(PackId, String, u64)>,
        chosen: HashSet<PackId>,
    ) -> Self {
        let not_read = all
            .iter()
            .filter(|(p, ..)| !chosen.contains(p))
            .map(|(p, _, len)| (*p, *len))
            .collect();
        let on_disk = all.iter().map(|(p, ..)| *p).collect();
        Packs {
            all,
            chosen,
            not_read,
            on_disk,
            repair: format!("ironclone repair-index {}", repo.path().display()),
            scanned: HashSet::new(),
            bad_needed: HashSet::new(),
            bad_other: BTreeMap::new(),
        }
    }

    /// After the last pass: the damaged records no pass needed are problems.
    pub fn finish(self, rep: &mut VerifyReport) {
        for (at, what) in self.bad_other {
            if !self.bad_needed.contains(&at) {
                rep.problems.push(what);
            }
        }
    }

    /// `l` lies in a pack not read, and that pack is long enough for its record.
    fn fits(&self, l: &Location) -> bool {
        self.not_read.get(&l.pack).is_some_and(|&size| {
            l.record
                .offset
                .checked_add(l.record.header_len())
                .and_then(|e| e.checked_add(u64::from(l.record.stored_len)))
                .is_some_and(|end| end <= size)
        })
    }
}

/// Problems of the index as a whole, the same for every pass: reported by the first.
pub(super) fn index_problems(
    repo: &Repository,
    idx: &Index,
    packs: &Packs,
    rep: &mut VerifyReport,
) {
    for p in &idx.problems {
        rep.problems
            .push(format!("index: {p} (run `{}`)", packs.repair));
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
    // The structure of the packs not read: indexed.
    for (pid, pname, _) in packs
        .all
        .iter()
        .filter(|(p, ..)| packs.not_read.contains_key(p))
    {
        if !idx.packs.contains_key(pid) {
            rep.problems.push(format!(
                "{}: pack has no index file (run `{}`)",
                repo.loc(pname).display(),
                packs.repair
            ));
        }
    }
}

/// What one pass's scan found.
pub(super) struct Found {
    /// Each chunk `idx` keeps found exactly where the index says it is (by its
    /// position: a set of every good chunk was ~100 bytes a chunk).
    good: Vec<bool>,
    /// (pack, record offset) → why a record did not check out.
    bad: HashMap<(PackId, u64), String>,
}

impl Found {
    /// The k-th chunk `idx` keeps checked out in the scan, or was not read (a subset)
    /// and its place fits its pack.
    fn sound_at(&self, idx: &Index, packs: &Packs, k: usize) -> bool {
        self.good.get(k) == Some(&true) || idx.locate_at(k).is_some_and(|l| packs.fits(&l))
    }

    /// Every chunk `idx` keeps is sound: no damage to name, no list to read again.
    pub fn all_sound(&self, idx: &Index, packs: &Packs) -> bool {
        (0..idx.wanted_len()).all(|k| self.sound_at(idx, packs, k))
    }

    /// Why chunk `id` is damaged, or `None` when it is sound. The index keeps only the
    /// chunks asked for: any other id is unsound.
    fn damage(
        &self,
        repo: &Repository,
        idx: &Index,
        packs: &Packs,
        id: &ChunkId,
    ) -> Option<String> {
        let sound = idx
            .position(id)
            .is_some_and(|k| self.sound_at(idx, packs, k));
        let name = |p: &PackId| repo.loc(&pack::pack_name(p)).display().to_string();
        match idx.locate(id) {
            None => Some("chunk is not in the index".to_string()),
            Some(_) if sound => None,
            Some(l) if packs.not_read.contains_key(&l.pack) => Some(format!(
                "pack {} is shorter than the record at byte {} its index names",
                name(&l.pack),
                l.record.offset
            )),
            Some(l) if !packs.on_disk.contains(&l.pack) => {
                Some(format!("pack {} is missing", name(&l.pack)))
            }
            Some(l) => Some(self.bad.get(&(l.pack, l.record.offset)).cloned().unwrap_or_else(|| {
                format!(
                    "index points to pack {} byte {}, where this chunk is not (truncated pack or bad index)",
                    l.pack, l.record.offset
                )
            })),
        }
    }
}

/// Scans the packs to read that hold chunks `idx` keeps (`all`: every pack to read,
/// as a verify of the whole repository does, whose damage elsewhere is a problem too).
/// With `announce` it reports the job's start with the bytes it will read.
pub(super) fn scan(
    repo: &Repository,
    idx: &Index,
    packs: &mut Packs,
    all: bool,
    announce: bool,
    rep: &mut VerifyReport,
    progress: &dyn Progress,
) -> Result<Found> {
    // The records holding them: damage elsewhere is a problem, not an image's damage.
    // By position: no id is read (from the scratch file, for one image).
    let needed_records: HashSet<(PackId, u64)> = (0..idx.wanted_len())
        .filter_map(|k| idx.locate_at(k).map(|l| (l.pack, l.record.offset)))
        .collect();
    let wanted: HashSet<PackId> = needed_records.iter().map(|(p, _)| *p).collect();
    let to_scan: Vec<(PackId, String, u64)> = packs
        .all
        .iter()
        .filter(|(p, ..)| packs.chosen.contains(p) && (all || wanted.contains(p)))
        .cloned()
        .collect();
    let total: u64 = to_scan.iter().map(|(.., len)| len).sum();
    if announce {
        progress.report(ProgressEvent::JobStart {
            job: "verify".into(),
            total_bytes: total,
        });
    }
    progress.report(ProgressEvent::PhaseStart {
        name: "packs".into(),
        total_bytes: total,
    });
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
    let mut buf = Vec::new();
    let chunk_size = repo.config().chunk_size;
    for (pid, name, size) in &to_scan {
        let (path, size) = (repo.loc(name), *size);
        // Counted, and its problems reported, once; a later pass scans it again for
        // its own chunks, and would find the same.
        let first = packs.scanned.insert(*pid);
        let mut problem = |p: String| {
            if first {
                rep.problems.push(p);
            }
        };
        match pack::scan(repo, name, size, &mut buf, Some(pid), chunk_size) {
            Ok(s) => {
                if !s.name_matches {
                    let p = format!(
                        "{}: contents no longer match the pack's name (hash)",
                        path.display()
                    );
                    problem(p);
                }
                let mut chunks = s.bad.len();
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
                    chunks += e.chunks.len().max(1);
                }
                for (off, id, why) in s.bad {
                    let what = format!("{} at byte {off}: {why}", path.display());
                    let at = (*pid, off);
                    if id.is_none() {
                        // Not even its id could be read: whoever needs it.
                        problem(what.clone());
                    }
                    match needed_records.contains(&at) {
                        true => drop(packs.bad_needed.insert(at)),
                        false if id.is_some() => drop(packs.bad_other.insert(at, what.clone())),
                        false => {}
                    }
                    bad.insert(at, what);
                }
                if !idx.packs.contains_key(pid) {
                    let p = format!(
                        "{}: pack has no index file (run `{}`)",
                        path.display(),
                        packs.repair
                    );
                    problem(p);
                }
                if first {
                    rep.chunks_checked += chunks;
                }
            }
            Err(e) => problem(e.to_string()),
        }
        if first {
            rep.packs_checked += 1;
            rep.bytes_checked += size;
        }
        progress.report(ProgressEvent::Advance { bytes: size });
    }
    progress.report(ProgressEvent::PhaseEnd {
        name: "packs".into(),
    });
    Ok(Found { good, bad })
}

/// Names, in `rep`, the damaged chunks among chunks `parts` (`(area, chunks)`) of
/// image `s`.
pub(super) fn name_damage(
    repo: &Repository,
    s: &Spilled,
    parts: &[(usize, Range<usize>)],
    idx: &Index,
    packs: &Packs,
    found: &Found,
    rep: &mut VerifyReport,
) {
    let name = &s.head.name;
    let again = |e: super::error::RepoError| {
        format!("image {name}: its manifest could not be read again: {e}")
    };
    for (i, r) in parts {
        let (Some(a), Some(list)) = (s.head.areas.get(*i), AreaChunks::part_of(s, *i, r.clone()))
        else {
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
            if let Some(what) = found.damage(repo, idx, packs, &id) {
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
