//! The decoded runs of a partition image kept in memory, so that the decode the
//! precheck makes (with the planner's reads before it) is the only one: the restore's
//! copy and the import's backup then read the used blocks from here instead of
//! decompressing the image a second time. A partition image is one compressed stream
//! that cannot be entered in the middle, so without this every later pass over it is a
//! whole second decode (on 2 cores about 2 s for 1.6 GiB of zstd partclone image,
//! profiled: half of a restore's CPU).
//!
//! The runs are packed densely into slabs of SLAB bytes (free blocks take no memory),
//! with an index of where each run lies in the partition. What is kept is always a
//! prefix of the stream: every run that starts before `upto` is held. Memory comes
//! from a `Budget` shared by the image's partitions (by default a quarter of
//! `MemAvailable`, `IRONCLONE_KEEP_DECODED` bytes when set); when it runs out, keeping
//! stops where it is and what lies after `upto` is decoded again (the fallback: the
//! old two-decode path for the rest of the image; that decode starts when planning
//! ends, `device::ImageDevice::end_planning`). All-zero runs are not stored: like
//! free blocks they read as zeros.

use crate::slab::Slab;
use crossbeam_channel::{bounded, Receiver};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes per slab: large enough that a slab is one allocation among few, small
/// enough that the last, partly filled one wastes little.
const SLAB: usize = 8 << 20;
/// The smallest slab taken when the budget has less than SLAB left.
const MIN_SLAB: usize = 64 << 10;

/// Environment variable: the bytes an image may keep decoded (tests set it small to
/// take the fallback path; 0 keeps nothing).
pub const BUDGET_ENV: &str = "IRONCLONE_KEEP_DECODED";

/// The bytes an image's partitions may still take for kept runs, and the slabs made
/// ready for them.
pub struct Budget {
    left: Arc<AtomicU64>,
    /// Slabs mapped with their pages present, ahead, by a thread of their own (started
    /// by the first `next_slab`): a new page costs the kernel a page clear (in a
    /// virtual machine also the host's fault), which took up to 3 s of the checking
    /// thread's time for 1.6 GiB (profiled, `clear_page_erms`); made ahead, it runs on
    /// the other core beside the decompression instead of in the check's path.
    ready: Mutex<Option<Receiver<Slab>>>,
}

/// Slabs made ready ahead of the keeping (each SLAB bytes).
const READY_AHEAD: usize = 4;

impl Budget {
    pub fn new(bytes: u64) -> Self {
        Budget {
            left: Arc::new(AtomicU64::new(bytes)),
            ready: Mutex::new(None),
        }
    }

    /// The same budget for another device of the same image (a LUKS volume's
    /// plaintext, device_luks.rs): what either keeps, the other cannot.
    pub fn share(&self) -> Self {
        Budget {
            left: Arc::clone(&self.left),
            ready: Mutex::new(None),
        }
    }

