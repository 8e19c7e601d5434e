//! Mapping a FAT32 whose primary boot sector is lost, through its backup copy
//! (`ondisk::fat::backup_boot_sector` says where that is and when it counts), and
//! the FSInfo sector to restore with it.

use super::FatError;
use crate::device::BlockDevice;
use crate::ondisk::fat::backup_boot_sector;
use crate::ondisk::fat::{boot_sector, fsinfo, BootSector, Mode};
use crate::usedmap::PrimaryLost;

/// The boot sector to map from: the primary, or when it is unreadable or invalid the
/// FAT32 backup (with what was lost).
pub fn open(dev: &dyn BlockDevice) -> Result<(BootSector, Option<PrimaryLost>), FatError> {
    let mut sector = [0u8; boot_sector::LEN];
    let primary = dev
        .read_at(0, &mut sector)
        .map_err(|source| FatError::Device {
            what: "boot sector",
            offset: 0,
            source,
        })
        .and_then(|()| Ok(BootSector::parse(&sector, Mode::Trust)?));
    let err = match primary {
        Ok(bs) => return Ok((bs, None)),
        Err(e) => e,
    };
    let Some((bs, _, at)) = backup_boot_sector::find(dev) else {
        return Err(err);
    };
    let why = match &err {
        FatError::Device { source, .. } => format!("unreadable: {source}"),
        e => e.to_string(),
    };
    let lost = PrimaryLost {
        what: "boot sector".into(),
        offset: 0,
        len: bs.byts_per_sec,
        why,
        backup_offset: at,
        unit: bs.byts_per_sec,
    };
    Ok((bs, Some(lost)))
}

/// When the primary FSInfo sector is no longer one (lost with the boot sector) and
/// its backup (as far after the backup boot sector as the primary is after sector 0)
/// is: the backup's bytes to put at the primary's offset. The backup's free count and
/// next-free hint are those of mkfs.fat's day (mtools and the kernel update only the
/// primary), so the count is set to `free` (`None`: unknown) and the hint to unknown.
pub fn fsinfo_from_backup(
    dev: &dyn BlockDevice,
    bs: &BootSector,
    lost: &PrimaryLost,
    free: Option<u32>,
) -> Option<(u64, Vec<u8>)> {
    if bs.fs_info == 0 || bs.fs_info >= bs.bk_boot_sec {
        return None;
    }
    let len = usize::try_from(bs.byts_per_sec).ok()?;
    let at = bs.fs_info.checked_mul(bs.byts_per_sec)?;
    if fsinfo::is_valid(&dev.read_vec(at, len).ok()?) {
        return None;
    }
    let mut copy = dev
        .read_vec(lost.backup_offset.checked_add(at)?, len)
        .ok()?;
    (fsinfo::is_valid(&copy) && fsinfo::set_hints(&mut copy, free)).then_some((at, copy))
}
