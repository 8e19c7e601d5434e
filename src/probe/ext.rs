//! ext2/3/4 superblock probe. The three share one superblock; which one a volume
//! "is" matters because ext2 has no journal to worry about and ext4-only features
//! (extents, 64bit, flex_bg) decide which tools can handle it. The rule follows
//! blkid: features beyond what ext3 supports make it ext4, a journal makes it ext3.

use super::util::{label_from_bytes, read, uuid_string};
use super::{FsInfo, FsKind};
use crate::device::BlockDevice;
use crate::ondisk::ext::features::{
    EXT3_FEATURE_INCOMPAT_SUPP, EXT3_FEATURE_RO_COMPAT_SUPP, EXT4_FEATURE_INCOMPAT_JOURNAL_DEV,
};
use crate::ondisk::ext::superblock::{SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};
use crate::ondisk::ext::Superblock;

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let raw = read(dev, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE)?;
    from_superblock(&Superblock::decode(&raw, &dev.describe()).ok()?)
}

/// The same, from the first good backup superblock (the primary is lost).
pub(crate) fn probe_backup(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let (sb, _) = crate::ondisk::ext::backup::find(dev)?;
    from_superblock(&sb)
}

/// Recognition only, not validation (the used map validates): the fields no real
/// superblock has zero or out of range.
fn from_superblock(sb: &Superblock) -> Option<FsInfo> {
    // Block sizes run from 1 KiB (0) to 64 KiB (6); anything else is not a superblock.
    if sb.s_log_block_size > 6
        || sb.s_inodes_count == 0
        || sb.s_blocks_per_group == 0
        || sb.s_inodes_per_group == 0
        || sb.s_rev_level > 1
    {
        return None;
    }
    if sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_JOURNAL_DEV != 0 {
        // An external journal device holds no files.
        return None;
    }
    let kind = if sb.s_feature_incompat & !EXT3_FEATURE_INCOMPAT_SUPP != 0
        || sb.s_feature_ro_compat & !EXT3_FEATURE_RO_COMPAT_SUPP != 0
    {
        FsKind::Ext4
    } else if sb.has_journal() {
        FsKind::Ext3
    } else {
        FsKind::Ext2
    };
    Some(FsInfo {
        kind,
        label: label_from_bytes(&sb.s_volume_name),
        uuid: uuid_string(sb.s_uuid),
    })
}