    /// `IRONCLONE_KEEP_DECODED` when it is set and a number, else a quarter of
    /// `MemAvailable` (nothing when that is unknown: the slower path is always right).
    pub fn from_env() -> Self {
        let set = std::env::var(BUDGET_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        Budget::new(set.unwrap_or_else(|| crate::meminfo::mem_available().unwrap_or(0) / 4))
    }

    /// The next empty slab (its capacity taken from the budget), or `None` when the
    /// budget has less than MIN_SLAB left.
    fn next_slab(&self) -> Option<Slab> {
        let rx = {
            let mut g = self.ready.lock().unwrap_or_else(|p| p.into_inner());
            g.get_or_insert_with(|| make_slabs(Arc::clone(&self.left)))
                .clone()
        };
        rx.recv().ok()
    }

    /// Stops making slabs ahead: the ones made and not taken are freed.
    pub fn stop_making(&self) {
        *self.ready.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn give(&self, n: u64) {
        self.left.fetch_add(n, Ordering::Relaxed);
    }
}

/// Takes a slab's bytes from `left`: SLAB, or what is left when that is less but at
/// least MIN_SLAB; `None` when less than MIN_SLAB is left.
fn take_slab(left: &AtomicU64) -> Option<usize> {
    let mut got = 0usize;
    left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| {
        got = usize::try_from(l).map_or(SLAB, |l| l.min(SLAB));
        (got >= MIN_SLAB).then(|| l - got as u64)
    })
    .ok()
    .map(|_| got)
}

/// Starts the thread that makes slabs ahead: each mapped with its pages made present
/// (`slab.rs`), then handed over empty. Not advised as transparent huge pages: tried,
/// and the kernel's compaction for them cost 2-4 s of system time per 1.6 GiB on the
/// bench machine against a steady 1 s without (docs/BENCH.md). It ends when the budget
/// is spent or a mapping fails (the receiver then sees the end) or when the receiver
/// is gone.
fn make_slabs(left: Arc<AtomicU64>) -> Receiver<Slab> {
    let (tx, rx) = bounded::<Slab>(READY_AHEAD);
    std::thread::spawn(move || {
        while let Some(n) = take_slab(&left) {
            let Some(slab) = Slab::new(n) else {
                left.fetch_add(n as u64, Ordering::Relaxed);
                return;
            };
            if tx.send(slab).is_err() {
                left.fetch_add(n as u64, Ordering::Relaxed);
                return;
            }
        }
    });
    rx
}

/// One run, or the part of one that fits in a slab.
#[derive(Clone, Copy)]
struct Entry {
    /// Offset in the partition.
    off: u64,
    len: u32,
    slab: u32,
    /// Offset in the slab.
    pos: u32,
}

/// The kept prefix of one partition's decoded runs.
#[derive(Default)]
pub struct Kept {
    slabs: Vec<Slab>,
    /// Ascending by `off`, not overlapping (the stream's runs are).
    index: Vec<Entry>,
    upto: u64,
    /// Keeping stopped (the budget ran out, or it was never on): `upto` stays.
    stopped: bool,
    /// Bytes taken from the budget (whole slabs).
    taken: u64,
}

impl Kept {
    /// Every run starting before this partition offset is held.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// Whether the whole image is held (its stream was kept to its end).
    pub fn complete(&self) -> bool {
        self.upto == u64::MAX
    }

    /// Bytes of runs held.
    pub fn bytes(&self) -> u64 {
        self.index.iter().map(|e| u64::from(e.len)).sum()
    }

    /// Stops keeping: runs handed out from now on are not kept.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Keeps the run `data` at partition offset `off`, the stream's next run. Runs
    /// before `upto` are held already (a restarted stream passes them again) and are
    /// skipped; when the budget cannot give another slab, keeping stops here.
    pub fn keep(&mut self, off: u64, data: &[u8], budget: &Budget) {
        if self.stopped || off < self.upto {
            return;
        }
        // An all-zero run takes no memory: free blocks read as zeros already, so it is
        // a gap like them (8% of the bench's ext4 image: inode tables, zeroed files).
        if all_zero(data) {
            self.upto = off.saturating_add(data.len() as u64);
            return;
        }
        let mut rest = data;
        let mut at = off;
        while !rest.is_empty() {
            // A slab is filled up to its capacity (what the budget gave, or a little
            // more where the allocator rounded up).
            let room = self.slabs.last().map_or(0, |s| s.capacity() - s.len());
            if room == 0 {
                let Some(slab) = budget.next_slab() else {
                    // The partly kept run is dropped: `upto` says where holding ends.
                    self.drop_from(off);
                    self.stopped = true;
                    return;
                };
                self.taken += slab.capacity() as u64;
                self.slabs.push(slab);
                continue;
            }
            let n = room.min(rest.len());
            let (head, tail) = rest.split_at(n);
            let slab_no = self.slabs.len() - 1;
            let Some(slab) = self.slabs.last_mut() else {
                return;
            };
            let pos = slab.len();
            slab.extend_from_slice(head);
            // A run that continues the last entry in the partition and in the slab
            // extends it: a contiguous file system is a handful of entries.
            let joined = match self.index.last_mut() {
                Some(e)
                    if e.slab as usize == slab_no
                        && e.pos as usize + e.len as usize == pos
                        && e.off + u64::from(e.len) == at =>
                {
                    e.len += n as u32;
                    true
                }
                _ => false,
            };
            if !joined {
                self.index.push(Entry {
                    off: at,
                    len: n as u32,
                    slab: slab_no as u32,
                    pos: pos as u32,
                });
            }
            at += n as u64;
            rest = tail;
        }
        self.upto = at;
    }

