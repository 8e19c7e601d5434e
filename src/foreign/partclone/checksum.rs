//! The data checksums partclone stores after every `blocks_per_checksum` blocks.
//!
//! Partclone's CRC32 is the reflected 0xEDB88320 polynomial seeded with 0xFFFFFFFF and
//! never complemented at the end, so it is `!crc32(data)` of the standard CRC that
//! `crc32fast` computes; a running (not reseeded) value is continued by handing its
//! complement back as crc32fast's initial state. XXH64 is seeded with 0 and stored
//! little-endian; XXH128 is XXH3-128 with the default secret, stored low half first.

use super::header::ChecksumMode;
use xxhash_rust::xxh3::Xxh3;
use xxhash_rust::xxh64::Xxh64;

/// Partclone's CRC32 of `data` from a fresh seed (header and bitmap CRCs).
pub fn crc32_partclone(data: &[u8]) -> u32 {
    crc32_continue(0xFFFF_FFFF, data)
}

/// Continues partclone's raw CRC32 register `raw` over `data`.
fn crc32_continue(raw: u32, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(!raw);
    h.update(data);
    !h.finalize()
}

/// A running data checksum; `finish` gives the bytes partclone stores.
pub enum Running {
    None,
    Crc32(u32),
    Crc32V1(u32),
    Xxh64(Box<Xxh64>),
    Xxh128(Box<Xxh3>),
}

impl Running {
    pub fn new(mode: ChecksumMode) -> Self {
        match mode {
            ChecksumMode::None => Self::None,
            ChecksumMode::Crc32 => Self::Crc32(0xFFFF_FFFF),
            ChecksumMode::Crc32V1 => Self::Crc32V1(0xFFFF_FFFF),
            ChecksumMode::Xxh64 => Self::Xxh64(Box::new(Xxh64::new(0))),
            ChecksumMode::Xxh128 => Self::Xxh128(Box::new(Xxh3::new())),
        }
    }

    pub fn update(&mut self, block: &[u8]) {
        match self {
            Self::None => {}
            Self::Crc32(c) => *c = crc32_continue(*c, block),
            Self::Crc32V1(c) => {
                // Format 0001 fed the block's first byte block-size times (its loop
                // never advanced the pointer); one byte repeated, in 4 KiB steps.
                let first = block.first().copied().unwrap_or(0);
                let chunk = [first; 4096];
                let mut left = block.len();
                while left > 0 {
                    let n = left.min(chunk.len());
                    *c = crc32_continue(*c, chunk.get(..n).unwrap_or(&chunk));
                    left -= n;
                }
            }
            Self::Xxh64(h) => h.update(block),
            Self::Xxh128(h) => h.update(block),
        }
    }

    /// The stored form of the checksum so far (the state is left as it is, as partclone
    /// does when it does not reseed).
    pub fn finish(&self) -> Vec<u8> {
        match self {
            Self::None => Vec::new(),
            Self::Crc32(c) | Self::Crc32V1(c) => c.to_le_bytes().to_vec(),
            Self::Xxh64(h) => h.digest().to_le_bytes().to_vec(),
            Self::Xxh128(h) => h.digest128().to_le_bytes().to_vec(),
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// partclone's table-driven loop, written out bit by bit, as the reference.
    fn reference(seed: u32, data: &[u8]) -> u32 {
        let mut crc = seed;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn crc_matches_partclone_loop_fresh_and_continued() {
        let a = b"partclone-image\0some bytes";
        assert_eq!(crc32_partclone(a), reference(0xFFFF_FFFF, a));
        let mut r = Running::new(ChecksumMode::Crc32);
        r.update(b"first");
        r.update(b"second");
        let expect = reference(reference(0xFFFF_FFFF, b"first"), b"second");
        assert_eq!(r.finish(), expect.to_le_bytes().to_vec());
    }

    #[test]
    fn v1_crc_hashes_the_first_byte_repeatedly() {
        let mut r = Running::new(ChecksumMode::Crc32V1);
        let block = [7u8, 1, 2, 3, 4, 5];
        r.update(&block);
        assert_eq!(
            r.finish(),
            reference(0xFFFF_FFFF, &[7u8; 6]).to_le_bytes().to_vec()
        );
    }
}
