//! Partclone images (what Clonezilla and Rescuezilla store per partition), read as a
//! stream: the descriptor, the used-block bitmap, then the used blocks with their
//! checksums. Formats 0002 (every checksum mode: none, CRC32, XXH64, XXH128; bitmap by
//! bit, by byte or none) and 0001 are read; every CRC and checksum the image carries is
//! checked. The reader takes any `Read`, so a decompressing stream (`foreign::compress`)
//! over split volumes (`foreign::volumes`) feeds it directly.
//!
//! Hand-written rather than through a crate: no maintained Rust crate reads partclone
//! images. The layout follows partclone's src/partclone.h and src/main.c.

mod bitmap;
mod checksum;
mod data;
mod error;
mod header;
mod source;

pub use bitmap::{Bitmap, Runs};
pub use error::PartcloneError;
pub use header::{BitmapMode, ChecksumMode, Header, ImageVersion, MAGIC};

use data::Blocks;
use header::{V1_LEN, V2_LEN};
use source::Source;
use std::io::Read;

/// An open partclone image: header and bitmap decoded, positioned at the first block.
pub struct PartcloneImage<R> {
    header: Header,
    bitmap: Bitmap,
    blocks: Blocks<R>,
}

impl<R: Read> PartcloneImage<R> {
    /// Reads and checks the header and the bitmap; `file` names the image in errors.
    pub fn open(file: impl Into<String>, reader: R) -> Result<Self, PartcloneError> {
        let mut src = Source::new(file.into(), reader);
        let mut desc = vec![0u8; V2_LEN];
        src.read_exact(&mut desc, &|| "image header".into())?;
        let header = match Header::version_of(src.file(), &desc)? {
            ImageVersion::V2 => Header::parse_v2(src.file(), &desc)?,
            ImageVersion::V1 => {
                desc.resize(V1_LEN, 0);
                src.read_exact(desc.get_mut(V2_LEN..).unwrap_or_default(), &|| {
                    "image header".into()
                })?;
                Header::parse_v1(src.file(), &desc)?
            }
        };
        let bitmap = Bitmap::read(&mut src, &header)?;
        if let Some(used) = header.used_bitmap {
            if used != bitmap.used() {
                return Err(PartcloneError::UsedCount {
                    file: src.file().to_string(),
                    field_offset: 76,
                    header: used,
                    bitmap: bitmap.used(),
                });
            }
        }
        let blocks = Blocks::new(src, &header);
        Ok(Self {
            header,
            bitmap,
            blocks,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn bitmap(&self) -> &Bitmap {
        &self.bitmap
    }

    /// Bytes of one block: the size `next_block` wants its buffer.
    pub fn block_size(&self) -> usize {
        usize::try_from(self.header.block_size).unwrap_or(0)
    }

    /// Image bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.blocks.offset()
    }

    /// The next used block into `buf` (`block_size()` bytes), with its block number;
    /// `None` after the last, once its checksum was checked.
    pub fn next_block(&mut self, buf: &mut [u8]) -> Result<Option<u64>, PartcloneError> {
        self.blocks.next_block(&self.bitmap, buf)
    }

    /// Reads the whole data area, checking every checksum; the number of blocks read.
    pub fn verify(&mut self) -> Result<u64, PartcloneError> {
        let mut buf = vec![0u8; self.block_size()];
        let mut n = 0u64;
        while self.next_block(&mut buf)?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}
