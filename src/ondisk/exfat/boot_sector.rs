//! The exFAT main (or backup) boot sector: where the FATs and the cluster heap are,
//! how big sectors and clusters are, and where the root directory starts. Field
//! names are the specification's (section 3.1); limits are its stated ranges, so a
//! volume that Windows or `fsck.exfat` would reject is refused before its layout is
//! followed on disk.

use super::DecodeError;
use crate::bytes::{le16, le32, le64, u8_at};

/// Bytes of the sector that the fields and the signature span (the smallest sector).
pub const LEN: usize = 512;

const FILE_SYSTEM_NAME: usize = 3;
const MUST_BE_ZERO: usize = 11;
const MUST_BE_ZERO_END: usize = 64;
/// `PartitionOffset`: boot repair rewrites it when a partition moved.
pub const PARTITION_OFFSET: usize = 64;
const VOLUME_LENGTH: usize = 72;
const FAT_OFFSET: usize = 80;
const FAT_LENGTH: usize = 84;
const CLUSTER_HEAP_OFFSET: usize = 88;
const CLUSTER_COUNT: usize = 92;
const FIRST_CLUSTER_OF_ROOT_DIRECTORY: usize = 96;
const VOLUME_SERIAL_NUMBER: usize = 100;
const VOLUME_FLAGS: usize = 106;
const BYTES_PER_SECTOR_SHIFT: usize = 108;
const SECTORS_PER_CLUSTER_SHIFT: usize = 109;
const NUMBER_OF_FATS: usize = 110;
const BOOT_SIGNATURE: usize = 510;

/// `VolumeFlags` bit 0: which FAT and bitmap are active (TexFAT only).
pub const ACTIVE_FAT: u16 = 1;
/// `VolumeFlags` bit 1: the volume was not cleanly unmounted.
pub const VOLUME_DIRTY: u16 = 2;

/// The highest cluster count the specification allows (2^32 - 11).
const MAX_CLUSTER_COUNT: u64 = 0xFFFF_FFF5;
/// The boot region and its backup: 12 sectors each, so the FAT starts at 24 or later.
const BOOT_REGIONS_SECTORS: u64 = 24;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootSector {
    /// Media-relative sector of the partition (0: ignore); informational.
    pub partition_offset: u64,
    /// Sectors in the volume.
    pub volume_length: u64,
    /// Sector of the first FAT.
    pub fat_offset: u64,
    /// Sectors per FAT.
    pub fat_length: u64,
    /// Sector of cluster 2.
    pub cluster_heap_offset: u64,
    /// Clusters in the heap, numbered 2 ..= cluster_count + 1.
    pub cluster_count: u64,
    pub first_cluster_of_root_directory: u32,
    pub volume_serial_number: u32,
    pub volume_flags: u16,
    pub bytes_per_sector_shift: u8,
    pub sectors_per_cluster_shift: u8,
    pub number_of_fats: u8,
}

fn bad(field: &'static str, offset: usize, value: u64, why: &'static str) -> DecodeError {
    DecodeError::BootSector {
        field,
        offset,
        value,
        why,
    }
}

fn short(field: &'static str, offset: usize) -> DecodeError {
    bad(field, offset, 0, "past the end of the sector read")
}

