//! Where the FAT32 backup boot sector is, when the primary (sector 0) is lost.
//!
//! FAT32 keeps a copy of its boot record at `BPB_BkBootSec`, which the Microsoft
//! specification recommends and every formatter sets to 6 (mkfs.fat, Windows); with
//! the primary gone that field cannot be read, so sector 6 is where the copy is looked
//! for (`fsck.fat` only compares the copy with a readable primary; it does not recover
//! from it). A copy only counts if it names itself (its `BPB_BkBootSec`
//! is the sector it was found in) and the first FAT entry carries its media byte: a
//! partition reused by another filesystem overwrites the FATs right after the reserved
//! sectors, so an old boot record copy there is not taken for the volume.

use super::boot_sector::{self, BootSector, FatType, Mode};
use crate::bytes::le32;
use crate::device::BlockDevice;

/// The sector mkfs.fat and Windows put the backup boot sector in.
pub const BACKUP_SECTOR: u64 = 6;

/// The backup boot sector decoded, its bytes and its byte offset, when one is found.
pub fn find(dev: &dyn BlockDevice) -> Option<(BootSector, Vec<u8>, u64)> {
    [512u64, 4096].into_iter().find_map(|ss| {
        let at = BACKUP_SECTOR * ss;
        let len = boot_sector::LEN;
        if at.checked_add(len as u64)? > dev.size() {
            return None;
        }
        let raw = dev.read_vec(at, len).ok()?;
        let bs = BootSector::parse(&raw, Mode::Trust).ok()?;
        let names_itself = bs.fat_type == FatType::Fat32
            && bs.byts_per_sec == ss
            && bs.bk_boot_sec == BACKUP_SECTOR;
        (names_itself && fat_starts_with_media(dev, &bs)).then_some((bs, raw, at))
    })
}

/// True unless FAT entry 0 is readable and does not hold the media byte (an entry
/// that cannot be read says nothing on a failing disk).
fn fat_starts_with_media(dev: &dyn BlockDevice, bs: &BootSector) -> bool {
    let Ok(head) = dev.read_vec(bs.fat_offset(), 4) else {
        return true;
    };
    let e0 = le32(&head, 0).unwrap_or(0) & 0x0FFF_FFFF;
    e0 & 0xFF == u32::from(bs.media) && e0 >> 8 == 0x000F_FFFF
}
