//! GRUB for BIOS finds its core.img by absolute sector numbers, not by partition: the
//! MBR code (boot.img) holds `kernel_sector`, the LBA of core.img's first sector
//! (diskboot.img), and diskboot holds a blocklist of absolute LBAs for the rest of
//! core.img. A restore that puts the BIOS-boot partition (or the post-MBR gap's
//! contents) at another LBA must shift all of them by the same delta, or the machine
//! stops at "GRUB " with nothing after it. Layout from GRUB's boot.S/diskboot.S and
//! grub-bios-setup (util/setup.c).

use super::{le_u16, le_u64, put, BootfixError};
use crate::device::BlockDevice;

/// GRUB's boot.img and diskboot.img are written for 512-byte sectors.
pub const SECTOR: usize = 512;
/// boot.img: `kernel_sector` (u64), absolute LBA of core.img's first sector.
pub const KERNEL_SECTOR_OFFSET: usize = 0x5C;
/// boot.img: the first instruction, `jmp after_BPB` (EB 63) followed by NOP.
const BOOT_IMG_JUMP: [u8; 3] = [0xEB, 0x63, 0x90];
/// boot.img's message table starts with this string ("GRUB \0Geom\0...").
const BOOT_IMG_NOTIFICATION: &[u8] = b"GRUB \0";
/// diskboot.img: first blocklist entry (12 bytes), further entries grow downward.
pub const FIRST_BLOCKLIST_OFFSET: usize = 0x1F4;
pub const BLOCKLIST_ENTRY_SIZE: usize = 12;
/// diskboot's code and strings end below this; entries may not reach into them.
const BLOCKLIST_LOWEST_OFFSET: usize = 0x150;
/// diskboot.img begins with `push %dx; push %si; mov $imm16, %si`.
const DISKBOOT_START: [u8; 3] = [0x52, 0x56, 0xBE];
const DISKBOOT_STRING: &[u8] = b"loading\0";

/// What boot.img in an MBR says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootImg {
    /// Absolute LBA of core.img's first sector.
    pub kernel_sector: u64,
}

/// One diskboot blocklist entry: `len` sectors from absolute LBA `start`, loaded at
/// real-mode segment `segment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlocklistEntry {
    /// Byte offset of the entry inside diskboot's sector.
    pub offset: usize,
    pub start: u64,
    pub len: u16,
    pub segment: u16,
}

/// What `relocate_core` changed, for the restore's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relocation {
    pub old_kernel_sector: u64,
    pub new_kernel_sector: u64,
    /// (old start, new start, length) for each blocklist entry.
    pub blocklist: Vec<(u64, u64, u16)>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Recognises GRUB's boot.img in an MBR sector, returning `None` for any other boot code.
pub fn detect_boot_img(mbr: &[u8]) -> Option<BootImg> {
    let code = mbr.get(..0x1B8)?;
    if code.get(..3)? != BOOT_IMG_JUMP || mbr.get(510..512)? != [0x55, 0xAA] {
        return None;
    }
    if !contains(code.get(0x65..)?, BOOT_IMG_NOTIFICATION) {
        return None;
    }
    let kernel_sector = le_u64(mbr, KERNEL_SECTOR_OFFSET, "kernel_sector").ok()?;
    Some(BootImg { kernel_sector })
}

/// True when `sector` looks like GRUB's diskboot.img (core.img's first sector).
pub fn is_diskboot(sector: &[u8]) -> bool {
    sector.len() >= SECTOR
        && sector.get(..3) == Some(&DISKBOOT_START[..])
        && sector
            .get(..BLOCKLIST_LOWEST_OFFSET)
            .is_some_and(|code| contains(code, DISKBOOT_STRING))
}

