//! GPT stores GUIDs "mixed-endian": the first three fields little-endian, the last
//! two as bytes. Getting this wrong silently changes every partition UUID, which
//! breaks fstab, GRUB and Windows BCD after a restore, so it lives in one place.

use uuid::Uuid;

/// Decodes 16 on-disk bytes (mixed-endian) into a `Uuid`.
pub fn guid_from_disk(b: &[u8; 16]) -> Uuid {
    Uuid::from_bytes_le(*b)
}

/// Encodes a `Uuid` into its 16 on-disk bytes (mixed-endian).
pub fn guid_to_disk(u: &Uuid) -> [u8; 16] {
    u.to_bytes_le()
}

/// Reads a GUID at `off` in `buf`; `None` when the buffer is too short.
pub fn guid_at(buf: &[u8], off: usize) -> Option<Uuid> {
    let end = off.checked_add(16)?;
    let b: [u8; 16] = buf.get(off..end)?.try_into().ok()?;
    Some(guid_from_disk(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esp_guid_mixed_endian() {
        // The ESP type GUID as it appears on disk.
        let disk: [u8; 16] = [
            0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e,
            0xc9, 0x3b,
        ];
        let u = guid_from_disk(&disk);
        assert_eq!(u.to_string(), "c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
        assert_eq!(guid_to_disk(&u), disk);
    }
}
