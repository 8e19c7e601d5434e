//! The NTFS boot sector ($Boot, sector 0, and its backup in the sector just past the
//! volume): the geometry every other read depends on.
//!
//! Field names follow ntfs-3g's `NTFS_BOOT_SECTOR`. Cluster sizes above 64 KiB (up to
//! 2 MiB, which Windows 10 1709+ can format and partclone refuses) are stored as a
//! negative power of two in `sectors_per_cluster`; the MFT record size uses the same
//! trick in `clusters_per_mft_record`.

use super::{DecodeError, Mode};
use crate::bytes::{le16, le32, le64, u8_at};

/// The largest cluster size NTFS allows (Windows, `format /A:2M`).
pub const MAX_CLUSTER_SIZE: u64 = 2 * 1024 * 1024;

pub const OEM_ID_OFFSET: usize = 0x03;
pub const BYTES_PER_SECTOR_OFFSET: usize = 0x0B;
pub const SECTORS_PER_CLUSTER_OFFSET: usize = 0x0D;
/// `bpb.hidden_sectors`: the partition's start LBA, which Windows' boot code uses.
pub const HIDDEN_SECTORS_OFFSET: usize = 0x1C;
pub const NUMBER_OF_SECTORS_OFFSET: usize = 0x28;
pub const MFT_LCN_OFFSET: usize = 0x30;
pub const MFTMIRR_LCN_OFFSET: usize = 0x38;
pub const CLUSTERS_PER_MFT_RECORD_OFFSET: usize = 0x40;
pub const VOLUME_SERIAL_NUMBER_OFFSET: usize = 0x48;
pub const END_OF_SECTOR_MARKER_OFFSET: usize = 0x1FE;

const OEM_ID: &[u8; 8] = b"NTFS    ";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootSector {
    pub bytes_per_sector: u64,
    pub sectors_per_cluster: u64,
    pub cluster_size: u64,
    pub hidden_sectors: u32,
    pub number_of_sectors: u64,
    pub mft_lcn: u64,
    pub mftmirr_lcn: u64,
    pub mft_record_size: u64,
    pub volume_serial_number: u64,
}

/// Whether `b` (a volume's first bytes) carries the NTFS OEM id, the cheap "is this
/// meant to be NTFS" question asked before any field is trusted.
pub fn has_oem_id(b: &[u8]) -> bool {
    b.get(OEM_ID_OFFSET..OEM_ID_OFFSET + OEM_ID.len()) == Some(OEM_ID.as_slice())
}

fn bad(field: &'static str, value: u64) -> DecodeError {
    DecodeError::BootSector { field, value }
}

impl BootSector {
    /// Parses and validates the first 512 bytes of the volume. Both modes check what
    /// locating anything needs (OEM id, end marker, sector, cluster and record sizes,
    /// a non-zero size); `Strict` also checks that the size and the `$MFT`/`$MFTMirr`
    /// locations are consistent with each other.
    pub fn parse(b: &[u8], mode: Mode) -> Result<Self, DecodeError> {
        if !has_oem_id(b) {
            return Err(DecodeError::NotNtfs);
        }
        let sig = le16(b, END_OF_SECTOR_MARKER_OFFSET).unwrap_or(0);
        if sig != 0xAA55 {
            return Err(bad("end_of_sector_marker", u64::from(sig)));
        }
        let bps = u64::from(le16(b, BYTES_PER_SECTOR_OFFSET).unwrap_or(0));
        if !(256..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(bad("bytes_per_sector", bps));
        }
        let spc_raw = u8_at(b, SECTORS_PER_CLUSTER_OFFSET).unwrap_or(0);
        let spc: u64 = if spc_raw <= 0x80 {
            u64::from(spc_raw)
        } else {
            // Negative exponent: 2^(256 - value) sectors (e.g. 0xF4 = 4096 sectors).
            let shift = 256 - u32::from(spc_raw);
            if shift > 31 {
                return Err(bad("sectors_per_cluster", u64::from(spc_raw)));
            }
            1u64 << shift
        };
        if spc == 0 || !spc.is_power_of_two() {
            return Err(bad("sectors_per_cluster", u64::from(spc_raw)));
        }
        let cluster_size = bps
            .checked_mul(spc)
            .filter(|c| *c <= MAX_CLUSTER_SIZE)
            .ok_or(bad("sectors_per_cluster", u64::from(spc_raw)))?;
        let cpmr_raw = u8_at(b, CLUSTERS_PER_MFT_RECORD_OFFSET).unwrap_or(0);
        let cpmr = cpmr_raw as i8;
        let smallest_record = match mode {
            // A record is never smaller than a sector (mkntfs, Windows).
            Mode::Strict => bps.max(512),
            Mode::Lenient => 256,
        };
        let mft_record_size = if cpmr > 0 {
            cluster_size.checked_mul(u64::from(cpmr_raw))
        } else {
            let shift = u32::from(cpmr.unsigned_abs());
            (shift != 0 && shift <= 31).then(|| 1u64 << shift)
        }
        .filter(|s| (smallest_record..=65536).contains(s) && s.is_power_of_two())
        .ok_or(bad("clusters_per_mft_record", u64::from(cpmr_raw)))?;
        let number_of_sectors = le64(b, NUMBER_OF_SECTORS_OFFSET).unwrap_or(0);
        let mft_lcn = le64(b, MFT_LCN_OFFSET).unwrap_or(0);
        let mftmirr_lcn = le64(b, MFTMIRR_LCN_OFFSET).unwrap_or(0);
        if number_of_sectors == 0 {
            return Err(bad("number_of_sectors", number_of_sectors));
        }
        if mode == Mode::Strict {
            if number_of_sectors < spc || number_of_sectors.checked_mul(bps).is_none() {
                return Err(bad("number_of_sectors", number_of_sectors));
            }
            let clusters = number_of_sectors / spc;
            if mft_lcn == 0 || mft_lcn >= clusters {
                return Err(bad("mft_lcn", mft_lcn));
            }
            if mftmirr_lcn >= clusters {
                return Err(bad("mftmirr_lcn", mftmirr_lcn));
            }
        }
        Ok(BootSector {
            bytes_per_sector: bps,
            sectors_per_cluster: spc,
            cluster_size,
            hidden_sectors: le32(b, HIDDEN_SECTORS_OFFSET).unwrap_or(0),
            number_of_sectors,
            mft_lcn,
            mftmirr_lcn,
            mft_record_size,
            volume_serial_number: le64(b, VOLUME_SERIAL_NUMBER_OFFSET).unwrap_or(0),
        })
    }

