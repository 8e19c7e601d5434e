//! Checked field access on on-disk buffers, shared by every parser (partition tables,
//! probes, used-block maps, boot repair, packs).
//!
//! Offsets come, directly or not, from disk, so a field may lie past the end of a
//! truncated or crafted buffer. These return `None` (or `false`) instead of panicking;
//! each caller turns that into an error naming its own structure and field.

/// `N` bytes at `off`.
pub fn array<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

pub fn u8_at(b: &[u8], off: usize) -> Option<u8> {
    b.get(off).copied()
}

pub fn le16(b: &[u8], off: usize) -> Option<u16> {
    array(b, off).map(u16::from_le_bytes)
}

pub fn le32(b: &[u8], off: usize) -> Option<u32> {
    array(b, off).map(u32::from_le_bytes)
}

pub fn le64(b: &[u8], off: usize) -> Option<u64> {
    array(b, off).map(u64::from_le_bytes)
}

pub fn be16(b: &[u8], off: usize) -> Option<u16> {
    array(b, off).map(u16::from_be_bytes)
}

pub fn be32(b: &[u8], off: usize) -> Option<u32> {
    array(b, off).map(u32::from_be_bytes)
}

pub fn be64(b: &[u8], off: usize) -> Option<u64> {
    array(b, off).map(u64::from_be_bytes)
}

/// Writes `v` at `off`; `false` when it would not fit (callers size their buffers, so
/// a miss is a programming error they report rather than a panic).
pub fn put(b: &mut [u8], off: usize, v: &[u8]) -> bool {
    match off.checked_add(v.len()).and_then(|end| b.get_mut(off..end)) {
        Some(dst) => {
            dst.copy_from_slice(v);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_and_refuses_past_the_end() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(le16(&b, 0), Some(0x0201));
        assert_eq!(be16(&b, 0), Some(0x0102));
        assert_eq!(le32(&b, 5), Some(0x0908_0706));
        assert_eq!(be32(&b, 5), Some(0x0607_0809));
        assert_eq!(le64(&b, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(le32(&b, 6), None);
        assert_eq!(le64(&b, 2), None);
        assert_eq!(u8_at(&b, 9), None);
        assert_eq!(le16(&b, usize::MAX), None, "no overflow on a huge offset");
        assert_eq!(array::<3>(&b, 6), Some([7, 8, 9]));
    }

    #[test]
    fn put_writes_only_what_fits() {
        let mut b = [0u8; 4];
        assert!(put(&mut b, 2, &[7, 8]));
        assert_eq!(b, [0, 0, 7, 8]);
        assert!(!put(&mut b, 3, &[1, 2]));
        assert!(!put(&mut b, usize::MAX, &[1]));
        assert_eq!(b, [0, 0, 7, 8], "a refused write changes nothing");
    }
}
