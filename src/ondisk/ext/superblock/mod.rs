//! The ext superblock: the one structure every other location and size is derived from.
//! `decode` reads the fields (with kernel names) and checks only the length and the
//! magic; `parse` then validates what the caller's `Check` asks for, so a corrupt
//! superblock becomes an error here, not a panic or a huge read later.

use super::features::*;
use super::ExtDecodeError;
use crate::bytes::{array, le16, le32};

mod validate;

pub const SUPERBLOCK_OFFSET: u64 = 1024;
pub const SUPERBLOCK_SIZE: usize = 1024;
const EXT4_SUPER_MAGIC: u16 = 0xEF53;
const EXT2_ERROR_FS: u16 = 0x2;
/// The first inode a file may use on revision 0 (`EXT2_GOOD_OLD_FIRST_INO`).
const EXT2_GOOD_OLD_FIRST_INO: u32 = 11;

// Byte offsets of the fields read, as laid out in `struct ext4_super_block`.
const S_INODES_COUNT: usize = 0x0;
const S_BLOCKS_COUNT_LO: usize = 0x4;
const S_FREE_BLOCKS_COUNT_LO: usize = 0xC;
const S_FIRST_DATA_BLOCK: usize = 0x14;
const S_LOG_BLOCK_SIZE: usize = 0x18;
const S_LOG_CLUSTER_SIZE: usize = 0x1C;
const S_BLOCKS_PER_GROUP: usize = 0x20;
const S_CLUSTERS_PER_GROUP: usize = 0x24;
const S_INODES_PER_GROUP: usize = 0x28;
const S_MAGIC: usize = 0x38;
const S_STATE: usize = 0x3A;
const S_REV_LEVEL: usize = 0x4C;
const S_FIRST_INO: usize = 0x54;
const S_INODE_SIZE: usize = 0x58;
/// `s_block_group_nr`: rewritten when a backup is made the primary.
pub const S_BLOCK_GROUP_NR: usize = 0x5A;
const S_FEATURE_COMPAT: usize = 0x5C;
const S_FEATURE_INCOMPAT: usize = 0x60;
const S_FEATURE_RO_COMPAT: usize = 0x64;
const S_UUID: usize = 0x68;
const S_VOLUME_NAME: usize = 0x78;
const S_RESERVED_GDT_BLOCKS: usize = 0xCE;
const S_DESC_SIZE: usize = 0xFE;
const S_FIRST_META_BG: usize = 0x104;
const S_BLOCKS_COUNT_HI: usize = 0x150;
const S_FREE_BLOCKS_COUNT_HI: usize = 0x158;
const S_BACKUP_BGS: usize = 0x24C;
const S_CHECKSUM_SEED: usize = 0x270;
/// `s_checksum`: crc32c of every byte before it.
pub const S_CHECKSUM: usize = 0x3FC;

/// How much of the superblock must be sane for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// Imaging: every field the layout depends on, including bigalloc cluster sizes,
    /// descriptor sizes and the resize reserve; an external journal is refused.
    Strict,
    /// Rescue of damaged metadata: only the bounds that keep a walk over groups and
    /// inode tables finite and its arithmetic sane.
    Lenient,
}

/// The decoded superblock fields, with kernel names; `s_blocks_count` and
/// `s_free_blocks_count` already joined with their `_hi` halves under `64bit`.
#[derive(Clone, Debug)]
pub struct Superblock {
    pub s_inodes_count: u32,
    pub s_blocks_count: u64,
    pub s_free_blocks_count: u64,
    pub s_first_data_block: u32,
    pub s_log_block_size: u32,
    pub s_log_cluster_size: u32,
    pub s_blocks_per_group: u32,
    pub s_clusters_per_group: u32,
    pub s_inodes_per_group: u32,
    pub s_state: u16,
    pub s_rev_level: u32,
    pub s_first_ino: u32,
    pub s_inode_size: u16,
    /// The group this copy sits in: 0 in the primary, the group number in a backup.
    pub s_block_group_nr: u16,
    pub s_feature_compat: u32,
    pub s_feature_incompat: u32,
    pub s_feature_ro_compat: u32,
    pub s_uuid: [u8; 16],
    pub s_volume_name: [u8; 16],
    pub s_reserved_gdt_blocks: u16,
    pub s_desc_size: u16,
    pub s_first_meta_bg: u32,
    pub s_backup_bgs: [u32; 2],
    pub s_checksum_seed: u32,
    pub s_checksum: u32,
    /// The raw bytes, kept for the superblock checksum and for rewriting a backup.
    pub raw: Vec<u8>,
}

