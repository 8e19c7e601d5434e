//! NTFS keeps its partition's start LBA in the boot sector ("hidden sectors", 0x1C),
//! and Windows' boot code uses it to find the volume: a partition restored to another
//! start with a stale value stops Windows with BCD error 0xc0000225. ntfsresize fixes
//! the total sectors (0x28) and the backup boot sector but not 0x1C, so the restore
//! sets it here, in the primary and in the backup boot sector (the copy of sector 0 at
//! sector `total_sectors`, just past the volume, which partclone#69 used to drop).

use super::{le_u16, le_u32, le_u64, put, BootfixError};
use crate::device::BlockDevice;

const OEM_ID: &[u8; 8] = b"NTFS    ";
pub const BYTES_PER_SECTOR_OFFSET: usize = 0x0B;
pub const HIDDEN_SECTORS_OFFSET: usize = 0x1C;
pub const TOTAL_SECTORS_OFFSET: usize = 0x28;

/// The fields of an NTFS boot sector this module cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtfsBootGeometry {
    pub bytes_per_sector: u16,
    pub hidden_sectors: u32,
    pub total_sectors: u64,
}

/// What `fix_ntfs_geometry` changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NtfsGeometryFix {
    pub old: NtfsBootGeometry,
    pub new: NtfsBootGeometry,
    /// Byte offset (inside the partition) where the backup boot sector was written.
    pub backup_offset: u64,
    /// Whether a valid backup boot sector was found before the fix.
    pub backup_was_present: bool,
}

/// Parses and checks an NTFS boot sector (at least 512 bytes).
pub fn parse_ntfs_boot(sector: &[u8]) -> Result<NtfsBootGeometry, String> {
    if sector.get(3..11) != Some(&OEM_ID[..]) {
        return Err("no \"NTFS    \" OEM ID at byte 3".into());
    }
    if sector.get(510..512) != Some(&[0x55, 0xAA][..]) {
        return Err("no 0x55AA signature at byte 510".into());
    }
    let bytes_per_sector =
        le_u16(sector, BYTES_PER_SECTOR_OFFSET, "bytes_per_sector").map_err(|e| e.to_string())?;
    if !(256..=4096).contains(&bytes_per_sector) || !bytes_per_sector.is_power_of_two() {
        return Err(format!(
            "bytes_per_sector {bytes_per_sector} is not 256..4096, power of two"
        ));
    }
    let hidden_sectors =
        le_u32(sector, HIDDEN_SECTORS_OFFSET, "hidden_sectors").map_err(|e| e.to_string())?;
    let total_sectors =
        le_u64(sector, TOTAL_SECTORS_OFFSET, "total_sectors").map_err(|e| e.to_string())?;
    if total_sectors == 0 {
        return Err("total_sectors is 0".into());
    }
    Ok(NtfsBootGeometry {
        bytes_per_sector,
        hidden_sectors,
        total_sectors,
    })
}

