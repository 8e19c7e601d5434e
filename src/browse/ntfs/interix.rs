//! Interix special files, as ntfs-3g writes them for `ln -s` and `mknod` (and as
//! Windows' old Services for Unix did): a regular file with the SYSTEM attribute
//! whose data starts with an 8-byte magic. A symlink (`IntxLNK\1`) is followed by
//! its target in UTF-16LE; character and block devices (`IntxCHR\0`, `IntxBLK\0`)
//! by their numbers. Without this, `browse get` would copy the magic and the
//! UTF-16 bytes out as a file.

use crate::bytes::{array, le16};
use thiserror::Error;

const SYMLINK: [u8; 8] = *b"IntxLNK\x01";
const CHAR_DEVICE: [u8; 8] = *b"IntxCHR\x00";
const BLOCK_DEVICE: [u8; 8] = *b"IntxBLK\x00";
/// The magic and a target of at most PATH_MAX (4096) UTF-16 units: a longer
/// SYSTEM file is ordinary data, and callers read no more than this.
pub const MAX_LEN: u64 = 8 + 2 * 4096;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum InterixError {
    #[error("Interix symlink: target of {0} bytes is not whole UTF-16 units")]
    OddLength(usize),
    #[error("Interix symlink: target is not valid UTF-16")]
    BadUtf16,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Interix {
    Symlink(String),
    /// A character or block device node.
    Device,
}

/// What the data of a SYSTEM file is, or `None` for an ordinary file.
pub fn decode(data: &[u8]) -> Result<Option<Interix>, InterixError> {
    match array::<8>(data, 0) {
        Some(SYMLINK) => {
            let raw = data.get(8..).unwrap_or_default();
            if raw.len() % 2 != 0 {
                return Err(InterixError::OddLength(raw.len()));
            }
            let units: Vec<u16> = (0..raw.len() / 2)
                .filter_map(|i| le16(raw, i * 2))
                .collect();
            let units = units.strip_suffix(&[0]).unwrap_or(&units);
            let target = String::from_utf16(units).map_err(|_| InterixError::BadUtf16)?;
            Ok(Some(Interix::Symlink(target)))
        }
        Some(CHAR_DEVICE | BLOCK_DEVICE) => Ok(Some(Interix::Device)),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_devices_and_ordinary_files() {
        let mut b = b"IntxLNK\x01".to_vec();
        b.extend("../d1/é".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode(&b), Ok(Some(Interix::Symlink("../d1/é".into()))));
        let mut c = b"IntxCHR\x00".to_vec();
        c.extend_from_slice(&[0; 16]);
        assert_eq!(decode(&c), Ok(Some(Interix::Device)));
        assert_eq!(decode(b"IntxLNK"), Ok(None), "shorter than the magic");
        assert_eq!(decode(b"MZ\x90\x00 a program"), Ok(None));
        b.push(0);
        assert_eq!(decode(&b), Err(InterixError::OddLength(15)));
        let mut bad = b"IntxLNK\x01".to_vec();
        bad.extend_from_slice(&0xDC00u16.to_le_bytes());
        assert_eq!(decode(&bad), Err(InterixError::BadUtf16));
    }
}
