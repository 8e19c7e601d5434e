//! The classic MBR in the first 512 bytes of LBA 0: boot code (0..440), disk
//! signature (0x1B8), four 16-byte entries at 0x1BE and the 0x55AA marker. It is
//! also the shape of every EBR and of GPT's protective MBR, so entry parsing and
//! CHS encoding are shared from here.

use crate::bytes::{le32, put};
use serde::{Deserialize, Serialize};

pub const MBR_SIZE: usize = 512;
pub const BOOT_CODE_LEN: usize = 440;
pub const DISK_SIGNATURE_OFFSET: usize = 0x1B8;
pub const ENTRIES_OFFSET: usize = 0x1BE;
pub const ENTRY_LEN: usize = 16;
pub const BOOT_SIGNATURE_OFFSET: usize = 0x1FE;

pub const TYPE_EMPTY: u8 = 0x00;
pub const TYPE_GPT_PROTECTIVE: u8 = 0xEE;

/// Extended-partition container types (DOS CHS, LBA, Linux).
pub fn is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0F | 0x85)
}

/// One raw 16-byte MBR/EBR entry. Start and size are in sectors, relative to
/// whatever the containing structure says (absolute in the MBR, relative in EBRs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MbrEntry {
    pub status: u8,
    pub ptype: u8,
    pub start: u32,
    pub sectors: u32,
}

impl MbrEntry {
    pub fn is_empty(&self) -> bool {
        self.ptype == TYPE_EMPTY || self.sectors == 0
    }
    pub fn bootable(&self) -> bool {
        self.status == 0x80
    }

    fn parse(b: &[u8]) -> Option<Self> {
        Some(MbrEntry {
            status: *b.first()?,
            ptype: *b.get(4)?,
            start: le32(b, 8)?,
            sectors: le32(b, 12)?,
        })
    }

    /// The on-disk bytes; `abs_start` is the absolute LBA used for the CHS fields,
    /// which are always absolute even in EBRs.
    pub fn encode(&self, abs_start: u64) -> [u8; ENTRY_LEN] {
        let mut e = [0u8; ENTRY_LEN];
        if self.ptype == TYPE_EMPTY && self.sectors == 0 && self.start == 0 {
            return e;
        }
        e[0] = self.status;
        e[1..4].copy_from_slice(&lba_to_chs(abs_start));
        e[4] = self.ptype;
        let last = abs_start.saturating_add(u64::from(self.sectors).saturating_sub(1));
        e[5..8].copy_from_slice(&lba_to_chs(last));
        e[8..12].copy_from_slice(&self.start.to_le_bytes());
        e[12..16].copy_from_slice(&self.sectors.to_le_bytes());
        e
    }
}

/// A parsed MBR-shaped sector.
#[derive(Clone, Debug)]
pub struct MbrSector {
    pub disk_signature: u32,
    pub entries: [MbrEntry; 4],
    pub has_boot_signature: bool,
}

impl MbrSector {
    /// Parses the first 512 bytes of `sector`; `None` if it is shorter.
    pub fn parse(sector: &[u8]) -> Option<Self> {
        let b = sector.get(..MBR_SIZE)?;
        let mut entries = [MbrEntry {
            status: 0,
            ptype: 0,
            start: 0,
            sectors: 0,
        }; 4];
        for (i, e) in entries.iter_mut().enumerate() {
            let off = ENTRIES_OFFSET + i * ENTRY_LEN;
            *e = MbrEntry::parse(b.get(off..off + ENTRY_LEN)?)?;
        }
        Some(MbrSector {
            disk_signature: le32(b, DISK_SIGNATURE_OFFSET)?,
            entries,
            has_boot_signature: b.get(BOOT_SIGNATURE_OFFSET..MBR_SIZE)? == [0x55, 0xAA],
        })
    }

    /// True when a 0x55AA sector is really a filesystem boot sector (a "superfloppy"
    /// NTFS/FAT/exFAT volume without a table): its OEM name or FAT type string says
    /// so, or its entry area holds boot code, so the status bytes are not 0x00/0x80.
    pub fn looks_like_boot_sector(sector: &[u8]) -> bool {
        let oem = sector.get(3..11).unwrap_or(&[]);
        if oem == b"NTFS    " || oem == b"EXFAT   " {
            return true;
        }
        // FAT12/16 (BS_FilSysType at 0x36) and FAT32 (at 0x52): mkfs.fat leaves the
        // entry area zero, which would otherwise read as an empty MBR.
        let fat16 = sector.get(0x36..0x39) == Some(&b"FAT"[..]);
        let fat32 = sector.get(0x52..0x5A) == Some(&b"FAT32   "[..]);
        if fat16 || fat32 {
            return true;
        }
        (0..4).any(|i| {
            let s = sector
                .get(ENTRIES_OFFSET + i * ENTRY_LEN)
                .copied()
                .unwrap_or(0);
            s != 0 && s != 0x80
        })
    }
}

/// Writes the four entries, the signature and 0x55AA into `sector` (at least 512
/// bytes), leaving the boot code alone. `abs_base` turns relative starts into the
/// absolute LBAs the CHS fields want.
pub fn write_entries(sector: &mut [u8], entries: &[MbrEntry; 4], abs_base: &[u64; 4]) -> bool {
    let mut ok = true;
    for (i, e) in entries.iter().enumerate() {
        ok &= put(
            sector,
            ENTRIES_OFFSET + i * ENTRY_LEN,
            &e.encode(abs_base[i]),
        );
    }
    ok & put(sector, BOOT_SIGNATURE_OFFSET, &[0x55, 0xAA])
}

/// Sets the disk signature at 0x1B8 and clears the two reserved bytes after it.
pub fn write_signature(sector: &mut [u8], sig: u32) -> bool {
    put(sector, DISK_SIGNATURE_OFFSET, &sig.to_le_bytes()) & put(sector, 0x1BC, &[0, 0])
}

/// LBA to the legacy 3-byte CHS with the usual 255 heads x 63 sectors geometry;
/// anything past cylinder 1023 saturates to FE FF FF as every modern tool writes.
pub fn lba_to_chs(lba: u64) -> [u8; 3] {
    const HEADS: u64 = 255;
    const SECTORS: u64 = 63;
    let cyl = lba / (HEADS * SECTORS);
    if cyl > 1023 {
        return [0xFE, 0xFF, 0xFF];
    }
    let head = (lba / SECTORS) % HEADS;
    let sector = lba % SECTORS + 1;
    [
        head as u8,
        (sector as u8) | (((cyl >> 2) & 0xC0) as u8),
        (cyl & 0xFF) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_known_values() {
        assert_eq!(lba_to_chs(0), [0, 1, 0]);
        assert_eq!(lba_to_chs(1), [0, 2, 0]);
        assert_eq!(lba_to_chs(2048), [32, 33, 0]);
        assert_eq!(lba_to_chs(1 << 40), [0xFE, 0xFF, 0xFF]);
    }

    #[test]
    fn entry_round_trip() {
        let e = MbrEntry {
            status: 0x80,
            ptype: 0x83,
            start: 2048,
            sectors: 4096,
        };
        let mut s = vec![0u8; 512];
        let mut arr = [MbrEntry {
            status: 0,
            ptype: 0,
            start: 0,
            sectors: 0,
        }; 4];
        arr[0] = e;
        assert!(write_entries(&mut s, &arr, &[2048, 0, 0, 0]));
        let p = MbrSector::parse(&s).unwrap();
        assert!(p.has_boot_signature);
        assert_eq!(p.entries[0], e);
    }
}
