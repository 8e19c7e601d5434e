//! The v5 metadata checksum: crc32c over a whole buffer with its CRC field read as zero
//! (`xfs_start_cksum_safe` / `xfs_end_cksum`), stored little-endian.

use crate::bytes::le32;
use ::crc::{Crc, CRC_32_ISCSI};

static CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// The checksum `buf` should carry in its 4-byte field at `at`; `None` when the field
/// lies outside the buffer.
pub(super) fn expected(buf: &[u8], at: usize) -> Option<u32> {
    let head = buf.get(..at)?;
    let tail = buf.get(at.checked_add(4)?..)?;
    let mut d = CRC32C.digest();
    d.update(head);
    d.update(&[0; 4]);
    d.update(tail);
    Some(d.finalize())
}

/// `(stored, expected)` when they differ, `None` when the checksum is good.
pub(super) fn mismatch(buf: &[u8], at: usize) -> Option<(u32, u32)> {
    let stored = le32(buf, at).unwrap_or(0);
    let want = expected(buf, at).unwrap_or(!stored);
    (stored != want).then_some((stored, want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value_and_zeroed_field() {
        assert_eq!(CRC32C.checksum(b"123456789"), 0xE306_9283);
        let mut b = b"1234XXXX56789".to_vec();
        let want = expected(&b, 4).unwrap();
        b[4..8].copy_from_slice(&want.to_le_bytes());
        assert_eq!(mismatch(&b, 4), None);
        b[0] ^= 1;
        assert!(mismatch(&b, 4).is_some());
    }
}