    /// Removes what was kept of the run at `off` (a run split over slabs when the
    /// budget ran out half way).
    fn drop_from(&mut self, off: u64) {
        while let Some(e) = self.index.last().copied() {
            if e.off < off {
                break;
            }
            self.index.pop();
            if let Some(s) = self.slabs.get_mut(e.slab as usize) {
                s.truncate(e.pos as usize);
            }
        }
        if let Some(e) = self.index.last_mut() {
            if e.off < off && e.off + u64::from(e.len) > off {
                let keep = (off - e.off) as u32;
                if let Some(s) = self.slabs.get_mut(e.slab as usize) {
                    s.truncate(e.pos as usize + keep as usize);
                }
                e.len = keep;
            }
        }
        self.upto = off;
    }

    /// The stream ended with every run kept: the whole image is held.
    pub fn finish(&mut self) {
        if !self.stopped {
            self.upto = u64::MAX;
        }
    }

    /// Fills `out` with partition bytes `[at, at + out.len())`, which must end at or
    /// before `upto` (the caller splits); free blocks read as zeros.
    pub fn read(&self, at: u64, out: &mut [u8]) {
        let end = at.saturating_add(out.len() as u64);
        let first = self
            .index
            .partition_point(|e| e.off + u64::from(e.len) <= at);
        // Zeros only between the runs: filling all of `out` first cost a pass more.
        let mut filled = at;
        for e in self.index.iter().skip(first) {
            if e.off >= end {
                break;
            }
            let e_end = e.off + u64::from(e.len);
            let (s, t) = (e.off.max(at), e_end.min(end));
            if let Some(gap) = out.get_mut((filled - at) as usize..(s - at) as usize) {
                gap.fill(0);
            }
            let from = e.pos as usize + (s - e.off) as usize;
            let src = self
                .slabs
                .get(e.slab as usize)
                .and_then(|sl| sl.get(from..from + (t - s) as usize));
            let dst = out.get_mut((s - at) as usize..(t - at) as usize);
            if let (Some(src), Some(dst)) = (src, dst) {
                dst.copy_from_slice(src);
            }
            filled = t;
        }
        if let Some(gap) = out.get_mut((filled - at) as usize..) {
            gap.fill(0);
        }
    }

