//! Restore: check everything the image needs, then write, then read back.
//!
//! The check runs before the first write: every chunk must be in the index and its
//! pack record must match the index and its CRC (cheap: one read of the stored bytes,
//! no decompression), or with `deep_precheck` be decompressed and hashed too. So a
//! damaged repository is refused while the target is still untouched. While writing,
//! every chunk is decompressed and its blake3 checked again; afterwards the target is
//! read back and hashed (`verify_after`).

use super::crypto::{chunk_id, Keys};
use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::lock::ReadLock;
use super::manifest::{AreaManifest, ChunkRef, Manifest};
use super::pack::{self, RecordInfo};
use super::restore_cache::CheckedRecords;
use super::storage::{ObjectReader, Storage};
use super::Repository;
use crate::device::BlockDevice;
use crate::progress::{Progress, ProgressEvent};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Maps an area of the image to the byte offset where it goes on the target, or
/// `None` to leave it out. Restoring "as it was" is `|a| Some(a.offset)`.
pub type AreaMapping<'a> = &'a (dyn Fn(&AreaManifest) -> Option<u64> + Sync);

#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Read the target back and compare hashes (default on).
    pub verify_after: bool,
    /// The target is known to read as zeros (a fresh sparse file, a discarded SSD):
    /// zero chunks need not be written.
    pub target_is_zeroed: bool,
    /// Decompress and hash every chunk before writing, not only CRC-check it.
    pub deep_precheck: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            verify_after: true,
            target_is_zeroed: false,
            deep_precheck: false,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct RestoreReport {
    pub image: String,
    pub areas: Vec<String>,
    pub bytes_written: u64,
    pub zero_bytes_skipped: u64,
    pub bytes_verified: u64,
}

/// Bytes read back per batch and hashed in parallel: 16 chunks of version 1's 8 MiB, or
/// up to 512 of version 2's small ones (a batch of 16 of those was 1 MiB a read).
const BATCH_BYTES: u64 = 128 << 20;
const BATCH_CHUNKS: usize = 512;

pub(super) struct Packs {
    store: Arc<dyn Storage>,
    open: HashMap<PackId, (PathBuf, Arc<dyn ObjectReader>)>,
    /// Records the check kept for the write phase (remote stores).
    pub(super) checked: Arc<CheckedRecords>,
}

/// Records fetched at once from a remote store during a restore (each a round trip).
const REMOTE_READ_AHEAD: usize = 8;
/// Records checked at once from a remote store before a restore writes.
const REMOTE_CHECKS: usize = 8;

impl Packs {
    /// How many records the restore reads at once: one on a local disk (reads come
    /// from the page cache or a disk that prefers them in order).
    pub(super) fn read_ahead(&self) -> usize {
        match self.store.is_local() {
            true => 1,
            false => REMOTE_READ_AHEAD,
        }
    }

    pub(super) fn get(
        &mut self,
        id: &PackId,
    ) -> std::io::Result<&(PathBuf, Arc<dyn ObjectReader>)> {
        if !self.open.contains_key(id) {
            let name = pack::pack_name(id);
            let f = self.store.open(&name)?;
            self.open.insert(*id, (self.store.location(&name), f));
        }
        self.open
            .get(id)
            .ok_or_else(|| std::io::Error::other("pack vanished"))
    }
}

