//! Rebuilding, on a restored filesystem, the primary superblock or boot sector that
//! the source had lost (the manifest's `primary_lost`), from the backup copy the
//! image was mapped through. The copy was imaged with the used blocks, so it is on
//! the target; the primary there holds zeros (it was unreadable) or the source's
//! garbage. This runs right after the data is written and before any resize, since
//! the resize tools need a valid primary.
//!
//! - ext: `e2fsck -f -y -b N -B bs`, the reference repair. A copy is not enough: a
//!   backup superblock carries its own `s_block_group_nr`, and it and the backup
//!   descriptors hold the free counts and BLOCK_UNINIT/INODE_UNINIT flags of the day
//!   they were written (mke2fs, a resize or an e2fsck), so a primary copied from them
//!   would describe groups that have since filled as empty (and `e2fsck -fn` reports
//!   wrong counts and bitmap checksums). e2fsck opens the backup as libext2fs does
//!   (clearing the UNINIT flags), recomputes bitmaps, counts and every metadata_csum
//!   checksum, and writes the primary with `s_block_group_nr` 0.
//! - NTFS and FAT32: the backup boot sector is a byte-for-byte copy of the primary, so
//!   it is copied back (FAT32: also the FSInfo sector when its signatures are gone,
//!   with its free count recounted from the FAT), as ntfsfix does for NTFS; the
//!   result is identical to its backup, which `fsck.fat -n` compares.

use super::ImagingError;
use crate::device::{BlockDevice, Window};
use crate::ondisk::fat;
use crate::ondisk::ntfs::{BootSector, Mode};
use crate::probe::FsKind;
use crate::resize::{ext_rebuild_primary, LoopDevice};
use crate::usedmap::fat::backup::fsinfo_from_backup;
use crate::usedmap::fat::free_clusters;
use crate::usedmap::{map_filesystem, PrimaryLost};
use std::path::Path;

/// Where the restored filesystem is: a device (or file) path and the byte range in it.
pub struct Restored<'a> {
    pub dev: &'a dyn BlockDevice,
    pub path: &'a Path,
    pub offset: u64,
    pub len: u64,
}

/// Rebuilds the primary and checks that the filesystem now maps from it. Returns the
/// line for the restore report.
pub fn rebuild_primary(
    at: &Restored<'_>,
    kind: FsKind,
    lost: &PrimaryLost,
) -> Result<String, ImagingError> {
    let win = Window::new(at.dev, at.offset, at.len)?;
    let how = match kind {
        k if k.is_ext() => {
            let block = lost.backup_unit();
            let code = if at.offset == 0 && at.len == at.dev.size() {
                ext_rebuild_primary(at.path, block, lost.unit)?
            } else {
                let lo = LoopDevice::attach(at.path, at.offset, at.len)?;
                ext_rebuild_primary(lo.path(), block, lost.unit)?
            };
            format!(
                "by e2fsck -f -y -b {block} -B {} (exit {code}{})",
                lost.unit,
                if code == 1 {
                    ": it also corrected the counts and flags the old backup carried"
                } else {
                    ""
                }
            )
        }
        FsKind::Ntfs => {
            let raw = win.read_vec(lost.backup_offset, sector(lost)?)?;
            BootSector::parse(&raw, Mode::Strict).map_err(|e| fail(lost, &e.to_string()))?;
            win.write_at(lost.offset, &raw)?;
            format!(
                "by copying the backup boot sector (byte {})",
                lost.backup_offset
            )
        }
        FsKind::Fat32 => copy_fat32(&win, lost)?,
        other => {
            return Err(fail(
                lost,
                &format!("{other} has no backup to rebuild from"),
            ))
        }
    };
    win.flush()?;
    let map = map_filesystem(&win, kind);
    if map.raw || map.primary_lost.is_some() {
        let why = map.raw_reason.unwrap_or_else(|| "still not valid".into());
        return Err(fail(lost, &format!("after the rebuild: {why}")));
    }
    Ok(format!(
        "{kind} primary {} (lost on the source) rebuilt from its backup at {} {} {how}",
        lost.what,
        if lost.what == "superblock" {
            "block"
        } else {
            "sector"
        },
        lost.backup_unit()
    ))
}

fn sector(lost: &PrimaryLost) -> Result<usize, ImagingError> {
    usize::try_from(lost.unit)
        .ok()
        .filter(|&n| (512..=4096).contains(&n))
        .ok_or_else(|| fail(lost, &format!("sector size {} is invalid", lost.unit)))
}

fn fail(lost: &PrimaryLost, what: &str) -> ImagingError {
    ImagingError::Other(format!(
        "cannot rebuild the lost primary {} from the backup at byte {}: {what}",
        lost.what, lost.backup_offset
    ))
}

/// Copies the backup boot sector back, then the FSInfo sector if the primary one is
/// no longer an FSInfo sector and its backup is, with its free count recounted from
/// the FAT.
fn copy_fat32(win: &dyn BlockDevice, lost: &PrimaryLost) -> Result<String, ImagingError> {
    let raw = win.read_vec(lost.backup_offset, sector(lost)?)?;
    let bpb =
        fat::BootSector::parse(&raw, fat::Mode::Trust).map_err(|e| fail(lost, &e.to_string()))?;
    win.write_at(lost.offset, &raw)?;
    let mut how = format!(
        "by copying the backup boot sector (byte {})",
        lost.backup_offset
    );
    let free = free_clusters(win, &bpb).map_err(|e| fail(lost, &e.to_string()))?;
    let free = u32::try_from(free).unwrap_or(u32::MAX);
    if let Some((at, fsinfo)) = fsinfo_from_backup(win, &bpb, lost, Some(free)) {
        win.write_at(at, &fsinfo)?;
        how.push_str(&format!(
            " and the backup FSInfo sector (free count recounted from the FAT: {free})"
        ));
    }
    Ok(how)
}
