//! Restoring an XFS onto less space than it had. XFS cannot shrink (xfs_growfs only
//! grows), so, as issue 18 asks and as Clonezilla users do by hand, it is re-created:
//! the image's XFS is restored into a sparse scratch file; a new XFS of the planned
//! size is made in a second one with the source's UUID, label, block and sector size
//! and v5 features; every file is copied with `xfsdump | xfsrestore` (owners, modes,
//! times, xattrs, hard links); the new one is checked with `xfs_repair -n` and mapped;
//! only then is anything written to the target, its used blocks alone.

use super::plan_restore::{DiskRestorePlan, PartTarget};
use super::staged::Staged;
use super::ImagingError;
use crate::device::{open_path, Access};
use crate::progress::Progress;
use crate::repo::Repository;
use crate::resize::{xfs_check, xfs_dump_restore, xfs_mkfs, LoopDevice, XfsSpec};
use crate::units::human_bytes;
use crate::usedmap::xfs::{map_xfs, read_superblock};
use std::path::Path;

/// Builds the re-created XFS of `p` in a scratch file; returns it (with the byte
/// ranges to copy to the target) and the line the restore report shows.
pub(super) fn stage_recreate_xfs(
    repo: &Repository,
    plan: &DiskRestorePlan,
    p: &PartTarget,
    scratch_dir: &Path,
    progress: &dyn Progress,
) -> Result<(Staged, String), ImagingError> {
    let number = p.meta.partition.as_ref().map_or(0, |q| q.number);
    let pid = std::process::id();
    let src = Staged::create(
        scratch_dir,
        &format!("ironclone-xfs-src-{pid}-{}.img", p.area),
        p.old_size,
    )?;
    src.restore_area(repo, &plan.image, &p.area, progress)?;
    let mut dst = Staged::create(
        scratch_dir,
        &format!("ironclone-xfs-new-{pid}-{}.img", p.area),
        p.new_size,
    )?;
    let spec = recreate_into(&src.path, p.old_size, &dst.path, p.new_size, number)?;
    drop(src);
    let map = map_xfs(&open_path(&dst.path, Access::ReadOnly)?)
        .map_err(|source| ImagingError::RecreateXfs { number, source })?;
    dst.extents = map.extents;
    let line = format!(
        "partition {number}: XFS re-created at {} (it cannot shrink from {}): same UUID {}, \
         label and features, files copied with xfsdump | xfsrestore",
        human_bytes(p.new_size),
        human_bytes(p.old_size),
        spec.uuid
    );
    Ok((dst, line))
}

/// Makes in `dst` (a new file of `new_len` bytes) an XFS like the one in `src` (the
/// restored source, `old_len` bytes) and copies every file into it; checked by
/// `xfs_repair -n`. Also used for an XFS in an LVM LV (restore_lvm.rs).
pub(super) fn recreate_into(
    src: &Path,
    old_len: u64,
    dst: &Path,
    new_len: u64,
    number: u32,
) -> Result<XfsSpec, ImagingError> {
    let spec = {
        let dev = open_path(src, Access::ReadOnly)?;
        let sb =
            read_superblock(&dev).map_err(|source| ImagingError::RecreateXfs { number, source })?;
        XfsSpec::from_superblock(&sb)?
    };
    xfs_mkfs(dst, &spec)?;
    {
        let s = LoopDevice::attach(src, 0, old_len)?;
        let d = LoopDevice::attach(dst, 0, new_len)?;
        xfs_dump_restore(s.path(), d.path())?;
    }
    xfs_check(dst)?;
    Ok(spec)
}
