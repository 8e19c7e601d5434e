//! The used-block bitmap after the header, in whichever of partclone's three forms the
//! header names, with its CRC32 (format 0002) or end marker (format 0001) checked.
//! It is read in bounded chunks, so a header claiming a huge filesystem costs memory
//! only as far as the stream really holds bitmap bytes.

use super::checksum::crc32_partclone;
use super::error::PartcloneError;
use super::header::{BitmapMode, Header, ImageVersion};
use super::source::Source;
use std::io::Read;

const CHUNK: usize = 1 << 20;
const V1_MAGIC: &[u8; 8] = b"BiTmAgIc";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Storage {
    /// Bitmap mode "none": every block is stored.
    All,
    /// One bit a block, LSB first (the on-disk form of bit mode).
    Bits(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    total: u64,
    used: u64,
    bits: Storage,
}

fn bit(bits: &[u8], block: u64) -> bool {
    let byte = usize::try_from(block / 8).ok().and_then(|i| bits.get(i));
    byte.is_some_and(|b| b & (1 << (block % 8)) != 0)
}

impl Bitmap {
    pub fn read<R: Read>(src: &mut Source<R>, h: &Header) -> Result<Self, PartcloneError> {
        let total = h.total_blocks;
        let bits = match h.bitmap_mode {
            BitmapMode::None => {
                return Ok(Self {
                    total,
                    used: total,
                    bits: Storage::All,
                })
            }
            BitmapMode::Bit => read_bits(src, total)?,
            BitmapMode::Byte => read_bytes(src, total)?,
        };
        let crc_at = src.offset();
        match (h.version, h.bitmap_mode) {
            (ImageVersion::V1, _) => {
                let mut m = [0u8; 8];
                src.read_exact(&mut m, &|| "bitmap end marker".into())?;
                if &m != V1_MAGIC {
                    return Err(PartcloneError::BitmapMagic {
                        file: src.file().to_string(),
                        offset: crc_at,
                    });
                }
            }
            // Partclone's writer takes the CRC over the bit form even in byte mode.
            (ImageVersion::V2, _) => {
                let mut c = [0u8; 4];
                src.read_exact(&mut c, &|| "bitmap CRC32".into())?;
                let stored = u32::from_le_bytes(c);
                let computed = crc32_partclone(&bits);
                if stored != computed {
                    return Err(PartcloneError::BitmapCrc {
                        file: src.file().to_string(),
                        offset: crc_at,
                        stored,
                        computed,
                    });
                }
            }
        }
        let used = count(&bits, total);
        Ok(Self {
            total,
            used,
            bits: Storage::Bits(bits),
        })
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Blocks marked used: how many blocks the data area holds.
    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn is_used(&self, block: u64) -> bool {
        block < self.total
            && match &self.bits {
                Storage::All => true,
                Storage::Bits(b) => bit(b, block),
            }
    }

    /// The first used block at or after `from`.
    pub fn next_used(&self, from: u64) -> Option<u64> {
        if from >= self.total {
            return None;
        }
        let b = match &self.bits {
            Storage::All => return Some(from),
            Storage::Bits(b) => b,
        };
        let mut i = from;
        while i < self.total {
            if i % 8 == 0 {
                // Whole empty bytes are skipped at once: free space is mostly runs.
                let byte = usize::try_from(i / 8).ok().and_then(|x| b.get(x)).copied();
                if byte == Some(0) {
                    i = i.saturating_add(8);
                    continue;
                }
            }
            if bit(b, i) {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    /// Runs of used blocks as (first block, count), in order.
    pub fn runs(&self) -> Runs<'_> {
        Runs { map: self, at: 0 }
    }
}

pub struct Runs<'a> {
    map: &'a Bitmap,
    at: u64,
}

impl Iterator for Runs<'_> {
    type Item = (u64, u64);
    fn next(&mut self) -> Option<(u64, u64)> {
        let start = self.map.next_used(self.at)?;
        let mut end = start;
        if matches!(self.map.bits, Storage::All) {
            end = self.map.total;
        } else {
            while end < self.map.total && self.map.is_used(end) {
                end += 1;
            }
        }
        self.at = end;
        Some((start, end - start))
    }
}

fn count(bits: &[u8], total: u64) -> u64 {
    let full = usize::try_from(total / 8).unwrap_or(usize::MAX);
    let whole: u64 = bits
        .iter()
        .take(full)
        .map(|b| u64::from(b.count_ones()))
        .sum();
    // Bits past the last block in the final byte are not blocks.
    let tail = (full as u64 * 8..total).filter(|&i| bit(bits, i)).count() as u64;
    whole + tail
}

fn read_bits<R: Read>(src: &mut Source<R>, total: u64) -> Result<Vec<u8>, PartcloneError> {
    let len = total.div_ceil(8);
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        let start = out.len();
        out.resize(start + n, 0);
        let at = out.len();
        src.read_exact(out.get_mut(start..at).unwrap_or_default(), &|| {
            "bitmap".into()
        })?;
        left -= n as u64;
    }
    Ok(out)
}

fn read_bytes<R: Read>(src: &mut Source<R>, total: u64) -> Result<Vec<u8>, PartcloneError> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    let mut block = 0u64;
    while block < total {
        let n = usize::try_from((total - block).min(CHUNK as u64)).unwrap_or(CHUNK);
        let at = src.offset();
        let part = chunk.get_mut(..n).unwrap_or_default();
        src.read_exact(part, &|| "bitmap".into())?;
        for (i, &v) in part.iter().enumerate() {
            let b = block + i as u64;
            if b % 8 == 0 {
                out.push(0u8);
            }
            match v {
                0 => {}
                1 => {
                    if let Some(last) = out.last_mut() {
                        *last |= 1 << (b % 8);
                    }
                }
                _ => {
                    return Err(PartcloneError::BitmapByte {
                        file: src.file().to_string(),
                        block: b,
                        offset: at + i as u64,
                        value: v,
                    })
                }
            }
        }
        block += n as u64;
    }
    Ok(out)
}
