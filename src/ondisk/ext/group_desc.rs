//! One block group descriptor (`struct ext4_group_desc`: 32 bytes, or 64+ with the
//! `64bit` feature): where the group's bitmaps and inode table live, whether its block
//! bitmap was ever written, and how much of its inode table has ever held an inode.

use super::ExtDecodeError;
use crate::bytes::{le16, le32};

/// The inode bitmap was never written and no inode of the group is in use.
pub const EXT4_BG_INODE_UNINIT: u16 = 0x1;
pub const EXT4_BG_BLOCK_UNINIT: u16 = 0x2;
/// The whole inode table is known to hold zeros beyond `bg_itable_unused`'s mark.
pub const EXT4_BG_INODE_ZEROED: u16 = 0x4;

const BG_BLOCK_BITMAP_LO: usize = 0x0;
const BG_INODE_BITMAP_LO: usize = 0x4;
const BG_INODE_TABLE_LO: usize = 0x8;
/// Offset of `bg_flags`.
pub const BG_FLAGS: usize = 0x12;
const BG_ITABLE_UNUSED_LO: usize = 0x1C;
/// Offset of `bg_checksum`; the checksum covers the descriptor with this field skipped.
pub const BG_CHECKSUM: usize = 0x1E;
const BG_BLOCK_BITMAP_HI: usize = 0x20;
const BG_INODE_BITMAP_HI: usize = 0x24;
const BG_INODE_TABLE_HI: usize = 0x28;
const BG_ITABLE_UNUSED_HI: usize = 0x32;
/// Bytes a descriptor must have: the classic 32, or 64 with the `_hi` halves.
const EXT4_MIN_DESC_SIZE: usize = 32;
const EXT4_MIN_DESC_SIZE_64BIT: usize = 64;

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

impl GroupDesc {
    /// Decodes the descriptor of group `group` on `device`; the `_hi` halves count only
    /// when `wide` (64bit with descriptors of 64 bytes or more), as in the kernel's
    /// `ext4_block_bitmap()`. A buffer shorter than the descriptor is an error.
    pub fn parse(b: &[u8], wide: bool, device: &str, group: u64) -> Result<Self, ExtDecodeError> {
        let need = if wide {
            EXT4_MIN_DESC_SIZE_64BIT
        } else {
            EXT4_MIN_DESC_SIZE
        };
        let short = || ExtDecodeError::ShortDesc {
            device: device.into(),
            group,
            len: b.len(),
            need,
        };
        let b = b.get(..need).ok_or_else(short)?;
        let u16_at = |off| le16(b, off).ok_or_else(short);
        let u32_at = |off| le32(b, off).ok_or_else(short);
        let lohi = |lo: usize, hi: usize| -> Result<u64, ExtDecodeError> {
            let hi = if wide {
                u64::from(u32_at(hi)?) << 32
            } else {
                0
            };
            Ok(u64::from(u32_at(lo)?) | hi)
        };
        let unused_hi = if wide {
            u32::from(u16_at(BG_ITABLE_UNUSED_HI)?) << 16
        } else {
            0
        };
        Ok(GroupDesc {
            bg_block_bitmap: lohi(BG_BLOCK_BITMAP_LO, BG_BLOCK_BITMAP_HI)?,
            bg_inode_bitmap: lohi(BG_INODE_BITMAP_LO, BG_INODE_BITMAP_HI)?,
            bg_inode_table: lohi(BG_INODE_TABLE_LO, BG_INODE_TABLE_HI)?,
            bg_flags: u16_at(BG_FLAGS)?,
            bg_itable_unused: u32::from(u16_at(BG_ITABLE_UNUSED_LO)?) | unused_hi,
            bg_checksum: u16_at(BG_CHECKSUM)?,
        })
    }

    pub fn block_uninit(&self) -> bool {
        self.bg_flags & EXT4_BG_BLOCK_UNINIT != 0
    }

    pub fn inode_uninit(&self) -> bool {
        self.bg_flags & EXT4_BG_INODE_UNINIT != 0
    }

    pub fn inode_zeroed(&self) -> bool {
        self.bg_flags & EXT4_BG_INODE_ZEROED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_hi_halves_only_when_wide() {
        let mut b = [0u8; 64];
        b[BG_INODE_TABLE_LO] = 5;
        b[BG_INODE_TABLE_HI] = 1;
        b[BG_ITABLE_UNUSED_LO] = 7;
        b[BG_ITABLE_UNUSED_HI] = 1;
        let narrow = GroupDesc::parse(&b, false, "t", 0).expect("32 bytes are there");
        assert_eq!(narrow.bg_inode_table, 5);
        assert_eq!(narrow.bg_itable_unused, 7);
        let wide = GroupDesc::parse(&b, true, "t", 0).expect("64 bytes are there");
        assert_eq!(wide.bg_inode_table, (1 << 32) | 5);
        assert_eq!(wide.bg_itable_unused, (1 << 16) | 7);
    }

    #[test]
    fn a_short_descriptor_is_an_error_not_zeros() {
        let b = [0xffu8; 40];
        assert!(GroupDesc::parse(&b, false, "t", 3).is_ok());
        let err = GroupDesc::parse(&b, true, "/dev/x", 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/x: the descriptor of group 3 is 40 bytes, shorter than the 64 it needs"
        );
        assert!(GroupDesc::parse(&b[..31], false, "t", 0).is_err());
    }
}