    /// Clusters covered by `$Bitmap`: whole clusters inside `number_of_sectors`.
    pub fn total_clusters(&self) -> u64 {
        self.number_of_sectors / self.sectors_per_cluster
    }

    /// Byte offset of the backup boot sector: the sector just past `number_of_sectors`
    /// (mkntfs and Windows leave the partition's last sector for it). `Strict` parsing
    /// rules out overflow; a lenient sector saturates, which lies past any device.
    pub fn backup_boot_offset(&self) -> u64 {
        self.number_of_sectors.saturating_mul(self.bytes_per_sector)
    }

    /// Byte offset of `$MFT`'s first cluster (record 0).
    pub fn mft_offset(&self) -> Result<u64, DecodeError> {
        self.mft_lcn
            .checked_mul(self.cluster_size)
            .ok_or(bad("mft_lcn", self.mft_lcn))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample(spc: u8, cpmr: u8) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[3..11].copy_from_slice(b"NTFS    ");
        b[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        b[0x0D] = spc;
        b[0x28..0x30].copy_from_slice(&(1u64 << 20).to_le_bytes());
        b[0x30..0x38].copy_from_slice(&4u64.to_le_bytes());
        b[0x38..0x40].copy_from_slice(&2u64.to_le_bytes());
        b[0x40] = cpmr;
        b[0x1FE] = 0x55;
        b[0x1FF] = 0xAA;
        b
    }

    fn strict(b: &[u8]) -> Result<BootSector, DecodeError> {
        BootSector::parse(b, Mode::Strict)
    }

    #[test]
    fn cluster_size_encodings() {
        let bs = strict(&sample(8, 0xF6)).unwrap();
        assert_eq!(bs.cluster_size, 4096);
        assert_eq!(bs.mft_record_size, 1024);
        let bs = strict(&sample(0xF4, 0xF6)).unwrap();
        assert_eq!(bs.cluster_size, 2 * 1024 * 1024);
        assert_eq!(bs.sectors_per_cluster, 4096);
        // 4 MiB clusters are beyond what NTFS allows.
        assert!(strict(&sample(0xF3, 0xF6)).is_err());
        assert!(strict(&sample(3, 0xF6)).is_err());
        assert!(strict(&sample(0, 0xF6)).is_err());
        // Positive clusters_per_mft_record: 1 cluster of 1 KiB.
        let bs = strict(&sample(2, 1)).unwrap();
        assert_eq!(bs.mft_record_size, 1024);
        assert!(strict(&sample(8, 0x80)).is_err());
        // 256-byte records: only lenient callers accept them.
        assert!(strict(&sample(8, 0xF8)).is_err());
        let bs = BootSector::parse(&sample(8, 0xF8), Mode::Lenient).unwrap();
        assert_eq!(bs.mft_record_size, 256);
    }

    #[test]
    fn rejects_garbage() {
        let mut b = sample(8, 0xF6);
        b[0x30..0x38].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(strict(&b).is_err());
        // Lenient: the MFT location is the caller's to check against what it reads.
        assert_eq!(
            BootSector::parse(&b, Mode::Lenient)
                .unwrap()
                .mft_offset()
                .ok(),
            None
        );
        let mut b = sample(8, 0xF6);
        b[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(strict(&b).is_err());
        let mut b = sample(8, 0xF6);
        b[0x28..0x30].copy_from_slice(&0u64.to_le_bytes());
        assert!(BootSector::parse(&b, Mode::Lenient).is_err());
        let mut b = sample(8, 0xF6);
        b[0x0B] = 0x01;
        assert!(BootSector::parse(&b, Mode::Lenient).is_err());
        let mut b = sample(8, 0xF6);
        b[0x1FF] = 0;
        assert!(BootSector::parse(&b, Mode::Lenient).is_err());
        assert!(matches!(strict(&[0u8; 512]), Err(DecodeError::NotNtfs)));
        assert!(strict(&[]).is_err());
        assert!(BootSector::parse(&[], Mode::Lenient).is_err());
    }
}
