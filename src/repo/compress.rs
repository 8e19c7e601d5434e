//! How a chunk is stored: zeros not at all, incompressible data raw, the rest zstd.
//!
//! zstd is the cost of a backup (page-cache reads and blake3 are a tenth of it), so
//! the work skipped here is the backup's speed, and the parameters chosen here are
//! the image's size. A frame per chunk loses the matches a stream finds across frame
//! boundaries; with 8 MiB chunks and a window spanning the whole chunk, plain level 3
//! makes images 2% smaller than `zstd -3` on the whole stream at the same speed
//! (measurements in docs/FORMAT.md, "Compression"). A larger match finder (level 4's
//! tables) saves another 2% but costs 15-40% more time, so it is not used.

use super::bufpool::Pools;
use super::error::{RepoError, Result};
use super::id::ChunkId;
use super::pack::{Compression, Record};
use super::zstd_ctx::{Cctx, BLOCK_SPLITTER_LEVEL};
use zstd::bulk::Compressor;
use zstd_sys::ZSTD_cParameter;

/// A chunk is stored raw when compression saves less than this fraction (1/32 ≈ 3%).
const RAW_IF_SAVING_BELOW: usize = 32;
/// The incompressibility test compresses this many bytes, gathered from
/// `SAMPLES` evenly spaced spots so one compressed file at the chunk's start does
/// not make a mostly compressible chunk look incompressible.
const SAMPLE: usize = 64 << 10;
const SAMPLES: usize = 4;
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

fn zerr(e: std::io::Error) -> RepoError {
    RepoError::Compression(e.to_string())
}

/// One worker's compressors and sample buffer; reused for every chunk.
pub struct ChunkCompressor {
    main: Cctx,
    sampler: Compressor<'static>,
    sample: Vec<u8>,
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
            main: Cctx::new(&params).map_err(RepoError::Compression)?,
            sampler: Compressor::new(1).map_err(zerr)?,
            sample: Vec::with_capacity(SAMPLE),
        })
    }

    /// True when a fast level-1 pass over the samples saves under 3%.
    fn looks_incompressible(&mut self, data: &[u8]) -> Result<bool> {
        if data.len() < 2 * SAMPLE {
            return Ok(false);
        }
        let piece = SAMPLE / SAMPLES;
        let stride = data.len() / SAMPLES;
        self.sample.clear();
        for i in 0..SAMPLES {
            let at = i * stride;
            if let Some(s) = data.get(at..at + piece) {
                self.sample.extend_from_slice(s);
            }
        }
        let z = self.sampler.compress(&self.sample).map_err(zerr)?;
        Ok(z.len() + self.sample.len() / RAW_IF_SAVING_BELOW >= self.sample.len())
    }

    /// Turns a chunk into a record. `data` becomes the record's bytes when stored
    /// raw; otherwise it goes back to the chunk pool and a stored-record buffer holds
    /// the frame.
    pub fn record(&mut self, data: Vec<u8>, id: ChunkId, pools: &Pools) -> Result<Record> {
        let raw_len = u32::try_from(data.len())
            .map_err(|_| RepoError::Pipeline(format!("chunk of {} bytes", data.len())))?;
        let raw = |data: Vec<u8>| Record {
            id,
            raw_len,
            compression: Compression::None,
            data,
        };
        if self.looks_incompressible(&data)? {
            return Ok(raw(data));
        }
        let mut out = pools
            .stored
            .take(zstd::zstd_safe::compress_bound(data.len()));
        self.main
            .compress_into(&data, &mut out)
            .map_err(RepoError::Compression)?;
        if out.len() + data.len() / RAW_IF_SAVING_BELOW >= data.len() {
            pools.stored.give(out);
            return Ok(raw(data));
        }
        pools.chunks.give(data);
        Ok(Record {
            id,
            raw_len,
            compression: Compression::Zstd,
            data: out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let r = c.record(text.clone(), ChunkId::of(&text), &pools).unwrap();
        assert_eq!(r.compression, Compression::Zstd);
        assert!(r.data.len() < text.len() / 100);
        assert_eq!(zstd::bulk::decompress(&r.data, text.len()).unwrap(), text);
        let n = noise(1 << 20, 7);
        let r = c.record(n.clone(), ChunkId::of(&n), &pools).unwrap();
        assert_eq!(r.compression, Compression::None);
        assert_eq!(r.data, n);
    }

    #[test]
    fn a_compressed_file_at_the_start_does_not_make_the_chunk_raw() {
        let pools = Pools::new(2);
        let mut c = ChunkCompressor::new(3, 1 << 20).unwrap();
        let mut d = noise(64 << 10, 3);
        d.resize(1 << 20, b'a');
        let r = c.record(d.clone(), ChunkId::of(&d), &pools).unwrap();
        assert_eq!(r.compression, Compression::Zstd);
        assert!(r.data.len() < 100 << 10);
    }
}
