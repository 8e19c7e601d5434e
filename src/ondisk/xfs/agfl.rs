//! The AG free list (`struct xfs_agfl`, the fourth sector of every allocation group):
//! a ring of AG block numbers held back for the free-space trees to grow into. Those
//! blocks hold nothing yet, and `xfs_db freesp`, xfs_copy and partclone.xfs count them
//! as free; the used map does the same.
//!
//! v5 sectors start with a header ("XAFL", sequence number, UUID, LSN, CRC); v4
//! sectors are the bare array. The live entries run from `agf_flfirst` to
//! `agf_fllast`, wrapping, `agf_flcount` of them.

use super::agf::Agf;
use super::crc;
use super::superblock::Superblock;
use super::XfsDecodeError;
use crate::bytes::{array, be32};

/// "XAFL".
pub const XFS_AGFL_MAGIC: u32 = 0x5841_464c;
const AGFL_SEQNO: usize = 4;
const AGFL_UUID: usize = 8;
/// `agfl_crc`, little-endian, over the whole sector.
pub const AGFL_CRC: usize = 32;
const AGFL_CRC_HDR_LEN: usize = 36;
/// `agf_flfirst`, `agf_fllast` live in the AGF; the AGFL is the sector after the AGI.
pub const AGFL_SECTOR: u64 = 3;

/// The blocks on AG `ag`'s free list, from its sector `b` and the AGF's ring indices.
pub fn free_list(
    b: &[u8],
    sb: &Superblock,
    agf: &Agf,
    ag: u32,
) -> Result<Vec<u32>, XfsDecodeError> {
    let bad = |field, value: u64, why| XfsDecodeError::Agfl {
        ag,
        field,
        value,
        why,
    };
    let hdr = if sb.is_v5() {
        let magic = be32(b, 0).unwrap_or(0);
        if magic != XFS_AGFL_MAGIC {
            return Err(bad("agfl_magicnum", magic.into(), "not \"XAFL\""));
        }
        if let Some((stored, computed)) = crc::mismatch(b, AGFL_CRC) {
            return Err(XfsDecodeError::AgflCrc {
                ag,
                stored,
                computed,
            });
        }
        let seq = be32(b, AGFL_SEQNO).unwrap_or(0);
        if seq != ag {
            return Err(bad("agfl_seqno", seq.into(), "not this AG's number"));
        }
        if array::<16>(b, AGFL_UUID) != Some(sb.metadata_uuid()) {
            return Err(bad("agfl_uuid", 0, "not the filesystem's metadata UUID"));
        }
        AGFL_CRC_HDR_LEN
    } else {
        0
    };
    let size = (b.len().saturating_sub(hdr) / 4) as u32;
    let (first, last, count) = (agf.agf_flfirst, agf.agf_fllast, agf.agf_flcount);
    if count == 0 {
        return Ok(vec![]);
    }
    if first >= size || last >= size || count > size {
        return Err(XfsDecodeError::Agf {
            ag,
            field: "agf_flfirst",
            value: first.into(),
            why: "the free-list ring indices do not fit the AGFL",
        });
    }
    // Ring length from first to last inclusive must be the count (xfs_agf_verify).
    let span = (last + size - first) % size + 1;
    if span != count {
        return Err(XfsDecodeError::Agf {
            ag,
            field: "agf_flcount",
            value: count.into(),
            why: "differs from the ring between agf_flfirst and agf_fllast",
        });
    }
    let mut out = Vec::with_capacity(count as usize);
    for k in 0..count {
        let i = (first + k) % size;
        let at = hdr + 4 * i as usize;
        let blk = be32(b, at).unwrap_or(u32::MAX);
        if blk == 0 || blk >= agf.agf_length {
            return Err(bad("agfl_bno", blk.into(), "outside the AG"));
        }
        out.push(blk);
    }
    Ok(out)
}