/// Restores image `image` onto `target`, placing each area where `mapping` says.
pub fn restore(
    repo: &Repository,
    image: &str,
    target: &dyn BlockDevice,
    mapping: AreaMapping<'_>,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<RestoreReport> {
    let _reading = ReadLock::acquire(repo, "restore")?;
    let m = repo.load_manifest(image)?;
    let placed: Vec<(&AreaManifest, u64)> = m
        .areas
        .iter()
        .filter_map(|a| mapping(a).map(|t| (a, t)))
        .collect();
    for (a, t) in &placed {
        match t.checked_add(a.len) {
            Some(end) if end <= target.size() => {}
            end => {
                return Err(RepoError::TargetTooSmall {
                    target: target.describe(),
                    area: a.name.clone(),
                    offset: *t,
                    end: end.unwrap_or(u64::MAX),
                    size: target.size(),
                })
            }
        }
    }
    let total: u64 = placed
        .iter()
        .flat_map(|(a, _)| a.chunks.iter())
        .map(|c| u64::from(c.len))
        .sum();
    // The job moves: stored bytes checked, bytes written, bytes read back.
    let after = if opts.verify_after {
        total.saturating_mul(2)
    } else {
        total
    };
    let checked = Arc::new(CheckedRecords::new(CheckedRecords::budget(
        repo.store().is_local(),
    )));
    let locs = precheck(repo, &m, &placed, opts, after, &checked, progress)?;
    let mut packs = Packs {
        store: repo.store_arc(),
        open: HashMap::new(),
        checked,
    };
    let mut report = RestoreReport {
        image: image.to_string(),
        areas: placed.iter().map(|(a, _)| a.name.clone()).collect(),
        ..Default::default()
    };
    super::restore_write::write_areas(
        &m,
        &placed,
        &locs,
        &mut packs,
        target,
        opts.target_is_zeroed,
        progress,
        &mut report,
        repo.keys(),
    )?;
    target.flush()?;
    if opts.verify_after {
        report.bytes_verified = read_back(
            &m,
            &placed,
            target,
            opts.target_is_zeroed,
            progress,
            repo.keys(),
        )?;
    }
    progress.report(ProgressEvent::JobEnd { ok: true });
    Ok(report)
}

pub(super) fn bad(m: &Manifest, a: &AreaManifest, c: &ChunkRef, what: &str) -> RepoError {
    RepoError::BadChunk {
        image: m.name.clone(),
        area: a.name.clone(),
        id: c.id.map_or_else(|| "zero".into(), |i| i.to_hex()),
        offset: c.offset,
        len: u64::from(c.len),
        what: what.to_string(),
    }
}

/// The chunks an image needs from one record: (id, start, length).
type Needed = Vec<(ChunkId, u32, u32)>;