impl Superblock {
    /// Decodes and validates 1024 superblock bytes read from `device`.
    pub fn parse(b: &[u8], device: &str, check: Check) -> Result<Self, ExtDecodeError> {
        let sb = Self::decode(b, device)?;
        match check {
            Check::Strict => sb.validate_strict(device)?,
            Check::Lenient => sb.validate_lenient(device)?,
        }
        Ok(sb)
    }

    /// Decodes the fields, checking only the length and the magic (for recognising a
    /// volume, where the caller applies its own rules).
    pub fn decode(b: &[u8], device: &str) -> Result<Self, ExtDecodeError> {
        let short = || ExtDecodeError::Short {
            device: device.into(),
            structure: "superblock",
            len: b.len(),
            need: SUPERBLOCK_SIZE,
        };
        let raw = b.get(..SUPERBLOCK_SIZE).ok_or_else(short)?;
        let u16_at = |off| le16(raw, off).ok_or_else(short);
        let u32_at = |off| le32(raw, off).ok_or_else(short);
        let magic = u16_at(S_MAGIC)?;
        if magic != EXT4_SUPER_MAGIC {
            return Err(ExtDecodeError::BadMagic {
                device: device.into(),
                value: magic,
            });
        }
        let incompat = u32_at(S_FEATURE_INCOMPAT)?;
        // The `_hi` halves count only with 64bit, as in the kernel's ext4_blocks_count().
        let with_hi = |lo: usize, hi: usize| -> Result<u64, ExtDecodeError> {
            let hi = if incompat & EXT4_FEATURE_INCOMPAT_64BIT != 0 {
                u64::from(u32_at(hi)?) << 32
            } else {
                0
            };
            Ok(u64::from(u32_at(lo)?) | hi)
        };
        Ok(Superblock {
            s_inodes_count: u32_at(S_INODES_COUNT)?,
            s_blocks_count: with_hi(S_BLOCKS_COUNT_LO, S_BLOCKS_COUNT_HI)?,
            s_free_blocks_count: with_hi(S_FREE_BLOCKS_COUNT_LO, S_FREE_BLOCKS_COUNT_HI)?,
            s_first_data_block: u32_at(S_FIRST_DATA_BLOCK)?,
            s_log_block_size: u32_at(S_LOG_BLOCK_SIZE)?,
            s_log_cluster_size: u32_at(S_LOG_CLUSTER_SIZE)?,
            s_blocks_per_group: u32_at(S_BLOCKS_PER_GROUP)?,
            s_clusters_per_group: u32_at(S_CLUSTERS_PER_GROUP)?,
            s_inodes_per_group: u32_at(S_INODES_PER_GROUP)?,
            s_state: u16_at(S_STATE)?,
            s_rev_level: u32_at(S_REV_LEVEL)?,
            s_first_ino: u32_at(S_FIRST_INO)?,
            s_inode_size: u16_at(S_INODE_SIZE)?,
            s_block_group_nr: u16_at(S_BLOCK_GROUP_NR)?,
            s_feature_compat: u32_at(S_FEATURE_COMPAT)?,
            s_feature_incompat: incompat,
            s_feature_ro_compat: u32_at(S_FEATURE_RO_COMPAT)?,
            s_uuid: array(raw, S_UUID).ok_or_else(short)?,
            s_volume_name: array(raw, S_VOLUME_NAME).ok_or_else(short)?,
            s_reserved_gdt_blocks: u16_at(S_RESERVED_GDT_BLOCKS)?,
            s_desc_size: u16_at(S_DESC_SIZE)?,
            s_first_meta_bg: u32_at(S_FIRST_META_BG)?,
            s_backup_bgs: [u32_at(S_BACKUP_BGS)?, u32_at(S_BACKUP_BGS + 4)?],
            s_checksum_seed: u32_at(S_CHECKSUM_SEED)?,
            s_checksum: u32_at(S_CHECKSUM)?,
            raw: raw.to_vec(),
        })
    }

    pub fn block_size(&self) -> u64 {
        1024u64 << self.s_log_block_size.min(6)
    }

    pub fn bigalloc(&self) -> bool {
        self.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_BIGALLOC != 0
    }