/// Reads diskboot's blocklist: entries from 0x1F4 downward until one of length 0.
/// Refuses a list with no terminator inside the list area, or whose entries overlap
/// each other's sectors or start at LBA 0 (that is the MBR).
pub fn read_blocklist(sector: &[u8]) -> Result<Vec<BlocklistEntry>, String> {
    let mut out = Vec::new();
    let mut offset = FIRST_BLOCKLIST_OFFSET;
    loop {
        let start = le_u64(sector, offset, "blocklist start").map_err(|e| e.to_string())?;
        let len = le_u16(sector, offset + 8, "blocklist len").map_err(|e| e.to_string())?;
        let segment =
            le_u16(sector, offset + 10, "blocklist segment").map_err(|e| e.to_string())?;
        if len == 0 {
            break;
        }
        if start == 0 {
            return Err(format!("entry at 0x{offset:X} starts at LBA 0 (the MBR)"));
        }
        start
            .checked_add(u64::from(len))
            .ok_or_else(|| format!("entry at 0x{offset:X}: LBA {start} + {len} overflows"))?;
        out.push(BlocklistEntry {
            offset,
            start,
            len,
            segment,
        });
        offset = match offset.checked_sub(BLOCKLIST_ENTRY_SIZE) {
            Some(o) if o >= BLOCKLIST_LOWEST_OFFSET => o,
            _ => return Err("no terminating entry in the blocklist area".into()),
        };
    }
    if out.is_empty() {
        return Err("the first blocklist entry has length 0 (core.img not installed)".into());
    }
    for (i, a) in out.iter().enumerate() {
        for b in out.iter().skip(i + 1) {
            let a_end = a.start + u64::from(a.len);
            let b_end = b.start + u64::from(b.len);
            if a.start < b_end && b.start < a_end {
                return Err(format!(
                    "entries at 0x{:X} and 0x{:X} overlap (LBA {}+{} and {}+{})",
                    a.offset, b.offset, a.start, a.len, b.start, b.len
                ));
            }
        }
    }
    Ok(out)
}

/// Total sectors of core.img according to its blocklist (the first sector plus every entry).
pub fn core_sectors(entries: &[BlocklistEntry]) -> u64 {
    1 + entries.iter().map(|e| u64::from(e.len)).sum::<u64>()
}

fn shift(v: u64, old: u64, new: u64) -> Result<u64, BootfixError> {
    let of = |_| BootfixError::Overflow {
        what: "relocated LBA",
        a: v,
        b: new,
    };
    if new >= old {
        v.checked_add(new - old).ok_or(()).map_err(of)
    } else {
        v.checked_sub(old - new).ok_or(()).map_err(of)
    }
}

/// Shifts every blocklist start in a diskboot sector from `old_lba` to `new_lba`
/// (core.img's first sector moved from one to the other). Every entry must lie after
/// `old_lba`, which is where grub-bios-setup puts them.
pub fn patch_blocklist(
    sector: &mut [u8],
    old_lba: u64,
    new_lba: u64,
    device: &str,
) -> Result<Vec<(u64, u64, u16)>, BootfixError> {
    let entries = read_blocklist(sector).map_err(|why| BootfixError::NotRecognised {
        device: device.to_string(),
        what: "GRUB diskboot blocklist",
        lba: new_lba,
        why,
    })?;
    let mut changes = Vec::with_capacity(entries.len());
    for e in &entries {
        if e.start <= old_lba {
            return Err(BootfixError::BadField {
                device: device.to_string(),
                what: "GRUB diskboot blocklist",
                field: "start",
                value: e.start,
                why: format!(
                    "entry at 0x{:X} is not after core.img's first sector {old_lba}",
                    e.offset
                ),
            });
        }
        let moved = shift(e.start, old_lba, new_lba)?;
        put(sector, e.offset, &moved.to_le_bytes(), "blocklist start")?;
        changes.push((e.start, moved, e.len));
    }
    Ok(changes)
}

/// Where GRUB's core.img sits on a disk, from boot.img and diskboot's blocklist: what
/// a backup must copy (besides the partitions) and what a restore must move together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreLocation {
    pub first_lba: u64,
    pub blocklist: Vec<BlocklistEntry>,
    /// Sectors from `first_lba` through the end of the last blocklist entry.
    pub span_sectors: u64,
}

