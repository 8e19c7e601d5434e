//! Restore: check everything the image needs, then write, then read back.
//!
//! The check runs before the first write: every chunk must be in the index and its
//! pack record must match the index and its CRC (cheap: one read of the stored bytes,
//! no decompression), or with `deep_precheck` be decompressed and hashed too. So a
//! damaged repository is refused while the target is still untouched. While writing,
//! every chunk is decompressed and its blake3 checked again; afterwards the target is
//! read back and hashed (`verify_after`).

use super::error::{RepoError, Result};
use super::id::{ChunkId, PackId};
use super::manifest::{AreaManifest, ChunkRef, Manifest};
use super::pack::{self, RecordInfo};
use super::Repository;
use crate::device::BlockDevice;
use crate::progress::{Progress, ProgressEvent};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;

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

enum Write {
    Data(Vec<u8>),
    Zeros(usize),
}

/// Queues a write; a closed queue means the writer stopped on an error, which the
/// caller gets when it joins the writer.
fn send(tx: &crossbeam_channel::Sender<(u64, Write)>, at: u64, w: Write) -> Result<()> {
    tx.send((at, w))
        .map_err(|_| RepoError::Pipeline("restore writer stopped".into()))
}

/// A record's index entry and its stored (compressed) bytes.
type Stored = (RecordInfo, Vec<u8>);

/// Chunks restored per batch: decompressed in parallel, written in order.
const BATCH: usize = 16;

struct Packs {
    dir: PathBuf,
    open: HashMap<PackId, (PathBuf, File)>,
}