    /// Blocks per allocation unit (1 without bigalloc).
    pub fn cluster_ratio(&self) -> u64 {
        if self.bigalloc() {
            1u64 << (self
                .s_log_cluster_size
                .saturating_sub(self.s_log_block_size))
            .min(16)
        } else {
            1
        }
    }

    pub fn cluster_size(&self) -> u64 {
        self.block_size() * self.cluster_ratio()
    }

    /// Without bigalloc, s_clusters_per_group may be stale or unset; a cluster is a block.
    pub fn s_clusters_per_group_eff(&self) -> u32 {
        if self.bigalloc() {
            self.s_clusters_per_group
        } else {
            self.s_blocks_per_group
        }
    }

    /// Where the effective clusters-per-group count was read (for error messages).
    fn clusters_per_group_offset(&self) -> usize {
        if self.bigalloc() {
            S_CLUSTERS_PER_GROUP
        } else {
            S_BLOCKS_PER_GROUP
        }
    }

    pub fn is_64bit(&self) -> bool {
        self.s_feature_incompat & EXT4_FEATURE_INCOMPAT_64BIT != 0
    }

    /// Bytes per group descriptor (`EXT4_DESC_SIZE`): 32 without 64bit.
    pub fn desc_size(&self) -> u64 {
        if self.is_64bit() {
            u64::from(self.s_desc_size)
        } else {
            32
        }
    }

    /// Whether descriptors carry the `_hi` halves (64bit with 64-byte descriptors).
    pub fn wide_descs(&self) -> bool {
        self.is_64bit() && self.desc_size() >= 64
    }

    pub fn inode_size(&self) -> u64 {
        if self.s_rev_level == 0 {
            128
        } else {
            u64::from(self.s_inode_size)
        }
    }

    /// The first inode a file may use (`EXT4_FIRST_INO`); the ones below are reserved.
    pub fn first_ino(&self) -> u64 {
        if self.s_rev_level == 0 {
            EXT2_GOOD_OLD_FIRST_INO.into()
        } else {
            self.s_first_ino.max(EXT2_GOOD_OLD_FIRST_INO).into()
        }
    }

    pub fn has_journal(&self) -> bool {
        self.s_feature_compat & EXT4_FEATURE_COMPAT_HAS_JOURNAL != 0
    }

    /// Directory entries carry a file type byte.
    pub fn filetype(&self) -> bool {
        self.s_feature_incompat & EXT4_FEATURE_INCOMPAT_FILETYPE != 0
    }

    pub fn meta_bg(&self) -> bool {
        self.s_feature_incompat & EXT4_FEATURE_INCOMPAT_META_BG != 0
    }

    pub fn metadata_csum(&self) -> bool {
        self.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_METADATA_CSUM != 0
    }

    /// Group descriptors carry a checksum (and so the UNINIT flags mean something).
    pub fn has_group_desc_csum(&self) -> bool {
        self.metadata_csum() || self.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_GDT_CSUM != 0
    }

    pub fn needs_recovery(&self) -> bool {
        self.s_feature_incompat & EXT4_FEATURE_INCOMPAT_RECOVER != 0
    }

    pub fn has_errors(&self) -> bool {
        self.s_state & EXT2_ERROR_FS != 0
    }

    /// Number of block groups; the last may be shorter.
    pub fn group_count(&self) -> u64 {
        let data = self
            .s_blocks_count
            .saturating_sub(self.s_first_data_block.into());
        data.div_ceil(u64::from(self.s_blocks_per_group.max(1)))
    }

    /// Blocks one group's inode table occupies.
    pub fn inode_table_blocks(&self) -> u64 {
        (u64::from(self.s_inodes_per_group) * self.inode_size()).div_ceil(self.block_size())
    }

    /// First block of group `g` (`ext4_group_first_block_no`), saturating on garbage.
    pub fn group_first_block(&self, g: u64) -> u64 {
        u64::from(self.s_first_data_block)
            .saturating_add(g.saturating_mul(self.s_blocks_per_group.into()))
    }

    /// Does group `g` hold a superblock copy (`ext4_bg_has_super`)? Every group
    /// without `sparse_super`; groups 0, 1 and the powers of 3, 5 and 7 with it; group
    /// 0 and the two `s_backup_bgs` with `sparse_super2`.
    pub fn bg_has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if self.s_feature_compat & EXT4_FEATURE_COMPAT_SPARSE_SUPER2 != 0 {
            return self.s_backup_bgs.iter().any(|&b| u64::from(b) == g);
        }
        if g <= 1 || self.s_feature_ro_compat & EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER == 0 {
            return true;
        }
        if g % 2 == 0 {
            return false;
        }
        is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
    }
}

