//! The backup pipeline: one reader thread → hash + compress on every core → one writer,
//! joined by bounded channels so memory stays at a few pieces whatever the disk size and
//! the cores (`bufpool::PIPELINE_BUDGET`). A piece is whole chunks, up to one frame or
//! less (`cut`, `bufpool::piece_bytes`); a worker hashes each chunk and compresses the
//! new ones together as one frame. zstd is the cost, so zero chunks are never
//! compressed (nor stored), known chunks never compressed; a frame zstd cannot shrink
//! is stored raw.
//!
//! Memory does not grow with the manifest (issue 20): each chunk's id goes to a
//! scratch file as it is hashed (list.rs) and the manifest is streamed from there
//! (manifest_out.rs); what stays per chunk is a claimed-table slot (6.7 bytes,
//! claimed.rs) and, per chunk already stored, 6 (known.rs). Chunk lengths are found
//! again from the piece (cut.rs).

use super::bufpool::{self, Pools};
use super::compress::ChunkCompressor;
use super::error::{RepoError, Result};
use super::index;
use super::lock::Lock;
use super::manifest::{check_name, AreaManifest, ImageStats, Manifest};
use super::pack::{self, PackWriter};
use super::plan::{AreaKind, BackupPlan};
use super::prune_mark;
use super::{ImageSummary, Repository};
use crate::device::{BlockDevice, Window};
use crate::progress::{Progress, ProgressEvent};
use crate::rescue::{owners, RescueOptions};
use crate::usedmap::ByteExtent;
use crossbeam_channel::bounded;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

mod checks;
mod claimed;
mod cut;
mod hash;
mod known;
pub(crate) mod list;
mod manifest_out;
mod reader;
mod reuse;

use cut::Piece;
use hash::{hash_piece, Outcome, Shared};
use list::ChunkList;
pub use reuse::Unchanged;

#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The image name (a file name: letters, digits, `-_.+`).
    pub name: String,
    /// zstd level; 3 is the default (see docs/FORMAT.md for the measurements).
    pub level: i32,
    /// Hash/compress workers; 0 means one per core.
    pub threads: usize,
    /// Total time spent re-reading failing sectors before giving them up (rescue
    /// reading: a dying disk must not keep the backup busy all night).
    pub retry_budget: Duration,
    /// Reads of a lone failing sector before it is recorded as unreadable.
    pub max_retries: u32,
    /// Where a backup to a remote repository keeps its scratch files (the chunk
    /// list, the ids already stored: 45 and 32 bytes per chunk); `None`:
    /// `$IRONCLONE_SCRATCH`, else `$TMPDIR`. A local repository uses its own `tmp/`.
    pub scratch_dir: Option<std::path::PathBuf>,
}

impl BackupOptions {
    pub fn new(name: impl Into<String>) -> Self {
        BackupOptions {
            name: name.into(),
            level: 3,
            threads: 0,
            retry_budget: Duration::from_secs(300),
            max_retries: 3,
            scratch_dir: None,
        }
    }
}

/// Backs up `plan` from `dev` into `repo` as image `opts.name`; returns its manifest
/// without the chunk lists (`Repository::load_manifest` has them: a backup does not
/// hold them, issue 20). The manifest is written last, so an interrupted backup leaves no image, only
/// finished packs whose chunks the next run reuses.
pub fn backup(
    repo: &Repository,
    dev: &dyn BlockDevice,
    plan: &BackupPlan,
    opts: &BackupOptions,
    progress: &dyn Progress,
) -> Result<Manifest> {
    backup_unchanged(repo, dev, plan, opts, None, progress)
}

