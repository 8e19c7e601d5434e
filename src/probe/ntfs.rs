//! NTFS probe. The boot sector gives the serial (blkid's UUID); the label lives in
//! the $VOLUME_NAME attribute of MFT record 3 ($Volume), so we read that one record
//! to show the same label Windows and blkid show. A label that cannot be read is
//! simply absent: the kind is what decides how the partition is imaged.

use super::util::{label_from_utf16le, read};
use super::{FsInfo, FsKind};
use crate::device::BlockDevice;
use crate::ondisk::ntfs::attribute::{AttrValue, AT_VOLUME_NAME};
use crate::ondisk::ntfs::{BootSector, MftRecord, Mode, FILE_VOLUME};

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    from_boot_sector(dev, &read(dev, 0, 512)?)
}

/// The same, from the backup boot sector in the partition's last sector.
pub(crate) fn probe_backup(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let (_, raw, _) = crate::usedmap::ntfs::backup::find(dev)?;
    from_boot_sector(dev, &raw)
}

/// Lenient: the probe names what it sees; whether the volume can be imaged is the
/// used map's (strict) question, and its error is the one a person needs.
fn from_boot_sector(dev: &dyn BlockDevice, bs: &[u8]) -> Option<FsInfo> {
    let boot = BootSector::parse(bs, Mode::Lenient).ok()?;
    Some(FsInfo {
        kind: FsKind::Ntfs,
        label: volume_label(dev, &boot),
        uuid: Some(format!("{:016X}", boot.volume_serial_number)),
    })
}

/// `$VOLUME_NAME` of `$Volume`, read from where record 3 would be if `$MFT` starts
/// contiguous (mkntfs and Windows always place its first records together).
fn volume_label(dev: &dyn BlockDevice, boot: &BootSector) -> Option<String> {
    let off = boot
        .mft_offset()
        .ok()?
        .checked_add(FILE_VOLUME.checked_mul(boot.mft_record_size)?)?;
    let raw = read(dev, off, usize::try_from(boot.mft_record_size).ok()?)?;
    let rec = MftRecord::parse(FILE_VOLUME, raw).ok()?;
    match rec.unnamed(AT_VOLUME_NAME).ok()??.value {
        AttrValue::Resident(v) => label_from_utf16le(v),
        AttrValue::NonResident { .. } => None,
    }
}