/// Checks every chunk the placed areas need; returns the index that says where each lives.
fn precheck(
    repo: &Repository,
    m: &Manifest,
    placed: &[(&AreaManifest, u64)],
    opts: &RestoreOptions,
    later_bytes: u64,
    checked: &CheckedRecords,
    progress: &dyn Progress,
) -> Result<super::index::Index> {
    let idx = repo.load_index()?;
    let mut problems: Vec<String> = Vec::new();
    // First use of each chunk, to name the damage.
    // (area, chunk) indexes, not references: a 2 TB disk has millions of chunks.
    let mut first_use: HashMap<ChunkId, (u32, u32)> = HashMap::new();
    for (ai, (a, _)) in placed.iter().enumerate() {
        for (ci, c) in a.chunks.iter().enumerate() {
            if let Some(id) = c.id {
                first_use.entry(id).or_insert((ai as u32, ci as u32));
            }
        }
    }
    let chunk_at = |&(ai, ci): &(u32, u32)| {
        let a = placed.get(ai as usize)?.0;
        Some((a, a.chunks.get(ci as usize)?))
    };
    let describe = |id: &ChunkId| {
        first_use
            .get(id)
            .and_then(chunk_at)
            .map_or_else(String::new, |(a, c)| {
                format!(
                    "area {} bytes [{}, {}) (device offset {})",
                    a.name,
                    c.offset,
                    c.offset + u64::from(c.len),
                    a.offset + c.offset
                )
            })
    };
    // Each record once, with the chunks the image needs from it.
    let mut by_pack: HashMap<PackId, HashMap<u64, (RecordInfo, Needed)>> = HashMap::new();
    let mut ids: Vec<&ChunkId> = first_use.keys().collect();
    ids.sort();
    for id in ids {
        match idx.locate(id) {
            Some(l) => {
                let rec = by_pack
                    .entry(l.pack)
                    .or_default()
                    .entry(l.record.offset)
                    .or_insert((l.record, Vec::new()));
                rec.1.push((*id, l.start, l.len));
            }
            None => problems.push(format!("chunk {id} ({}) is not in the index", describe(id))),
        }
    }
    if !problems.is_empty() {
        for p in &idx.problems {
            problems.push(format!("index damage: {p}"));
        }
    }
    let check_bytes: u64 = by_pack
        .values()
        .flat_map(|recs| recs.values())
        .map(|(r, _)| u64::from(r.stored_len))
        .sum();
    progress.report(ProgressEvent::JobStart {
        job: format!("restore {}", m.name),
        total_bytes: check_bytes.saturating_add(later_bytes),
    });
    progress.report(ProgressEvent::PhaseStart {
        name: "check".into(),
        total_bytes: check_bytes,
    });
    let mut packs: Vec<_> = by_pack.into_iter().collect();
    packs.sort_by_key(|(p, _)| *p);
    // Every pack is opened first (a missing one names each chunk it held); then the
    // records are checked on every core, each thread reusing one buffer: on one core
    // with a buffer per record, CRC-checking 0.47 GB took 0.5 s of a 4 s restore.
    let mut open: Vec<(PackId, PathBuf, Arc<dyn ObjectReader>)> = Vec::new();
    let mut jobs: Vec<(usize, RecordInfo, Needed)> = Vec::new();
    for (pid, recs) in packs {
        let name = pack::pack_name(&pid);
        let path = repo.loc(&name);
        match repo.store().open(&name) {
            Ok(f) => {
                let mut recs: Vec<_> = recs.into_values().collect();
                recs.sort_by_key(|(r, _)| r.offset);
                jobs.extend(recs.into_iter().map(|(r, n)| (open.len(), r, n)));
                open.push((pid, path, f));
            }
            Err(e) => {
                for (id, ..) in recs.values().flat_map(|(_, n)| n) {
                    problems.push(format!(
                        "chunk {id} ({}): pack {}: {e}",
                        describe(id),
                        path.display()
                    ));
                }
            }
        }
    }
    let max_stored = m.chunk_size.saturating_mul(2);
    // On a remote store each check is a ranged GET: waiting on the network, not the
    // CPU, so more of them run at once than there are cores.
    let remote_pool = match repo.store().is_local() {
        true => None,
        false => rayon::ThreadPoolBuilder::new()
            .num_threads(REMOTE_CHECKS)
            .build()
            .ok(),
    };
    let check_all = || -> Vec<String> {
        jobs.par_iter()
            .map_init(Vec::new, |buf, (i, r, needed)| {
                let (pid, path, f) = open.get(*i)?;
                let result = pack::read_record_into(f.as_ref(), path, r, max_stored, buf)
                    .map_err(|e| e.to_string())
                    .and_then(|()| match opts.deep_precheck {
                        true => deep_check(r, buf, needed, repo.keys()),
                        false => Ok(()),
                    });
                if result.is_ok() {
                    // Kept for the write phase when the budget allows (then this
                    // thread takes a new buffer for its next record).
                    let bytes = std::mem::take(buf);
                    if let Some(back) = checked.offer(*pid, r.offset, bytes) {
                        *buf = back;
                    }
                }
                progress.report(ProgressEvent::Advance {
                    bytes: u64::from(r.stored_len),
                });
                let (id, ..) = needed.first()?;
                result
                    .err()
                    .map(|e| format!("chunk {id} ({}): {e}", describe(id)))
            })
            .flatten()
            .collect()
    };
    let damaged = match &remote_pool {
        Some(pool) => pool.install(check_all),
        None => check_all(),
    };
    problems.extend(damaged);
    progress.report(ProgressEvent::PhaseEnd {
        name: "check".into(),
    });
    if !problems.is_empty() {
        progress.report(ProgressEvent::JobEnd { ok: false });
        return Err(RepoError::RestoreRefused {
            image: m.name.clone(),
            problems,
        });
    }
    Ok(idx)
}

