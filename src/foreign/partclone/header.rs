//! The partclone image descriptor (partclone's `image_desc_v2` and `image_desc_v1` in
//! src/partclone.h, packed little-endian). Format 0002 is 110 bytes ending in a CRC32 of
//! the 106 before it; format 0001 is 36 bytes of names, 28 of geometry and 4096 unused.

use super::checksum::crc32_partclone;
use super::error::PartcloneError;
use crate::bytes::{le16, le32, le64, u8_at};

pub const MAGIC: &[u8; 15] = b"partclone-image";
/// Bytes of a format-0002 descriptor, CRC included.
pub const V2_LEN: usize = 110;
/// Bytes of a format-0001 descriptor: head, fs info and the 4096-byte options block.
pub const V1_LEN: usize = 4160;
/// Largest block we accept: partclone's filesystems use at most 64 KiB clusters; the
/// cap keeps a crafted header from making us allocate gigabytes for one block.
pub const MAX_BLOCK_SIZE: u32 = 16 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageVersion {
    V1,
    V2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumMode {
    None,
    Crc32,
    Xxh64,
    Xxh128,
    /// Format 0001's CRC32, which (by a bug kept for compatibility) hashes each block's
    /// first byte `block_size` times and never reseeds.
    Crc32V1,
}

impl ChecksumMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "no",
            Self::Crc32 => "CRC32",
            Self::Xxh64 => "XXH64",
            Self::Xxh128 => "XXH128",
            Self::Crc32V1 => "CRC32 (format 0001)",
        }
    }
    fn size(self) -> u16 {
        match self {
            Self::None => 0,
            Self::Crc32 | Self::Crc32V1 => 4,
            Self::Xxh64 => 8,
            Self::Xxh128 => 16,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitmapMode {
    /// No bitmap stored: every block is in the image.
    None,
    /// One bit a block, LSB first, then a CRC32 of the bitmap bytes.
    Bit,
    /// One byte (0 or 1) a block; format 0001 ends it with "BiTmAgIc".
    Byte,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: ImageVersion,
    /// The partclone release that wrote the image (empty for format 0001).
    pub ptc_version: String,
    /// Filesystem name as partclone spells it: "EXT4", "NTFS", "FAT32", ...
    pub fs: String,
    pub device_size: u64,
    pub total_blocks: u64,
    /// Used blocks as the filesystem's own counters said at clone time.
    pub used_blocks: u64,
    /// Used blocks as counted in the bitmap (format 0002 only).
    pub used_bitmap: Option<u64>,
    pub block_size: u32,
    pub checksum_mode: ChecksumMode,
    pub checksum_size: u16,
    pub blocks_per_checksum: u32,
    pub reseed: bool,
    pub bitmap_mode: BitmapMode,
}

fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or(b)).into_owned()
}

impl Header {
    /// Which format the first 110 bytes announce; checks the magic.
    pub fn version_of(file: &str, first: &[u8]) -> Result<ImageVersion, PartcloneError> {
        let magic = first.get(..15).unwrap_or(first);
        if magic != MAGIC {
            return Err(PartcloneError::BadMagic {
                file: file.to_string(),
                found: String::from_utf8_lossy(magic).into_owned(),
            });
        }
        match first.get(30..34) {
            Some(b"0002") => Ok(ImageVersion::V2),
            Some(b"0001") => Ok(ImageVersion::V1),
            v => Err(PartcloneError::UnsupportedVersion {
                file: file.to_string(),
                version: String::from_utf8_lossy(v.unwrap_or_default()).into_owned(),
            }),
        }
    }

