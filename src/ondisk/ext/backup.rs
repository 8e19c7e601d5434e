//! Finding a backup superblock when the primary is lost, the way e2fsck's
//! `get_backup_sb` and `e2fsck -b` do.
//!
//! Without the primary, the group size is unknown, so the places are those mke2fs
//! uses by default: groups of 8 × block-size blocks (one bitmap block's worth), for
//! every block size from 1 KiB to 64 KiB, in the first groups `sparse_super` keeps a
//! copy in (1, 3, 5, 7, 9). `sparse_super2` keeps its copies in `s_backup_bgs`, which
//! mke2fs sets to group 1 and the last group, so group 1 finds those too. A copy only
//! counts if it describes itself: its block size, group size and `s_block_group_nr`
//! must put it exactly where it was found, so a stray superblock-like block (or a
//! copy found with the wrong assumed block size) is never taken.

use super::superblock::{Check, Superblock, SUPERBLOCK_SIZE};
use crate::device::BlockDevice;

/// Groups whose copy is tried, in order: the first good one is used.
const GROUPS: [u64; 5] = [1, 3, 5, 7, 9];

/// A place a backup superblock may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Byte offset of the copy (the first byte of its group's first block).
    pub offset: u64,
    pub block_size: u64,
    pub group: u64,
}

impl Candidate {
    /// The block number of the copy, as `e2fsck -b` takes it.
    pub fn block(&self) -> u64 {
        self.offset / self.block_size
    }
}

/// Every place tried, group by group, each for block sizes 1 KiB to 64 KiB.
pub fn candidates() -> impl Iterator<Item = Candidate> {
    GROUPS.into_iter().flat_map(|group| {
        (0..=6u32).map(move |log| {
            let block_size = 1024u64 << log;
            // With 1 KiB blocks block 0 is the boot block and groups start at block 1.
            let first = u64::from(block_size == 1024);
            let block = first + group * 8 * block_size;
            Candidate {
                offset: block * block_size,
                block_size,
                group,
            }
        })
    })
}

/// The first backup superblock on `dev` that parses, validates and sits exactly where
/// its own fields say a copy of its group must be.
pub fn find(dev: &dyn BlockDevice) -> Option<(Superblock, Candidate)> {
    let name = dev.describe();
    candidates().find_map(|c| {
        let end = c.offset.checked_add(SUPERBLOCK_SIZE as u64)?;
        if end > dev.size() {
            return None;
        }
        let raw = dev.read_vec(c.offset, SUPERBLOCK_SIZE).ok()?;
        let sb = Superblock::parse(&raw, &name, Check::Strict).ok()?;
        let here = sb.block_size() == c.block_size
            && u64::from(sb.s_block_group_nr) == c.group
            && c.group < sb.group_count()
            && sb.bg_has_super(c.group)
            && sb.group_first_block(c.group) == c.block();
        here.then_some((sb, c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_places_match_e2fsck() {
        let v: Vec<(u64, u64)> = candidates()
            .filter(|c| c.group == 1)
            .map(|c| (c.block_size, c.block()))
            .collect();
        // e2fsck's hint: "e2fsck -b 8193 <device>" or "e2fsck -b 32768 <device>".
        assert!(v.contains(&(1024, 8193)));
        assert!(v.contains(&(4096, 32768)));
        assert_eq!(candidates().count(), 35);
    }
}