/// Decompresses a record and checks every chunk the image needs from it.
fn deep_check(
    r: &RecordInfo,
    stored: &[u8],
    needed: &[(ChunkId, u32, u32)],
    keys: Option<&Keys>,
) -> std::result::Result<(), String> {
    let raw = pack::decode_record(r, stored, keys).map_err(|e| e.to_string())?;
    for (id, start, len) in needed {
        let (s, e) = (*start as usize, *start as usize + *len as usize);
        let ok = raw.get(s..e).is_some_and(|b| chunk_id(keys, b) == *id);
        if !ok {
            return Err(format!(
                "bytes {s}..{e} of record {} are not chunk {id}",
                r.id
            ));
        }
    }
    Ok(())
}

/// `chunks` cut into batches of at most `BATCH_BYTES` and `BATCH_CHUNKS` (at least one).
fn batches(chunks: &[ChunkRef]) -> impl Iterator<Item = &[ChunkRef]> + '_ {
    let mut rest = chunks;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0u64;
        let n = rest
            .iter()
            .take(BATCH_CHUNKS)
            .take_while(|c| {
                bytes += u64::from(c.len);
                bytes <= BATCH_BYTES
            })
            .count()
            .max(1);
        let (batch, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        Some(batch)
    })
}

/// Reads every restored chunk back from the target and compares its hash. With
/// `zeros_skipped` the zero chunks were not written (the target reads as zeros), so
/// there is nothing of ours to read back: on a nearly empty 2 TB ext4 they are a
/// 1 GiB journal, and reading a sparse file's holes is not free.
fn read_back(
    m: &Manifest,
    placed: &[(&AreaManifest, u64)],
    target: &dyn BlockDevice,
    zeros_skipped: bool,
    progress: &dyn Progress,
    keys: Option<&Keys>,
) -> Result<u64> {
    let mut n = 0u64;
    let mut bufs: Vec<Vec<u8>> = Vec::new();
    for (a, t) in placed {
        progress.report(ProgressEvent::PhaseStart {
            name: format!("verify {}", a.name),
            total_bytes: a.chunks.iter().map(|c| u64::from(c.len)).sum(),
        });
        let written: Vec<ChunkRef> = a
            .chunks
            .iter()
            .filter(|c| !(zeros_skipped && c.id.is_none()))
            .copied()
            .collect();
        let unwritten: u64 = a.chunks.iter().map(|c| u64::from(c.len)).sum::<u64>()
            - written.iter().map(|c| u64::from(c.len)).sum::<u64>();
        if unwritten > 0 {
            progress.report(ProgressEvent::Advance { bytes: unwritten });
        }
        for batch in batches(&written) {
            // The buffers are reused from batch to batch (see `bufpool` for why).
            bufs.resize_with(batch.len(), Vec::new);
            for (c, b) in batch.iter().zip(bufs.iter_mut()) {
                b.clear();
                b.resize(c.len as usize, 0);
                target.read_at(t + c.offset, b)?;
            }
            let ok: Vec<bool> = batch
                .par_iter()
                .zip(bufs.par_iter())
                .map(|(c, b)| match c.id {
                    Some(id) => chunk_id(keys, b) == id,
                    None => b.iter().all(|&x| x == 0),
                })
                .collect();
            for (c, good) in batch.iter().zip(ok) {
                if !good {
                    return Err(RepoError::ReadBackMismatch {
                        image: m.name.clone(),
                        area: a.name.clone(),
                        target_offset: t + c.offset,
                        len: u64::from(c.len),
                    });
                }
                n += u64::from(c.len);
                progress.report(ProgressEvent::Advance {
                    bytes: u64::from(c.len),
                });
            }
        }
        progress.report(ProgressEvent::PhaseEnd {
            name: format!("verify {}", a.name),
        });
    }
    Ok(n)
}
