//! The FAT boot sector and its BIOS Parameter Block: the layout of the reserved area,
//! the FATs, the FAT12/16 root directory and the data region; the FAT type; the
//! volume serial and label of the extended boot record.
//!
//! The type follows Linux (`fat_read_bpb`) and `fsck.fat`: FAT32 when `BPB_FATSz16`
//! is 0, otherwise FAT12 below 4085 clusters and FAT16 above. The specification's
//! rule (by cluster count alone) disagrees only for a FAT32 with fewer than 65525
//! clusters, which `mkfs.fat -F 32` makes on small partitions with a warning; its
//! FAT holds 32-bit entries and its root directory is a cluster chain, so reading it
//! as FAT16 would map the wrong clusters. `BS_FilSysType` is never trusted.

use crate::bytes::{array, le16, le32, u8_at};
use thiserror::Error;

/// The bytes of a boot sector that the BPB and the signature word span.
pub const LEN: usize = 512;

const BS_JMP_BOOT: usize = 0;
const BPB_BYTS_PER_SEC: usize = 11;
const BPB_SEC_PER_CLUS: usize = 13;
const BPB_RSVD_SEC_CNT: usize = 14;
const BPB_NUM_FATS: usize = 16;
const BPB_ROOT_ENT_CNT: usize = 17;
const BPB_TOT_SEC16: usize = 19;
const BPB_MEDIA: usize = 21;
const BPB_FAT_SZ16: usize = 22;
/// The partition's start LBA: boot repair rewrites it when a partition moved.
pub const BPB_HIDD_SEC: usize = 28;
const BPB_TOT_SEC32: usize = 32;
const BPB_FAT_SZ32: usize = 36;
const BPB_ROOT_CLUS: usize = 44;
const BPB_FS_INFO: usize = 48;
const BPB_BK_BOOT_SEC: usize = 50;
/// `BS_BootSig`: the extended boot record sits after the FAT32-only fields on FAT32.
const BS_BOOT_SIG_FAT16: usize = 38;
const BS_BOOT_SIG_FAT32: usize = 66;
/// `BS_VolID` and `BS_VolLab`, after `BS_BootSig`.
const VOL_ID_AFTER_SIG: usize = 1;
const VOL_LAB_AFTER_SIG: usize = 5;
const EXTENDED_BOOT_SIGNATURE: u8 = 0x29;
const SIGNATURE_WORD: usize = 510;

/// How much a caller trusts the sector before it is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Telling a FAT volume apart from any other bytes (probing every disk the live
    /// system sees): the x86 jump, a media byte the spec allows and at most four FATs
    /// are required, because "0xEB + 0x55AA" alone matches many MBRs. The 0x55AA
    /// signature is not (the probe never required it; Linux mounts without it).
    Identify,
    /// Reading the FAT or writing the sector (imaging, primary rebuild, boot repair):
    /// the 0x55AA signature, a cluster count the type can address and a FAT with an
    /// entry for every cluster are required, since the layout is followed on disk.
    Trust,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

impl FatType {
    /// Bits per FAT entry.
    pub fn entry_bits(self) -> u64 {
        match self {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        }
    }

    /// The most clusters the type can number: the entries above are reserved
    /// (0xFF7/0xFFF7/0x0FFFFFF7 bad and up end of chain).
    fn max_clusters(self) -> u64 {
        match self {
            FatType::Fat12 => 4084,
            FatType::Fat16 => 65_524,
            FatType::Fat32 => 0x0FFF_FFF5,
        }
    }
}

/// A field that is out of range, or not in the buffer at all.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("FAT boot sector: {field} (byte {offset}) = {value}: {why}")]
pub struct BootSectorError {
    pub field: &'static str,
    pub offset: usize,
    pub value: u64,
    pub why: &'static str,
}

fn bad(field: &'static str, offset: usize, value: u64, why: &'static str) -> BootSectorError {
    BootSectorError {
        field,
        offset,
        value,
        why,
    }
}

