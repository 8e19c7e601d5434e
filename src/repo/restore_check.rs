//! The restore's check before the first write: every record the placed areas need is
//! read (and with `deep_precheck` decoded and its chunks hashed), so a damaged or
//! missing chunk refuses the restore while the target is untouched.
//!
//! What it holds per chunk matters: a 1 TB image at 256 KiB chunks has 4 million. The
//! index names the distinct ids by their number in the chunk list (index_wanted), each
//! record's needs refer to them by position in its sorted order (4 bytes: where each
//! lies in its record is the index's), and where a damaged chunk is first used in the
//! image is found only for the damaged ones, by one more pass over the chunk lists (a
//! map of every chunk's first use was about 90 bytes per chunk, held for the whole
//! check).

use super::bufpool::BufPool;
use super::crypto::{chunk_id, Keys};
use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::index::Index;
use super::manifest_stream::Spilled;
use super::pack::{self, RecordInfo};
use super::restore::RestoreOptions;
use super::restore_cache::CheckedRecords;
use super::restore_chunks::{AreaChunks, SpilledIds};
use super::restore_runs::{record_end, record_in, runs};
use super::storage::ObjectReader;
use super::Repository;
use crate::progress::{Progress, ProgressEvent};
use rayon::prelude::*;
use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// Records checked at once from a remote store before a restore writes.
const REMOTE_CHECKS: usize = 8;

/// The chunks an image needs from one record: their positions in the sorted ids.
type Needed = Vec<u32>;

/// A record to check: its pack (a number in the list of open packs), where it is, and
/// what the image needs from it.
type Job = (usize, RecordInfo, Needed);

/// A problem found by the check: about a chunk (its position in the sorted ids, and
/// what follows its name), or about the repository.
enum Problem {
    Chunk(u32, String),
    Other(String),
}

/// Some chunks of some areas of a spilled manifest: `(area, chunks)`, the area's
/// number in the manifest and the chunks' positions in it.
pub(super) type Parts = [(usize, Range<usize>)];

/// Where each chunk of `parts` lives, each named by its number among the parts'
/// chunks (`Index::number`), for the write phase of a pass checked earlier
/// (restore_passes). A chunk the index no longer has refuses the restore: the check
/// found it, and the restore's read lock keeps prune away, so the repository was
/// changed by hand.
pub(super) fn locate(repo: &Repository, s: &Arc<Spilled>, parts: &Parts) -> Result<Index> {
    let (ids, mut idx) = SpilledIds::index(repo, s, parts)?;
    let gone: Vec<String> = (0..idx.wanted_len())
        .filter(|&k| idx.locate_at(k).is_none())
        .map(|k| match idx.wanted_id(k) {
            Some(id) => format!("chunk {id} is no longer in the index (it was when checked)"),
            None => format!("chunk number {k} is no longer in the index"),
        })
        .collect();
    if !gone.is_empty() {
        return Err(RepoError::RestoreRefused {
            image: s.head.name.clone(),
            problems: gone,
        });
    }
    idx.number(ids.as_ref());
    ids.check()?;
    Ok(idx)
}