fn is_power_of(mut n: u64, base: u64) -> bool {
    while n > 1 && n % base == 0 {
        n /= base;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid superblock: 4 KiB blocks, one group of 32768 blocks.
    fn sample() -> Vec<u8> {
        let mut b = vec![0u8; SUPERBLOCK_SIZE];
        let mut put32 = |off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        put32(S_INODES_COUNT, 8192);
        put32(S_BLOCKS_COUNT_LO, 32768);
        put32(S_LOG_BLOCK_SIZE, 2);
        put32(S_BLOCKS_PER_GROUP, 32768);
        put32(S_CLUSTERS_PER_GROUP, 32768);
        put32(S_INODES_PER_GROUP, 8192);
        put32(S_REV_LEVEL, 1);
        put32(S_FEATURE_RO_COMPAT, EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER);
        b[S_MAGIC..S_MAGIC + 2].copy_from_slice(&EXT4_SUPER_MAGIC.to_le_bytes());
        b[S_INODE_SIZE..S_INODE_SIZE + 2].copy_from_slice(&256u16.to_le_bytes());
        b
    }

    #[test]
    fn parses_a_valid_superblock_in_both_modes() {
        for check in [Check::Strict, Check::Lenient] {
            let sb = Superblock::parse(&sample(), "t", check).expect("valid");
            assert_eq!(sb.block_size(), 4096);
            assert_eq!(sb.group_count(), 1);
            assert_eq!(sb.first_ino(), 11);
        }
    }

    #[test]
    fn a_short_buffer_is_an_error_not_zeros() {
        let b = sample();
        let err = Superblock::decode(&b[..SUPERBLOCK_SIZE - 1], "t").unwrap_err();
        assert!(
            matches!(
                err,
                ExtDecodeError::Short {
                    len: 1023,
                    need: 1024,
                    ..
                }
            ),
            "{err}"
        );
        assert!(Superblock::decode(&[], "t").is_err());
    }

    #[test]
    fn errors_name_the_field_and_its_byte() {
        let mut b = sample();
        b[S_LOG_BLOCK_SIZE] = 9;
        let err = Superblock::parse(&b, "/dev/x", Check::Lenient).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/x: superblock field s_log_block_size (byte 0x18) = 9: block size over 64 KiB"
        );
        let mut b = sample();
        b[S_MAGIC] = 0;
        let err = Superblock::decode(&b, "/dev/x").unwrap_err();
        assert!(err.to_string().contains("s_magic"), "{err}");
    }

    #[test]
    fn lenient_accepts_what_only_strict_refuses() {
        // A resize reserve larger than one indirect block: the layout is suspect for
        // imaging, yet the groups and inode tables can still be walked.
        let mut b = sample();
        b[S_RESERVED_GDT_BLOCKS..S_RESERVED_GDT_BLOCKS + 2].copy_from_slice(&2000u16.to_le_bytes());
        assert!(Superblock::parse(&b, "t", Check::Strict).is_err());
        assert!(Superblock::parse(&b, "t", Check::Lenient).is_ok());
    }

    #[test]
    fn bigalloc_groups_span_a_bitmap_of_clusters_in_both_modes() {
        // 16 KiB clusters of 4 KiB blocks: 32768 clusters, 131072 blocks per group.
        let mut b = sample();
        let mut put32 = |off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        put32(S_LOG_CLUSTER_SIZE, 4);
        put32(S_BLOCKS_PER_GROUP, 131072);
        put32(S_BLOCKS_COUNT_LO, 131072);
        put32(
            S_FEATURE_RO_COMPAT,
            EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT4_FEATURE_RO_COMPAT_BIGALLOC,
        );
        for check in [Check::Strict, Check::Lenient] {
            let sb = Superblock::parse(&b, "t", check).expect("valid bigalloc");
            assert_eq!(sb.cluster_ratio(), 4);
            assert_eq!(sb.group_count(), 1);
        }
    }

    #[test]
    fn sparse_super_groups() {
        let sb = Superblock::decode(&sample(), "t").expect("valid");
        let v: Vec<u64> = (0..100).filter(|&g| sb.bg_has_super(g)).collect();
        assert_eq!(v, vec![0, 1, 3, 5, 7, 9, 25, 27, 49, 81]);
    }
}
