//! The NTFS boot sector ($Boot, sector 0): the geometry every other read depends on.
//!
//! Field names follow ntfs-3g's `NTFS_BOOT_SECTOR`. Cluster sizes above 64 KiB (up to
//! 2 MiB, which Windows 10 1709+ can format and partclone refuses) are stored as a
//! negative power of two in `sectors_per_cluster`; the MFT record size uses the same
//! trick in `clusters_per_mft_record`.

use super::NtfsError;
use crate::bytes::{le16, le64, u8_at};

/// The largest cluster size NTFS allows (Windows, `format /A:2M`).
pub const MAX_CLUSTER_SIZE: u64 = 2 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootSector {
    pub bytes_per_sector: u64,
    pub sectors_per_cluster: u64,
    pub cluster_size: u64,
    pub number_of_sectors: u64,
    pub mft_lcn: u64,
    pub mftmirr_lcn: u64,
    pub mft_record_size: u64,
    pub volume_serial_number: u64,
}

fn bad(field: &'static str, value: u64) -> NtfsError {
    NtfsError::BootSector { field, value }
}

impl BootSector {
    /// Parses and validates the first 512 bytes of the volume.
    pub fn parse(b: &[u8]) -> Result<Self, NtfsError> {
        if b.get(3..11) != Some(b"NTFS    ".as_slice()) {
            return Err(NtfsError::NotNtfs);
        }
        let sig = le16(b, 0x1FE).unwrap_or(0);
        if sig != 0xAA55 {
            return Err(bad("end_of_sector_marker", u64::from(sig)));
        }
        let bps = u64::from(le16(b, 0x0B).unwrap_or(0));
        if !(256..=4096).contains(&bps) || !bps.is_power_of_two() {
            return Err(bad("bytes_per_sector", bps));
        }
        let spc_raw = u8_at(b, 0x0D).unwrap_or(0);
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
        let number_of_sectors = le64(b, 0x28).unwrap_or(0);
        if number_of_sectors < spc || number_of_sectors.checked_mul(bps).is_none() {
            return Err(bad("number_of_sectors", number_of_sectors));
        }
        let clusters = number_of_sectors / spc;
        let mft_lcn = le64(b, 0x30).unwrap_or(0);
        if mft_lcn == 0 || mft_lcn >= clusters {
            return Err(bad("mft_lcn", mft_lcn));
        }
        let mftmirr_lcn = le64(b, 0x38).unwrap_or(0);
        if mftmirr_lcn >= clusters {
            return Err(bad("mftmirr_lcn", mftmirr_lcn));
        }
        let cpmr = u8_at(b, 0x40).unwrap_or(0) as i8;
        let mft_record_size = if cpmr > 0 {
            cluster_size.checked_mul(cpmr as u64)
        } else {
            let shift = u32::from(cpmr.unsigned_abs());
            if shift == 0 || shift > 31 {
                None
            } else {
                Some(1u64 << shift)
            }
        }
        .filter(|s| (512..=65536).contains(s) && s.is_power_of_two() && *s >= bps)
        .ok_or(bad("clusters_per_mft_record", u64::from(cpmr as u8)))?;
        Ok(BootSector {
            bytes_per_sector: bps,
            sectors_per_cluster: spc,
            cluster_size,
            number_of_sectors,
            mft_lcn,
            mftmirr_lcn,
            mft_record_size,
            volume_serial_number: le64(b, 0x48).unwrap_or(0),
        })
    }

    /// Clusters covered by `$Bitmap`: whole clusters inside `number_of_sectors`.
    pub fn total_clusters(&self) -> u64 {
        self.number_of_sectors / self.sectors_per_cluster
    }

    /// Byte offset of the backup boot sector: the sector just past `number_of_sectors`
    /// (mkntfs and Windows leave the partition's last sector for it).
    pub fn backup_boot_offset(&self) -> u64 {
        // Cannot overflow: checked in `parse`, and the sum is one sector more.
        self.number_of_sectors.saturating_mul(self.bytes_per_sector)
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn cluster_size_encodings() {
        let bs = BootSector::parse(&sample(8, 0xF6)).unwrap();
        assert_eq!(bs.cluster_size, 4096);
        assert_eq!(bs.mft_record_size, 1024);
        let bs = BootSector::parse(&sample(0xF4, 0xF6)).unwrap();
        assert_eq!(bs.cluster_size, 2 * 1024 * 1024);
        assert_eq!(bs.sectors_per_cluster, 4096);
        // 4 MiB clusters are beyond what NTFS allows.
        assert!(BootSector::parse(&sample(0xF3, 0xF6)).is_err());
        assert!(BootSector::parse(&sample(3, 0xF6)).is_err());
        assert!(BootSector::parse(&sample(0, 0xF6)).is_err());
        // Positive clusters_per_mft_record: 1 cluster of 1 KiB.
        let bs = BootSector::parse(&sample(2, 1)).unwrap();
        assert_eq!(bs.mft_record_size, 1024);
        assert!(BootSector::parse(&sample(8, 0x80)).is_err());
    }

    #[test]
    fn rejects_garbage() {
        let mut b = sample(8, 0xF6);
        b[0x30..0x38].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(BootSector::parse(&b).is_err());
        let mut b = sample(8, 0xF6);
        b[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(BootSector::parse(&b).is_err());
        let mut b = sample(8, 0xF6);
        b[0x0B] = 0x01;
        assert!(BootSector::parse(&b).is_err());
        assert!(matches!(
            BootSector::parse(&[0u8; 512]),
            Err(NtfsError::NotNtfs)
        ));
        assert!(BootSector::parse(&[]).is_err());
    }
}