/// Checks every chunk of `parts` of `s`; returns the index that says where each lives,
/// each named by its number among the parts' chunks (`Index::number`). With
/// `announce` (the bytes the job moves after the check) it reports the job's start:
/// a restore in passes reports it once, itself. A refusal is the caller's to report
/// as the job's end.
pub(super) fn precheck(
    repo: &Repository,
    s: &Arc<Spilled>,
    parts: &Parts,
    opts: &RestoreOptions,
    announce: Option<u64>,
    checked: &CheckedRecords,
    progress: &dyn Progress,
) -> Result<Index> {
    let m = &s.head;
    let (ids, mut idx) = SpilledIds::index(repo, s, parts)?;
    let mut problems: Vec<Problem> = Vec::new();
    // Each record once, with the chunks the image needs from it.
    let mut by_pack: HashMap<PackId, HashMap<u64, (RecordInfo, Needed)>> = HashMap::new();
    for k in 0..idx.wanted_len() as u32 {
        match idx.locate_at(k as usize) {
            Some(l) => {
                let rec = by_pack
                    .entry(l.pack)
                    .or_default()
                    .entry(l.record.offset)
                    .or_insert((l.record, Vec::new()));
                rec.1.push(k);
            }
            None => problems.push(Problem::Chunk(k, " is not in the index".into())),
        }
    }
    if !problems.is_empty() {
        for p in &idx.problems {
            problems.push(Problem::Other(format!("index damage: {p}")));
        }
    }
    let check_bytes: u64 = by_pack
        .values()
        .flat_map(|recs| recs.values())
        .map(|(r, _)| u64::from(r.stored_len))
        .sum();
    if let Some(later_bytes) = announce {
        progress.report(ProgressEvent::JobStart {
            job: format!("restore {}", m.name),
            total_bytes: check_bytes.saturating_add(later_bytes),
        });
    }
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
    let mut jobs: Vec<Job> = Vec::new();
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
                for k in recs.values().flat_map(|(_, n)| n) {
                    let what = format!(": pack {}: {e}", path.display());
                    problems.push(Problem::Chunk(*k, what));
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
    // Neighbouring records are read with one request (restore_runs): on a remote store
    // the requests' cost; on a local disk a read each, nothing to lose.
    let runs = runs(jobs.iter().map(|(i, r, _)| (*i, r)), max_stored);
    // A record's checks once its stored bytes are read: the deep check if asked, and
    // the problem to report (named by the record's first needed chunk).
    let judge = |r: &RecordInfo, needed: &Needed, read: Result<()>, stored: &[u8]| {
        let result = read
            .map_err(|e| e.to_string())
            .and_then(|()| match opts.deep_precheck {
                true => deep_check(r, stored, needed, &idx, repo.keys()),
                false => Ok(()),
            });
        progress.report(ProgressEvent::Advance {
            bytes: u64::from(r.stored_len),
        });
        let k = needed.first()?;
        result.err().map(|e| Problem::Chunk(*k, format!(": {e}")))
    };
    let alone = |buf: &mut Vec<u8>, (i, r, needed): &Job| {
        let (pid, path, f) = open.get(*i)?;
        let read = pack::read_record_into(f.as_ref(), path, r, max_stored, buf);
        let ok = read.is_ok();
        let problem = judge(r, needed, read, buf);
        if ok && problem.is_none() {
            // Kept for the write phase when the budget allows.
            checked.offer(*pid, r.offset, buf);
        }
        problem
    };
    // Each record on its own: a failure is then named for the record it hit, with its
    // own retries.
    let each = |run: &[Job]| -> Vec<Problem> {
        run.iter()
            .filter_map(|j| alone(&mut Vec::new(), j))
            .collect()
    };
    // The runs' buffers, reused and not zeroed: a fresh buffer per run cost a page
    // fault and a clear per 4 KiB read (a kept record is copied out, restore_cache).
    // Two are kept idle, not one per check thread: each is up to 8 MiB, held until the
    // check ends, when every kept record is held too (the restore's peak).
    let run_bufs = BufPool::new(2);
    let together = |run: &[Job]| -> Vec<Problem> {
        let (Some((i, first, _)), Some((_, last, _))) = (run.first(), run.last()) else {
            return Vec::new();
        };
        let (Some((pid, path, f)), Some(end)) = (open.get(*i), record_end(last)) else {
            return each(run);
        };
        // Within RUN_BYTES (restore_runs), so the length fits.
        let len = end.saturating_sub(first.offset) as usize;
        let mut whole = run_bufs.take_dirty(len);
        let Some(buf) = whole.get_mut(..len) else {
            return each(run);
        };
        if f.read_exact_at(buf, first.offset).is_err() {
            run_bufs.give(whole);
            return each(run);
        }
        let buf = &*buf;
        let mut problems = Vec::new();
        for (_, r, needed) in run {
            let (read, stored) = match record_in(path, buf, first.offset, r) {
                Ok(stored) => (Ok(()), stored),
                Err(e) => (Err(e), &[][..]),
            };
            let ok = read.is_ok();
            match judge(r, needed, read, stored) {
                Some(p) => problems.push(p),
                None if ok => {
                    checked.offer(*pid, r.offset, stored);
                }
                None => {}
            }
        }
        run_bufs.give(whole);
        problems
    };
    let check_all = || -> Vec<Problem> {
        runs.par_iter()
            .map_init(Vec::new, |buf, run| match jobs.get(run.clone()) {
                Some([one]) => alone(buf, one).into_iter().collect(),
                Some(run) => together(run),
                None => Vec::new(),
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
        return Err(RepoError::RestoreRefused {
            image: m.name.clone(),
            problems: name_problems(s, parts, &idx, problems)?,
        });
    }
    // The write phase finds chunks by number, not by id.
    idx.number(ids.as_ref());
    ids.check()?;
    Ok(idx)
}

/// The problems in words, each damaged chunk named with where the image first uses
/// it: one pass over the parts for all of them. (A restore in passes stops after the
/// first pass that finds damage, so a chunk's first use in it is its first in the
/// image.)
fn name_problems(
    s: &Spilled,
    parts: &Parts,
    idx: &Index,
    problems: Vec<Problem>,
) -> Result<Vec<String>> {
    let mut first_use: HashMap<ChunkId, Option<String>> = problems
        .iter()
        .filter_map(|p| match p {
            Problem::Chunk(k, _) => idx.wanted_id(*k as usize).map(|id| (id, None)),
            Problem::Other(_) => None,
        })
        .collect();
    for (i, r) in parts {
        let (Some(a), Some(chunks)) = (s.head.areas.get(*i), AreaChunks::part_of(s, *i, r.clone()))
        else {
            continue;
        };
        for c in chunks.iter() {
            let c = c?;
            let Some(slot) = c.id.and_then(|id| first_use.get_mut(&id)) else {
                continue;
            };
            if slot.is_none() {
                let end = c.offset.saturating_add(u64::from(c.len));
                let dev = a.offset.saturating_add(c.offset);
                let at = format!(
                    "area {} bytes [{}, {end}) (device offset {dev})",
                    a.name, c.offset
                );
                *slot = Some(at);
            }
        }
    }
    Ok(problems
        .into_iter()
        .map(|p| match p {
            Problem::Other(s) => s,
            Problem::Chunk(k, what) => {
                let id = idx.wanted_id(k as usize);
                let at = id
                    .and_then(|id| first_use.get(&id))
                    .and_then(|s| s.as_deref());
                let id = id.map_or_else(String::new, |id| id.to_string());
                format!("chunk {id} ({}){what}", at.unwrap_or(""))
            }
        })
        .collect())
}

/// Decompresses a record and checks every chunk the image needs from it.
fn deep_check(
    r: &RecordInfo,
    stored: &[u8],
    needed: &[u32],
    idx: &Index,
    keys: Option<&Keys>,
) -> std::result::Result<(), String> {
    let raw = pack::decode_record(r, stored, keys).map_err(|e| e.to_string())?;
    for &k in needed {
        let (start, len) = idx
            .locate_at(k as usize)
            .map_or((0, 0), |l| (l.start, l.len));
        let (s, e) = (start as usize, start as usize + len as usize);
        let id = idx.wanted_id(k as usize);
        let ok = match (raw.get(s..e), id) {
            (Some(b), Some(id)) => chunk_id(keys, b) == id,
            _ => false,
        };
        if !ok {
            let id = id.map_or_else(String::new, |id| id.to_string());
            return Err(format!(
                "bytes {s}..{e} of record {} are not chunk {id}",
                r.id
            ));
        }
    }
    Ok(())
}
