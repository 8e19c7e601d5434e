//! The value of a `$FILE_NAME` attribute (ntfs-3g `FILE_NAME_ATTR`): the parent
//! directory and one of the file's names. A file has one per hard link and per
//! namespace (a long Win32 name and its DOS 8.3 alias are two attributes).

use super::record::MREF_MASK;
use crate::bytes::{le64, u8_at};

const PARENT_DIRECTORY_OFFSET: usize = 0x00;
const FILE_NAME_LENGTH_OFFSET: usize = 0x40;
const FILE_NAME_TYPE_OFFSET: usize = 0x41;
const FILE_NAME_OFFSET: usize = 0x42;

/// `file_name_type` of a DOS 8.3 alias (`FILE_NAME_DOS`).
pub const FILE_NAME_DOS: u8 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName {
    /// The parent directory's MFT record number (sequence number dropped).
    pub parent_record: u64,
    /// The namespace: POSIX 0, Win32 1, DOS 2, Win32 and DOS 3.
    pub file_name_type: u8,
    pub name: String,
}

impl FileName {
    /// Decodes a resident `$FILE_NAME` value; `None` when the name runs past it.
    pub fn parse(v: &[u8]) -> Option<Self> {
        let parent_record = le64(v, PARENT_DIRECTORY_OFFSET)? & MREF_MASK;
        let units = usize::from(u8_at(v, FILE_NAME_LENGTH_OFFSET)?);
        let file_name_type = u8_at(v, FILE_NAME_TYPE_OFFSET)?;
        let raw = v.get(FILE_NAME_OFFSET..FILE_NAME_OFFSET + 2 * units)?;
        let utf16: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        Some(FileName {
            parent_record,
            file_name_type,
            name: String::from_utf16_lossy(&utf16),
        })
    }

    pub fn is_dos_alias(&self) -> bool {
        self.file_name_type == FILE_NAME_DOS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_bounds_the_name() {
        let mut v = vec![0u8; 0x42 + 4];
        v[0..8].copy_from_slice(&(0x0005_0000_0000_0005u64).to_le_bytes());
        v[0x40] = 2;
        v[0x41] = 1;
        v[0x42..].copy_from_slice(&[b'h', 0, b'i', 0]);
        let f = FileName::parse(&v).unwrap();
        assert_eq!((f.parent_record, f.name.as_str()), (5, "hi"));
        assert!(!f.is_dos_alias());
        v[0x40] = 3;
        assert_eq!(FileName::parse(&v), None, "name past the value");
        assert_eq!(FileName::parse(&v[..0x40]), None);
    }
}
