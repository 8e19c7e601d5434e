//! The never-used tail of each group's inode table: the inodes past `bg_itable_unused`'s
//! mark have never held an inode, so a backup neither reads nor stores their blocks.
//! On a 2 TB ext4 these tails are 32 GiB that the block bitmaps mark as used; the rest
//! of the filesystem's metadata grows far slower (docs/BENCH.md).
//!
//! The kernel and e2fsprogs never read past that mark while the group descriptors carry
//! checksums (`uninit_bg` or `metadata_csum`): e2fsck's inode scan stops there, and a
//! new inode in a block whose other inodes are all free is built in a zeroed buffer,
//! not read. What still trusts those blocks is `EXT4_BG_INODE_ZEROED`: with it clear,
//! the kernel's lazyinit thread zeroes the tail after the first mount; with it set,
//! nothing ever does, and whatever later reads every inode (e2fsck after `tune2fs -O
//! ^metadata_csum,^uninit_bg`, or e2fsck from a backup superblock, which resets
//! `bg_itable_unused`) takes the old bytes for corrupt inodes. A restore onto a disk
//! full of old data therefore clears that flag in every group whose tail it did not
//! write (`mark_tails_unzeroed`), leaving exactly the state `mkfs.ext4 -E
//! lazy_itable_init=1` leaves on a used disk.
//!
//! Clearing the flag, not writing zeros, because zeros cost the restore the whole 32
//! GiB on any disk without a write-zeroes command (minutes on a hard disk), while the
//! flag costs one write per descriptor block and lets the kernel zero the tail in the
//! background, as after mkfs. A target known to read as zeros (a new sparse file) needs
//! neither. An image made before the tails were left out holds them; clearing the flag
//! then only costs the kernel zeroing them once more. tests/restore_ext_itable.rs proves
//! the choice on a target full of random bytes: `e2fsck -fn` after the restore and after
//! a mount that adds files, the tails zeroed by the kernel, and `e2fsck -fn` after
//! `tune2fs -O ^metadata_csum,^uninit_bg` (which reads every inode). With the flag left
//! set, the kernel never zeroes the tails and that last check fails.
//!
//! Only the primary descriptors are used: the backup copies keep the `bg_itable_unused`
//! of mkfs time (libext2fs resets it to 0 when it opens a backup). With the journal not
//! yet replayed nothing is left out, since a replay can write back an older descriptor
//! block that still says INODE_ZEROED.

use super::csum;
use super::{descriptor_locs, read, read_superblock, ExtError, MAX_GROUPS};
use crate::bytes::put;
use crate::device::BlockDevice;
use crate::ondisk::ext::group_desc::{GroupDesc, BG_CHECKSUM, BG_FLAGS, EXT4_BG_INODE_ZEROED};
use crate::ondisk::ext::layout::Layout;
use crate::ondisk::ext::Superblock;

/// Whether `bg_itable_unused` can be trusted on this filesystem at all.
pub fn tails_apply(sb: &Superblock) -> bool {
    sb.has_group_desc_csum() && !sb.needs_recovery()
}

/// The blocks `(first, count)` at the end of the group's inode table that hold no
/// inode ever used, when there is at least one. `d` must have passed its checksum and
/// the inode-table bounds check.
pub fn unused_tail(sb: &Superblock, d: &GroupDesc) -> Option<(u64, u64)> {
    let ipg = u64::from(sb.s_inodes_per_group);
    // INODE_UNINIT means no inode of the group was ever used, whatever the count says
    // (the kernel then takes the whole table as unused too).
    let unused = if d.inode_uninit() {
        ipg
    } else {
        u64::from(d.bg_itable_unused)
    };
    if unused == 0 || unused > ipg {
        return None;
    }
    let used_blocks = ((ipg - unused) * sb.inode_size()).div_ceil(sb.block_size());
    let n = sb.inode_table_blocks().checked_sub(used_blocks)?;
    let first = d.bg_inode_table.checked_add(used_blocks)?;
    (n > 0).then_some((first, n))
}

/// Clears INODE_ZEROED (and recomputes the descriptor checksum) in every group of the
/// ext filesystem at byte 0 of `dev` whose tail `unused_tail` leaves out of an image.
/// Returns how many groups changed. Only the descriptor blocks that change are written.
pub fn mark_tails_unzeroed(dev: &dyn BlockDevice) -> Result<u64, ExtError> {
    let name = dev.describe();
    let sb = read_superblock(dev)?;
    if !tails_apply(&sb) {
        return Ok(0);
    }
    let lay = Layout::new(&sb);
    // The same bound as the map's: per-group work on a corrupt count would be endless.
    if lay.group_count > MAX_GROUPS {
        return Err(ExtError::Unsupported {
            device: name,
            what: format!("{} block groups", lay.group_count),
        });
    }
    let locs = descriptor_locs(&sb, &lay, &name)?;
    let bs = sb.block_size();
    let dsz = sb.desc_size() as usize;
    let wide = sb.wide_descs();
    let seed = csum::csum_seed(&sb);
    let itb = sb.inode_table_blocks();
    let mut changed = 0u64;
    for (i, &loc) in locs.iter().enumerate() {
        let offset = loc.checked_mul(bs).ok_or(ExtError::Overflow {
            device: name.clone(),
            what: "a descriptor block offset",
        })?;
        let mut blk = read(dev, offset, bs, "group descriptors")?;
        let mut dirty = false;
        for (k, raw) in blk.chunks_exact_mut(dsz).enumerate() {
            let g = (i as u64)
                .saturating_mul(lay.desc_per_block)
                .saturating_add(k as u64);
            if g >= lay.group_count {
                break;
            }
            let Ok(g32) = u32::try_from(g) else { break };
            let d = GroupDesc::parse(raw, wide, &name, g)?;
            // A descriptor that fails its checksum had its group copied whole.
            if csum::group_desc_csum(&sb, seed, g32, raw) != Some(d.bg_checksum)
                || !d.inode_zeroed()
                || d.bg_inode_table.saturating_add(itb) > sb.s_blocks_count
                || unused_tail(&sb, &d).is_none()
            {
                continue;
            }
            let flags = (d.bg_flags & !EXT4_BG_INODE_ZEROED).to_le_bytes();
            if !put(raw, BG_FLAGS, &flags) {
                continue;
            }
            if let Some(c) = csum::group_desc_csum(&sb, seed, g32, raw) {
                put(raw, BG_CHECKSUM, &c.to_le_bytes());
            }
            dirty = true;
            changed += 1;
        }
        if dirty {
            dev.write_at(offset, &blk)
                .map_err(|source| ExtError::Write {
                    device: name.clone(),
                    what: "group descriptors",
                    offset,
                    source,
                })?;
        }
    }
    Ok(changed)
}
