//! Superblock feature flags, named as in the kernel's `fs/ext4/ext4.h` (the ext2/ext3
//! names where only e2fsprogs defines them). All three words are `u32` on disk
//! (`s_feature_compat`, `s_feature_incompat`, `s_feature_ro_compat`).

pub const EXT4_FEATURE_COMPAT_HAS_JOURNAL: u32 = 0x0004;
pub const EXT4_FEATURE_COMPAT_SPARSE_SUPER2: u32 = 0x0200;

pub const EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
pub const EXT4_FEATURE_RO_COMPAT_LARGE_FILE: u32 = 0x0002;
pub const EXT2_FEATURE_RO_COMPAT_BTREE_DIR: u32 = 0x0004;
pub const EXT4_FEATURE_RO_COMPAT_GDT_CSUM: u32 = 0x0010;
pub const EXT4_FEATURE_RO_COMPAT_BIGALLOC: u32 = 0x0200;
pub const EXT4_FEATURE_RO_COMPAT_METADATA_CSUM: u32 = 0x0400;

pub const EXT4_FEATURE_INCOMPAT_FILETYPE: u32 = 0x0002;
pub const EXT4_FEATURE_INCOMPAT_RECOVER: u32 = 0x0004;
pub const EXT4_FEATURE_INCOMPAT_JOURNAL_DEV: u32 = 0x0008;
pub const EXT4_FEATURE_INCOMPAT_META_BG: u32 = 0x0010;
pub const EXT4_FEATURE_INCOMPAT_64BIT: u32 = 0x0080;
pub const EXT4_FEATURE_INCOMPAT_CSUM_SEED: u32 = 0x2000;

/// Everything ext3 understands (the kernel's `EXT3_FEATURE_INCOMPAT_SUPP`): a feature
/// outside it makes a volume ext4.
pub const EXT3_FEATURE_INCOMPAT_SUPP: u32 =
    EXT4_FEATURE_INCOMPAT_FILETYPE | EXT4_FEATURE_INCOMPAT_RECOVER | EXT4_FEATURE_INCOMPAT_META_BG;
/// The kernel's `EXT3_FEATURE_RO_COMPAT_SUPP`.
pub const EXT3_FEATURE_RO_COMPAT_SUPP: u32 = EXT4_FEATURE_RO_COMPAT_SPARSE_SUPER
    | EXT4_FEATURE_RO_COMPAT_LARGE_FILE
    | EXT2_FEATURE_RO_COMPAT_BTREE_DIR;
