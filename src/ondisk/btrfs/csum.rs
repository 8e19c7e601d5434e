//! The crc32c that guards the superblock and every tree block: over the bytes after
//! the 32-byte checksum field, stored little-endian in its first 4 bytes. Other
//! checksum types (xxhash64, sha256, blake2b) are not verified here; the used map
//! refuses those volumes (imaged raw, with the reason).

use super::DecodeError;
use crate::bytes::le32;
use crc::{Crc, CRC_32_ISCSI};

/// `csum_type` 0.
pub const BTRFS_CSUM_TYPE_CRC32: u16 = 0;
/// The checksum field's size: the checksummed bytes start after it.
pub const BTRFS_CSUM_SIZE: usize = 32;

static CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// Checks the crc32c of `block`; `what` and `at` name it in the error.
pub fn verify(block: &[u8], what: &'static str, at: u64) -> Result<(), DecodeError> {
    let body = block.get(BTRFS_CSUM_SIZE..).unwrap_or(&[]);
    let computed = CRC32C.checksum(body);
    let found = le32(block, 0).unwrap_or(!computed);
    if found != computed || body.is_empty() {
        return Err(DecodeError::Csum {
            what,
            at,
            found,
            computed,
        });
    }
    Ok(())
}

/// Writes the crc32c of `block` into its checksum field (tests and fixtures).
pub fn seal(block: &mut [u8]) {
    if block.len() > BTRFS_CSUM_SIZE {
        let sum = CRC32C.checksum(&block[BTRFS_CSUM_SIZE..]);
        block[..4].copy_from_slice(&sum.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_verify_and_a_flip_fails() {
        let mut b = vec![7u8; 4096];
        seal(&mut b);
        assert!(verify(&b, "superblock", 65536).is_ok());
        b[100] ^= 1;
        assert!(matches!(
            verify(&b, "superblock", 65536),
            Err(DecodeError::Csum { at: 65536, .. })
        ));
        assert!(verify(&b[..10], "node", 0).is_err());
        // The crate's CRC-32/ISCSI is crc32c: its check value.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
    }
}
