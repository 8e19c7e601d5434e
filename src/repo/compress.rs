//! How a frame (the new chunks of one piece, back to back) is stored: data zstd cannot
//! shrink raw, the rest zstd. Zero chunks never get here.
//!
//! zstd is the cost of a backup (page-cache reads and blake3 are a tenth of it), so
//! the work skipped here is the backup's speed, and the parameters chosen here are
//! the image's size. A frame per chunk loses the matches a stream finds across frame
//! boundaries; with 8 MiB frames and a window spanning the whole frame, plain level 3
//! makes images 2% smaller than `zstd -3` on the whole stream at the same speed
//! (measurements in docs/FORMAT.md, "Compression"). A larger match finder (level 4's
//! tables) saves another 2% but costs 15-40% more time, so it is not used.
//!
//! Every new frame goes through zstd; none is judged incompressible from a sample
//! first. A sample cannot see what makes some random-looking chunks compress: text
//! between the sampled spots, or a second copy of a compressed file a megabyte on
//! (one 8 MiB chunk of a small ext4 was stored raw by version 1 although zstd saves 9.4% of it,
//! which made the image 0.7% larger than `partclone | zstd -3`). It also saved little:
//! zstd level 3 passes data without matches at 3-4 GB/s per core, a tenth of the
//! time or less of a chunk that compresses (docs/BENCH.md, "Small partitions").

use super::bufpool::Pools;
use super::error::{RepoError, Result};
use super::pack::{frame_id, Compression, Member, Record};
use super::zstd_ctx::{Cctx, BLOCK_SPLITTER_LEVEL};
use zstd_sys::ZSTD_cParameter;

/// zstd's largest window that every decoder accepts without a flag (8 MiB).
const MAX_WINDOW_LOG: u32 = 23;
/// zstd 1.5.7 splits each 128 KiB block where the data changes before compressing
/// it; at levels up to 4 it picks a splitter that fingerprints the whole block. Its
/// cheapest splitter (2: it looks at block borders only), measured on the 1.73 GB of
/// used NTFS bytes `make bench` backs up: 7-8% less CPU for 0.49% more bytes (6-8%
/// for 0.3-0.5% on slices of it); turning splitting off (1) saved no more CPU and
/// cost 0.5-0.8%. Stronger levels keep zstd's own choice.
const CHEAP_SPLITTER: i32 = 2;
const CHEAP_SPLITTER_UP_TO_LEVEL: i32 = 4;

pub fn is_zero(buf: &[u8]) -> bool {
    // OR-folding fixed 64-byte blocks vectorises; it runs at memory speed.
    let blocks = buf.chunks_exact(64);
    let rest = blocks.remainder();
    blocks
        .into_iter()
        .all(|b| b.iter().fold(0u8, |a, &x| a | x) == 0)
        && rest.iter().all(|&b| b == 0)
}

/// One worker's compression context; reused for every chunk.
pub struct ChunkCompressor {
    main: Cctx,
}

impl ChunkCompressor {
    pub fn new(level: i32, chunk_size: u32) -> Result<Self> {
        let window = chunk_size.max(1).next_power_of_two().trailing_zeros();
        let window = window.clamp(10, MAX_WINDOW_LOG) as i32;
        let mut params = vec![
            (ZSTD_cParameter::ZSTD_c_compressionLevel, level),
            (ZSTD_cParameter::ZSTD_c_windowLog, window),
        ];
        if level <= CHEAP_SPLITTER_UP_TO_LEVEL {
            params.push((BLOCK_SPLITTER_LEVEL, CHEAP_SPLITTER));
        }
        Ok(ChunkCompressor {
            main: Cctx::new(&params)?,
        })
    }

    /// Turns the chunks `members`, back to back in `frame`, into one frame record: zstd's
    /// output when it is smaller, else the frame's bytes copied as they are (its frame of
    /// stored blocks is a few bytes larger). Any saving counts: the peers keep every byte
    /// zstd saves, and a frame that saves little is mostly stored blocks, which decode as
    /// plain copies. (Tests; the backup calls `record_in`.)
    #[cfg(test)]
    pub fn record(&mut self, frame: &[u8], members: Vec<Member>, pools: &Pools) -> Result<Record> {
        self.record_in(frame, Room::default(), members, pools)
    }

    /// `record` whose bytes keep `room.front` bytes in front of the stored bytes (an
    /// encrypted record's nonce) and `room.back` bytes of spare capacity behind them
    /// (its tag), so sealing moves and reallocates nothing.
    ///
    /// The record's bytes are always one buffer of the stored pool, written once
    /// (zstd's output, or the raw copy over it). Reading `frame` where it lies (the
    /// reader's buffer, when every chunk of a piece is new) rather than from a copy
    /// with that room in front keeps two piece-sized buffers per worker in flight
    /// instead of three (bench-memory: 16 MiB of the fixed part with 2 workers, 64 MiB
    /// with 8) and copies only the frames stored raw.
    pub fn record_in(
        &mut self,
        frame: &[u8],
        room: Room,
        members: Vec<Member>,
        pools: &Pools,
    ) -> Result<Record> {
        let raw_len = u32::try_from(frame.len())
            .map_err(|_| RepoError::Pipeline(format!("frame of {} bytes", frame.len())))?;
        let id = frame_id(&members);
        let mut out = pools
            .stored
            .take(room.front + zstd::zstd_safe::compress_bound(frame.len()) + room.back);
        out.resize(room.front, 0);
        self.main.compress_append(frame, &mut out)?;
        let compression = if out.len() >= room.front + frame.len() {
            // The buffer holds at least the frame's length (zstd's output was as long),
            // so this copy reallocates nothing.
            out.truncate(room.front);
            out.extend_from_slice(frame);
            Compression::None
        } else {
            Compression::Zstd
        };
        Ok(Record {
            id,
            raw_len,
            compression,
            data: out,
            members,
        })
    }
}

