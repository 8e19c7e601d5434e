//! Walking the first FAT: which clusters are allocated.
//!
//! Only the first FAT is read; the others are copies that a restore writes whole
//! (they sit in the metadata area). The FAT is read in bounded chunks because a FAT32
//! table can be hundreds of MiB.

use super::FatError;
use crate::device::BlockDevice;
use crate::ondisk::fat::{BootSector, FatType};

const CHUNK: u64 = 1 << 20;

/// What a FAT entry says about its cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Free,
    Bad,
    Used,
}

pub fn classify(fat_type: FatType, v: u32) -> Entry {
    let (bad, mask) = match fat_type {
        FatType::Fat12 => (0xFF7, 0xFFF),
        FatType::Fat16 => (0xFFF7, 0xFFFF),
        // The top 4 bits of a FAT32 entry are reserved and must be ignored.
        FatType::Fat32 => (0x0FFF_FFF7, 0x0FFF_FFFF),
    };
    match v & mask {
        0 => Entry::Free,
        x if x == bad => Entry::Bad,
        _ => Entry::Used,
    }
}

/// Calls `f(cluster, entry)` for clusters 2 ..= count_of_clusters + 1.
pub fn walk(
    dev: &dyn BlockDevice,
    bpb: &BootSector,
    mut f: impl FnMut(u64, Entry),
) -> Result<(), FatError> {
    let first = 2u64;
    let end = bpb.count_of_clusters + 2;
    let base = bpb.fat_offset();
    // Byte length of the FAT part that covers clusters 0..end.
    let need = match bpb.fat_type {
        FatType::Fat12 => (end * 3).div_ceil(2),
        FatType::Fat16 => end * 2,
        FatType::Fat32 => end * 4,
    };
    let read = |off: u64, len: u64| -> Result<Vec<u8>, FatError> {
        let at = base + off;
        dev.read_vec(at, len as usize)
            .map_err(|source| FatError::Device {
                what: "FAT",
                offset: at,
                source,
            })
    };
    match bpb.fat_type {
        FatType::Fat12 => {
            // At most 4085 entries: about 6 KiB, read at once (entries straddle bytes).
            let t = read(0, need)?;
            for c in first..end {
                let i = (c + c / 2) as usize;
                let (Some(&lo), Some(&hi)) = (t.get(i), t.get(i + 1)) else {
                    break;
                };
                let w = u32::from(u16::from_le_bytes([lo, hi]));
                let v = if c % 2 == 0 { w & 0xFFF } else { w >> 4 };
                f(c, classify(bpb.fat_type, v));
            }
        }
        FatType::Fat16 | FatType::Fat32 => {
            let es = if bpb.fat_type == FatType::Fat16 { 2 } else { 4 };
            let mut off = first * es;
            while off < need {
                let len = (need - off).min(CHUNK);
                let t = read(off, len)?;
                for (i, e) in t.chunks_exact(es as usize).enumerate() {
                    let v = if es == 2 {
                        u32::from(u16::from_le_bytes([e[0], e[1]]))
                    } else {
                        u32::from_le_bytes([e[0], e[1], e[2], e[3]])
                    };
                    f(off / es + i as u64, classify(bpb.fat_type, v));
                }
                off += len;
            }
        }
    }
    Ok(())
}
