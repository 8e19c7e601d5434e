//! FAT boot sectors carry the partition's start LBA too (BPB_HiddSec, byte 28). Most
//! firmware ignores it, but DOS-era boot code and some tools (and fsck.fat's check
//! that the FAT32 backup boot sector matches) do not, so a restore that moved an ESP
//! or a FAT data partition sets it, in the primary boot sector and, on FAT32, in the
//! backup boot sector (BPB_BkBootSec, usually sector 6).

use super::{le_u16, le_u32, put, BootfixError};
use crate::device::BlockDevice;

pub const BYTES_PER_SECTOR_OFFSET: usize = 11;
pub const RESERVED_SECTORS_OFFSET: usize = 14;
pub const FAT_SIZE16_OFFSET: usize = 22;
pub const HIDDEN_SECTORS_OFFSET: usize = 28;
pub const FAT_SIZE32_OFFSET: usize = 36;
pub const BACKUP_BOOT_SECTOR_OFFSET: usize = 50;

/// The fields of a FAT boot sector this module cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FatBootGeometry {
    pub bytes_per_sector: u16,
    pub hidden_sectors: u32,
    pub reserved_sectors: u16,
    /// FAT32 (BPB_FATSz16 = 0): only FAT32 has a backup boot sector.
    pub fat32: bool,
    /// BPB_BkBootSec on FAT32 when it points inside the reserved area.
    pub backup_boot_sector: Option<u16>,
}

/// What `fix_fat_hidden_sectors` changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FatGeometryFix {
    pub old_hidden_sectors: u32,
    pub new_hidden_sectors: u32,
    /// The backup boot sector that was also patched (FAT32 only).
    pub backup_patched_at_sector: Option<u16>,
}

/// Parses and checks a FAT12/16/32 boot sector.
pub fn parse_fat_boot(sector: &[u8]) -> Result<FatBootGeometry, String> {
    let e = |e: BootfixError| e.to_string();
    match sector.first() {
        Some(0xEB) | Some(0xE9) => {}
        _ => return Err("no x86 jump at byte 0".into()),
    }
    if sector.get(510..512) != Some(&[0x55, 0xAA][..]) {
        return Err("no 0x55AA signature at byte 510".into());
    }
    let bytes_per_sector = le_u16(sector, BYTES_PER_SECTOR_OFFSET, "BPB_BytsPerSec").map_err(e)?;
    if !(512..=4096).contains(&bytes_per_sector) || !bytes_per_sector.is_power_of_two() {
        return Err(format!(
            "BPB_BytsPerSec {bytes_per_sector} is not 512..4096, power of two"
        ));
    }
    let spc = *sector.get(13).ok_or("truncated at BPB_SecPerClus")?;
    if spc == 0 || !spc.is_power_of_two() {
        return Err(format!("BPB_SecPerClus {spc} is not a power of two"));
    }
    let reserved_sectors = le_u16(sector, RESERVED_SECTORS_OFFSET, "BPB_RsvdSecCnt").map_err(e)?;
    if reserved_sectors == 0 {
        return Err("BPB_RsvdSecCnt is 0".into());
    }
    if sector.get(16).copied().unwrap_or(0) == 0 {
        return Err("BPB_NumFATs is 0".into());
    }
    let hidden_sectors = le_u32(sector, HIDDEN_SECTORS_OFFSET, "BPB_HiddSec").map_err(e)?;
    let fat32 = le_u16(sector, FAT_SIZE16_OFFSET, "BPB_FATSz16").map_err(e)? == 0;
    let backup_boot_sector = if fat32 {
        if le_u32(sector, FAT_SIZE32_OFFSET, "BPB_FATSz32").map_err(e)? == 0 {
            return Err("both BPB_FATSz16 and BPB_FATSz32 are 0".into());
        }
        let bk = le_u16(sector, BACKUP_BOOT_SECTOR_OFFSET, "BPB_BkBootSec").map_err(e)?;
        (bk != 0 && bk < reserved_sectors).then_some(bk)
    } else {
        None
    };
    Ok(FatBootGeometry {
        bytes_per_sector,
        hidden_sectors,
        reserved_sectors,
        fat32,
        backup_boot_sector,
    })
}