/// Bytes a record's buffer keeps free before and after its stored bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Room {
    pub front: usize,
    pub back: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::id::ChunkId;

    fn one(d: &[u8]) -> Vec<Member> {
        vec![Member {
            id: ChunkId::of(d),
            len: d.len() as u32,
        }]
    }

    #[test]
    fn zero_detection() {
        assert!(is_zero(&[0u8; 1000]));
        assert!(is_zero(&[]));
        let mut b = vec![0u8; 1000];
        b[999] = 1;
        assert!(!is_zero(&b));
        b[999] = 0;
        b[3] = 1;
        assert!(!is_zero(&b));
    }

    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn stores_text_compressed_and_noise_raw_and_decodes() {
        let pools = Pools::new(2);
        let mut c = ChunkCompressor::new(3, 1 << 20).unwrap();
        let text: Vec<u8> = b"ironclone restores onto another size. "
            .iter()
            .copied()
            .cycle()
            .take(1 << 20)
            .collect();
        let r = c.record(&text, one(&text), &pools).unwrap();
        assert_eq!(r.compression, Compression::Zstd);
        assert!(r.data.len() < text.len() / 100);
        assert_eq!(zstd::bulk::decompress(&r.data, text.len()).unwrap(), text);
        let n = noise(1 << 20, 7);
        let r = c.record(&n, one(&n), &pools).unwrap();
        assert_eq!(r.compression, Compression::None);
        assert_eq!(r.data, n);
    }

    #[test]
    fn room_in_front_and_behind_is_kept_for_both_kinds_of_record() {
        let pools = Pools::new(2);
        let mut c = ChunkCompressor::new(3, 1 << 20).unwrap();
        let room = Room {
            front: 24,
            back: 16,
        };
        let text: Vec<u8> = b"sealed in place "
            .iter()
            .copied()
            .cycle()
            .take(1 << 20)
            .collect();
        let n = noise(1 << 20, 9);
        for (d, kind) in [(&text, Compression::Zstd), (&n, Compression::None)] {
            let r = c.record_in(d, room, one(d), &pools).unwrap();
            assert_eq!(r.compression, kind);
            assert_eq!(r.raw_len as usize, d.len(), "the room is not the frame's");
            assert!(r.data.len() > room.front);
            assert!(
                r.data.capacity() >= r.data.len() + room.back,
                "no room behind"
            );
            let stored = &r.data[room.front..];
            match kind {
                Compression::Zstd => {
                    assert_eq!(&zstd::bulk::decompress(stored, d.len()).unwrap(), d)
                }
                _ => assert_eq!(stored, &d[..]),
            }
            // One buffer of the stored pool, sized once: a raw record is not a second
            // allocation grown to twice the frame (pipeline memory, bench-memory.sh).
            let bound = room.front + zstd::zstd_safe::compress_bound(d.len()) + room.back;
            assert!(
                r.data.capacity() <= bound,
                "{} > {bound}",
                r.data.capacity()
            );
            let ptr = r.data.as_ptr();
            pools.stored.give(r.data);
            let again = c.record_in(d, room, one(d), &pools).unwrap();
            assert_eq!(again.data.as_ptr(), ptr, "the stored pool's buffer, reused");
        }
    }

    #[test]
    fn a_compressed_file_at_the_start_does_not_make_the_chunk_raw() {
        let pools = Pools::new(2);
        let mut c = ChunkCompressor::new(3, 1 << 20).unwrap();
        let mut d = noise(64 << 10, 3);
        d.resize(1 << 20, b'a');
        let r = c.record(&d, one(&d), &pools).unwrap();
        assert_eq!(r.compression, Compression::Zstd);
        assert!(r.data.len() < 100 << 10);
    }

    /// A random-looking chunk that zstd still shrinks: stored compressed, since a
    /// raw record would make the image larger than the same bytes through `zstd`.
    fn assert_compressed_and_decodes(d: &[u8], at_most: usize) {
        let pools = Pools::new(2);
        let mut c = ChunkCompressor::new(3, 1 << 20).unwrap();
        let r = c.record(d, one(d), &pools).unwrap();
        assert_eq!(r.compression, Compression::Zstd);
        assert!(r.data.len() <= at_most, "{} > {at_most}", r.data.len());
        assert_eq!(zstd::bulk::decompress(&r.data, d.len()).unwrap(), d);
    }

    #[test]
    fn text_between_random_spots_is_compressed() {
        // Noise at 0, 256, 512 and 768 KiB (where a four-spot sample would look),
        // 192 KiB of text between them.
        let mut d = noise(1 << 20, 5);
        let text = b"ironclone restores onto another size. ".iter().cycle();
        for (b, t) in d[32 << 10..224 << 10].iter_mut().zip(text) {
            *b = *t;
        }
        assert_compressed_and_decodes(&d, (1 << 20) - (150 << 10));
    }

    #[test]
    fn a_second_copy_of_random_bytes_is_compressed() {
        // A compressed file and its copy 600 KiB further on, as a copied archive or
        // photo would lie: only the whole chunk shows the repeat.
        let mut d = noise(600 << 10, 9);
        d.extend_from_within(..424 << 10);
        assert_compressed_and_decodes(&d, (1 << 20) - (400 << 10));
    }
}
