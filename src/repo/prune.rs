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

fn file_len(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

pub fn prune(repo: &Repository, progress: &dyn Progress) -> Result<PruneReport> {
    let _lock = Lock::acquire(repo.path(), Job::Prune)?;
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
    let tmp = repo.tmp_dir();
    if let Ok(rd) = std::fs::read_dir(&tmp) {
        for e in rd.filter_map(|e| e.ok()) {
            if std::fs::remove_file(e.path()).is_ok() {
                rep.temp_files_removed += 1;
            }
        }
    }
    let packs = list_packs(&repo.packs_dir())?;
    progress.report(ProgressEvent::JobStart {
        job: "prune".into(),
        total_bytes: packs.len() as u64,
    });
    let mut writer: Option<PackWriter> = None;
    let mut retire: Vec<std::path::PathBuf> = Vec::new();
    for (pid, path) in packs {
        progress.report(ProgressEvent::Advance { bytes: 1 });
        let ipath = index::index_path(&repo.index_dir(), &pid);
        let entries = if ipath.exists() {
            index::read(&ipath, repo.keys())?.entries
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
        let size = file_len(&path);
        if live.is_empty() {
            // Index first: a pack without index is an orphan the next prune removes.
            if ipath.exists() {
                std::fs::remove_file(&ipath).map_err(RepoError::io(&ipath))?;
            }
            std::fs::remove_file(&path).map_err(RepoError::io(&path))?;
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
        let f = std::fs::File::open(&path).map_err(RepoError::io(&path))?;
        for e in &live {
            let r = &e.record;
            let data = pack::read_record(&f, &path, r, repo.config().chunk_size.saturating_mul(2))?;
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
                None => writer.insert(PackWriter::create(&repo.tmp_dir())?),
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
                    let (id, _, recs) = w.finish(&repo.packs_dir())?;
                    index::write(&repo.index_dir(), &repo.tmp_dir(), &id, recs, repo.keys())?;
                }
            }
        }
        rep.packs_rewritten += 1;
        rep.chunks_removed += entries.iter().map(chunk_count).sum::<usize>()
            - live.iter().map(|e| chunk_count(e)).sum::<usize>();
        rep.bytes_freed += size.saturating_sub(live_bytes);
        retire.push(ipath);
        retire.push(path);
    }
    if let Some(w) = writer.take() {
        let (id, _, recs) = w.finish(&repo.packs_dir())?;
        index::write(&repo.index_dir(), &repo.tmp_dir(), &id, recs, repo.keys())?;
    }
    // Only now are the rewritten chunks durable elsewhere.
    for p in retire {
        std::fs::remove_file(&p).map_err(RepoError::io(&p))?;
    }
    progress.report(ProgressEvent::JobEnd { ok: true });
    Ok(rep)
}
