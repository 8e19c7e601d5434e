//! FAT12/16/32 probe. The boot sector is decoded by `ondisk::fat` in its `Identify`
//! mode (x86 jump, media byte, FAT count checked, because "0xEB jump + 0x55AA" alone
//! matches many MBRs). The label is taken from the root directory's volume-id entry
//! first (Windows renames a volume only there) and from the BPB otherwise, as blkid
//! does.

use super::util::{label_from_bytes, read, serial32};
use super::{FsInfo, FsKind};
use crate::device::BlockDevice;
use crate::ondisk::fat::{backup_boot_sector, boot_sector, BootSector, FatType, Mode};

const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_LONG_NAME: u8 = 0x0F;
const DIR_ENTRY_FREE: u8 = 0xE5;
/// The root directory is scanned no further than this for a label.
const MAX_ROOT_SCAN: u64 = 64 << 10;

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    from_boot_sector(dev, &read(dev, 0, boot_sector::LEN)?)
}

/// The same, from the FAT32 backup boot sector (sector 6).
pub(crate) fn probe_backup(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let (_, raw, _) = backup_boot_sector::find(dev)?;
    from_boot_sector(dev, &raw)
}

fn from_boot_sector(dev: &dyn BlockDevice, raw: &[u8]) -> Option<FsInfo> {
    let bs = BootSector::parse(raw, Mode::Identify).ok()?;
    let kind = match bs.fat_type {
        FatType::Fat12 => FsKind::Fat12,
        FatType::Fat16 => FsKind::Fat16,
        FatType::Fat32 => FsKind::Fat32,
    };
    let label = bs
        .vol_lab
        .and_then(|l| label_from_bytes(&l))
        .filter(|l| l != "NO NAME");
    let uuid = bs.vol_id.map(serial32);
    let label = bs
        .root_dir()
        .and_then(|(off, len)| root_dir_label(dev, off, len))
        .or(label);
    Some(FsInfo { kind, label, uuid })
}

/// The volume-id entry of the root directory, if there is one before the end marker.
fn root_dir_label(dev: &dyn BlockDevice, offset: u64, len: u64) -> Option<String> {
    let len = usize::try_from(len.min(MAX_ROOT_SCAN)).ok()?;
    let dir = read(dev, offset, len)?;
    for entry in dir.chunks_exact(32) {
        let first = entry[0];
        if first == 0 {
            return None;
        }
        let attr = entry[11];
        if first != DIR_ENTRY_FREE && attr != ATTR_LONG_NAME && attr & ATTR_VOLUME_ID != 0 {
            return label_from_bytes(&entry[..11]).filter(|l| l != "NO NAME");
        }
    }
    None
}
