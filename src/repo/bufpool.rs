//! Recycled chunk buffers for the backup and restore pipelines.
//!
//! A chunk is megabytes; allocating one per chunk costs an `mmap`, a page fault per
//! 4 KiB on first touch and a `munmap` (about 2 s of system time per 1.7 GiB measured
//! with musl's allocator). The pipelines are bounded, so a handful of buffers cycling
//! between the stages is all they ever need.

use crossbeam_channel::{bounded, Receiver, Sender};

/// Workers a pipeline uses at most: more cores would not make a backup faster than
/// the disk anyway.
pub const MAX_WORKERS: usize = 8;

/// The bytes of piece buffers a backup keeps in flight at most, whatever the number of
/// cores (issue 20: under 200 MB for a 1 TB source). With 8 MiB pieces and queues as
/// deep as the workers were many, 8 workers held 34 buffers (272 MiB) before a single
/// chunk was counted; now the queues stay shallow (`queue_depth`) and the pieces
/// shrink to fit this budget (`piece_bytes`): 4 MiB with 2 or 3 workers, 2 MiB with 8.
/// 48 MiB, not 96 (8 MiB pieces on 2 cores): a backup of 1 TB of 64 KiB chunks holds
/// 7.5 bytes (now 6.7) for each of its 16 Mi chunks, and 96 MiB beside that passed
/// 200 MB.
/// Halving the pieces cost no speed (the 4 GiB ext4 and NTFS bench backups took
/// 3.3-3.8 s with either, and less system time: fewer fresh pages), and zstd's level-3
/// window is 2 MiB, so a 4 MiB frame compresses as an 8 MiB one does.
pub const PIPELINE_BUDGET: u64 = 48 << 20;

/// Pieces waiting between the reader and the workers (and records between the
/// workers and the writer): two keep every worker fed, as the reader and the writer
/// each outrun a worker; deeper queues only held memory.
pub fn queue_depth(workers: usize) -> usize {
    workers.clamp(1, 2)
}

/// Piece-sized buffers a backup with `workers` workers has in flight at most: the one
/// being read and the one being written, the two queues, and each worker's piece and
/// record.
pub fn buffers_in_flight(workers: usize) -> usize {
    2 + 2 * queue_depth(workers) + 2 * workers
}

/// The most bytes a backup with `workers` workers puts in one piece: the frame
/// (`frame`, the repository's chunk size), or less when that many buffers of it would
/// pass `PIPELINE_BUDGET`; whole MiB, at least 1 MiB. A piece is only how the source is
/// read and compressed: chunk boundaries, ids and deduplication do not depend on it.
pub fn piece_bytes(workers: usize, frame: u32) -> u32 {
    let per = PIPELINE_BUDGET / buffers_in_flight(workers).max(1) as u64;
    let mib = ((per >> 20).max(1) << 20).min(u64::from(u32::MAX));
    frame.min(mib as u32)
}

/// The bytes a backup with `threads` workers (0: one per core) reads at a time from a
/// source into a repository of frame `frame`: what a rescue read sets aside or
/// retries as one piece (tests lay out their failing sectors in these units).
pub fn backup_piece_bytes(threads: usize, frame: u32) -> u32 {
    piece_bytes(workers(threads), frame)
}

/// Workers for a pipeline: `asked`, or one per core when 0, at most `MAX_WORKERS`.
pub fn workers(asked: usize) -> usize {
    let n = if asked == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        asked
    };
    n.clamp(1, MAX_WORKERS)
}

/// A pipeline's buffers in two pools, by what they hold. A chunk buffer comes back as
/// long as the chunk it held, so the next chunk reuses it as it is; a buffer that held
/// a stored record (a compressed frame of a few MiB) would first be zero-filled up to a
/// chunk's length by `take_dirty` (perf, NTFS bench backup: `memset` 0.97% of the CPU
/// with one pool, 0.71% with two; handing out idle buffers by best fit, so that short
/// pieces leave the long buffers alone, did not lower it further).
pub struct Pools {
    /// Whole chunks: what a backup reads into and a restore decompresses into.
    pub chunks: BufPool,
    /// Records as a pack stores them: compressed frames, and in a backup every record
    /// (a raw one is copied into the buffer zstd wrote, compress.rs).
    pub stored: BufPool,
}

