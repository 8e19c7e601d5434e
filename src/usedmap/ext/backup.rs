//! Whether a backup superblock found by `ondisk::ext::backup::find` still describes
//! this filesystem: the primary descriptors, when they can be read, must agree.

use crate::device::BlockDevice;
use crate::ondisk::ext::layout::{self, Layout};
use crate::ondisk::ext::Superblock;

/// Fields that never change after mke2fs (short of a resize, which rewrites every
/// copy): where each group's bitmaps and inode table are.
fn locations(desc: &[u8]) -> Option<&[u8]> {
    desc.get(..0xC)
}

/// Why the primary descriptors say this is not the filesystem the backup describes,
/// if they do. A primary descriptor block that cannot be read says nothing (a dying
/// disk), but one that reads and disagrees means the space was reused (a new
/// filesystem over an old ext4 leaves its backup superblocks behind): then the backup
/// must not decide what is copied.
pub(super) fn primary_contradicts(
    dev: &dyn BlockDevice,
    sb: &Superblock,
    lay: &Layout,
    group: u64,
) -> Option<String> {
    let bs = sb.block_size();
    let primary = layout::descriptor_block_loc(sb, lay, 0).checked_mul(bs)?;
    let backup = layout::descriptor_block_loc_in(sb, lay, group, 0).checked_mul(bs)?;
    let len = usize::try_from(bs).ok()?;
    let p = dev.read_vec(primary, len).ok()?;
    let b = dev.read_vec(backup, len).ok()?;
    let dsz = usize::try_from(sb.desc_size()).ok()?;
    let n = usize::try_from(lay.group_count.min(lay.desc_per_block)).ok()?;
    let same = p
        .chunks_exact(dsz)
        .zip(b.chunks_exact(dsz))
        .take(n)
        .all(|(x, y)| locations(x) == locations(y));
    (!same).then(|| {
        format!(
            "a backup superblock was found at block {} but the primary group descriptors \
             (byte {primary}) place the bitmaps and inode tables elsewhere: the space was \
             probably reused by another filesystem",
            sb.group_first_block(group)
        )
    })
}
