//! Garbage collection in two phases, safe beside running backups (the protocol is in
//! docs/FORMAT.md, "Concurrent writers and prune"; the marks in prune_mark.rs).
//!
//! 1. Sweep: each earlier mark whose backups have all ended (their locks gone or
//!    stale) is settled. Its packs are deleted (index file first) unless a manifest
//!    written since needs a chunk that only they hold; then the mark goes.
//! 2. Mark: packs whose chunks no image uses, packs without an index file (a killed
//!    backup's, or a live backup's that is about to be indexed), and packs that are
//!    mostly unused (under half their bytes referenced: their live records are first
//!    copied to new packs, a frame copied whole while any of its chunks lives) are
//!    listed in a new mark with the backups alive now. With none alive, the mark is
//!    swept at once, so on a repository nobody else writes prune frees everything in
//!    one run, as before.
//!
//! A crash at any point loses nothing an image needs: copies are durable and indexed
//! before a mark names the old pack, and a pack's index file goes before the pack.
//! Prune refuses to run while any manifest or index file is unreadable, because then
//! it cannot know what is in use.

use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::id_set::UsedIds;
use super::index;
use super::lock::{self, Job, Lock};
use super::pack::{self, PackWriter, Record};
use super::prune_mark::{self, Pending};
use super::prune_uploads::{self, UploadsReport};
use super::prune_use::{self, PackUse};
use super::verify::list_packs;
use super::Repository;
use crate::progress::{Progress, ProgressEvent};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub images: usize,
    /// Packs swept (deleted) in this run.
    pub packs_deleted: usize,
    pub packs_rewritten: usize,
    pub chunks_removed: usize,
    pub bytes_freed: u64,
    pub temp_files_removed: usize,
    /// Packs this run marked for deletion.
    pub packs_marked: usize,
    /// Packs still marked, waiting for the backups below to end.
    pub packs_waiting: usize,
    /// Writer locks (running backups) that marks still wait for.
    pub waiting_for: Vec<String>,
    /// Marked packs a later manifest needed, kept (their mark dropped).
    pub packs_kept: usize,
    /// Unfinished multipart uploads (S3; `None` elsewhere, or when they could not be
    /// listed: then a warning says so).
    pub uploads: Option<UploadsReport>,
    /// Mark objects that could not be read (removed; their packs are marked again),
    /// and what failed about unfinished uploads.
    pub warnings: Vec<String>,
}

/// Chunks a record holds (a frame's dead chunks go when the whole frame does).
fn chunk_count(e: &pack::Entry) -> usize {
    e.chunks.len().max(1)
}

/// The chunk ids a record holds.
fn record_chunks(e: &pack::Entry) -> Vec<ChunkId> {
    match e.record.is_frame() {
        true => e.chunks.iter().map(|m| m.id).collect(),
        false => vec![e.record.id],
    }
}

pub(super) fn is_live(e: &pack::Entry, used: &UsedIds) -> bool {
    record_chunks(e).iter().any(|id| used.may_use(id))
}

pub(super) fn stored_bytes(e: &pack::Entry) -> u64 {
    u64::from(e.record.stored_len) + e.record.header_len()
}

/// Every chunk id some image references, read now (each manifest as a stream).
fn used_chunks(repo: &Repository) -> Result<(usize, UsedIds)> {
    let names = repo.image_names()?;
    Ok((names.len(), UsedIds::of_images(repo, &names)?))
}

/// What the repository holds right now: packs (id → name, size) and index file names.
struct Listing {
    packs: HashMap<PackId, (String, u64)>,
    indexed: HashSet<String>,
}

fn listing(repo: &Repository) -> Result<Listing> {
    Ok(Listing {
        packs: list_packs(repo)?
            .into_iter()
            .map(|(id, name, size)| (id, (name, size)))
            .collect(),
        indexed: repo
            .store()
            .list("index/")
            .map_err(RepoError::io(repo.loc("index")))?
            .into_iter()
            .map(|(n, _)| n)
            .collect(),
    })
}

fn delete(repo: &Repository, name: &str) -> Result<()> {
    repo.store()
        .delete(name)
        .map_err(RepoError::io(repo.loc(name)))
}