/// Finds core.img through the MBR's boot.img; `None` when the MBR is not GRUB's.
pub fn locate_core(dev: &dyn BlockDevice) -> Result<Option<CoreLocation>, BootfixError> {
    let Some(boot) = read_boot_img(dev)? else {
        return Ok(None);
    };
    let blocklist = read_core_blocklist(dev, boot.kernel_sector)?;
    let mut last = boot.kernel_sector;
    for e in &blocklist {
        let end = e
            .start
            .checked_add(u64::from(e.len))
            .ok_or(BootfixError::Overflow {
                what: "blocklist end",
                a: e.start,
                b: u64::from(e.len),
            })?;
        last = last.max(end.saturating_sub(1));
    }
    let span_sectors = last - boot.kernel_sector + 1;
    let bytes = span_sectors
        .checked_mul(SECTOR as u64)
        .ok_or(BootfixError::Overflow {
            what: "core.img span",
            a: span_sectors,
            b: SECTOR as u64,
        })?;
    dev.check_range(sector_offset(dev, boot.kernel_sector)?, bytes)?;
    Ok(Some(CoreLocation {
        first_lba: boot.kernel_sector,
        blocklist,
        span_sectors,
    }))
}

/// Reads boot.img from LBA 0 of `dev`.
pub fn read_boot_img(dev: &dyn BlockDevice) -> Result<Option<BootImg>, BootfixError> {
    let mbr = dev.read_vec(0, SECTOR)?;
    Ok(detect_boot_img(&mbr))
}

/// Reads core.img's blocklist from its first sector at `lba`.
pub fn read_core_blocklist(
    dev: &dyn BlockDevice,
    lba: u64,
) -> Result<Vec<BlocklistEntry>, BootfixError> {
    let sector = read_diskboot(dev, lba)?;
    read_blocklist(&sector).map_err(|why| BootfixError::NotRecognised {
        device: dev.describe(),
        what: "GRUB diskboot blocklist",
        lba,
        why,
    })
}

fn sector_offset(dev: &dyn BlockDevice, lba: u64) -> Result<u64, BootfixError> {
    if dev.logical_sector_size() as usize != SECTOR {
        return Err(BootfixError::Refused {
            device: dev.describe(),
            what: "GRUB BIOS repair",
            why: format!(
                "logical sector size is {}, GRUB's boot.img needs 512",
                dev.logical_sector_size()
            ),
        });
    }
    lba.checked_mul(SECTOR as u64)
        .ok_or(BootfixError::Overflow {
            what: "byte offset of LBA",
            a: lba,
            b: SECTOR as u64,
        })
}

fn read_diskboot(dev: &dyn BlockDevice, lba: u64) -> Result<Vec<u8>, BootfixError> {
    let sector = dev.read_vec(sector_offset(dev, lba)?, SECTOR)?;
    if !is_diskboot(&sector) {
        return Err(BootfixError::NotRecognised {
            device: dev.describe(),
            what: "GRUB diskboot.img (core.img's first sector)",
            lba,
            why: "signature not found".into(),
        });
    }
    Ok(sector)
}

