//! One block group descriptor (32 bytes, or 64+ with the `64bit` feature): where the
//! group's bitmaps and inode table live, whether its block bitmap was ever written, and
//! how much of its inode table has ever held an inode.

/// The inode bitmap was never written and no inode of the group is in use.
pub const EXT4_BG_INODE_UNINIT: u16 = 0x1;
pub const EXT4_BG_BLOCK_UNINIT: u16 = 0x2;
/// The whole inode table is known to hold zeros beyond `bg_itable_unused`'s mark.
pub const EXT4_BG_INODE_ZEROED: u16 = 0x4;
/// Offset of `bg_flags`.
pub const BG_FLAGS_OFFSET: usize = 0x12;
/// Offset of `bg_checksum`; the checksum covers the descriptor with this field skipped.
pub const BG_CHECKSUM_OFFSET: usize = 0x1E;

#[derive(Clone, Copy, Debug, Default)]
pub struct GroupDesc {
    pub bg_block_bitmap: u64,
    pub bg_inode_bitmap: u64,
    pub bg_inode_table: u64,
    pub bg_flags: u16,
    /// Inodes at the end of the table that were never used (meaningful only with
    /// group descriptor checksums).
    pub bg_itable_unused: u32,
    pub bg_checksum: u16,
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

impl GroupDesc {
    /// Parses one descriptor; the `_hi` halves count only when the descriptor is 64 bytes
    /// or more (the `64bit` feature), as in the kernel's `ext4_block_bitmap()`.
    pub fn parse(b: &[u8], wide: bool) -> Self {
        let hi32 = |off: usize| {
            if wide {
                u64::from(le32(b, off)) << 32
            } else {
                0
            }
        };
        GroupDesc {
            bg_block_bitmap: u64::from(le32(b, 0x0)) | hi32(0x20),
            bg_inode_bitmap: u64::from(le32(b, 0x4)) | hi32(0x24),
            bg_inode_table: u64::from(le32(b, 0x8)) | hi32(0x28),
            bg_flags: le16(b, BG_FLAGS_OFFSET),
            bg_itable_unused: u32::from(le16(b, 0x1C))
                | if wide {
                    u32::from(le16(b, 0x32)) << 16
                } else {
                    0
                },
            bg_checksum: le16(b, BG_CHECKSUM_OFFSET),
        }
    }

    pub fn block_uninit(&self) -> bool {
        self.bg_flags & EXT4_BG_BLOCK_UNINIT != 0
    }

    pub fn inode_uninit(&self) -> bool {
        self.bg_flags & EXT4_BG_INODE_UNINIT != 0
    }
}