impl BootSector {
    pub fn parse(b: &[u8]) -> Result<Self, DecodeError> {
        if b.get(FILE_SYSTEM_NAME..FILE_SYSTEM_NAME + 8) != Some(b"EXFAT   ") {
            return Err(DecodeError::NotExfat);
        }
        let u8f = |off, name| u8_at(b, off).ok_or_else(|| short(name, off));
        let u16f = |off, name| le16(b, off).ok_or_else(|| short(name, off));
        let u32f = |off, name| le32(b, off).ok_or_else(|| short(name, off));
        let u64f = |off, name| le64(b, off).ok_or_else(|| short(name, off));
        let sig = u16f(BOOT_SIGNATURE, "BootSignature")?;
        if sig != 0xAA55 {
            let v = u64::from(sig);
            return Err(bad("BootSignature", BOOT_SIGNATURE, v, "not 0xAA55"));
        }
        // The FAT12/16/32 BPB area must be zero, so that FAT drivers do not mount it.
        let zero = b
            .get(MUST_BE_ZERO..MUST_BE_ZERO_END)
            .ok_or_else(|| short("MustBeZero", MUST_BE_ZERO))?;
        if let Some(i) = zero.iter().position(|&x| x != 0) {
            let off = MUST_BE_ZERO + i;
            let v = u64::from(zero[i]);
            return Err(bad("MustBeZero", off, v, "not zero"));
        }
        let bps = u8f(BYTES_PER_SECTOR_SHIFT, "BytesPerSectorShift")?;
        if !(9..=12).contains(&bps) {
            let v = u64::from(bps);
            return Err(bad(
                "BytesPerSectorShift",
                BYTES_PER_SECTOR_SHIFT,
                v,
                "not 9..=12",
            ));
        }
        let spc = u8f(SECTORS_PER_CLUSTER_SHIFT, "SectorsPerClusterShift")?;
        if u32::from(bps) + u32::from(spc) > 25 {
            let why = "clusters above 32 MiB";
            let v = u64::from(spc);
            return Err(bad(
                "SectorsPerClusterShift",
                SECTORS_PER_CLUSTER_SHIFT,
                v,
                why,
            ));
        }
        let number_of_fats = u8f(NUMBER_OF_FATS, "NumberOfFats")?;
        if !(1..=2).contains(&number_of_fats) {
            let v = u64::from(number_of_fats);
            return Err(bad("NumberOfFats", NUMBER_OF_FATS, v, "not 1 or 2"));
        }
        let volume_length = u64f(VOLUME_LENGTH, "VolumeLength")?;
        // At least 1 MiB, as the specification requires.
        if volume_length < (1u64 << 20) >> bps {
            let why = "smaller than 1 MiB";
            return Err(bad("VolumeLength", VOLUME_LENGTH, volume_length, why));
        }
        let fat_offset = u64::from(u32f(FAT_OFFSET, "FatOffset")?);
        if fat_offset < BOOT_REGIONS_SECTORS {
            let why = "inside the main and backup boot regions";
            return Err(bad("FatOffset", FAT_OFFSET, fat_offset, why));
        }
        let fat_length = u64::from(u32f(FAT_LENGTH, "FatLength")?);
        let cluster_heap_offset = u64::from(u32f(CLUSTER_HEAP_OFFSET, "ClusterHeapOffset")?);
        // Each term is at most 2^32 times 2, so the sum cannot overflow a u64.
        let fats_end = fat_offset + fat_length * u64::from(number_of_fats);
        if cluster_heap_offset < fats_end || cluster_heap_offset > volume_length {
            let why = "not between the end of the FATs and the end of the volume";
            let v = cluster_heap_offset;
            return Err(bad("ClusterHeapOffset", CLUSTER_HEAP_OFFSET, v, why));
        }
        let cluster_count = u64::from(u32f(CLUSTER_COUNT, "ClusterCount")?);
        let heap_clusters = (volume_length - cluster_heap_offset) >> spc;
        if cluster_count == 0 || cluster_count > MAX_CLUSTER_COUNT || cluster_count > heap_clusters
        {
            let why = "0, above 2^32-11, or more than fit between the heap and the volume end";
            return Err(bad("ClusterCount", CLUSTER_COUNT, cluster_count, why));
        }
        // An entry for every cluster plus the two reserved entries.
        if (cluster_count + 2) * 4 > fat_length << bps {
            let why = "too small for an entry per cluster";
            return Err(bad("FatLength", FAT_LENGTH, fat_length, why));
        }
        let root = u32f(
            FIRST_CLUSTER_OF_ROOT_DIRECTORY,
            "FirstClusterOfRootDirectory",
        )?;
        if root < 2 || u64::from(root) > cluster_count + 1 {
            let why = "not a cluster of the heap";
            let off = FIRST_CLUSTER_OF_ROOT_DIRECTORY;
            return Err(bad(
                "FirstClusterOfRootDirectory",
                off,
                u64::from(root),
                why,
            ));
        }
        let volume_flags = u16f(VOLUME_FLAGS, "VolumeFlags")?;
        if number_of_fats == 1 && volume_flags & ACTIVE_FAT != 0 {
            let why = "ActiveFat names the second FAT of a one-FAT volume";
            let v = u64::from(volume_flags);
            return Err(bad("VolumeFlags", VOLUME_FLAGS, v, why));
        }
        Ok(BootSector {
            partition_offset: u64f(PARTITION_OFFSET, "PartitionOffset")?,
            volume_length,
            fat_offset,
            fat_length,
            cluster_heap_offset,
            cluster_count,
            first_cluster_of_root_directory: root,
            volume_serial_number: u32f(VOLUME_SERIAL_NUMBER, "VolumeSerialNumber")?,
            volume_flags,
            bytes_per_sector_shift: bps,
            sectors_per_cluster_shift: spc,
            number_of_fats,
        })
    }

    pub fn sector_size(&self) -> u64 {
        1 << self.bytes_per_sector_shift
    }

    pub fn cluster_size(&self) -> u64 {
        1 << (self.bytes_per_sector_shift + self.sectors_per_cluster_shift)
    }

