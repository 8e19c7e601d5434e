//! Walks one AG's by-block-number free-space B+tree from the AGF's root down to its
//! leaves and returns the free extents in block order.
//!
//! The walk goes level by level, each level's blocks in key order, so the leaves come
//! out sorted and a misordered or overlapping record is caught by comparing with the
//! previous one. A garbage or cyclic tree ends with an error: levels only go down
//! (`bb_level` must be its parent's minus one), a block may be visited once, and no
//! more blocks are read than the AG holds.

use super::{read, XfsError};
use crate::device::BlockDevice;
use crate::ondisk::xfs::{Agf, BtreeBlock, Superblock};
use std::collections::HashSet;

/// `(ar_startblock, ar_blockcount)` runs of free blocks, AG-relative, sorted and
/// disjoint.
pub(super) fn free_extents(
    dev: &dyn BlockDevice,
    sb: &Superblock,
    ag: u32,
    agf: &Agf,
) -> Result<Vec<(u32, u32)>, XfsError> {
    let name = dev.describe();
    let bs = sb.block_size();
    let ag_len = agf.agf_length;
    let tree_err = |what: String| XfsError::Tree {
        device: name.clone(),
        ag,
        what,
    };
    let decode = |source| XfsError::Decode {
        device: name.clone(),
        source,
    };
    let mut seen: HashSet<u32> = HashSet::new();
    let mut level_blocks = vec![agf.agf_bno_root];
    let mut free: Vec<(u32, u32)> = Vec::new();
    let mut level = agf.agf_bno_level;
    while level > 0 {
        level -= 1;
        let mut next = Vec::new();
        for &agbno in &level_blocks {
            if !seen.insert(agbno) || seen.len() as u64 > u64::from(ag_len) {
                return Err(tree_err(format!(
                    "free-space B+tree block {agbno} is reached twice (a loop or a shared \
                     block)"
                )));
            }
            let off = sb
                .ag_offset(ag)
                .checked_add(u64::from(agbno) * bs)
                .ok_or_else(|| tree_err(format!("block {agbno}'s offset overflows")))?;
            let what = format!("AG {ag} free-space B+tree block {agbno}");
            let b = read(dev, off, bs, &what)?;
            let blk = BtreeBlock::parse(&b, sb, ag, agbno, level).map_err(decode)?;
            if level > 0 {
                next.extend(blk.pointers(&b, ag_len).map_err(decode)?);
                continue;
            }
            for r in blk.records(&b, ag_len).map_err(decode)? {
                if let Some(&(ps, pc)) = free.last() {
                    if r.ar_startblock < ps + pc {
                        return Err(tree_err(format!(
                            "free extent at block {} overlaps or precedes the one at {ps} \
                             (leaf block {agbno})",
                            r.ar_startblock
                        )));
                    }
                }
                free.push((r.ar_startblock, r.ar_blockcount));
            }
        }
        if level > 0 && next.is_empty() {
            return Err(tree_err(format!(
                "free-space B+tree node at level {} has no children",
                level
            )));
        }
        level_blocks = next;
    }
    Ok(free)
}