fn short(field: &'static str, offset: usize) -> BootSectorError {
    bad(field, offset, 0, "past the end of the sector read")
}

/// A decoded boot sector. Counts are widened to u64: each is at most 32 bits, so the
/// layout products below (at most 32 bits times 16) cannot overflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootSector {
    /// First byte of `BS_jmpBoot` (0xEB or 0xE9 on an x86-bootable volume).
    pub jmp_boot: u8,
    pub byts_per_sec: u64,
    pub sec_per_clus: u64,
    pub rsvd_sec_cnt: u64,
    pub num_fats: u64,
    pub root_ent_cnt: u64,
    /// `BPB_TotSec16`, or `BPB_TotSec32` when that is 0.
    pub tot_sec: u64,
    /// `BPB_Media`: also the low byte of FAT entry 0.
    pub media: u8,
    /// `BPB_FATSz16`, or `BPB_FATSz32` on FAT32.
    pub fat_sz: u64,
    pub hidd_sec: u32,
    pub fat_type: FatType,
    /// Clusters in the data region (numbered 2 ..= count + 1).
    pub count_of_clusters: u64,
    /// FAT32 only (0 otherwise): first cluster of the root directory chain, and the
    /// sectors of the FSInfo and of the backup boot sector (0: none).
    pub root_clus: u32,
    pub fs_info: u64,
    pub bk_boot_sec: u64,
    /// `BS_VolID` and `BS_VolLab`, when `BS_BootSig` says they are there.
    pub vol_id: Option<u32>,
    pub vol_lab: Option<[u8; 11]>,
}