    /// Decodes a format-0002 descriptor (`b` holds at least `V2_LEN` bytes).
    pub fn parse_v2(file: &str, b: &[u8]) -> Result<Self, PartcloneError> {
        let short = || PartcloneError::Truncated {
            file: file.to_string(),
            structure: "image header".into(),
            offset: b.len() as u64,
        };
        let bad = |field, offset, value: u64, why| PartcloneError::BadField {
            file: file.to_string(),
            field,
            offset,
            value,
            why,
        };
        let desc = b.get(..V2_LEN).ok_or_else(short)?;
        let stored = le32(desc, 106).ok_or_else(short)?;
        let computed = crc32_partclone(desc.get(..106).ok_or_else(short)?);
        if stored != computed {
            return Err(PartcloneError::HeaderCrc {
                file: file.to_string(),
                stored,
                computed,
            });
        }
        let endian = le16(desc, 34).ok_or_else(short)?;
        if endian != 0xC0DE {
            return Err(bad(
                "endianess",
                34,
                endian.into(),
                "not 0xc0de: written on a big-endian machine",
            ));
        }
        let block_size = le32(desc, 84).ok_or_else(short)?;
        let mode = le16(desc, 96).ok_or_else(short)?;
        let checksum_mode = match mode {
            0x00 => ChecksumMode::None,
            0x20 => ChecksumMode::Crc32,
            0x30 => ChecksumMode::Xxh64,
            0x31 => ChecksumMode::Xxh128,
            _ => {
                return Err(bad(
                    "checksum_mode",
                    96,
                    mode.into(),
                    "unknown checksum mode",
                ))
            }
        };
        let checksum_size = le16(desc, 98).ok_or_else(short)?;
        let blocks_per_checksum = le32(desc, 100).ok_or_else(short)?;
        let reseed = u8_at(desc, 104).ok_or_else(short)?;
        let bm = u8_at(desc, 105).ok_or_else(short)?;
        let bitmap_mode = match bm {
            0 => BitmapMode::None,
            1 => BitmapMode::Bit,
            8 => BitmapMode::Byte,
            _ => {
                return Err(bad(
                    "bitmap_mode",
                    105,
                    bm.into(),
                    "not 0 (none), 1 (bit) or 8 (byte)",
                ))
            }
        };
        if checksum_size != checksum_mode.size() {
            return Err(bad(
                "checksum_size",
                98,
                checksum_size.into(),
                "does not match the checksum mode",
            ));
        }
        if checksum_mode != ChecksumMode::None && blocks_per_checksum == 0 {
            return Err(bad(
                "blocks_per_checksum",
                100,
                0,
                "zero with a checksum mode set",
            ));
        }
        if reseed > 1 {
            return Err(bad("reseed_checksum", 104, reseed.into(), "not 0 or 1"));
        }
        let h = Self {
            version: ImageVersion::V2,
            ptc_version: text(desc.get(16..30).ok_or_else(short)?),
            fs: text(desc.get(36..52).ok_or_else(short)?),
            device_size: le64(desc, 52).ok_or_else(short)?,
            total_blocks: le64(desc, 60).ok_or_else(short)?,
            used_blocks: le64(desc, 68).ok_or_else(short)?,
            used_bitmap: Some(le64(desc, 76).ok_or_else(short)?),
            block_size,
            checksum_mode,
            checksum_size,
            blocks_per_checksum,
            reseed: reseed == 1,
            bitmap_mode,
        };
        h.check_geometry(file, 84, 60)?;
        Ok(h)
    }

    /// Decodes a format-0001 descriptor (`b` holds at least its first 64 bytes; the
    /// 4096-byte options block after them is unused by every partclone release).
    pub fn parse_v1(file: &str, b: &[u8]) -> Result<Self, PartcloneError> {
        let short = || PartcloneError::Truncated {
            file: file.to_string(),
            structure: "image header".into(),
            offset: b.len() as u64,
        };
        let block_size = le32(b, 36).ok_or_else(short)?;
        let total_blocks = le64(b, 48).ok_or_else(short)?;
        let h = Self {
            version: ImageVersion::V1,
            ptc_version: String::new(),
            fs: text(b.get(15..30).ok_or_else(short)?),
            // Partclone itself replaces the stored size by blocks x block size.
            device_size: total_blocks.saturating_mul(block_size.into()),
            total_blocks,
            used_blocks: le64(b, 56).ok_or_else(short)?,
            used_bitmap: None,
            block_size,
            checksum_mode: ChecksumMode::Crc32V1,
            checksum_size: 4,
            blocks_per_checksum: 1,
            reseed: false,
            bitmap_mode: BitmapMode::Byte,
        };
        h.check_geometry(file, 36, 48)?;
        Ok(h)
    }

    fn check_geometry(
        &self,
        file: &str,
        bs_off: u64,
        total_off: u64,
    ) -> Result<(), PartcloneError> {
        let bad = |field, offset, value: u64, why| PartcloneError::BadField {
            file: file.to_string(),
            field,
            offset,
            value,
            why,
        };
        if self.block_size == 0 || self.block_size > MAX_BLOCK_SIZE {
            return Err(bad(
                "block_size",
                bs_off,
                self.block_size.into(),
                "zero or above 16 MiB",
            ));
        }
        if self
            .total_blocks
            .checked_mul(self.block_size.into())
            .is_none()
        {
            return Err(bad(
                "totalblock",
                total_off,
                self.total_blocks,
                "blocks x block size overflows",
            ));
        }
        if let Some(used) = self.used_bitmap {
            if used > self.total_blocks {
                return Err(bad("used_bitmap", 76, used, "more used blocks than blocks"));
            }
        }
        Ok(())
    }

    /// Bytes of the filesystem the image describes.
    pub fn fs_bytes(&self) -> u64 {
        // check_geometry proved this product fits.
        self.total_blocks.saturating_mul(self.block_size.into())
    }
}
