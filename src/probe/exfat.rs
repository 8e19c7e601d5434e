//! exFAT probe. exFAT keeps the label not in the boot sector but as a directory
//! entry (type 0x83) in the root directory, so the probe reads the first cluster of
//! the root directory; the serial is in the boot sector.

use super::util::{has, label_from_utf16le, read, serial32};
use super::{FsInfo, FsKind};
use crate::bytes::{le32, u8_at};
use crate::device::BlockDevice;

const ENTRY_VOLUME_LABEL: u8 = 0x83;
const ENTRY_END: u8 = 0x00;

pub(crate) fn probe(dev: &dyn BlockDevice) -> Option<FsInfo> {
    let bs = read(dev, 0, 512)?;
    if !has(&bs, 3, b"EXFAT   ") || !has(&bs, 510, &[0x55, 0xAA]) {
        return None;
    }
    // The legacy BPB area (11..64) must be zero in exFAT.
    if bs.get(11..64)?.iter().any(|&b| b != 0) {
        return None;
    }
    let bytes_per_sector_shift = u32::from(u8_at(&bs, 108)?);
    let sectors_per_cluster_shift = u32::from(u8_at(&bs, 109)?);
    if !(9..=12).contains(&bytes_per_sector_shift)
        || bytes_per_sector_shift + sectors_per_cluster_shift > 25
    {
        return None;
    }
    let serial = le32(&bs, 100)?;
    Some(FsInfo {
        kind: FsKind::Exfat,
        label: volume_label(dev, &bs, bytes_per_sector_shift, sectors_per_cluster_shift),
        uuid: Some(serial32(serial)),
    })
}

fn volume_label(
    dev: &dyn BlockDevice,
    bs: &[u8],
    bps_shift: u32,
    spc_shift: u32,
) -> Option<String> {
    let cluster_heap_offset = u64::from(le32(bs, 88)?);
    let first_cluster_of_root = u64::from(le32(bs, 96)?);
    let cluster_size = 1u64 << (bps_shift + spc_shift);
    let sector_of_root = cluster_heap_offset.checked_add(
        first_cluster_of_root
            .checked_sub(2)?
            .checked_mul(1u64 << spc_shift)?,
    )?;
    let off = sector_of_root.checked_mul(1u64 << bps_shift)?;
    // The label is among the first entries; one cluster (capped at 1 MiB) is plenty.
    let len = usize::try_from(cluster_size.min(1 << 20)).ok()?;
    let dir = read(dev, off, len)?;
    for entry in dir.chunks_exact(32) {
        match entry[0] {
            ENTRY_END => return None,
            ENTRY_VOLUME_LABEL => {
                let count = usize::from(entry[1]).min(11);
                return label_from_utf16le(entry.get(2..2 + count * 2)?);
            }
            _ => {}
        }
    }
    None
}