impl Packs {
    fn get(&mut self, id: &PackId) -> std::io::Result<&(PathBuf, File)> {
        if !self.open.contains_key(id) {
            let p = pack::pack_path(&self.dir, id);
            let f = File::open(&p)?;
            self.open.insert(*id, (p, f));
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
    let locs = precheck(repo, &m, &placed, opts, after, progress)?;
    let mut packs = Packs {
        dir: repo.packs_dir(),
        open: HashMap::new(),
    };
    let mut report = RestoreReport {
        image: image.to_string(),
        areas: placed.iter().map(|(a, _)| a.name.clone()).collect(),
        ..Default::default()
    };
    // Writing overlaps reading and decompressing: one writer thread, a bounded queue.
    let zeros = vec![0u8; m.chunk_size as usize];
    std::thread::scope(|s| -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded::<(u64, Write)>(2 * BATCH);
        let zeros = &zeros;
        let writer = s.spawn(move || -> Result<()> {
            for (at, w) in rx {
                match w {
                    Write::Data(d) => target.write_at(at, &d)?,
                    Write::Zeros(n) => target.write_at(at, zeros.get(..n).unwrap_or(zeros))?,
                }
            }
            Ok(())
        });
        let res = (|| -> Result<()> {
            for (a, t) in &placed {
                progress.report(ProgressEvent::PhaseStart {
                    name: format!("write {}", a.name),
                    total_bytes: a.chunks.iter().map(|c| u64::from(c.len)).sum(),
                });
                for batch in a.chunks.chunks(BATCH) {
                    let mut stored: Vec<(ChunkRef, Option<Stored>)> = Vec::new();
                    for c in batch {
                        let Some(id) = c.id else {
                            stored.push((*c, None));
                            continue;
                        };
                        let info = locs
                            .get(&id)
                            .copied()
                            .ok_or_else(|| bad(&m, a, c, "not in index"))?;
                        let (path, f) = packs.get(&info.0).map_err(|e| {
                            bad(&m, a, c, &format!("cannot open pack {}: {e}", info.0))
                        })?;
                        let data =
                            pack::read_record(f, path, &info.1, m.chunk_size.saturating_mul(2))?;
                        stored.push((*c, Some((info.1, data))));
                    }
                    let decoded: Vec<std::result::Result<Option<Vec<u8>>, String>> = stored
                        .par_iter()
                        .map(|(c, s)| match s {
                            None => Ok(None),
                            Some((info, data)) => {
                                let raw = pack::decode_chunk(info, data)?;
                                if raw.len() != c.len as usize {
                                    return Err(format!(
                                        "chunk is {} bytes, image says {}",
                                        raw.len(),
                                        c.len
                                    ));
                                }
                                Ok(Some(raw))
                            }
                        })
                        .collect();
                    for ((c, _), d) in stored.iter().zip(decoded) {
                        let at = t + c.offset;
                        match d.map_err(|e| bad(&m, a, c, &e))? {
                            Some(raw) => {
                                report.bytes_written += raw.len() as u64;
                                send(&tx, at, Write::Data(raw))?;
                            }
                            None if opts.target_is_zeroed => {
                                report.zero_bytes_skipped += u64::from(c.len)
                            }
                            None => {
                                if c.len > m.chunk_size {
                                    return Err(bad(&m, a, c, "chunk longer than chunk size"));
                                }
                                report.bytes_written += u64::from(c.len);
                                send(&tx, at, Write::Zeros(c.len as usize))?;
                            }
                        }
                        progress.report(ProgressEvent::Advance {
                            bytes: u64::from(c.len),
                        });
                    }
                }
                progress.report(ProgressEvent::PhaseEnd {
                    name: format!("write {}", a.name),
                });
            }
            Ok(())
        })();
        drop(tx);
        let w = writer
            .join()
            .map_err(|_| RepoError::Pipeline("restore writer thread panicked".into()))?;
        w.and(res)
    })?;
    target.flush()?;
    if opts.verify_after {
        report.bytes_verified = read_back(&m, &placed, target, progress)?;
    }
    progress.report(ProgressEvent::JobEnd { ok: true });
    Ok(report)
}

fn bad(m: &Manifest, a: &AreaManifest, c: &ChunkRef, what: &str) -> RepoError {
    RepoError::BadChunk {
        image: m.name.clone(),
        area: a.name.clone(),
        id: c.id.map_or_else(|| "zero".into(), |i| i.to_hex()),
        offset: c.offset,
        len: u64::from(c.len),
        what: what.to_string(),
    }
}

/// Checks every chunk the placed areas need; returns where each lives.
fn precheck(
    repo: &Repository,
    m: &Manifest,
    placed: &[(&AreaManifest, u64)],
    opts: &RestoreOptions,
    later_bytes: u64,
    progress: &dyn Progress,
) -> Result<HashMap<ChunkId, (PackId, RecordInfo)>> {
    let idx = repo.load_index()?;
    let mut problems: Vec<String> = Vec::new();
    // First use of each chunk, to name the damage.
    let mut first_use: HashMap<ChunkId, (&AreaManifest, ChunkRef)> = HashMap::new();
    for (a, _) in placed {
        for c in &a.chunks {
            if let Some(id) = c.id {
                first_use.entry(id).or_insert((a, *c));
            }
        }
    }
    let describe = |id: &ChunkId| {
        first_use.get(id).map_or_else(String::new, |(a, c)| {
            format!(
                "area {} bytes [{}, {}) (device offset {})",
                a.name,
                c.offset,
                c.offset + u64::from(c.len),
                a.offset + c.offset
            )
        })
    };
    let mut by_pack: HashMap<PackId, Vec<RecordInfo>> = HashMap::new();
    let mut locs = HashMap::new();
    let mut ids: Vec<&ChunkId> = first_use.keys().collect();
    ids.sort();
    for id in ids {
        match idx.chunks.get(id) {
            Some(l) => {
                by_pack.entry(l.pack).or_default().push(l.record);
                locs.insert(*id, (l.pack, l.record));
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
        .flatten()
        .map(|r| u64::from(r.stored_len))
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
    for (pid, recs) in packs {
        let path = pack::pack_path(&repo.packs_dir(), &pid);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                for r in &recs {
                    problems.push(format!(
                        "chunk {} ({}): pack {}: {e}",
                        r.id,
                        describe(&r.id),
                        path.display()
                    ));
                }
                continue;
            }
        };
        for r in &recs {
            match pack::read_record(&f, &path, r, m.chunk_size.saturating_mul(2)) {
                Ok(data) => {
                    if opts.deep_precheck {
                        if let Err(e) = pack::decode_chunk(r, &data) {
                            problems.push(format!("chunk {} ({}): {e}", r.id, describe(&r.id)));
                        }
                    }
                }
                Err(e) => problems.push(format!("chunk {} ({}): {e}", r.id, describe(&r.id))),
            }
            progress.report(ProgressEvent::Advance {
                bytes: u64::from(r.stored_len),
            });
        }
    }
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
    Ok(locs)
}

/// Reads every restored chunk back from the target and compares its hash.
fn read_back(
    m: &Manifest,
    placed: &[(&AreaManifest, u64)],
    target: &dyn BlockDevice,
    progress: &dyn Progress,
) -> Result<u64> {
    let mut n = 0u64;
    for (a, t) in placed {
        progress.report(ProgressEvent::PhaseStart {
            name: format!("verify {}", a.name),
            total_bytes: a.chunks.iter().map(|c| u64::from(c.len)).sum(),
        });
        for batch in a.chunks.chunks(BATCH) {
            let mut bufs = Vec::with_capacity(batch.len());
            for c in batch {
                let mut b = vec![0u8; c.len as usize];
                target.read_at(t + c.offset, &mut b)?;
                bufs.push(b);
            }
            let ok: Vec<bool> = batch
                .par_iter()
                .zip(bufs.par_iter())
                .map(|(c, b)| match c.id {
                    Some(id) => ChunkId::of(b) == id,
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