pub fn prune(repo: &Repository, progress: &dyn Progress) -> Result<PruneReport> {
    let _lock = Lock::acquire(repo, Job::Prune)?;
    let mut rep = PruneReport::default();
    progress.report(ProgressEvent::JobStart {
        job: "prune".into(),
        total_bytes: 0,
    });

    // Phase 1: settle the marks whose backups have all ended. Their writers are
    // checked before the manifests are read, so every manifest they wrote is seen.
    let (marks, unreadable) = prune_mark::load_all(repo)?;
    for (name, why) in unreadable {
        let w = format!(
            "{}: unreadable prune mark removed ({why}); its packs are marked again",
            repo.loc(&name).display()
        );
        progress.report(ProgressEvent::Warning { message: w.clone() });
        rep.warnings.push(w);
        prune_mark::remove(repo, &name)?;
    }
    let mut ready: Vec<Pending> = Vec::new();
    let mut waiting: Vec<Pending> = Vec::new();
    for mut m in marks {
        let alive = prune_mark::waiting_on(repo, &mut m)?;
        if alive.is_empty() {
            ready.push(m);
        } else {
            rep.waiting_for.extend(alive);
            waiting.push(m);
        }
    }
    let (images, used) = used_chunks(repo)?;
    rep.images = images;
    // Every index file read now, in parallel: an unreadable one stops prune before it
    // deletes anything, and what each says decides the marking below.
    let uses = prune_use::pack_uses(repo, &used)?;
    // Temp files are leftovers of killed jobs only when no backup runs: a live one's
    // pack being written is one too.
    let live = lock::live_writers(repo.store(), true)?;
    if live.is_empty() {
        rep.temp_files_removed = repo
            .store()
            .clear_partial()
            .map_err(RepoError::io(repo.loc("tmp")))?;
    }
    let mut now = listing(repo)?;
    sweep(repo, &ready, &used, &mut now, &mut rep)?;

    // Phase 2: mark what is garbage now.
    let pending: HashSet<PackId> = waiting
        .iter()
        .flat_map(|m| m.mark.packs.iter().copied())
        .collect();
    rep.packs_waiting = pending.len();
    let candidates = mark_candidates(repo, &used, &uses, &now, &pending, &mut rep)?;
    if !candidates.is_empty() {
        rep.packs_marked = candidates.len();
        let m = prune_mark::write(repo, candidates)?;
        match m.mark.writers.as_deref() {
            Some([]) => {
                // Nobody was writing when the mark was listed, and any backup since
                // has read it; manifests written before that are read again here.
                let (_, used) = used_chunks(repo)?;
                let mut now = listing(repo)?;
                sweep(repo, &[m], &used, &mut now, &mut rep)?;
            }
            ws => {
                rep.packs_waiting += m.mark.packs.len();
                rep.waiting_for
                    .extend(ws.unwrap_or_default().iter().cloned());
            }
        }
    }
    rep.waiting_for.sort();
    rep.waiting_for.dedup();
    prune_uploads::abort_abandoned(repo, progress, &mut rep);
    progress.report(ProgressEvent::JobEnd { ok: true });
    Ok(rep)
}

/// Deletes the packs of `marks` that no image needs any more, then the marks.
fn sweep(
    repo: &Repository,
    marks: &[Pending],
    used: &UsedIds,
    now: &mut Listing,
    rep: &mut PruneReport,
) -> Result<()> {
    let swept: HashSet<PackId> = marks
        .iter()
        .flat_map(|m| m.mark.packs.iter().copied())
        .collect();
    // Chunks held by packs not being swept, built only if a swept pack holds a
    // chunk some image uses (a rewritten pack, or one a backup came to need).
    let mut elsewhere: Option<HashSet<ChunkId>> = None;
    for m in marks {
        for pid in &m.mark.packs {
            let Some((name, size)) = now.packs.get(pid).cloned() else {
                continue; // gone already (an earlier prune interrupted after deleting)
            };
            let iname = index::index_name(pid);
            let has_index = now.indexed.contains(&iname);
            let entries = match has_index {
                true => index::read(repo, &iname)?.entries,
                false => Vec::new(),
            };
            let needed: Vec<ChunkId> = entries
                .iter()
                .flat_map(record_chunks)
                .filter(|id| used.may_use(id))
                .collect();
            if !needed.is_empty() {
                let have = match &elsewhere {
                    Some(s) => s,
                    None => elsewhere.insert(chunks_outside(repo, now, &swept)?),
                };
                if !needed.iter().all(|id| have.contains(id)) {
                    rep.packs_kept += 1;
                    continue;
                }
            }
            // Index first: a pack without index is marked and swept by a later prune.
            if has_index {
                delete(repo, &iname)?;
                now.indexed.remove(&iname);
            }
            delete(repo, &name)?;
            now.packs.remove(pid);
            rep.packs_deleted += 1;
            let live: Vec<&pack::Entry> = entries.iter().filter(|e| is_live(e, used)).collect();
            rep.chunks_removed += entries.iter().map(chunk_count).sum::<usize>()
                - live.iter().map(|e| chunk_count(e)).sum::<usize>();
            let live_bytes: u64 = live.iter().map(|e| stored_bytes(e)).sum();
            rep.bytes_freed += size.saturating_sub(live_bytes);
        }
        prune_mark::remove(repo, &m.name)?;
    }
    Ok(())
}