/// Sets hidden sectors to `hidden_sectors` (the partition's new start LBA) and, when
/// given, total sectors (only after the volume itself was resized, e.g. by
/// ntfsresize), in the primary boot sector and in the backup at sector
/// `total_sectors`. `part` is the partition (a `Window` on the disk). Writes nothing
/// when the primary boot sector is not NTFS or a value does not fit.
pub fn fix_ntfs_geometry(
    part: &dyn BlockDevice,
    hidden_sectors: u64,
    total_sectors: Option<u64>,
) -> Result<NtfsGeometryFix, BootfixError> {
    let device = part.describe();
    let first = part.read_vec(0, 512)?;
    let old = parse_ntfs_boot(&first).map_err(|why| BootfixError::NotRecognised {
        device: device.clone(),
        what: "NTFS boot sector",
        lba: 0,
        why,
    })?;
    let bps = u64::from(old.bytes_per_sector);
    let mut primary = part.read_vec(0, usize::from(old.bytes_per_sector))?;

    let new_hidden = u32::try_from(hidden_sectors).map_err(|_| BootfixError::BadField {
        device: device.clone(),
        what: "NTFS boot sector",
        field: "hidden_sectors",
        value: hidden_sectors,
        why: "does not fit the 32-bit field".into(),
    })?;
    let new_total = total_sectors.unwrap_or(old.total_sectors);
    let backup_offset = new_total.checked_mul(bps).ok_or(BootfixError::Overflow {
        what: "NTFS backup boot sector offset",
        a: new_total,
        b: bps,
    })?;
    if new_total == 0
        || backup_offset
            .checked_add(bps)
            .map_or(true, |end| end > part.size())
    {
        return Err(BootfixError::BadField {
            device,
            what: "NTFS boot sector",
            field: "total_sectors",
            value: new_total,
            why: format!(
                "the backup boot sector at byte {backup_offset} does not fit the {}-byte partition",
                part.size()
            ),
        });
    }
    let old_backup_offset = old.total_sectors.checked_mul(bps);
    let backup_was_present = match old_backup_offset {
        Some(off) if off.checked_add(bps).is_some_and(|end| end <= part.size()) => {
            parse_ntfs_boot(&part.read_vec(off, usize::from(old.bytes_per_sector))?).is_ok()
        }
        _ => false,
    };

    put(
        &mut primary,
        HIDDEN_SECTORS_OFFSET,
        &new_hidden.to_le_bytes(),
        "hidden_sectors",
    )?;
    put(
        &mut primary,
        TOTAL_SECTORS_OFFSET,
        &new_total.to_le_bytes(),
        "total_sectors",
    )?;
    // Backup first: if we stop half way, the primary still describes the old state
    // consistently and the repair can simply run again.
    part.write_at(backup_offset, &primary)?;
    // ntfsresize rounds the volume down to whole clusters and keeps its backup in the
    // partition's last sector, which is also where ntfsfix and Windows look for it;
    // a stale copy there (old hidden sectors) reads as a damaged alternate boot sector.
    let last = (part.size() / bps)
        .checked_sub(1)
        .and_then(|s| s.checked_mul(bps));
    if let Some(last) = last.filter(|&l| l != backup_offset && l > backup_offset) {
        part.write_at(last, &primary)?;
    }
    part.write_at(0, &primary)?;
    part.flush()?;
    Ok(NtfsGeometryFix {
        old,
        new: NtfsBootGeometry {
            hidden_sectors: new_hidden,
            total_sectors: new_total,
            ..old
        },
        backup_offset,
        backup_was_present,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{MemDevice, Window};
    use std::sync::Arc;

    fn boot_sector(hidden: u32, total: u64) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        s[0..3].copy_from_slice(&[0xEB, 0x52, 0x90]);
        s[3..11].copy_from_slice(OEM_ID);
        s[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        s[0x0D] = 8;
        s[0x1C..0x20].copy_from_slice(&hidden.to_le_bytes());
        s[0x28..0x30].copy_from_slice(&total.to_le_bytes());
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    #[test]
    fn parses_and_rejects() {
        let g = parse_ntfs_boot(&boot_sector(2048, 1000)).unwrap();
        assert_eq!(
            (g.bytes_per_sector, g.hidden_sectors, g.total_sectors),
            (512, 2048, 1000)
        );
        let mut bad = boot_sector(2048, 1000);
        bad[3] = b'X';
        assert!(parse_ntfs_boot(&bad).is_err());
        let mut bad = boot_sector(2048, 0);
        assert!(parse_ntfs_boot(&bad).is_err());
        bad = boot_sector(2048, 10);
        bad[0x0B] = 3;
        assert!(parse_ntfs_boot(&bad).is_err());
        assert!(parse_ntfs_boot(&[0u8; 20]).is_err());
    }

    #[test]
    fn sets_primary_and_backup_on_a_partition_window() {
        // Partition at LBA 100 of a disk, 1001 sectors: volume 1000 sectors + backup.
        let disk = Arc::new(MemDevice::new(2048 * 512, 512));
        disk.write_at(100 * 512, &boot_sector(63, 1000)).unwrap();
        disk.write_at((100 + 1000) * 512, &boot_sector(63, 1000))
            .unwrap();
        let part = Window::new(disk.clone(), 100 * 512, 1001 * 512).unwrap();
        let fix = fix_ntfs_geometry(&part, 100, None).unwrap();
        assert!(fix.backup_was_present);
        assert_eq!(fix.old.hidden_sectors, 63);
        assert_eq!(fix.new.hidden_sectors, 100);
        assert_eq!(fix.backup_offset, 1000 * 512);
        let img = disk.snapshot();
        for at in [100 * 512, 1100 * 512] {
            let g = parse_ntfs_boot(&img[at..at + 512]).unwrap();
            assert_eq!((g.hidden_sectors, g.total_sectors), (100, 1000));
        }
    }

    #[test]
    fn writes_missing_backup_and_new_total() {
        let disk = MemDevice::new(4000 * 512, 512);
        disk.write_at(0, &boot_sector(2048, 1000)).unwrap();
        let fix = fix_ntfs_geometry(&disk, 4096, Some(3999)).unwrap();
        assert!(!fix.backup_was_present);
        let img = disk.snapshot();
        let b = parse_ntfs_boot(&img[3999 * 512..4000 * 512]).unwrap();
        assert_eq!((b.hidden_sectors, b.total_sectors), (4096, 3999));
        assert_eq!(&img[..512], &img[3999 * 512..4000 * 512]);
    }

    #[test]
    fn refuses_without_writing() {
        let disk = MemDevice::new(1000 * 512, 512);
        disk.write_at(0, &boot_sector(2048, 999)).unwrap();
        let before = disk.snapshot();
        assert!(
            fix_ntfs_geometry(&disk, 1 << 33, None).is_err(),
            "hidden > u32"
        );
        assert!(
            fix_ntfs_geometry(&disk, 5, Some(1000)).is_err(),
            "backup past the end"
        );
        assert!(
            fix_ntfs_geometry(&disk, 5, Some(u64::MAX)).is_err(),
            "overflow"
        );
        assert_eq!(disk.snapshot(), before);
        let empty = MemDevice::new(1000 * 512, 512);
        assert!(matches!(
            fix_ntfs_geometry(&empty, 5, None),
            Err(BootfixError::NotRecognised { .. })
        ));
    }
}