impl Pools {
    /// Pools for a pipeline with `workers` workers: each keeps at most what is in
    /// flight of its kind (a queue and a buffer per worker, and one per end).
    pub fn new(workers: usize) -> Self {
        Pools {
            chunks: BufPool::new(2 * workers + 2),
            stored: BufPool::new(2 * workers + 2),
        }
    }
}

pub struct BufPool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
}

impl BufPool {
    /// A pool keeping at most `keep` idle buffers; more are freed when returned.
    pub fn new(keep: usize) -> Self {
        let (tx, rx) = bounded(keep.max(1));
        BufPool { tx, rx }
    }

    /// An empty buffer able to hold `cap` bytes without reallocating.
    pub fn take(&self, cap: usize) -> Vec<u8> {
        let mut b = self.rx.try_recv().unwrap_or_default();
        b.clear();
        // Exact: `reserve` doubles a buffer a little too short (a frame buffer of
        // 8 MiB asked for 8 MiB + 40 became 16 MiB), and the pool keeps it so.
        b.reserve_exact(cap);
        b
    }

    /// A buffer of at least `len` bytes whose contents are whatever it last held
    /// (no zeroing: the caller overwrites what it uses).
    pub fn take_dirty(&self, len: usize) -> Vec<u8> {
        let mut b = self.rx.try_recv().unwrap_or_default();
        if b.len() < len {
            // Exact, as in `take` (`resize` alone grows by doubling).
            b.reserve_exact(len - b.len());
            b.resize(len, 0);
        }
        b
    }

    pub fn give(&self, b: Vec<u8>) {
        // A full pool means enough buffers are cycling; this one is freed.
        let _ = self.tx.try_send(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_shrink_so_more_workers_hold_no_more_than_the_budget() {
        const MIB: u32 = 1 << 20;
        // one worker: the 8 MiB frame as it is; 2 or 3 (this machine, most laptops):
        // half of it; 8: a quarter
        assert_eq!(piece_bytes(1, 8 * MIB), 8 * MIB);
        assert_eq!(piece_bytes(2, 8 * MIB), 4 * MIB);
        assert_eq!(piece_bytes(3, 8 * MIB), 4 * MIB);
        assert_eq!(piece_bytes(8, 8 * MIB), 2 * MIB);
        for w in 1..=MAX_WORKERS {
            let held = buffers_in_flight(w) as u64 * u64::from(piece_bytes(w, 8 * MIB));
            assert!(held <= PIPELINE_BUDGET, "{w} workers hold {held} bytes");
        }
        // a smaller frame is never grown
        assert_eq!(piece_bytes(8, MIB), MIB);
    }

    #[test]
    fn recycles_without_growing_past_keep() {
        let pool = BufPool::new(2);
        let mut a = pool.take_dirty(1000);
        assert_eq!(a.len(), 1000);
        a[0] = 7;
        let ptr = a.as_ptr();
        pool.give(a);
        let b = pool.take_dirty(500);
        assert_eq!(b.as_ptr(), ptr, "the same allocation comes back");
        assert_eq!((b.len(), b[0]), (1000, 7), "as it was: no zeroing");
        pool.give(b);
        pool.give(vec![1; 10]);
        pool.give(vec![2; 10]);
        assert_eq!(pool.rx.len(), 2);
        assert!(pool.take(4096).capacity() >= 4096);
    }

    #[test]
    fn a_buffer_a_little_too_short_grows_by_what_is_asked_not_double() {
        let pool = BufPool::new(2);
        pool.give(Vec::with_capacity(1 << 20));
        let b = pool.take((1 << 20) + 40);
        assert!(b.capacity() < (1 << 20) + 4096, "{}", b.capacity());
        pool.give(vec![7; 1 << 20]);
        let b = pool.take_dirty((1 << 20) + 40);
        assert_eq!(b.len(), (1 << 20) + 40);
        assert!(b.capacity() < (1 << 20) + 4096, "{}", b.capacity());
    }

    #[test]
    fn a_chunk_buffer_comes_back_whole_from_its_own_pool() {
        let pools = Pools::new(1);
        let mut frame = pools.stored.take(100);
        frame.extend_from_slice(&[1; 10]);
        pools.stored.give(frame);
        pools.chunks.give(vec![9; 1000]);
        let b = pools.chunks.take_dirty(1000);
        assert_eq!(
            (b.len(), b[999]),
            (1000, 9),
            "the chunk buffer, not the frame"
        );
    }
}