/// Every chunk indexed in a present pack outside `skip`.
fn chunks_outside(
    repo: &Repository,
    now: &Listing,
    skip: &HashSet<PackId>,
) -> Result<HashSet<ChunkId>> {
    let mut out = HashSet::new();
    for pid in now.packs.keys().filter(|p| !skip.contains(p)) {
        let iname = index::index_name(pid);
        if now.indexed.contains(&iname) {
            for e in index::read(repo, &iname)?.entries {
                out.extend(record_chunks(&e));
            }
        }
    }
    Ok(out)
}

/// Packs to mark: unindexed, unused, and mostly unused ones (rewritten first).
fn mark_candidates(
    repo: &Repository,
    used: &UsedIds,
    uses: &HashMap<String, PackUse>,
    now: &Listing,
    pending: &HashSet<PackId>,
    rep: &mut PruneReport,
) -> Result<Vec<PackId>> {
    let mut packs: Vec<(&PackId, &(String, u64))> = now.packs.iter().collect();
    packs.sort();
    let mut out = Vec::new();
    let mut writer: Option<PackWriter> = None;
    for (pid, (name, size)) in packs {
        if pending.contains(pid) {
            continue;
        }
        let iname = index::index_name(pid);
        if !now.indexed.contains(&iname) {
            out.push(*pid);
            continue;
        }
        // A pack indexed since the first pass (a backup running beside us) is read now.
        let u = match uses.get(&iname) {
            Some(u) => *u,
            None => prune_use::of_entries(&index::read(repo, &iname)?.entries, used),
        };
        if u.live_records == 0 {
            out.push(*pid);
            continue;
        }
        if u.live_bytes.saturating_mul(2) >= *size {
            continue;
        }
        // Mostly unused: its live records are copied, so its entries are read again.
        let entries = index::read(repo, &iname)?.entries;
        let live: Vec<&pack::Entry> = entries.iter().filter(|e| is_live(e, used)).collect();
        copy_live(repo, name, &live, &mut writer)?;
        rep.packs_rewritten += 1;
        out.push(*pid);
    }
    if let Some(w) = writer.take() {
        let (id, _, recs) = w.finish(repo.store())?;
        index::write(repo, &id, recs)?;
    }
    // Only now are the copies durable and indexed: the old packs may be marked.
    Ok(out)
}

/// Copies the live records of pack `name` into `writer`'s pack (checked first).
fn copy_live(
    repo: &Repository,
    name: &str,
    live: &[&pack::Entry],
    writer: &mut Option<PackWriter>,
) -> Result<()> {
    let path = repo.loc(name);
    let f = repo.store().open(name).map_err(RepoError::io(&path))?;
    for e in live {
        let r = &e.record;
        let max = repo.config().chunk_size.saturating_mul(2);
        let data = pack::read_record(f.as_ref(), &path, r, max)?;
        pack::decode_record(r, &data, repo.keys())
            .and_then(|raw| match r.is_frame() {
                true => pack::check_members(r, &e.chunks, &raw, repo.keys()),
                false => Ok(()),
            })
            .map_err(|err| RepoError::CorruptPack {
                path: path.clone(),
                offset: r.offset,
                what: err.to_string(),
            })?;
        let w = match writer.as_mut() {
            Some(w) => w,
            None => writer.insert(PackWriter::create(repo.store())?),
        };
        w.add(&Record {
            id: r.id,
            raw_len: r.raw_len,
            compression: r.compression,
            data,
            members: e.chunks.clone(),
        })?;
        if w.full(repo.config().pack_size) {
            if let Some(w) = writer.take() {
                let (id, _, recs) = w.finish(repo.store())?;
                index::write(repo, &id, recs)?;
            }
        }
    }
    Ok(())
}
