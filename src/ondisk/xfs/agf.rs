//! The AG free-space header (`struct xfs_agf`, the second sector of every allocation
//! group): where the AG's free-space B+trees start, how deep they are and how many
//! blocks they say are free. Checked against the superblock (sequence number, AG
//! length, v5 UUID and CRC) so that a stale or foreign sector is not walked.

use super::crc;
use super::superblock::Superblock;
use super::XfsDecodeError;
use crate::bytes::{array, be32};

/// "XAGF".
pub const XFS_AGF_MAGIC: u32 = 0x5841_4746;
const XFS_AGF_VERSION: u32 = 1;
/// The AGF's fields end here (v5).
pub const AGF_LEN: usize = 224;

const AGF_VERSIONNUM: usize = 4;
const AGF_SEQNO: usize = 8;
const AGF_LENGTH: usize = 12;
/// `agf_roots[XFS_BTNUM_BNO]`; cnt and rmap follow.
const AGF_BNO_ROOT: usize = 16;
/// `agf_levels[XFS_BTNUM_BNO]`.
const AGF_BNO_LEVEL: usize = 28;
const AGF_FLFIRST: usize = 40;
const AGF_FLLAST: usize = 44;
const AGF_FLCOUNT: usize = 48;
const AGF_FREEBLKS: usize = 52;
const AGF_BTREEBLKS: usize = 60;
const AGF_UUID: usize = 64;
/// `agf_crc`, little-endian, over the whole sector.
pub const AGF_CRC: usize = 216;

/// Deeper than any free-space tree an AG of 2^31 blocks can need
/// (`xfs_allocbt_maxlevels_ondisk`); a bigger level is corruption.
pub const MAX_BTREE_LEVELS: u32 = 9;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agf {
    pub agf_seqno: u32,
    pub agf_length: u32,
    pub agf_bno_root: u32,
    pub agf_bno_level: u32,
    pub agf_flfirst: u32,
    pub agf_fllast: u32,
    pub agf_flcount: u32,
    pub agf_freeblks: u32,
    pub agf_btreeblks: u32,
}

impl Agf {
    /// Parses and validates AG `ag`'s AGF from its sector `b` (`sb_sectsize` bytes).
    pub fn parse(b: &[u8], sb: &Superblock, ag: u32) -> Result<Self, XfsDecodeError> {
        if b.len() < AGF_LEN {
            return Err(XfsDecodeError::Short {
                structure: "AGF",
                len: b.len(),
                need: AGF_LEN,
            });
        }
        let g = |o| be32(b, o).unwrap_or(0);
        let bad = |field, value: u32, why| XfsDecodeError::Agf {
            ag,
            field,
            value: value.into(),
            why,
        };
        let magic = g(0);
        if magic != XFS_AGF_MAGIC {
            return Err(XfsDecodeError::AgfMagic { ag, value: magic });
        }
        if sb.is_v5() {
            if let Some((stored, computed)) = crc::mismatch(b, AGF_CRC) {
                return Err(XfsDecodeError::AgfCrc {
                    ag,
                    stored,
                    computed,
                });
            }
            if array::<16>(b, AGF_UUID) != Some(sb.metadata_uuid()) {
                return Err(bad("agf_uuid", 0, "not the filesystem's metadata UUID"));
            }
        }
        let agf = Agf {
            agf_seqno: g(AGF_SEQNO),
            agf_length: g(AGF_LENGTH),
            agf_bno_root: g(AGF_BNO_ROOT),
            agf_bno_level: g(AGF_BNO_LEVEL),
            agf_flfirst: g(AGF_FLFIRST),
            agf_fllast: g(AGF_FLLAST),
            agf_flcount: g(AGF_FLCOUNT),
            agf_freeblks: g(AGF_FREEBLKS),
            agf_btreeblks: g(AGF_BTREEBLKS),
        };
        if g(AGF_VERSIONNUM) != XFS_AGF_VERSION {
            return Err(bad("agf_versionnum", g(AGF_VERSIONNUM), "not 1"));
        }
        if agf.agf_seqno != ag {
            return Err(bad("agf_seqno", agf.agf_seqno, "not this AG's number"));
        }
        if u64::from(agf.agf_length) != sb.ag_blocks(ag) {
            return Err(bad(
                "agf_length",
                agf.agf_length,
                "differs from the AG size the superblock gives",
            ));
        }
        if agf.agf_bno_level == 0 || agf.agf_bno_level > MAX_BTREE_LEVELS {
            return Err(bad("agf_levels[bno]", agf.agf_bno_level, "not in 1..=9"));
        }
        if agf.agf_bno_root == 0 || agf.agf_bno_root >= agf.agf_length {
            return Err(bad("agf_roots[bno]", agf.agf_bno_root, "outside the AG"));
        }
        if agf.agf_freeblks > agf.agf_length {
            return Err(bad(
                "agf_freeblks",
                agf.agf_freeblks,
                "more than the AG holds",
            ));
        }
        Ok(agf)
    }
}