/// Sets BPB_HiddSec to `hidden_sectors` (the partition's new start LBA) in the boot
/// sector of `part` and, on FAT32, in its backup boot sector when that one is a valid
/// FAT boot sector. Writes nothing when the primary is not FAT or the value does not fit.
pub fn fix_fat_hidden_sectors(
    part: &dyn BlockDevice,
    hidden_sectors: u64,
) -> Result<FatGeometryFix, BootfixError> {
    let device = part.describe();
    let mut primary = part.read_vec(0, 512)?;
    let geo = parse_fat_boot(&primary).map_err(|why| BootfixError::NotRecognised {
        device: device.clone(),
        what: "FAT boot sector",
        lba: 0,
        why,
    })?;
    let new = u32::try_from(hidden_sectors).map_err(|_| BootfixError::BadField {
        device: device.clone(),
        what: "FAT boot sector",
        field: "BPB_HiddSec",
        value: hidden_sectors,
        why: "does not fit the 32-bit field".into(),
    })?;
    let mut backup = None;
    if let Some(bk) = geo.backup_boot_sector {
        let off = u64::from(bk) * u64::from(geo.bytes_per_sector);
        let sector = part.read_vec(off, 512)?;
        if parse_fat_boot(&sector).is_ok() {
            backup = Some((bk, off, sector));
        }
    }
    if let Some((_, off, mut sector)) = backup.clone() {
        put(
            &mut sector,
            HIDDEN_SECTORS_OFFSET,
            &new.to_le_bytes(),
            "BPB_HiddSec",
        )?;
        part.write_at(off, &sector)?;
    }
    put(
        &mut primary,
        HIDDEN_SECTORS_OFFSET,
        &new.to_le_bytes(),
        "BPB_HiddSec",
    )?;
    part.write_at(0, &primary)?;
    part.flush()?;
    Ok(FatGeometryFix {
        old_hidden_sectors: geo.hidden_sectors,
        new_hidden_sectors: new,
        backup_patched_at_sector: backup.map(|(bk, _, _)| bk),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    fn fat32_sector(hidden: u32) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        s[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
        s[11..13].copy_from_slice(&512u16.to_le_bytes());
        s[13] = 1;
        s[14..16].copy_from_slice(&32u16.to_le_bytes());
        s[16] = 2;
        s[28..32].copy_from_slice(&hidden.to_le_bytes());
        s[36..40].copy_from_slice(&1000u32.to_le_bytes());
        s[50..52].copy_from_slice(&6u16.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    fn fat16_sector(hidden: u32) -> Vec<u8> {
        let mut s = fat32_sector(hidden);
        s[14..16].copy_from_slice(&4u16.to_le_bytes());
        s[22..24].copy_from_slice(&100u16.to_le_bytes());
        s[36..40].copy_from_slice(&[0x80, 0, 0x29, 0]);
        s[50..52].copy_from_slice(&[0, 0]);
        s
    }

    #[test]
    fn parses_fat32_and_fat16() {
        let g = parse_fat_boot(&fat32_sector(2048)).unwrap();
        assert!(g.fat32);
        assert_eq!((g.hidden_sectors, g.backup_boot_sector), (2048, Some(6)));
        let g = parse_fat_boot(&fat16_sector(63)).unwrap();
        assert!(!g.fat32);
        assert_eq!((g.hidden_sectors, g.backup_boot_sector), (63, None));
        let mut bad = fat32_sector(1);
        bad[13] = 3;
        assert!(parse_fat_boot(&bad).is_err());
        let mut bad = fat32_sector(1);
        bad[36..40].copy_from_slice(&[0; 4]);
        assert!(parse_fat_boot(&bad).is_err());
        assert!(parse_fat_boot(&[0xEB; 30]).is_err());
        // A backup pointer outside the reserved area is ignored, not followed.
        let mut odd = fat32_sector(1);
        odd[50..52].copy_from_slice(&500u16.to_le_bytes());
        assert_eq!(parse_fat_boot(&odd).unwrap().backup_boot_sector, None);
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
        assert_eq!(parse_fat_boot(&img[..512]).unwrap().hidden_sectors, 40960);
        assert_eq!(
            parse_fat_boot(&img[3072..3584]).unwrap().hidden_sectors,
            40960
        );
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
