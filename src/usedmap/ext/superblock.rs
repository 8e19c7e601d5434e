//! The ext superblock: the one structure every other location and size is derived from.
//! Parsing validates each field the layout depends on, so later arithmetic can rely on
//! sane ranges (a corrupt superblock becomes an error here, not a panic or huge read later).

use super::ExtError;

pub const SUPERBLOCK_OFFSET: u64 = 1024;
pub const SUPERBLOCK_SIZE: usize = 1024;
const EXT4_SUPER_MAGIC: u16 = 0xEF53;
/// Offsets of `s_block_group_nr` and `s_checksum` (crc32c of the bytes before it).
pub const BLOCK_GROUP_NR_OFFSET: usize = 0x5A;
pub const CHECKSUM_OFFSET: usize = 0x3FC;

pub const COMPAT_SPARSE_SUPER2: u32 = 0x200;
pub const INCOMPAT_RECOVER: u32 = 0x4;
pub const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
pub const INCOMPAT_META_BG: u32 = 0x10;
pub const INCOMPAT_64BIT: u32 = 0x80;
pub const INCOMPAT_CSUM_SEED: u32 = 0x2000;
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x1;
pub const RO_COMPAT_GDT_CSUM: u32 = 0x10;
pub const RO_COMPAT_BIGALLOC: u32 = 0x200;
pub const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

const EXT2_ERROR_FS: u16 = 0x2;

/// The superblock fields the used map needs, with kernel names, already validated.
#[derive(Clone, Debug)]
pub struct Superblock {
    pub s_blocks_count: u64,
    pub s_free_blocks_count: u64,
    pub s_first_data_block: u32,
    pub s_log_block_size: u32,
    pub s_log_cluster_size: u32,
    pub s_blocks_per_group: u32,
    pub s_clusters_per_group: u32,
    pub s_inodes_per_group: u32,
    pub s_state: u16,
    /// The group this copy sits in: 0 in the primary, the group number in a backup.
    pub s_block_group_nr: u16,
    pub s_rev_level: u32,
    pub s_inode_size: u16,
    pub s_feature_compat: u32,
    pub s_feature_incompat: u32,
    pub s_feature_ro_compat: u32,
    pub s_uuid: [u8; 16],
    pub s_reserved_gdt_blocks: u16,
    pub s_desc_size: u16,
    pub s_first_meta_bg: u32,
    pub s_backup_bgs: [u32; 2],
    pub s_checksum_seed: u32,
    pub s_checksum: u32,
    /// The raw bytes, kept for the superblock checksum.
    pub raw: Vec<u8>,
}

fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .unwrap_or(0)
}

fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

impl Superblock {
    /// Parses and validates 1024 superblock bytes.
    pub fn parse(b: &[u8], device: &str) -> Result<Self, ExtError> {
        if b.len() < SUPERBLOCK_SIZE {
            return Err(ExtError::Unsupported {
                device: device.into(),
                what: format!("superblock buffer is {} bytes", b.len()),
            });
        }
        let magic = le16(b, 0x38);
        if magic != EXT4_SUPER_MAGIC {
            return Err(ExtError::BadMagic {
                device: device.into(),
                value: magic,
            });
        }
        let incompat = le32(b, 0x60);
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let hi = |off: usize| {
            if is64 {
                u64::from(le32(b, off)) << 32
            } else {
                0
            }
        };
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(&b[0x68..0x78]);
        let sb = Superblock {
            s_blocks_count: u64::from(le32(b, 0x4)) | hi(0x150),
            s_free_blocks_count: u64::from(le32(b, 0xC)) | hi(0x158),
            s_first_data_block: le32(b, 0x14),
            s_log_block_size: le32(b, 0x18),
            s_log_cluster_size: le32(b, 0x1C),
            s_blocks_per_group: le32(b, 0x20),
            s_clusters_per_group: le32(b, 0x24),
            s_inodes_per_group: le32(b, 0x28),
            s_state: le16(b, 0x3A),
            s_block_group_nr: le16(b, BLOCK_GROUP_NR_OFFSET),
            s_rev_level: le32(b, 0x4C),
            s_inode_size: le16(b, 0x58),
            s_feature_compat: le32(b, 0x5C),
            s_feature_incompat: incompat,
            s_feature_ro_compat: le32(b, 0x64),
            s_uuid: uuid,
            s_reserved_gdt_blocks: le16(b, 0xCE),
            s_desc_size: le16(b, 0xFE),
            s_first_meta_bg: le32(b, 0x104),
            s_backup_bgs: [le32(b, 0x24C), le32(b, 0x250)],
            s_checksum_seed: le32(b, 0x270),
            s_checksum: le32(b, CHECKSUM_OFFSET),
            raw: b[..SUPERBLOCK_SIZE].to_vec(),
        };
        sb.validate(device)?;
        Ok(sb)
    }

    fn bad(device: &str, field: &'static str, value: u64, why: &'static str) -> ExtError {
        ExtError::BadField {
            device: device.into(),
            field,
            value,
            why,
        }
    }