    /// The volume's size in bytes (at most 2^64 sectors of 4 KiB: checked).
    pub fn total_bytes(&self) -> Option<u64> {
        self.volume_length.checked_mul(self.sector_size())
    }

    /// Byte offset of FAT number `n` (0 or 1).
    pub fn fat_byte_offset(&self, n: u8) -> u64 {
        // Both terms fit in 2^32 sectors of 2^12 bytes.
        (self.fat_offset + u64::from(n) * self.fat_length) << self.bytes_per_sector_shift
    }

    pub fn fat_bytes(&self) -> u64 {
        self.fat_length << self.bytes_per_sector_shift
    }

    /// Byte offset of cluster `n`, or `None` outside 2 ..= cluster_count + 1.
    pub fn cluster_offset(&self, n: u64) -> Option<u64> {
        if n < 2 || n > self.cluster_count + 1 {
            return None;
        }
        // Validated: the heap lies inside the volume, whose byte size fits when
        // `total_bytes` does; checked anyway since callers may skip that.
        ((n - 2) << self.sectors_per_cluster_shift)
            .checked_add(self.cluster_heap_offset)?
            .checked_mul(self.sector_size())
    }

    pub fn is_dirty(&self) -> bool {
        self.volume_flags & VOLUME_DIRTY != 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 64 MiB volume as `mkfs.exfat -c 4K` makes it.
    pub(crate) fn sample() -> Vec<u8> {
        let mut b = vec![0u8; LEN];
        b[0..3].copy_from_slice(&[0xEB, 0x76, 0x90]);
        b[3..11].copy_from_slice(b"EXFAT   ");
        b[72..80].copy_from_slice(&131072u64.to_le_bytes());
        b[80..84].copy_from_slice(&2048u32.to_le_bytes());
        b[84..88].copy_from_slice(&128u32.to_le_bytes());
        b[88..92].copy_from_slice(&4096u32.to_le_bytes());
        b[92..96].copy_from_slice(&15872u32.to_le_bytes());
        b[96..100].copy_from_slice(&5u32.to_le_bytes());
        b[100..104].copy_from_slice(&0x6f56_9438u32.to_le_bytes());
        b[104..106].copy_from_slice(&0x100u16.to_le_bytes());
        b[108] = 9;
        b[109] = 3;
        b[110] = 1;
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn decodes_the_layout() {
        let bs = BootSector::parse(&sample()).unwrap();
        assert_eq!(bs.cluster_size(), 4096);
        assert_eq!(bs.fat_byte_offset(0), 2048 * 512);
        assert_eq!(bs.fat_bytes(), 128 * 512);
        assert_eq!(bs.cluster_offset(2), Some(4096 * 512));
        assert_eq!(bs.cluster_offset(3), Some(4096 * 512 + 4096));
        assert_eq!(bs.cluster_offset(1), None);
        assert_eq!(bs.cluster_offset(15874), None);
        assert_eq!(bs.total_bytes(), Some(64 << 20));
        assert!(!bs.is_dirty());
    }

    #[test]
    fn refuses_each_bad_field_by_name() {
        type Edit = fn(&mut Vec<u8>);
        let cases: [(Edit, &str); 12] = [
            (|b| b[510] = 0, "BootSignature"),
            (|b| b[20] = 1, "MustBeZero"),
            (|b| b[108] = 13, "BytesPerSectorShift"),
            (|b| b[109] = 17, "SectorsPerClusterShift"),
            (|b| b[110] = 3, "NumberOfFats"),
            (
                |b| b[72..80].copy_from_slice(&100u64.to_le_bytes()),
                "VolumeLength",
            ),
            (
                |b| b[80..84].copy_from_slice(&12u32.to_le_bytes()),
                "FatOffset",
            ),
            (
                |b| b[84..88].copy_from_slice(&124u32.to_le_bytes()),
                "FatLength",
            ),
            (
                |b| b[88..92].copy_from_slice(&2100u32.to_le_bytes()),
                "ClusterHeapOffset",
            ),
            (
                |b| b[92..96].copy_from_slice(&15873u32.to_le_bytes()),
                "ClusterCount",
            ),
            (
                |b| b[96..100].copy_from_slice(&1u32.to_le_bytes()),
                "FirstClusterOfRootDirectory",
            ),
            (|b| b[106] = 1, "VolumeFlags"),
        ];
        for (edit, field) in cases {
            let mut b = sample();
            edit(&mut b);
            match BootSector::parse(&b) {
                Err(DecodeError::BootSector { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut b = sample();
        b[3] = b'F';
        assert_eq!(BootSector::parse(&b), Err(DecodeError::NotExfat));
        assert!(BootSector::parse(&sample()[..100]).is_err());
        assert!(BootSector::parse(&[]).is_err());
    }
}