/// Makes GRUB boot after core.img was moved from `old_lba` to `new_lba` (its bytes
/// are already at `new_lba`): sets boot.img's `kernel_sector` and shifts the
/// blocklist. Refuses, writing nothing, unless the MBR holds GRUB's boot.img pointing
/// at `old_lba` and `new_lba` holds a well-formed diskboot whose blocklist fits in
/// the device.
pub fn relocate_core(
    dev: &dyn BlockDevice,
    old_lba: u64,
    new_lba: u64,
) -> Result<Relocation, BootfixError> {
    let device = dev.describe();
    let mbr = dev.read_vec(0, SECTOR)?;
    let boot = detect_boot_img(&mbr).ok_or_else(|| BootfixError::NotRecognised {
        device: device.clone(),
        what: "GRUB boot.img",
        lba: 0,
        why: "the MBR boot code is not GRUB's".into(),
    })?;
    if boot.kernel_sector == new_lba && old_lba != new_lba {
        // Already relocated (a repeated repair): shifting again would break it.
        let entries = read_core_blocklist(dev, new_lba)?;
        if entries.first().map(|e| e.start) == new_lba.checked_add(1) {
            return Ok(Relocation {
                old_kernel_sector: new_lba,
                new_kernel_sector: new_lba,
                blocklist: entries.iter().map(|e| (e.start, e.start, e.len)).collect(),
            });
        }
    }
    if boot.kernel_sector != old_lba {
        return Err(BootfixError::BadField {
            device,
            what: "GRUB boot.img",
            field: "kernel_sector",
            value: boot.kernel_sector,
            why: format!("expected the old core.img LBA {old_lba}"),
        });
    }
    let core_off = sector_offset(dev, new_lba)?;
    let mut sector = read_diskboot(dev, new_lba)?;
    let blocklist = patch_blocklist(&mut sector, old_lba, new_lba, &device)?;
    for &(_, start, len) in &blocklist {
        let end = start
            .checked_add(u64::from(len))
            .ok_or(BootfixError::Overflow {
                what: "blocklist end",
                a: start,
                b: u64::from(len),
            })?;
        dev.check_range(sector_offset(dev, start)?, u64::from(len) * SECTOR as u64)
            .map_err(|_| BootfixError::BadField {
                device: device.clone(),
                what: "GRUB diskboot blocklist",
                field: "start",
                value: start,
                why: format!("relocated entry ends at LBA {end}, past the device"),
            })?;
    }
    dev.write_at(core_off, &sector)?;
    dev.write_at(KERNEL_SECTOR_OFFSET as u64, &new_lba.to_le_bytes())?;
    dev.flush()?;
    Ok(Relocation {
        old_kernel_sector: boot.kernel_sector,
        new_kernel_sector: new_lba,
        blocklist,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDevice;

    /// A boot.img-like MBR: GRUB's jump, its message table, kernel_sector, 0x55AA.
    fn mbr(kernel_sector: u64) -> Vec<u8> {
        let mut s = vec![0u8; SECTOR];
        s[..3].copy_from_slice(&BOOT_IMG_JUMP);
        s[0x180..0x186].copy_from_slice(b"GRUB \0");
        s[KERNEL_SECTOR_OFFSET..KERNEL_SECTOR_OFFSET + 8]
            .copy_from_slice(&kernel_sector.to_le_bytes());
        s[0x1BE] = 0x00;
        s[0x1C2] = 0xEE;
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    /// A diskboot-like sector with the given blocklist entries (start, len).
    fn diskboot(entries: &[(u64, u16)]) -> Vec<u8> {
        let mut s = vec![0u8; SECTOR];
        s[..3].copy_from_slice(&DISKBOOT_START);
        s[0x11B..0x123].copy_from_slice(b"loading\0");
        let mut off = FIRST_BLOCKLIST_OFFSET;
        for &(start, len) in entries {
            s[off..off + 8].copy_from_slice(&start.to_le_bytes());
            s[off + 8..off + 10].copy_from_slice(&len.to_le_bytes());
            s[off + 10..off + 12].copy_from_slice(&0x820u16.to_le_bytes());
            off -= BLOCKLIST_ENTRY_SIZE;
        }
        s
    }

    #[test]
    fn detects_real_boot_img_bytes_only() {
        assert_eq!(
            detect_boot_img(&mbr(2048)),
            Some(BootImg {
                kernel_sector: 2048
            })
        );
        let mut other = mbr(2048);
        other[1] = 0x3C; // a FAT/other jump
        assert_eq!(detect_boot_img(&other), None);
        let mut no_sig = mbr(1);
        no_sig[511] = 0;
        assert_eq!(detect_boot_img(&no_sig), None);
        assert_eq!(detect_boot_img(&[0xEB; 100]), None);
    }

    #[test]
    fn reads_and_bounds_blocklist() {
        let s = diskboot(&[(2049, 300)]);
        assert!(is_diskboot(&s));
        let l = read_blocklist(&s).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!((l[0].start, l[0].len, l[0].segment), (2049, 300, 0x820));
        assert_eq!(core_sectors(&l), 301);
        assert!(read_blocklist(&diskboot(&[])).is_err());
        assert!(read_blocklist(&diskboot(&[(0, 5)])).is_err());
        assert!(
            read_blocklist(&diskboot(&[(10, 5), (12, 5)])).is_err(),
            "overlap"
        );
        // A list that never terminates runs into diskboot's code: refused.
        let mut full = diskboot(&[]);
        let mut off = FIRST_BLOCKLIST_OFFSET;
        while off >= BLOCKLIST_LOWEST_OFFSET {
            full[off..off + 8].copy_from_slice(&(1000 + off as u64 * 10).to_le_bytes());
            full[off + 8..off + 10].copy_from_slice(&1u16.to_le_bytes());
            off -= BLOCKLIST_ENTRY_SIZE;
        }
        assert!(read_blocklist(&full).is_err());
        assert!(read_blocklist(&[0u8; 10]).is_err());
    }

    fn disk_with_core(boot_lba: u64, core_lba: u64, entries: &[(u64, u16)]) -> MemDevice {
        let dev = MemDevice::new(8 << 20, 512);
        dev.write_at(0, &mbr(boot_lba)).unwrap();
        dev.write_at(core_lba * 512, &diskboot(entries)).unwrap();
        dev
    }

    #[test]
    fn relocates_down_and_up() {
        let dev = disk_with_core(2048, 1024, &[(2049, 300), (4000, 10)]);
        let r = relocate_core(&dev, 2048, 1024).unwrap();
        assert_eq!(r.new_kernel_sector, 1024);
        assert_eq!(r.blocklist, vec![(2049, 1025, 300), (4000, 2976, 10)]);
        assert_eq!(
            read_boot_img(&dev).unwrap(),
            Some(BootImg {
                kernel_sector: 1024
            })
        );
        let l = read_core_blocklist(&dev, 1024).unwrap();
        assert_eq!((l[0].start, l[1].start), (1025, 2976));
        // Running the repair again changes nothing.
        let again = relocate_core(&dev, 2048, 1024).unwrap();
        assert_eq!(again.blocklist, vec![(1025, 1025, 300), (2976, 2976, 10)]);
        assert_eq!(read_core_blocklist(&dev, 1024).unwrap()[0].start, 1025);

        let up = disk_with_core(1, 4096, &[(2, 400)]);
        let r = relocate_core(&up, 1, 4096).unwrap();
        assert_eq!(r.blocklist, vec![(2, 4097, 400)]);
    }

    #[test]
    fn locates_core_in_the_gap() {
        let dev = disk_with_core(1, 1, &[(2, 307)]);
        let loc = locate_core(&dev).unwrap().unwrap();
        assert_eq!((loc.first_lba, loc.span_sectors), (1, 308));
        assert_eq!(locate_core(&MemDevice::new(4096, 512)).unwrap(), None);
        // A blocklist running off the disk is an error, not a huge copy.
        let dev = disk_with_core(1, 1, &[(16380, 300)]);
        assert!(locate_core(&dev).is_err());
    }

    #[test]
    fn refuses_without_writing() {
        // Not GRUB in the MBR.
        let dev = disk_with_core(2048, 1024, &[(2049, 300)]);
        dev.write_at(0, &[0u8; 3]).unwrap();
        let before = dev.snapshot();
        assert!(relocate_core(&dev, 2048, 1024).is_err());
        assert_eq!(dev.snapshot(), before);
        // kernel_sector points somewhere else.
        let dev = disk_with_core(77, 1024, &[(2049, 300)]);
        let before = dev.snapshot();
        assert!(matches!(
            relocate_core(&dev, 2048, 1024),
            Err(BootfixError::BadField { .. })
        ));
        assert_eq!(dev.snapshot(), before);
        // No diskboot at the new place.
        let dev = disk_with_core(2048, 1024, &[(2049, 300)]);
        let before = dev.snapshot();
        assert!(relocate_core(&dev, 2048, 1500).is_err());
        assert_eq!(dev.snapshot(), before);
        // A blocklist entry before the old first sector is not GRUB's layout.
        let dev = disk_with_core(2048, 1024, &[(100, 3)]);
        assert!(relocate_core(&dev, 2048, 1024).is_err());
        // Relocated list would run past the end of the device.
        let dev = disk_with_core(1, 16000, &[(2, 400)]);
        let before = dev.snapshot();
        assert!(relocate_core(&dev, 1, 16000).is_err());
        assert_eq!(dev.snapshot(), before);
        // Overflow is an error, not a wrap.
        let mut s = diskboot(&[(u64::MAX - 5, 3)]);
        assert!(patch_blocklist(&mut s, 1, 100, "mem").is_err());
    }

    #[test]
    fn read_only_device_is_refused() {
        let dev = disk_with_core(2048, 1024, &[(2049, 300)]).read_only();
        assert!(matches!(
            relocate_core(&dev, 2048, 1024),
            Err(BootfixError::Device(_))
        ));
    }
}
