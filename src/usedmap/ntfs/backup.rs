//! The NTFS backup boot sector, used when the primary (sector 0) is lost.
//!
//! mkntfs and Windows make the volume one sector shorter than its partition and keep
//! a copy of the boot sector in that last sector, at `number_of_sectors` ×
//! `bytes_per_sector`. With the primary gone the volume size is unknown, so the copy
//! is looked for in the partition's last sector, the place ntfsfix tries first when
//! it rewrites a bad primary ("Trying the alternate boot sector"); unlike ntfsfix,
//! which then also tries other sizes and may rewrite the sector count, a copy here
//! only counts if its own size field puts it exactly where it was found.

use super::NtfsError;
use crate::device::BlockDevice;
use crate::ondisk::ntfs::{BootSector, Mode};
use crate::usedmap::PrimaryLost;

/// The backup boot sector's bytes, geometry and byte offset, when one is found.
pub fn find(dev: &dyn BlockDevice) -> Option<(BootSector, Vec<u8>, u64)> {
    [512u64, 4096].into_iter().find_map(|ss| {
        let at = dev.size().checked_sub(ss)?;
        let raw = dev.read_vec(at, 512).ok()?;
        let boot = BootSector::parse(&raw, Mode::Strict).ok()?;
        (boot.bytes_per_sector == ss && fits_at(&boot, at)).then_some((boot, raw, at))
    })
}

/// Whether a copy of `boot` found at byte `at` (a partition's last sector) is where
/// its size field puts it: at `number_of_sectors`, as mkntfs and Windows leave it, or
/// less than a cluster past it, as ntfsresize leaves it (it rounds the volume down to
/// whole clusters and still writes the copy in the partition's last sector, where
/// ntfsfix checks it).
fn fits_at(boot: &BootSector, at: u64) -> bool {
    let expected = boot.backup_boot_offset();
    at.checked_sub(expected)
        .is_some_and(|past| past < boot.cluster_size.max(boot.bytes_per_sector))
}

/// The byte offset of the copy of `boot` in the device's last sector, when that is
/// not where `number_of_sectors` puts it (a volume resized by ntfsresize): that sector
/// is the one ntfsfix and Windows check, so the image must hold it too.
pub fn trailing_copy(dev: &dyn BlockDevice, boot: &BootSector) -> Option<u64> {
    let at = dev.size().checked_sub(boot.bytes_per_sector)?;
    if at == boot.backup_boot_offset() || !fits_at(boot, at) {
        return None;
    }
    let raw = dev.read_vec(at, 512).ok()?;
    let copy = BootSector::parse(&raw, Mode::Strict).ok()?;
    (copy.volume_serial_number == boot.volume_serial_number
        && copy.number_of_sectors == boot.number_of_sectors)
        .then_some(at)
}

/// The boot sector to map from: the primary, or when it is unreadable or invalid the
/// backup (with what was lost).
pub fn open(dev: &dyn BlockDevice) -> Result<(BootSector, Option<PrimaryLost>), NtfsError> {
    let mut sector = [0u8; 512];
    let primary = dev
        .read_at(0, &mut sector)
        .map_err(|source| NtfsError::Device {
            what: "boot sector",
            offset: 0,
            source,
        })
        .and_then(|()| Ok(BootSector::parse(&sector, Mode::Strict)?));
    let err = match primary {
        Ok(boot) => return Ok((boot, None)),
        Err(e) => e,
    };
    let Some((boot, _, at)) = find(dev) else {
        return Err(err);
    };
    let why = match &err {
        NtfsError::Device { source, .. } => format!("unreadable: {source}"),
        e => e.to_string(),
    };
    let lost = PrimaryLost {
        what: "boot sector".into(),
        offset: 0,
        len: boot.bytes_per_sector,
        why,
        backup_offset: at,
        unit: boot.bytes_per_sector,
    };
    Ok((boot, Some(lost)))
}
