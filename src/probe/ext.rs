//! ext2/3/4 superblock probe. The three share one superblock; which one a volume
//! "is" matters because ext2 has no journal to worry about and ext4-only features
//! (extents, 64bit, flex_bg) decide which tools can handle it. The rule follows
//! blkid: features beyond what ext3 supports make it ext4, a journal makes it ext3.

use super::util::{has, label_from_bytes, read, uuid_string};
use super::{FsInfo, FsKind};
use crate::bytes::{array, le32};
use crate::device::BlockDevice;

const SB_OFFSET: u64 = 1024;
const EXT4_SUPER_MAGIC: [u8; 2] = [0x53, 0xEF];

const COMPAT_HAS_JOURNAL: u32 = 0x0004;
const INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
/// filetype | recover | meta_bg: everything ext3 understands.
const EXT3_INCOMPAT_SUPP: u32 = 0x0002 | 0x0004 | 0x0010;
/// sparse_super | large_file | btree_dir.
const EXT3_RO_COMPAT_SUPP: u32 = 0x0001 | 0x0002 | 0x0004;

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    from_superblock(&read(dev, SB_OFFSET, 1024)?)
}

/// The same, from the first good backup superblock (the primary is lost).
pub(crate) fn probe_backup(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let (sb, _) = crate::usedmap::ext::backup::find(dev)?;
    from_superblock(&sb.raw)
}

fn from_superblock(sb: &[u8]) -> Option<FsInfo> {
    if !has(sb, 0x38, &EXT4_SUPER_MAGIC) {
        return None;
    }
    let s_inodes_count = le32(sb, 0x00)?;
    let s_log_block_size = le32(sb, 0x18)?;
    let s_blocks_per_group = le32(sb, 0x20)?;
    let s_inodes_per_group = le32(sb, 0x28)?;
    let s_rev_level = le32(sb, 0x4C)?;
    // Block sizes run from 1 KiB (0) to 64 KiB (6); anything else is not a superblock.
    if s_log_block_size > 6
        || s_inodes_count == 0
        || s_blocks_per_group == 0
        || s_inodes_per_group == 0
        || s_rev_level > 1
    {
        return None;
    }
    let compat = le32(sb, 0x5C)?;
    let incompat = le32(sb, 0x60)?;
    let ro_compat = le32(sb, 0x64)?;
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        // An external journal device holds no files.
        return None;
    }
    let kind = if incompat & !EXT3_INCOMPAT_SUPP != 0 || ro_compat & !EXT3_RO_COMPAT_SUPP != 0 {
        FsKind::Ext4
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        FsKind::Ext3
    } else {
        FsKind::Ext2
    };
    Some(FsInfo {
        kind,
        label: label_from_bytes(&array::<16>(sb, 0x78)?),
        uuid: uuid_string(array::<16>(sb, 0x68)?),
    })
}
