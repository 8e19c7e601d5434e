//! Recycled chunk buffers for the backup and restore pipelines.
//!
//! A chunk is megabytes; allocating one per chunk costs an `mmap`, a page fault per
//! 4 KiB on first touch and a `munmap` (about 2 s of system time per 1.7 GiB measured
//! with musl's allocator). The pipelines are bounded, so a handful of buffers cycling
//! between the stages is all they ever need.

use crossbeam_channel::{bounded, Receiver, Sender};

/// Workers (and so chunk buffers in flight) a pipeline uses at most: with 8 MiB
/// chunks and about three buffers per worker in flight, 8 workers hold ~200 MiB,
/// which a live system on a small machine can spare; more cores would not make a
/// backup faster than the disk anyway.
pub const MAX_WORKERS: usize = 8;

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