impl BootSector {
    pub fn parse(b: &[u8], mode: Mode) -> Result<Self, BootSectorError> {
        let u8f = |off, name| u8_at(b, off).ok_or_else(|| short(name, off));
        let u16f = |off, name| le16(b, off).map(u64::from).ok_or_else(|| short(name, off));
        let u32f = |off, name| le32(b, off).ok_or_else(|| short(name, off));
        let identify = mode == Mode::Identify;
        if !identify {
            let sig = u16f(SIGNATURE_WORD, "signature word")?;
            if sig != 0xAA55 {
                return Err(bad("signature word", SIGNATURE_WORD, sig, "not 0xAA55"));
            }
        }
        let jmp_boot = u8f(BS_JMP_BOOT, "BS_jmpBoot")?;
        if identify && jmp_boot != 0xEB && jmp_boot != 0xE9 {
            let v = u64::from(jmp_boot);
            return Err(bad("BS_jmpBoot", BS_JMP_BOOT, v, "not an x86 jump"));
        }
        let byts_per_sec = u16f(BPB_BYTS_PER_SEC, "BPB_BytsPerSec")?;
        if !(512..=4096).contains(&byts_per_sec) || !byts_per_sec.is_power_of_two() {
            let why = "not a power of two in 512..=4096";
            return Err(bad("BPB_BytsPerSec", BPB_BYTS_PER_SEC, byts_per_sec, why));
        }
        let sec_per_clus = u64::from(u8f(BPB_SEC_PER_CLUS, "BPB_SecPerClus")?);
        if !sec_per_clus.is_power_of_two() {
            let why = "not a power of two";
            return Err(bad("BPB_SecPerClus", BPB_SEC_PER_CLUS, sec_per_clus, why));
        }
        let rsvd_sec_cnt = u16f(BPB_RSVD_SEC_CNT, "BPB_RsvdSecCnt")?;
        if rsvd_sec_cnt == 0 {
            let why = "the boot sector itself is reserved";
            return Err(bad("BPB_RsvdSecCnt", BPB_RSVD_SEC_CNT, 0, why));
        }
        let num_fats = u64::from(u8f(BPB_NUM_FATS, "BPB_NumFATs")?);
        if num_fats == 0 || (identify && num_fats > 4) {
            let why = "not 1..=4 (probing) or 0";
            return Err(bad("BPB_NumFATs", BPB_NUM_FATS, num_fats, why));
        }
        let root_ent_cnt = u16f(BPB_ROOT_ENT_CNT, "BPB_RootEntCnt")?;
        let tot_sec16 = u16f(BPB_TOT_SEC16, "BPB_TotSec16")?;
        let tot_sec = match tot_sec16 {
            0 => u64::from(u32f(BPB_TOT_SEC32, "BPB_TotSec32")?),
            n => n,
        };
        let media = u8f(BPB_MEDIA, "BPB_Media")?;
        if identify && media != 0xF0 && media < 0xF8 {
            let why = "not 0xF0 or 0xF8..=0xFF";
            return Err(bad("BPB_Media", BPB_MEDIA, u64::from(media), why));
        }
        let fat_sz16 = u16f(BPB_FAT_SZ16, "BPB_FATSz16")?;
        let fat32 = fat_sz16 == 0;
        let fat_sz = if fat32 {
            u64::from(u32f(BPB_FAT_SZ32, "BPB_FATSz32")?)
        } else {
            fat_sz16
        };
        if fat_sz == 0 {
            let why = "both BPB_FATSz16 and BPB_FATSz32 are 0";
            return Err(bad("BPB_FATSz32", BPB_FAT_SZ32, 0, why));
        }
        if fat32 && root_ent_cnt != 0 {
            let why = "not 0 on FAT32 (BPB_FATSz16 = 0)";
            return Err(bad("BPB_RootEntCnt", BPB_ROOT_ENT_CNT, root_ent_cnt, why));
        }
        let root_dir_sectors = (root_ent_cnt * 32).div_ceil(byts_per_sec);
        let meta = rsvd_sec_cnt + num_fats * fat_sz + root_dir_sectors;
        let tot_field = if tot_sec16 == 0 {
            ("BPB_TotSec32", BPB_TOT_SEC32)
        } else {
            ("BPB_TotSec16", BPB_TOT_SEC16)
        };
        let data_sec = tot_sec.checked_sub(meta).ok_or_else(|| {
            let why = "smaller than the reserved sectors, FATs and root directory";
            bad(tot_field.0, tot_field.1, tot_sec, why)
        })?;
        let count_of_clusters = data_sec / sec_per_clus;
        let fat_type = if fat32 {
            FatType::Fat32
        } else if count_of_clusters < 4085 {
            FatType::Fat12
        } else {
            FatType::Fat16
        };
        if !identify {
            if count_of_clusters > fat_type.max_clusters() {
                let why = "more clusters than the FAT type can number";
                return Err(bad(tot_field.0, tot_field.1, tot_sec, why));
            }
            if (count_of_clusters + 2) * fat_type.entry_bits() > fat_sz * byts_per_sec * 8 {
                let off = if fat32 { BPB_FAT_SZ32 } else { BPB_FAT_SZ16 };
                let why = "too small for an entry per cluster";
                return Err(bad("BPB_FATSz", off, fat_sz, why));
            }
        }
        let (root_clus, fs_info, bk_boot_sec) = if fat32 {
            (
                u32f(BPB_ROOT_CLUS, "BPB_RootClus")?,
                u16f(BPB_FS_INFO, "BPB_FSInfo")?,
                u16f(BPB_BK_BOOT_SEC, "BPB_BkBootSec")?,
            )
        } else {
            (0, 0, 0)
        };
        let sig = if fat32 {
            BS_BOOT_SIG_FAT32
        } else {
            BS_BOOT_SIG_FAT16
        };
        let extended = u8_at(b, sig) == Some(EXTENDED_BOOT_SIGNATURE);
        let at = |n| sig.checked_add(n).filter(|_| extended);
        Ok(BootSector {
            jmp_boot,
            byts_per_sec,
            sec_per_clus,
            rsvd_sec_cnt,
            num_fats,
            root_ent_cnt,
            tot_sec,
            media,
            fat_sz,
            hidd_sec: u32f(BPB_HIDD_SEC, "BPB_HiddSec")?,
            fat_type,
            count_of_clusters,
            root_clus,
            fs_info,
            bk_boot_sec,
            vol_id: at(VOL_ID_AFTER_SIG).and_then(|o| le32(b, o)),
            vol_lab: at(VOL_LAB_AFTER_SIG).and_then(|o| array(b, o)),
        })
    }

