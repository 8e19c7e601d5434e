//! The FAT32 backup boot sector, used when the primary (sector 0) is lost.
//!
//! FAT32 keeps a copy of its boot record at `BPB_BkBootSec`, which the Microsoft
//! specification recommends and every formatter sets to 6 (mkfs.fat, Windows); with
//! the primary gone that field cannot be read, so sector 6 is where the copy is looked
//! for (`fsck.fat` only compares the copy with a readable primary; it does not recover
//! from it). A copy only counts if it names itself (its `BPB_BkBootSec`
//! is the sector it was found in) and the first FAT entry carries its media byte: a
//! partition reused by another filesystem overwrites the FATs right after the reserved
//! sectors, so an old boot record copy there is not taken for the volume.

use super::bpb::{Bpb, FatType};
use super::FatError;
use crate::bytes::{le32, put};
use crate::device::BlockDevice;
use crate::usedmap::PrimaryLost;

/// The sector mkfs.fat and Windows put the backup boot sector in.
pub const BACKUP_SECTOR: u64 = 6;

/// The backup boot sector's bytes, its BPB and its byte offset, when one is found.
pub fn find(dev: &dyn BlockDevice) -> Option<(Bpb, Vec<u8>, u64)> {
    [512u64, 4096].into_iter().find_map(|ss| {
        let at = BACKUP_SECTOR * ss;
        if at.checked_add(512)? > dev.size() {
            return None;
        }
        let raw = dev.read_vec(at, 512).ok()?;
        let bpb = Bpb::parse(&raw).ok()?;
        let names_itself = bpb.fat_type == FatType::Fat32
            && bpb.byts_per_sec == ss
            && bpb.bk_boot_sec == BACKUP_SECTOR;
        (names_itself && fat_starts_with_media(dev, &bpb)).then_some((bpb, raw, at))
    })
}

/// True unless FAT entry 0 is readable and does not hold the media byte (an entry
/// that cannot be read says nothing on a failing disk).
fn fat_starts_with_media(dev: &dyn BlockDevice, bpb: &Bpb) -> bool {
    let Ok(head) = dev.read_vec(bpb.fat_offset(), 4) else {
        return true;
    };
    let e0 = le32(&head, 0).unwrap_or(0) & 0x0FFF_FFFF;
    e0 & 0xFF == u32::from(bpb.media) && e0 >> 8 == 0x000F_FFFF
}

/// The boot sector to map from: the primary, or when it is unreadable or invalid the
/// FAT32 backup (with what was lost).
pub fn open(dev: &dyn BlockDevice) -> Result<(Bpb, Option<PrimaryLost>), FatError> {
    let mut sector = [0u8; 512];
    let primary = dev
        .read_at(0, &mut sector)
        .map_err(|source| FatError::Device {
            what: "boot sector",
            offset: 0,
            source,
        })
        .and_then(|()| Bpb::parse(&sector));
    let err = match primary {
        Ok(bpb) => return Ok((bpb, None)),
        Err(e) => e,
    };
    let Some((bpb, _, at)) = find(dev) else {
        return Err(err);
    };
    let why = match &err {
        FatError::Device { source, .. } => format!("unreadable: {source}"),
        e => e.to_string(),
    };
    let lost = PrimaryLost {
        what: "boot sector".into(),
        offset: 0,
        len: bpb.byts_per_sec,
        why,
        backup_offset: at,
        unit: bpb.byts_per_sec,
    };
    Ok((bpb, Some(lost)))
}

/// Offsets of FSInfo's free-cluster count and next-free hint (0xFFFFFFFF: unknown).
const FSI_FREE_COUNT: usize = 488;
const FSI_NXT_FREE: usize = 492;
const UNKNOWN: u32 = u32::MAX;

/// When the primary FSInfo sector is no longer one (lost with the boot sector) and
/// its backup (as far after the backup boot sector as the primary is after sector 0)
/// is: the backup's bytes to put at the primary's offset. The backup's free count and
/// next-free hint are those of mkfs.fat's day (mtools and the kernel update only the
/// primary), so the count is set to `free` (`None`: unknown) and the hint to unknown,
/// as the specification allows.
pub fn fsinfo_from_backup(
    dev: &dyn BlockDevice,
    bpb: &Bpb,
    lost: &PrimaryLost,
    free: Option<u32>,
) -> Option<(u64, Vec<u8>)> {
    if bpb.fs_info == 0 || bpb.fs_info >= bpb.bk_boot_sec {
        return None;
    }
    let len = usize::try_from(bpb.byts_per_sec).ok()?;
    let at = bpb.fs_info.checked_mul(bpb.byts_per_sec)?;
    if fsinfo_valid(&dev.read_vec(at, len).ok()?) {
        return None;
    }
    let mut copy = dev
        .read_vec(lost.backup_offset.checked_add(at)?, len)
        .ok()?;
    if !fsinfo_valid(&copy) {
        return None;
    }
    put(
        &mut copy,
        FSI_FREE_COUNT,
        &free.unwrap_or(UNKNOWN).to_le_bytes(),
    );
    put(&mut copy, FSI_NXT_FREE, &UNKNOWN.to_le_bytes());
    Some((at, copy))
}

/// True when `b` is an FSInfo sector: its three signatures are in place.
pub fn fsinfo_valid(b: &[u8]) -> bool {
    le32(b, 0) == Some(0x4161_5252)
        && le32(b, 484) == Some(0x6141_7272)
        && le32(b, 508) == Some(0xAA55_0000)
}