    /// Frees the slabs and gives their bytes back to `budget`.
    pub fn release(&mut self, budget: &Budget) {
        budget.give(self.taken);
        *self = Kept {
            stopped: true,
            ..Kept::default()
        };
    }
}

/// Whether every byte of `data` is 0, a word at a time (musl's byte loops are slow;
/// a block with data usually fails on its first word).
fn all_zero(data: &[u8]) -> bool {
    let words = data.chunks_exact(8);
    let tail = words.remainder();
    words
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap_or([1; 8])))
        .all(|w| w == 0)
        && tail.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(off: u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| ((off as usize + i) * 31 % 253) as u8)
            .collect()
    }

    #[test]
    fn keeps_runs_and_reads_them_back_with_zeros_between() {
        let b = Budget::new(1 << 30);
        let mut k = Kept::default();
        for (off, len) in [(0u64, 4096usize), (4096, 4096), (16384, 8192), (40000, 10)] {
            k.keep(off, &run(off, len), &b);
        }
        assert_eq!(k.upto(), 40010);
        // Contiguous runs were joined.
        assert_eq!(k.index.len(), 3);
        let mut out = vec![9u8; 40010];
        k.read(0, &mut out);
        let mut want = vec![0u8; 40010];
        for (off, len) in [(0u64, 4096usize), (4096, 4096), (16384, 8192), (40000, 10)] {
            want[off as usize..off as usize + len].copy_from_slice(&run(off, len));
        }
        assert!(out == want);
        let mut mid = vec![9u8; 5000];
        k.read(10000, &mut mid);
        assert!(mid[..] == want[10000..15000]);
        // A restarted stream passes kept runs again: they are not kept twice.
        k.keep(0, &run(0, 4096), &b);
        assert_eq!(k.bytes(), 4096 * 4 + 10);
        k.finish();
        assert!(k.complete());
    }

    #[test]
    fn an_all_zero_run_takes_no_memory_and_reads_as_zeros() {
        let b = Budget::new(1 << 30);
        let mut k = Kept::default();
        k.keep(0, &run(0, 4096), &b);
        k.keep(4096, &[0u8; 4096], &b);
        let mut almost = vec![0u8; 4096];
        almost[4095] = 1;
        k.keep(8192, &almost, &b);
        assert_eq!(k.upto(), 12288);
        assert_eq!(k.bytes(), 8192, "the zero run is not stored");
        let mut out = vec![9u8; 12288];
        k.read(0, &mut out);
        assert!(out[..4096] == run(0, 4096)[..]);
        assert!(out[4096..8192].iter().all(|&x| x == 0));
        assert!(
            out[8192..] == almost[..],
            "a run with one non-zero byte is kept"
        );
    }

    #[test]
    fn runs_over_a_slab_boundary_are_split_and_read_whole() {
        let b = Budget::new(1 << 30);
        let mut k = Kept::default();
        let big = SLAB + 12345;
        k.keep(4096, &run(4096, big), &b);
        k.keep(4096 + big as u64, &run(4096 + big as u64, 100), &b);
        assert_eq!(k.slabs.len(), 2);
        let mut out = vec![0u8; big + 100];
        k.read(4096, &mut out);
        let mut want = run(4096, big);
        want.extend(run(4096 + big as u64, 100));
        assert!(out == want);
    }

    #[test]
    fn a_small_budget_gives_one_small_slab_then_stops() {
        let b = Budget::new(100 << 10);
        let mut k = Kept::default();
        k.keep(0, &run(0, 60 << 10), &b);
        k.keep(64 << 10, &run(64 << 10, 60 << 10), &b);
        assert_eq!(k.slabs.len(), 1);
        assert_eq!(k.upto(), 64 << 10);
        assert_eq!(k.bytes(), 60 << 10);
        assert!(b.next_slab().is_none(), "under MIN_SLAB left");
    }

    #[test]
    fn an_exhausted_budget_stops_keeping_at_a_run_boundary() {
        // One slab: the run that needs a second one is not kept, and nothing after it.
        let b = Budget::new(SLAB as u64);
        let mut k = Kept::default();
        k.keep(0, &run(0, SLAB - 4096), &b);
        k.keep(SLAB as u64, &run(SLAB as u64, 8192), &b);
        assert_eq!(
            k.upto(),
            SLAB as u64,
            "holding ends where the failed run starts"
        );
        assert_eq!(k.bytes(), (SLAB - 4096) as u64);
        k.keep(2 * SLAB as u64, &run(0, 10), &b);
        k.finish();
        assert!(!k.complete(), "a stopped keep is never complete");
        let mut out = vec![1u8; SLAB - 4096];
        k.read(0, &mut out);
        assert!(out == run(0, SLAB - 4096));
        k.release(&b);
        assert_eq!(
            b.left.load(Ordering::Relaxed),
            SLAB as u64,
            "release gives the slab back"
        );
    }
}
