//! FAT boot sectors carry the partition's start LBA too (BPB_HiddSec, byte 28). Most
//! firmware ignores it, but DOS-era boot code and some tools (and fsck.fat's check
//! that the FAT32 backup boot sector matches) do not, so a restore that moved an ESP
//! or a FAT data partition sets it, in the primary boot sector and, on FAT32, in the
//! backup boot sector (BPB_BkBootSec, usually sector 6).

use super::{put, BootfixError};
use crate::device::BlockDevice;
use crate::ondisk::fat::boot_sector::{self, BPB_HIDD_SEC};
use crate::ondisk::fat::{BootSector, FatType, Mode};

/// What `fix_fat_hidden_sectors` changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FatGeometryFix {
    pub old_hidden_sectors: u32,
    pub new_hidden_sectors: u32,
    /// The backup boot sector that was also patched (FAT32 only).
    pub backup_patched_at_sector: Option<u64>,
}

/// BPB_BkBootSec on FAT32 when it points inside the reserved area (a pointer
/// elsewhere is not followed: a write there would land in a FAT or in file data).
fn backup_sector(bs: &BootSector) -> Option<u64> {
    (bs.fat_type == FatType::Fat32 && bs.bk_boot_sec != 0 && bs.bk_boot_sec < bs.rsvd_sec_cnt)
        .then_some(bs.bk_boot_sec)
}

/// Sets BPB_HiddSec to `hidden_sectors` (the partition's new start LBA) in the boot
/// sector of `part` and, on FAT32, in its backup boot sector when that one is a valid
/// FAT boot sector. Writes nothing when the primary is not FAT or the value does not fit.
pub fn fix_fat_hidden_sectors(
    part: &dyn BlockDevice,
    hidden_sectors: u64,
) -> Result<FatGeometryFix, BootfixError> {
    let device = part.describe();
    let mut primary = part.read_vec(0, boot_sector::LEN)?;
    let geo =
        BootSector::parse(&primary, Mode::Trust).map_err(|e| BootfixError::NotRecognised {
            device: device.clone(),
            what: "FAT boot sector",
            lba: 0,
            why: e.to_string(),
        })?;
    let new = u32::try_from(hidden_sectors).map_err(|_| BootfixError::BadField {
        device: device.clone(),
        what: "FAT boot sector",
        field: "BPB_HiddSec",
        value: hidden_sectors,
        why: "does not fit the 32-bit field".into(),
    })?;
    let mut backup = None;
    if let Some(bk) = backup_sector(&geo) {
        let off = bk * geo.byts_per_sec;
        let sector = part.read_vec(off, boot_sector::LEN)?;
        if BootSector::parse(&sector, Mode::Trust).is_ok() {
            backup = Some((bk, off, sector));
        }
    }
    if let Some((_, off, mut sector)) = backup.clone() {
        put(&mut sector, BPB_HIDD_SEC, &new.to_le_bytes(), "BPB_HiddSec")?;
        part.write_at(off, &sector)?;
    }
    put(
        &mut primary,
        BPB_HIDD_SEC,
        &new.to_le_bytes(),
        "BPB_HiddSec",
    )?;
    part.write_at(0, &primary)?;
    part.flush()?;
    Ok(FatGeometryFix {
        old_hidden_sectors: geo.hidd_sec,
        new_hidden_sectors: new,
        backup_patched_at_sector: backup.map(|(bk, _, _)| bk),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    /// A FAT32 boot sector whose layout holds together: 32 reserved sectors, two
    /// 1000-sector FATs, 100000 sectors of one-sector clusters.
    fn fat32_sector(hidden: u32) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        s[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
        s[11..13].copy_from_slice(&512u16.to_le_bytes());
        s[13] = 1;
        s[14..16].copy_from_slice(&32u16.to_le_bytes());
        s[16] = 2;
        s[21] = 0xF8;
        s[28..32].copy_from_slice(&hidden.to_le_bytes());
        s[32..36].copy_from_slice(&100_000u32.to_le_bytes());
        s[36..40].copy_from_slice(&1000u32.to_le_bytes());
        s[44..48].copy_from_slice(&2u32.to_le_bytes());
        s[50..52].copy_from_slice(&6u16.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    fn fat16_sector(hidden: u32) -> Vec<u8> {
        let mut s = fat32_sector(hidden);
        s[14..16].copy_from_slice(&4u16.to_le_bytes());
        s[22..24].copy_from_slice(&100u16.to_le_bytes());
        s[32..36].copy_from_slice(&20_000u32.to_le_bytes());
        s[36..40].copy_from_slice(&[0x80, 0, 0x29, 0]);
        s[50..52].copy_from_slice(&[0, 0]);
        s
    }

    fn parse(b: &[u8]) -> BootSector {
        BootSector::parse(b, Mode::Trust).unwrap()
    }

    #[test]
    fn backup_only_on_fat32_and_inside_the_reserved_area() {
        assert_eq!(backup_sector(&parse(&fat32_sector(2048))), Some(6));
        assert_eq!(backup_sector(&parse(&fat16_sector(63))), None);
        let mut odd = fat32_sector(1);
        odd[50..52].copy_from_slice(&500u16.to_le_bytes());
        assert_eq!(backup_sector(&parse(&odd)), None);
    }

    #[test]
    fn patches_primary_and_fat32_backup() {
        let dev = MemDevice::new(64 * 512, 512);
        dev.write_at(0, &fat32_sector(2048)).unwrap();
        dev.write_at(6 * 512, &fat32_sector(2048)).unwrap();
        let fix = fix_fat_hidden_sectors(&dev, 40960).unwrap();
        assert_eq!(
            (fix.old_hidden_sectors, fix.new_hidden_sectors),
            (2048, 40960)
        );
        assert_eq!(fix.backup_patched_at_sector, Some(6));
        let img = dev.snapshot();
        assert_eq!(parse(&img[..512]).hidd_sec, 40960);
        assert_eq!(parse(&img[3072..3584]).hidd_sec, 40960);
        assert_eq!(&img[..512], &img[3072..3584]);
    }

    #[test]
    fn fat16_and_missing_backup_and_refusals() {
        let dev = MemDevice::new(64 * 512, 512);
        dev.write_at(0, &fat16_sector(63)).unwrap();
        let fix = fix_fat_hidden_sectors(&dev, 2048).unwrap();
        assert_eq!(fix.backup_patched_at_sector, None);
        // FAT32 whose backup sector is garbage: only the primary changes.
        let dev = MemDevice::new(64 * 512, 512);
        dev.write_at(0, &fat32_sector(1)).unwrap();
        let fix = fix_fat_hidden_sectors(&dev, 7).unwrap();
        assert_eq!(fix.backup_patched_at_sector, None);
        assert!(dev.snapshot()[3072..3584].iter().all(|&b| b == 0));
        let before = dev.snapshot();
        assert!(fix_fat_hidden_sectors(&dev, u64::MAX).is_err());
        assert_eq!(dev.snapshot(), before);
        assert!(fix_fat_hidden_sectors(&MemDevice::new(4096, 512), 1).is_err());
    }
}
