//! exFAT probe. exFAT keeps the label not in the boot sector but as a directory
//! entry (type 0x83) in the root directory, so the probe reads the first cluster of
//! the root directory; the serial is in the boot sector. Both are decoded by
//! `ondisk::exfat`.

use super::util::{read, serial32};
use super::{FsInfo, FsKind};
use crate::device::BlockDevice;
use crate::ondisk::exfat::{boot_sector, dir_entry, BootSector, DirEntry};

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let bs = BootSector::parse(&read(dev, 0, boot_sector::LEN)?).ok()?;
    Some(FsInfo {
        kind: FsKind::Exfat,
        label: volume_label(dev, &bs),
        uuid: Some(serial32(bs.volume_serial_number)),
    })
}

fn volume_label(dev: &dyn BlockDevice, bs: &BootSector) -> Option<String> {
    let off = bs.cluster_offset(u64::from(bs.first_cluster_of_root_directory))?;
    // The label is among the first entries; one cluster (capped at 1 MiB) is plenty.
    let len = usize::try_from(bs.cluster_size().min(1 << 20)).ok()?;
    let dir = read(dev, off, len)?;
    for (i, raw) in dir.chunks_exact(dir_entry::LEN).enumerate() {
        match DirEntry::parse(raw, off + (i * dir_entry::LEN) as u64, bs.cluster_count).ok()? {
            DirEntry::EndOfDirectory => return None,
            DirEntry::VolumeLabel(units) => {
                let units: Vec<u16> = units.into_iter().take_while(|&u| u != 0).collect();
                let s = String::from_utf16_lossy(&units);
                return (!s.is_empty()).then_some(s);
            }
            _ => {}
        }
    }
    None
}
