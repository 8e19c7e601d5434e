//! The write phase's reader: each area planned, then its records read in the planned
//! order and handed to the decoders.
//!
//! Records go out in the planned order: a span's fillers come from records sent before
//! it (see restore_spans). On a remote store each read is a round trip, so a window of
//! them is in flight at once, each on its own thread, and they are sent in order as
//! they complete: the window slides one read at a time, so the store is never idle
//! while the oldest read is handed on. There a read takes a run of neighbouring
//! records of one pack with one request (restore_runs says why), unless the check kept
//! them (restore_cache): a first backup's records are planned in the order its packs
//! hold them.

use super::bufpool::BufPool;
use super::error::{RepoError, Result};
use super::index::Index;
use super::manifest::Manifest;
use super::pack;
use super::restore::{bad, Packs, Placed};
use super::restore_cache::{CheckedRecords, Stored};
use super::restore_runs::{record_in, Open};
use super::restore_spans::{plan_area, RecordPlan};
use super::restore_write::Job;
use super::storage::ObjectReader;
use crate::progress::{Progress, ProgressEvent};
use crossbeam_channel::Sender;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A read of one or more records for the write phase, under way or done.
enum InFlight<'s, 'a> {
    Reading(std::thread::ScopedJoinHandle<'s, Vec<ReadRecord<'a>>>),
    Done(Vec<ReadRecord<'a>>),
}

type ReadRecord<'a> = (RecordPlan<'a>, Result<Stored>);

/// How the records are read: the pool their buffers come from, the records the check
/// kept, and the longest stored record allowed.
struct Reader<'p> {
    pool: &'p BufPool,
    /// The runs' buffers, reused: a fresh 8 MiB for each run cost more system time
    /// (page faults, zeroing) than the requests it saved.
    runs: BufPool,
    checked: Arc<CheckedRecords>,
    max: u32,
}

impl Reader<'_> {
    /// One record read from its pack (`read_all` takes the check's kept ones first).
    fn one(&self, rec: &RecordPlan, path: &Path, f: &dyn ObjectReader) -> Result<Stored> {
        let mut buf = self.pool.take(rec.info.stored_len as usize);
        pack::read_record_into(f, path, &rec.info, self.max, &mut buf).map(|()| Stored::Read(buf))
    }

    /// Records of one pack, neighbours (`Open`), with one read; each checked against
    /// the index as `one` checks it and copied out into a buffer of its own. A failed
    /// read is retried a record at a time, so that an error names its record.
    fn run<'a>(
        &self,
        run: Vec<RecordPlan<'a>>,
        start: u64,
        end: u64,
        path: &Path,
        f: &dyn ObjectReader,
    ) -> Vec<ReadRecord<'a>> {
        let len = usize::try_from(end.saturating_sub(start)).unwrap_or(0);
        let mut buf = self.runs.take_dirty(len);
        let bytes = buf.get_mut(..len).unwrap_or(&mut []);
        if f.read_exact_at(bytes, start).is_err() {
            self.runs.give(buf);
            return run
                .into_iter()
                .map(|rec| {
                    let r = self.one(&rec, path, f);
                    (rec, r)
                })
                .collect();
        }
        let bytes = &*bytes;
        let read = run
            .into_iter()
            .map(|rec| {
                let read = record_in(path, bytes, start, &rec.info).map(|stored| {
                    let mut buf = self.pool.take(stored.len());
                    buf.extend_from_slice(stored);
                    Stored::Read(buf)
                });
                (rec, read)
            })
            .collect();
        self.runs.give(buf);
        read
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn read_all<'a>(
    m: &Manifest,
    placed: &[Placed<'a>],
    locs: &Index,
    packs: &mut Packs,
    tx: &Sender<Job<'a>>,
    pool: &BufPool,
    abort: &AtomicBool,
    progress: &dyn Progress,
) -> Result<()> {
    let closed = || RepoError::Pipeline("restore pipeline stopped".into());
    let window = packs.read_ahead().max(1);
    let reader = Reader {
        pool,
        runs: BufPool::new(window),
        checked: packs.checked.clone(),
        max: m.chunk_size.saturating_mul(2),
    };
    for (area_no, p) in placed.iter().enumerate() {
        let a = p.a;
        let name = format!("write {}", a.name);
        progress.report(ProgressEvent::PhaseStart {
            name: name.clone(),
            total_bytes: p.bytes,
        });
        let plan = plan_area(m, p, locs)?;
        for z in plan.zeros {
            tx.send(Job::Zeros(z)).map_err(|_| closed())?;
        }
        std::thread::scope(|s| -> Result<()> {
            let mut flight = VecDeque::with_capacity(window);
            let mut records = plan.records.into_iter().peekable();
            loop {
                while flight.len() < window {
                    let Some(rec) = records.next() else {
                        break;
                    };
                    let Some(first) = rec.uses.first().map(|u| u.ci()) else {
                        continue;
                    };
                    // Kept by the check: taken here, not read (and no thread of its own).
                    if let Some(kept) = reader.checked.take(&rec.pack, rec.info.offset) {
                        flight.push_back(InFlight::Done(vec![(rec, Ok(kept))]));
                        continue;
                    }
                    let (path, f) = packs.get(&rec.pack).map_err(|e| {
                        let what = format!("cannot open pack {}: {e}", rec.pack);
                        match rec.chunk(first) {
                            Ok(c) => bad(m, a, &c, &what),
                            Err(e) => e,
                        }
                    })?;
                    if window == 1 {
                        // A local disk: read here, in order, no thread.
                        let buf = reader.one(&rec, path, f.as_ref());
                        flight.push_back(InFlight::Done(vec![(rec, buf)]));
                        continue;
                    }
                    // The records that follow it in its pack, unless the check kept
                    // them (then they are taken when their turn comes).
                    let kept = |r: &RecordPlan| reader.checked.holds(&r.pack, r.info.offset);
                    let mut open = Open::new(&rec.info, reader.max);
                    let (pack, mut run) = (rec.pack, vec![rec]);
                    if let Some(o) = open.as_mut() {
                        while let Some(next) = records
                            .next_if(|n| n.pack == pack && !kept(n) && o.join(&n.info, reader.max))
                        {
                            run.push(next);
                        }
                    }
                    let (path, f, reader) = (path.clone(), f.clone(), &reader);
                    flight.push_back(InFlight::Reading(s.spawn(move || {
                        match open {
                            Some(o) if run.len() > 1 => {
                                reader.run(run, o.start, o.end, &path, f.as_ref())
                            }
                            _ => run
                                .into_iter()
                                .map(|rec| {
                                    let buf = reader.one(&rec, &path, f.as_ref());
                                    (rec, buf)
                                })
                                .collect(),
                        }
                    })));
                }
                let Some(next) = flight.pop_front() else {
                    break;
                };
                let read = match next {
                    InFlight::Done(done) => done,
                    InFlight::Reading(h) => h.join().map_err(|_| closed())?,
                };
                for (rec, buf) in read {
                    if abort.load(Ordering::Relaxed) {
                        return Err(closed());
                    }
                    tx.send(Job::Stored(area_no, rec, buf?))
                        .map_err(|_| closed())?;
                }
            }
            Ok(())
        })?;
        progress.report(ProgressEvent::PhaseEnd { name });
    }
    Ok(())
}