    fn validate(&self, dev: &str) -> Result<(), ExtError> {
        if self.s_feature_incompat & INCOMPAT_JOURNAL_DEV != 0 {
            return Err(ExtError::Unsupported {
                device: dev.into(),
                what: "an external ext journal device, not a filesystem".into(),
            });
        }
        // 64 KiB is the largest block size the kernel and mke2fs accept.
        if self.s_log_block_size > 6 {
            return Err(Self::bad(
                dev,
                "s_log_block_size",
                self.s_log_block_size.into(),
                "block size over 64 KiB",
            ));
        }
        if self.bigalloc()
            && (self.s_log_cluster_size < self.s_log_block_size
                || self.s_log_cluster_size - self.s_log_block_size > 16
                || self.s_log_cluster_size > 20)
        {
            return Err(Self::bad(
                dev,
                "s_log_cluster_size",
                self.s_log_cluster_size.into(),
                "cluster size out of range for the block size",
            ));
        }
        let bits_per_bitmap = 8 * self.block_size() as u32;
        if self.s_clusters_per_group_eff() == 0 || self.s_clusters_per_group_eff() > bits_per_bitmap
        {
            return Err(Self::bad(
                dev,
                "s_clusters_per_group",
                self.s_clusters_per_group_eff().into(),
                "zero or more than one bitmap block holds",
            ));
        }
        let expected_bpg = u64::from(self.s_clusters_per_group_eff()) * self.cluster_ratio();
        if u64::from(self.s_blocks_per_group) != expected_bpg {
            return Err(Self::bad(
                dev,
                "s_blocks_per_group",
                self.s_blocks_per_group.into(),
                "does not match clusters per group times the cluster ratio",
            ));
        }
        let fdb_ok = match self.s_first_data_block {
            0 => true,
            1 => self.block_size() == 1024 && !self.bigalloc(),
            _ => false,
        };
        if !fdb_ok {
            return Err(Self::bad(
                dev,
                "s_first_data_block",
                self.s_first_data_block.into(),
                "must be 1 for 1 KiB blocks and 0 otherwise",
            ));
        }
        if self.s_blocks_count <= u64::from(self.s_first_data_block) {
            return Err(Self::bad(
                dev,
                "s_blocks_count",
                self.s_blocks_count,
                "no blocks after s_first_data_block",
            ));
        }
        if self.s_blocks_count.checked_mul(self.block_size()).is_none() {
            return Err(Self::bad(
                dev,
                "s_blocks_count",
                self.s_blocks_count,
                "filesystem size overflows 64 bits",
            ));
        }
        let ds = self.desc_size();
        if self.is_64bit() && (!(64..=1024).contains(&ds) || !ds.is_power_of_two()) {
            return Err(Self::bad(
                dev,
                "s_desc_size",
                self.s_desc_size.into(),
                "64bit descriptors must be a power of two from 64 to 1024",
            ));
        }
        if ds > self.block_size() {
            return Err(Self::bad(dev, "s_desc_size", ds, "larger than a block"));
        }
        if self.s_inodes_per_group == 0 {
            return Err(Self::bad(dev, "s_inodes_per_group", 0, "zero"));
        }
        let isz = self.inode_size();
        if isz < 128 || !isz.is_power_of_two() || isz > self.block_size() {
            return Err(Self::bad(
                dev,
                "s_inode_size",
                isz,
                "must be a power of two from 128 to the block size",
            ));
        }
        // A resize inode reserves at most one indirect block's worth of GDT blocks.
        if u64::from(self.s_reserved_gdt_blocks) > self.block_size() / 4 {
            return Err(Self::bad(
                dev,
                "s_reserved_gdt_blocks",
                self.s_reserved_gdt_blocks.into(),
                "more than one indirect block addresses",
            ));
        }
        Ok(())
    }

    pub fn block_size(&self) -> u64 {
        1024u64 << self.s_log_block_size.min(6)
    }

    pub fn bigalloc(&self) -> bool {
        self.s_feature_ro_compat & RO_COMPAT_BIGALLOC != 0
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

    pub fn is_64bit(&self) -> bool {
        self.s_feature_incompat & INCOMPAT_64BIT != 0
    }

    pub fn desc_size(&self) -> u64 {
        if self.is_64bit() {
            u64::from(self.s_desc_size)
        } else {
            32
        }
    }

    pub fn inode_size(&self) -> u64 {
        if self.s_rev_level == 0 {
            128
        } else {
            u64::from(self.s_inode_size)
        }
    }

    pub fn meta_bg(&self) -> bool {
        self.s_feature_incompat & INCOMPAT_META_BG != 0
    }

    pub fn metadata_csum(&self) -> bool {
        self.s_feature_ro_compat & RO_COMPAT_METADATA_CSUM != 0
    }

    /// Group descriptors carry a checksum (and so the UNINIT flags mean something).
    pub fn has_group_desc_csum(&self) -> bool {
        self.metadata_csum() || self.s_feature_ro_compat & RO_COMPAT_GDT_CSUM != 0
    }

    pub fn needs_recovery(&self) -> bool {
        self.s_feature_incompat & INCOMPAT_RECOVER != 0
    }

    pub fn has_errors(&self) -> bool {
        self.s_state & EXT2_ERROR_FS != 0
    }

    /// Number of block groups; the last may be shorter.
    pub fn group_count(&self) -> u64 {
        let data = self.s_blocks_count - u64::from(self.s_first_data_block);
        data.div_ceil(u64::from(self.s_blocks_per_group.max(1)))
    }

    /// Blocks one group's inode table occupies.
    pub fn inode_table_blocks(&self) -> u64 {
        (u64::from(self.s_inodes_per_group) * self.inode_size()).div_ceil(self.block_size())
    }
}