    pub fn cluster_size(&self) -> u64 {
        self.byts_per_sec * self.sec_per_clus
    }

    /// The volume's size in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.tot_sec * self.byts_per_sec
    }

    /// Byte offset of the first FAT.
    pub fn fat_offset(&self) -> u64 {
        self.rsvd_sec_cnt * self.byts_per_sec
    }

    /// Bytes before the data region: reserved sectors, every FAT, the FAT12/16 root.
    pub fn meta_bytes(&self) -> u64 {
        let root_dir_sectors = (self.root_ent_cnt * 32).div_ceil(self.byts_per_sec);
        self.root_dir_offset() + root_dir_sectors * self.byts_per_sec
    }

    /// Byte offset of the FAT12/16 root directory (right after the FATs).
    fn root_dir_offset(&self) -> u64 {
        (self.rsvd_sec_cnt + self.num_fats * self.fat_sz) * self.byts_per_sec
    }

    /// Byte offset of cluster `n`; `None` for the reserved numbers 0 and 1.
    pub fn cluster_offset(&self, n: u64) -> Option<u64> {
        n.checked_sub(2)?
            .checked_mul(self.cluster_size())?
            .checked_add(self.meta_bytes())
    }

    /// Byte offset and length of the root directory: the fixed area of FAT12/16, or
    /// the first cluster of the FAT32 root chain.
    pub fn root_dir(&self) -> Option<(u64, u64)> {
        match self.fat_type {
            FatType::Fat32 => Some((
                self.cluster_offset(u64::from(self.root_clus))?,
                self.cluster_size(),
            )),
            _ => Some((self.root_dir_offset(), self.root_ent_cnt * 32)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT12 floppy-like layout: 1 reserved sector, two 8-sector FATs, 512 root
    /// entries (32 sectors), 16384 sectors of 8-sector clusters.
    fn fat12() -> Vec<u8> {
        let mut b = vec![0u8; LEN];
        b[0] = 0xEB;
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 8;
        b[14..16].copy_from_slice(&1u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&512u16.to_le_bytes());
        b[19..21].copy_from_slice(&16384u16.to_le_bytes());
        b[21] = 0xF8;
        b[22..24].copy_from_slice(&8u16.to_le_bytes());
        b[38] = EXTENDED_BOOT_SIGNATURE;
        b[39..43].copy_from_slice(&0x1234_ABCDu32.to_le_bytes());
        b[43..54].copy_from_slice(b"EFI        ");
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    /// FAT32 by `BPB_FATSz16` = 0 with only 10216 clusters, as `mkfs.fat -F 32 -s 8`
    /// makes on 40 MiB.
    fn small_fat32() -> Vec<u8> {
        let mut b = fat12();
        b[14..16].copy_from_slice(&32u16.to_le_bytes());
        b[17..19].fill(0);
        b[19..21].fill(0);
        b[22..24].fill(0);
        b[32..36].copy_from_slice(&81920u32.to_le_bytes());
        b[36..40].copy_from_slice(&80u32.to_le_bytes());
        b[44..48].copy_from_slice(&2u32.to_le_bytes());
        b[48..50].copy_from_slice(&1u16.to_le_bytes());
        b[50..52].copy_from_slice(&6u16.to_le_bytes());
        b[38] = 0;
        b[66] = EXTENDED_BOOT_SIGNATURE;
        b[67..71].copy_from_slice(&7u32.to_le_bytes());
        b
    }

    #[test]
    fn decodes_fat12_layout_and_volume_id() {
        let bs = BootSector::parse(&fat12(), Mode::Trust).unwrap();
        assert_eq!(bs.fat_type, FatType::Fat12);
        assert_eq!(bs.meta_bytes(), (1 + 16 + 32) * 512);
        assert_eq!(bs.root_dir(), Some(((1 + 16) * 512, 512 * 32)));
        assert_eq!(bs.cluster_offset(2), Some(bs.meta_bytes()));
        assert_eq!(bs.cluster_offset(1), None);
        assert_eq!(bs.vol_id, Some(0x1234_ABCD));
        assert_eq!(&bs.vol_lab.unwrap(), b"EFI        ");
    }

    #[test]
    fn fat32_is_decided_by_fatsz16_not_by_cluster_count() {
        let bs = BootSector::parse(&small_fat32(), Mode::Trust).unwrap();
        assert_eq!(bs.count_of_clusters, (81920 - 32 - 160) / 8);
        assert_eq!(bs.fat_type, FatType::Fat32);
        assert_eq!((bs.root_clus, bs.fs_info, bs.bk_boot_sec), (2, 1, 6));
        assert_eq!(bs.root_dir(), Some(((32 + 160) * 512, 8 * 512)));
        assert_eq!((bs.vol_id, bs.vol_lab), (Some(7), Some([0; 11])));
    }

    #[test]
    fn refuses_each_bad_field_by_name() {
        type Edit = fn(&mut Vec<u8>);
        let cases: [(Edit, &str); 9] = [
            (
                |b| b[11..13].copy_from_slice(&3u16.to_le_bytes()),
                "BPB_BytsPerSec",
            ),
            (|b| b[13] = 3, "BPB_SecPerClus"),
            (|b| b[14..16].fill(0), "BPB_RsvdSecCnt"),
            (|b| b[16] = 0, "BPB_NumFATs"),
            (
                |b| b[22..24].copy_from_slice(&1u16.to_le_bytes()),
                "BPB_FATSz",
            ),
            (
                |b| b[19..21].copy_from_slice(&10u16.to_le_bytes()),
                "BPB_TotSec16",
            ),
            (|b| b[510] = 0, "signature word"),
            (|b| b.truncate(100), "signature word"),
            (
                |b| {
                    b[22..24].fill(0);
                    b[36..40].fill(0)
                },
                "BPB_FATSz32",
            ),
        ];
        for (edit, field) in cases {
            let mut b = fat12();
            edit(&mut b);
            let e = BootSector::parse(&b, Mode::Trust).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
        let mut b = small_fat32();
        b[17..19].copy_from_slice(&16u16.to_le_bytes());
        let e = BootSector::parse(&b, Mode::Trust).unwrap_err();
        assert_eq!(e.field, "BPB_RootEntCnt");
        assert!(BootSector::parse(&[], Mode::Identify).is_err());
        assert!(BootSector::parse(&[0u8; LEN], Mode::Trust).is_err());
    }

    #[test]
    fn modes_differ_only_where_documented() {
        // Probing wants an x86 jump and a spec media byte, not the 0x55AA signature.
        let mut b = fat12();
        b[510] = 0;
        assert!(BootSector::parse(&b, Mode::Identify).is_ok());
        assert!(BootSector::parse(&b, Mode::Trust).is_err());
        let mut b = fat12();
        b[0] = 0;
        assert_eq!(
            BootSector::parse(&b, Mode::Identify).unwrap_err().field,
            "BS_jmpBoot"
        );
        assert!(BootSector::parse(&b, Mode::Trust).is_ok());
        let mut b = fat12();
        b[21] = 0x12;
        assert_eq!(
            BootSector::parse(&b, Mode::Identify).unwrap_err().field,
            "BPB_Media"
        );
        assert!(BootSector::parse(&b, Mode::Trust).is_ok());
        // Imaging follows the FAT, so it must have an entry for every cluster.
        let mut b = fat12();
        b[22..24].copy_from_slice(&1u16.to_le_bytes());
        assert!(BootSector::parse(&b, Mode::Identify).is_ok());
        assert!(BootSector::parse(&b, Mode::Trust).is_err());
    }
}
