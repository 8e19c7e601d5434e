//! Garbage collection. Packs whose chunks no image uses are deleted; packs that are
//! mostly unused (under half their bytes referenced) are rewritten with only the live
//! records (a frame lives while any of its chunks does, and is copied whole), and the old pack deleted after the new one and its index are durable, so a
//! crash at any point loses nothing an image needs. Prune refuses to run while any
//! manifest or index file is unreadable, because then it cannot know what is in use.

use super::error::{RepoError, Result};
use super::id::ChunkId;
use super::index;
use super::lock::{Job, Lock};
use super::pack::{self, PackWriter, Record};
use super::verify::list_packs;
use super::Repository;
use crate::progress::{Progress, ProgressEvent};
use serde::Serialize;
use std::collections::HashSet;

#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub images: usize,
    pub packs_deleted: usize,
    pub packs_rewritten: usize,
    pub chunks_removed: usize,
    pub bytes_freed: u64,
    pub temp_files_removed: usize,
}

/// Chunks a record holds (a frame's dead chunks go when the whole frame does).
fn chunk_count(e: &pack::Entry) -> usize {
    e.chunks.len().max(1)
}

pub fn prune(repo: &Repository, progress: &dyn Progress) -> Result<PruneReport> {
    let _lock = Lock::acquire(repo, Job::Prune)?;
    let mut rep = PruneReport::default();
    let mut used: HashSet<ChunkId> = HashSet::new();
    for n in repo.image_names()? {
        let m = repo.load_manifest(&n)?;
        used.extend(m.chunk_ids());
        rep.images += 1;
    }
    let idx = repo.load_index()?;
    if let Some(p) = idx.problems.into_iter().next() {
        return Err(p);
    }
    // Temp files are leftovers of killed jobs: nothing refers to them (we hold the lock).
    rep.temp_files_removed = repo
        .store()
        .clear_partial()
        .map_err(RepoError::io(repo.loc("tmp")))?;
    let packs = list_packs(repo)?;
    let indexed: HashSet<String> = repo
        .store()
        .list("index/")
        .map_err(RepoError::io(repo.loc("index")))?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    progress.report(ProgressEvent::JobStart {
        job: "prune".into(),
        total_bytes: packs.len() as u64,
    });
    let mut writer: Option<PackWriter> = None;
    let mut retire: Vec<String> = Vec::new();
    let delete = |name: &str| {
        repo.store()
            .delete(name)
            .map_err(RepoError::io(repo.loc(name)))
    };
    for (pid, name, size) in packs {
        progress.report(ProgressEvent::Advance { bytes: 1 });
        let path = repo.loc(&name);
        let iname = index::index_name(&pid);
        let has_index = indexed.contains(&iname);
        let entries = if has_index {
            index::read(repo, &iname)?.entries
        } else {
            Vec::new()
        };
        let live: Vec<_> = entries
            .iter()
            .filter(|e| match e.record.is_frame() {
                true => e.chunks.iter().any(|m| used.contains(&m.id)),
                false => used.contains(&e.record.id),
            })
            .collect();
        if live.is_empty() {
            // Index first: a pack without index is an orphan the next prune removes.
            if has_index {
                delete(&iname)?;
            }
            delete(&name)?;
            rep.packs_deleted += 1;
            rep.chunks_removed += entries.iter().map(chunk_count).sum::<usize>();
            rep.bytes_freed += size;
            continue;
        }
        let live_bytes: u64 = live
            .iter()
            .map(|e| u64::from(e.record.stored_len) + e.record.header_len())
            .sum();
        if live_bytes.saturating_mul(2) >= size {
            continue;
        }
        let f = repo.store().open(&name).map_err(RepoError::io(&path))?;
        for e in &live {
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
            if w.len() >= repo.config().pack_size {
                if let Some(w) = writer.take() {
                    let (id, _, recs) = w.finish(repo.store())?;
                    index::write(repo, &id, recs)?;
                }
            }
        }
        rep.packs_rewritten += 1;
        rep.chunks_removed += entries.iter().map(chunk_count).sum::<usize>()
            - live.iter().map(|e| chunk_count(e)).sum::<usize>();
        rep.bytes_freed += size.saturating_sub(live_bytes);
        if has_index {
            retire.push(iname);
        }
        retire.push(name);
    }
    if let Some(w) = writer.take() {
        let (id, _, recs) = w.finish(repo.store())?;
        index::write(repo, &id, recs)?;
    }
    // Only now are the rewritten chunks durable elsewhere.
    for n in retire {
        delete(&n)?;
    }
    progress.report(ProgressEvent::JobEnd { ok: true });
    Ok(rep)
}
