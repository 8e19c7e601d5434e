//! The FAT BIOS Parameter Block: layout of the reserved area, FATs, root directory
//! and data region, and the FAT type (decided by cluster count, as the Microsoft
//! FAT specification says, never by the `BS_FilSysType` string).

use super::FatError;
use crate::bytes::{le16, le32, u8_at};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FatType {
    Fat12,
    Fat16,
    Fat32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bpb {
    pub byts_per_sec: u64,
    pub sec_per_clus: u64,
    pub rsvd_sec_cnt: u64,
    pub num_fats: u64,
    pub root_ent_cnt: u64,
    pub tot_sec: u64,
    pub fat_sz: u64,
    /// FAT32 only: first cluster of the root directory chain.
    pub root_clus: u32,
    pub fat_type: FatType,
    /// Clusters in the data region (numbered 2 ..= count + 1).
    pub count_of_clusters: u64,
    /// BPB_Media: also the low byte of FAT entry 0.
    pub media: u8,
    /// FAT32 only: the sectors of the FSInfo and of the backup boot sector (0: none).
    pub fs_info: u64,
    pub bk_boot_sec: u64,
}

fn bad(field: &'static str, value: u64) -> FatError {
    FatError::Bpb { field, value }
}

impl Bpb {
    pub fn parse(b: &[u8]) -> Result<Self, FatError> {
        let sig = le16(b, 510).unwrap_or(0);
        if sig != 0xAA55 {
            return Err(bad("signature_word", u64::from(sig)));
        }
        let byts_per_sec = u64::from(le16(b, 11).unwrap_or(0));
        if !(512..=4096).contains(&byts_per_sec) || !byts_per_sec.is_power_of_two() {
            return Err(bad("BPB_BytsPerSec", byts_per_sec));
        }
        let sec_per_clus = u64::from(u8_at(b, 13).unwrap_or(0));
        if sec_per_clus == 0 || !sec_per_clus.is_power_of_two() {
            return Err(bad("BPB_SecPerClus", sec_per_clus));
        }
        let rsvd_sec_cnt = u64::from(le16(b, 14).unwrap_or(0));
        if rsvd_sec_cnt == 0 {
            return Err(bad("BPB_RsvdSecCnt", 0));
        }
        let num_fats = u64::from(u8_at(b, 16).unwrap_or(0));
        if num_fats == 0 {
            return Err(bad("BPB_NumFATs", 0));
        }
        let root_ent_cnt = u64::from(le16(b, 17).unwrap_or(0));
        let tot16 = u64::from(le16(b, 19).unwrap_or(0));
        let tot_sec = if tot16 != 0 {
            tot16
        } else {
            u64::from(le32(b, 32).unwrap_or(0))
        };
        let fat16 = u64::from(le16(b, 22).unwrap_or(0));
        let fat_sz = if fat16 != 0 {
            fat16
        } else {
            u64::from(le32(b, 36).unwrap_or(0))
        };
        if fat_sz == 0 {
            return Err(bad("BPB_FATSz", 0));
        }
        // All values are at most 32 bits times 8 bits: no u64 overflow possible.
        let root_dir_sectors = (root_ent_cnt * 32).div_ceil(byts_per_sec);
        let meta = rsvd_sec_cnt + num_fats * fat_sz + root_dir_sectors;
        let data_sec = tot_sec
            .checked_sub(meta)
            .ok_or(bad("BPB_TotSec", tot_sec))?;
        let count_of_clusters = data_sec / sec_per_clus;
        let fat_type = if count_of_clusters < 4085 {
            FatType::Fat12
        } else if count_of_clusters < 65525 {
            FatType::Fat16
        } else {
            FatType::Fat32
        };
        let fat32 = fat_type == FatType::Fat32;
        let root_clus = if fat32 {
            if root_ent_cnt != 0 {
                return Err(bad("BPB_RootEntCnt", root_ent_cnt));
            }
            le32(b, 44).unwrap_or(0)
        } else {
            0
        };
        let fat32_field = |off| {
            if fat32 {
                u64::from(le16(b, off).unwrap_or(0))
            } else {
                0
            }
        };
        // The FAT must hold an entry for every cluster.
        let bits = match fat_type {
            FatType::Fat12 => 12,
            FatType::Fat16 => 16,
            FatType::Fat32 => 32,
        };
        if (count_of_clusters + 2) * bits > fat_sz * byts_per_sec * 8 {
            return Err(bad("BPB_FATSz", fat_sz));
        }
        Ok(Bpb {
            byts_per_sec,
            sec_per_clus,
            rsvd_sec_cnt,
            num_fats,
            root_ent_cnt,
            tot_sec,
            fat_sz,
            root_clus,
            fat_type,
            count_of_clusters,
            media: u8_at(b, 21).unwrap_or(0),
            fs_info: fat32_field(48),
            bk_boot_sec: fat32_field(50),
        })
    }

    pub fn cluster_size(&self) -> u64 {
        self.byts_per_sec * self.sec_per_clus
    }

    /// Bytes before the data region: reserved sectors, every FAT, the FAT12/16 root.
    pub fn meta_bytes(&self) -> u64 {
        let root_dir_sectors = (self.root_ent_cnt * 32).div_ceil(self.byts_per_sec);
        (self.rsvd_sec_cnt + self.num_fats * self.fat_sz + root_dir_sectors) * self.byts_per_sec
    }

    pub fn fat_offset(&self) -> u64 {
        self.rsvd_sec_cnt * self.byts_per_sec
    }

    /// Byte offset of cluster `n` (n >= 2).
    pub fn cluster_offset(&self, n: u64) -> u64 {
        self.meta_bytes() + (n - 2) * self.cluster_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 8;
        b[14..16].copy_from_slice(&1u16.to_le_bytes());
        b[16] = 2;
        b[17..19].copy_from_slice(&512u16.to_le_bytes());
        b[19..21].copy_from_slice(&16384u16.to_le_bytes());
        b[22..24].copy_from_slice(&8u16.to_le_bytes());
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn parses_and_rejects() {
        let bpb = Bpb::parse(&sample()).unwrap();
        assert_eq!(bpb.fat_type, FatType::Fat12);
        assert_eq!(bpb.meta_bytes(), (1 + 16 + 32) * 512);
        let mut b = sample();
        b[13] = 3;
        assert!(Bpb::parse(&b).is_err());
        let mut b = sample();
        b[22..24].copy_from_slice(&1u16.to_le_bytes());
        assert!(Bpb::parse(&b).is_err(), "FAT too small for the clusters");
        let mut b = sample();
        b[19..21].copy_from_slice(&10u16.to_le_bytes());
        assert!(Bpb::parse(&b).is_err());
        assert!(Bpb::parse(&[0u8; 512]).is_err());
        assert!(Bpb::parse(&[]).is_err());
    }
}
