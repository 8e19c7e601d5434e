//! Short-form B+tree blocks (`struct xfs_btree_block` with `bb_u.s`) of the
//! by-block-number free-space tree, and its records (`struct xfs_alloc_rec`).
//!
//! v4 blocks ("ABTB") have a 16-byte header; v5 blocks ("AB3B") add the disk address,
//! LSN, UUID, owning AG and a CRC (56 bytes). A node holds `maxrecs` keys followed by
//! `maxrecs` pointers (AG block numbers), where `maxrecs` is what fits in the block,
//! not `bb_numrecs`: the pointer array's offset depends on the block size only.

use super::crc;
use super::superblock::Superblock;
use super::XfsDecodeError;
use crate::bytes::{array, be16, be32, be64};

/// "ABTB": v4 by-block-number free-space tree block.
pub const XFS_ABTB_MAGIC: u32 = 0x4142_5442;
/// "AB3B": the same with the v5 CRC header.
pub const XFS_ABTB_CRC_MAGIC: u32 = 0x4142_3342;

const XFS_BTREE_SBLOCK_LEN: usize = 16;
const XFS_BTREE_SBLOCK_CRC_LEN: usize = 56;
const BB_LEVEL: usize = 4;
const BB_NUMRECS: usize = 6;
const BB_RIGHTSIB: usize = 12;
const BB_BLKNO: usize = 16;
const BB_UUID: usize = 32;
const BB_OWNER: usize = 48;
/// `bb_crc`, little-endian, over the whole block.
pub const BB_CRC: usize = 52;
/// A record or key: `ar_startblock`, `ar_blockcount`.
const REC_LEN: usize = 8;
const PTR_LEN: usize = 4;
/// `NULLAGBLOCK`: no sibling.
pub const NULLAGBLOCK: u32 = u32::MAX;

/// A run of free blocks, AG-relative.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocRec {
    pub ar_startblock: u32,
    pub ar_blockcount: u32,
}

/// A validated block header; the block's bytes stay with the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BtreeBlock {
    pub bb_level: u16,
    pub bb_numrecs: u16,
    pub bb_rightsib: u32,
    ag: u32,
    agbno: u32,
    hdr_len: usize,
    block_len: usize,
}

impl BtreeBlock {
    /// Parses block `agbno` of AG `ag` (its `sb_blocksize` bytes `b`), expected at
    /// tree level `level`.
    pub fn parse(
        b: &[u8],
        sb: &Superblock,
        ag: u32,
        agbno: u32,
        level: u32,
    ) -> Result<Self, XfsDecodeError> {
        let bad = |field, value: u64, why| XfsDecodeError::Btree {
            ag,
            agbno,
            field,
            value,
            why,
        };
        let (want, hdr_len) = if sb.is_v5() {
            (XFS_ABTB_CRC_MAGIC, XFS_BTREE_SBLOCK_CRC_LEN)
        } else {
            (XFS_ABTB_MAGIC, XFS_BTREE_SBLOCK_LEN)
        };
        if b.len() as u64 != sb.block_size() {
            return Err(XfsDecodeError::Short {
                structure: "free-space B+tree block",
                len: b.len(),
                need: sb.block_size() as usize,
            });
        }
        let magic = be32(b, 0).unwrap_or(0);
        if magic != want {
            return Err(XfsDecodeError::BtreeMagic {
                ag,
                agbno,
                value: magic,
                want,
            });
        }
        if sb.is_v5() {
            if let Some((stored, computed)) = crc::mismatch(b, BB_CRC) {
                return Err(XfsDecodeError::BtreeCrc {
                    ag,
                    agbno,
                    stored,
                    computed,
                });
            }
            // bb_blkno is the block's own address in 512-byte units: a block copied
            // from elsewhere (or a stale one) is caught here.
            let daddr = (u64::from(ag) * u64::from(sb.sb_agblocks) + u64::from(agbno))
                .saturating_mul(sb.block_size() / 512);
            let blkno = be64(b, BB_BLKNO).unwrap_or(0);
            if blkno != daddr {
                return Err(bad("bb_blkno", blkno, "not this block's address"));
            }
            if array::<16>(b, BB_UUID) != Some(sb.metadata_uuid()) {
                return Err(bad("bb_uuid", 0, "not the filesystem's metadata UUID"));
            }
            let owner = be32(b, BB_OWNER).unwrap_or(0);
            if owner != ag {
                return Err(bad("bb_owner", owner.into(), "not this AG"));
            }
        }
        let blk = BtreeBlock {
            bb_level: be16(b, BB_LEVEL).unwrap_or(0),
            bb_numrecs: be16(b, BB_NUMRECS).unwrap_or(0),
            bb_rightsib: be32(b, BB_RIGHTSIB).unwrap_or(0),
            ag,
            agbno,
            hdr_len,
            block_len: b.len(),
        };
        if u32::from(blk.bb_level) != level {
            return Err(bad(
                "bb_level",
                blk.bb_level.into(),
                "not the level its parent gives",
            ));
        }
        if usize::from(blk.bb_numrecs) > blk.maxrecs() {
            return Err(bad(
                "bb_numrecs",
                blk.bb_numrecs.into(),
                "more than fit in the block",
            ));
        }
        // Only the root may be empty (an AG with no free space).
        Ok(blk)
    }

    fn is_leaf(&self) -> bool {
        self.bb_level == 0
    }

    /// How many records (leaf) or key/pointer pairs (node) fit in the block.
    fn maxrecs(&self) -> usize {
        let room = self.block_len.saturating_sub(self.hdr_len);
        if self.is_leaf() {
            room / REC_LEN
        } else {
            room / (REC_LEN + PTR_LEN)
        }
    }

    /// A leaf's free extents, checked to be non-empty and inside an AG of `ag_len`
    /// blocks.
    pub fn records(&self, b: &[u8], ag_len: u32) -> Result<Vec<AllocRec>, XfsDecodeError> {
        if !self.is_leaf() {
            return Ok(vec![]);
        }
        let mut out = Vec::with_capacity(self.bb_numrecs.into());
        for i in 0..usize::from(self.bb_numrecs) {
            let at = self.hdr_len + i * REC_LEN;
            let r = AllocRec {
                ar_startblock: be32(b, at).unwrap_or(0),
                ar_blockcount: be32(b, at + 4).unwrap_or(0),
            };
            let end = u64::from(r.ar_startblock) + u64::from(r.ar_blockcount);
            if r.ar_blockcount == 0 || end > u64::from(ag_len) {
                return Err(XfsDecodeError::Btree {
                    ag: self.ag,
                    agbno: self.agbno,
                    field: "ar_startblock",
                    value: r.ar_startblock.into(),
                    why: "a free extent that is empty or runs past the AG's end",
                });
            }
            out.push(r);
        }
        Ok(out)
    }

    /// A node's child pointers (AG block numbers), checked to lie inside the AG.
    pub fn pointers(&self, b: &[u8], ag_len: u32) -> Result<Vec<u32>, XfsDecodeError> {
        if self.is_leaf() {
            return Ok(vec![]);
        }
        let base = self.hdr_len + self.maxrecs() * REC_LEN;
        let mut out = Vec::with_capacity(self.bb_numrecs.into());
        for i in 0..usize::from(self.bb_numrecs) {
            let p = be32(b, base + i * PTR_LEN).unwrap_or(0);
            if p == 0 || p >= ag_len {
                return Err(XfsDecodeError::Btree {
                    ag: self.ag,
                    agbno: self.agbno,
                    field: "pointer",
                    value: p.into(),
                    why: "outside the AG",
                });
            }
            out.push(p);
        }
        Ok(out)
    }
}