/// `backup`, reading only what `unchanged` does not vouch for: the other chunks are
/// the previous image's (changed-block tracking; `reuse`). The image is complete on
/// its own like any other: it references those chunks, it does not depend on the
/// previous image staying.
pub fn backup_unchanged(
    repo: &Repository,
    dev: &dyn BlockDevice,
    plan: &BackupPlan,
    opts: &BackupOptions,
    unchanged: Option<&Unchanged>,
    progress: &dyn Progress,
) -> Result<Manifest> {
    check_name(&opts.name)?;
    let manifest = Repository::manifest_name(&opts.name);
    let lock = Lock::backup(repo, &manifest)?;
    let path = repo.loc(&manifest);
    if repo
        .store()
        .stat(&manifest)
        .map_err(RepoError::io(&path))?
        .is_some()
    {
        return Err(RepoError::ImageExists {
            image: opts.name.clone(),
            repo: repo.path().to_path_buf(),
        });
    }
    checks::plan(plan, dev)?;
    let config = upgrade(repo, progress)?;
    let chunk_size = config.chunk_size;
    // A remote store holds each pack in memory until it is put: smaller packs there
    // (a writer's choice; readers take any size) keep the backup's memory bounded.
    let upload = repo.store().pack_upload();
    let pack_size = upload
        .max_pack
        .map_or(config.pack_size, |m| m.min(config.pack_size));
    // Read after our lock is written (`lock` above): a prune marking later lists us
    // and waits for us; a pack marked before is never reused (prune_mark.rs).
    let (marked, mark_warnings) = prune_mark::marked_packs(repo)?;
    for message in mark_warnings {
        progress.report(ProgressEvent::Warning { message });
    }
    // Scratch files (the chunk list, the known ids): on the repository's disk when it
    // is local, else where the user said or $TMPDIR; unlinked at once (list.rs).
    let scratch = scratch_dir(repo, opts);
    // Only chunks whose pack is present and not marked by prune are reused; those of
    // a missing or marked pack are stored again.
    let (known, problems) = known::load(repo, &marked, &scratch)?;
    for p in &problems {
        progress.report(ProgressEvent::Warning {
            message: format!("ignoring unreadable index file: {p}"),
        });
    }
    drop(problems);
    let workers = bufpool::workers(opts.threads);
    let piece_max = bufpool::piece_bytes(workers, chunk_size);
    let sizes = (config.chunking(), chunk_size, piece_max);
    // The list grows from the cut on: reused chunks are recorded as it meets them.
    let list = ChunkList::growing(&scratch)?;
    let seen: Vec<AtomicU64> = (0..known.len().div_ceil(64))
        .map(|_| AtomicU64::new(0))
        .collect();
    let cut = match unchanged {
        Some(u) => {
            let mut m = reuse::Matcher::new(u, plan, chunk_size, &known);
            let mut rec = reuse::Recorder::new(&list, &known, &seen);
            let cut = cut::cut_reusing(plan, sizes, &mut |a, o, l| m.lookup(a, o, l), &mut |r| {
                rec.push(r)
            });
            rec.finish()?;
            if let Some(e) = m.failed {
                progress.report(ProgressEvent::Warning {
                    message: format!(
                        "reading the previous image's chunk list: {e}; the rest of that area is read from the source"
                    ),
                });
            }
            cut
        }
        None => cut::cut_reusing(plan, sizes, &mut |_, _, _| None, &mut |_| {}),
    };
    checks::chunk_count(cut.count)?;
    let pieces = &cut.pieces;
    let unchanged_bytes = cut.reused_bytes;
    let total = plan.total_bytes().saturating_sub(unchanged_bytes);
    progress.report(ProgressEvent::JobStart {
        job: format!("backup {}", opts.name),
        total_bytes: total,
    });
    // What is still to be written: the reused records are in the file already.
    list::check_room(&scratch, cut.count.saturating_sub(cut.reused))?;
    let list = list.sized(cut.count)?;
    // Every chunk in a piece may be new; reused ones are not read.
    let claimed = claimed::Claimed::with_max(cut.count.saturating_sub(cut.reused), &list);
    let abort = AtomicBool::new(false);
    let first_err: Mutex<Option<RepoError>> = Mutex::new(None);
    let fail = |e: RepoError| {
        abort.store(true, Ordering::Relaxed);
        let mut g = first_err.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none() {
            *g = Some(e);
        }
    };
    let mut stats = ImageStats {
        unchanged_bytes,
        ..ImageStats::default()
    };
    let mut unreadable: Vec<Vec<ByteExtent>> = Vec::new();

    let pools = Pools::new(workers);
    let shared = Shared {
        known: &known,
        seen: &seen,
        claimed: &claimed,
        list: &list,
        pools: &pools,
        keys: repo.keys(),
    };
    std::thread::scope(|s| {
        let (read_tx, read_rx) = bounded::<(usize, Vec<u8>)>(bufpool::queue_depth(workers));
        let (out_tx, out_rx) = bounded::<(usize, Outcome)>(bufpool::queue_depth(workers));
        let cut = &cut;
        let (abort, fail) = (&abort, &fail);
        let pools = &pools;
        let shared = &shared;
        let rescue_opts = RescueOptions {
            max_retries: opts.max_retries,
            retry_budget: opts.retry_budget,
            ..RescueOptions::default()
        };
        // The reader returns, per area, what stayed unreadable (area-relative).
        let reader = s.spawn(move || {
            let buffers = |len: usize| pools.chunks.take_dirty(len);
            reader::read_plan(
                dev,
                plan,
                pieces,
                rescue_opts,
                &buffers,
                read_tx,
                abort,
                progress,
            )
            .unwrap_or_else(|e| {
                fail(e);
                Vec::new()
            })
        });
        for _ in 0..workers {
            let rx = read_rx.clone();
            let tx = out_tx.clone();
            let level = opts.level;
            s.spawn(move || {
                let mut c = match ChunkCompressor::new(level, chunk_size) {
                    Ok(c) => c,
                    Err(e) => return fail(e),
                };
                for (seq, data) in rx {
                    let Some(piece) = pieces.get(seq) else {
                        continue;
                    };
                    let lens = cut.lens(plan, piece);
                    let out = match hash_piece(&mut c, &data, piece, &lens, shared) {
                        Ok(o) => o,
                        Err(e) => return fail(e),
                    };
                    pools.chunks.give(data);
                    if tx.send((seq, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(read_rx);
        drop(out_tx);
        // Publishing a pack (fsync, rename, index file) takes 0.1-0.3 s; done by the
        // writer it stalled every worker behind a full queue once a pack (~8% of a
        // backup's time). Publishers do it while the next pack fills: one on a local
        // disk, several on a remote store (each pack one PUT that waits on the
        // network). There the hand-over is a rendezvous, so at most `parallel` packs
        // are being put and one filled: memory does not grow with the source. (A local
        // pack is a file, not memory: one may wait.) A failed publish is reported
        // through `fail`, and the writer stops when it cannot hand over its next pack.
        let depth = usize::from(upload.max_pack.is_none());
        let (publish_tx, publish_rx) = bounded::<PackWriter>(depth);
        let publishers: Vec<_> = (0..upload.parallel.max(1))
            .map(|_| {
                let rx = publish_rx.clone();
                s.spawn(move || {
                    for w in rx {
                        if abort.load(Ordering::Relaxed) {
                            return;
                        }
                        if let Err(e) = finish_pack(repo, w) {
                            return fail(e);
                        }
                    }
                })
            })
            .collect();
        drop(publish_rx);
        // The writer runs here; on error it drops `out_rx`, which stops the workers and
        // through them the reader.
        let res = (|| -> Result<()> {
            let mut writer: Option<PackWriter> = None;
            for (_seq, out) in out_rx {
                // After a failure elsewhere (the publisher, the reader), stop at once:
                // returning drops `out_rx`, which stops the workers and the reader.
                if abort.load(Ordering::Relaxed) {
                    return Ok(());
                }
                stats.bytes_read += out.zero_bytes + out.known_bytes + out.new_bytes;
                stats.zero_bytes += out.zero_bytes;
                stats.dedup_bytes += out.known_bytes;
                stats.new_bytes += out.new_bytes;
                if let Some(rec) = out.frame {
                    stats.new_stored_bytes += rec.data.len() as u64
                        + pack::FRAME_HEADER_LEN
                        + 4 * rec.members.len() as u64;
                    let w = match writer.as_mut() {
                        Some(w) => w,
                        None => writer.insert(PackWriter::create(repo.store())?),
                    };
                    w.add(&rec)?;
                    // Every record's bytes are a stored-pool buffer (compress.rs).
                    pools.stored.give(rec.data);
                    if w.full(pack_size) {
                        if let Some(w) = writer.take() {
                            if publish_tx.send(w).is_err() {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            if abort.load(Ordering::Relaxed) {
                return Ok(());
            }
            if let Some(w) = writer.take() {
                // A refused hand-over means the publisher failed and said why.
                let _ = publish_tx.send(w);
            }
            Ok(())
        })();
        if let Err(e) = res {
            fail(e);
        }
        drop(publish_tx);
        for p in publishers {
            if p.join().is_err() {
                fail(RepoError::Pipeline("a pack publisher panicked".into()));
            }
        }
        match reader.join() {
            Ok(b) => unreadable = b,
            Err(_) => fail(RepoError::Pipeline("the reader thread panicked".into())),
        }
    });
    // The idle buffers (up to a dozen of 8 MiB) are not needed to write the manifest.
    drop(pools);
    if let Some(e) = first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        progress.report(ProgressEvent::JobEnd { ok: false });
        return Err(e);
    }

    // Distinct chunks referenced: every new one (each is claimed once) and the known
    // ones the workers marked, one bit per known chunk rather than a set of ids.
    let distinct = claimed.len() as u64
        + seen
            .iter()
            .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
            .sum::<u64>();
    drop(claimed);
    drop(seen);
    drop(known);

    // Chunks are in plan order, so each area's are one range of the list.
    let per_area = &cut.per_area;
    let mut next = 0usize;
    let (areas, ranges): (Vec<AreaManifest>, Vec<std::ops::Range<usize>>) = plan
        .areas
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let bad = unreadable.get(i).cloned().unwrap_or_default();
            let damage = name_damage(dev, a.kind, &a.name, a.offset, a.len, &bad, progress);
            let start = next;
            next += per_area.get(i).copied().unwrap_or(0);
            let area = AreaManifest {
                name: a.name.clone(),
                kind: a.kind,
                offset: a.offset,
                len: a.len,
                extents: a.extents.clone(),
                meta: a.meta.clone(),
                chunks: Vec::new(),
                unreadable: bad,
                damage,
            };
            (area, start..next)
        })
        .collect();
    if next != list.len() {
        return Err(RepoError::Pipeline(format!(
            "the areas hold {next} chunks, the cut {}",
            list.len()
        )));
    }
    stats.unreadable_bytes = areas
        .iter()
        .flat_map(|a| a.unreadable.iter())
        .map(|e| e.len)
        .sum();
    stats.chunks = distinct;
    let created_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The manifest as it will read, chunk lists aside (they are streamed from the
    // list): its summary is written just before it is published (summary.rs), so a
    // listing need not read it whole.
    let mut m = Manifest {
        version: 1,
        name: opts.name.clone(),
        created_unix,
        source: plan.source.clone(),
        chunk_size,
        areas,
        stats,
        root: String::new(),
    };
    let summary = ImageSummary::of(&m, plan.total_bytes());
    // Nothing may be published before a new encrypted repository's slot and config
    // (keys_deferred.rs); a backup that stored no pack settles here.
    repo.settle()?;
    let head = manifest_out::Head {
        version: m.version,
        name: &m.name,
        created_unix: m.created_unix,
        source: &m.source,
        chunk_size: m.chunk_size,
        areas: &m.areas,
        ranges: &ranges,
        stats: &m.stats,
    };
    let root = manifest_out::publish(
        repo,
        (&head, &summary),
        &list,
        &manifest,
        &path,
        &mut || {
            manifest_out::hold_before_manifest();
            lock.check_held()
        },
        progress,
    )?;
    m.root = root;
    drop(list);
    // Front ends show warnings to the user: the damage is what they must know.
    for line in m.damage_lines() {
        progress.report(ProgressEvent::Warning { message: line });
    }
    progress.report(ProgressEvent::JobEnd { ok: true });
    Ok(m)
}

/// The repository's own `tmp/` when it is on a local disk; else `opts.scratch_dir`,
/// `$IRONCLONE_SCRATCH` (as the TUI's clone scratch), `$TMPDIR`.
fn scratch_dir(repo: &Repository, opts: &BackupOptions) -> std::path::PathBuf {
    repo.store()
        .scratch_dir()
        .or_else(|| opts.scratch_dir.clone())
        .or_else(|| std::env::var_os("IRONCLONE_SCRATCH").map(Into::into))
        .unwrap_or_else(std::env::temp_dir)
}

/// Names the files and structures owning an area's unreadable bytes (ext and NTFS
/// partitions). A failure to name them is a warning: the image itself is complete.
fn name_damage(
    dev: &dyn BlockDevice,
    kind: AreaKind,
    name: &str,
    offset: u64,
    len: u64,
    bad: &[ByteExtent],
    progress: &dyn Progress,
) -> Option<owners::DamageReport> {
    if bad.is_empty() || kind != AreaKind::Partition {
        return None;
    }
    let warn = |what: String| {
        progress.report(ProgressEvent::Warning {
            message: format!("area {name}: cannot name the damaged files: {what}"),
        })
    };
    let win = match Window::new(dev, offset, len) {
        Ok(w) => w,
        Err(e) => {
            warn(e.to_string());
            return None;
        }
    };
    match owners::map_owners(&win, bad) {
        Ok(r) => r,
        Err(e) => {
            warn(e.to_string());
            None
        }
    }
}

/// Turns a version 1 repository into version 2 before the first backup writes frames
/// into it (builds reading only version 1 then refuse it by its version, clearly,
/// instead of misreading its packs); returns the config to back up with.
fn upgrade(repo: &Repository, progress: &dyn Progress) -> Result<super::RepoConfig> {
    let Some(new) = repo.config().upgraded() else {
        return Ok(repo.config().clone());
    };
    new.write(repo.store())?;
    progress.report(ProgressEvent::Warning {
        message: format!(
            "{}: repository format upgraded from version {} to {} (finer deduplication); builds older than this one cannot read it any more",
            repo.path().display(),
            repo.config().version,
            new.version
        ),
    });
    Ok(new)
}

fn finish_pack(repo: &Repository, w: PackWriter) -> Result<()> {
    // A new encrypted repository's slot and config go first (keys_deferred.rs).
    repo.settle()?;
    let (id, _name, records) = w.finish(repo.store())?;
    index::write(repo, &id, records)
}

#[cfg(test)]
mod tests;
