//! Small helpers shared by the probes: a read that is `None` past the device's end,
//! magic and label decoding. Field reads are `crate::bytes`'s; a field outside the
//! superblock buffer is `None` there, so a truncated read is "not this filesystem"
//! rather than a crash.

use crate::device::BlockDevice;

/// Reads `len` bytes at `offset`, or `None` when the device is too small or the read fails.
pub(crate) fn read(dev: &dyn BlockDevice, offset: u64, len: usize) -> Option<Vec<u8>> {
    let end = offset.checked_add(len as u64)?;
    if end > dev.size() {
        return None;
    }
    dev.read_vec(offset, len).ok()
}

/// True when `b[off..]` starts with `magic`.
pub(crate) fn has(b: &[u8], off: usize, magic: &[u8]) -> bool {
    off.checked_add(magic.len())
        .and_then(|end| b.get(off..end))
        .is_some_and(|s| s == magic)
}

/// A NUL-padded byte-string label, decoded lossily; empty means no label.
pub(crate) fn label_from_bytes(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    let s = String::from_utf8_lossy(&raw[..end]).trim_end().to_string();
    (!s.is_empty()).then_some(s)
}

/// A UTF-16LE label (NTFS, exFAT), stopping at a NUL.
pub(crate) fn label_from_utf16le(raw: &[u8]) -> Option<String> {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let s = String::from_utf16_lossy(&units);
    (!s.is_empty()).then_some(s)
}

/// A 16-byte UUID as `blkid` prints it (lower-case, hyphenated).
pub(crate) fn uuid_string(raw: [u8; 16]) -> Option<String> {
    if raw.iter().all(|&b| b == 0) {
        return None;
    }
    Some(uuid::Uuid::from_bytes(raw).hyphenated().to_string())
}

/// A 32-bit FAT/exFAT volume serial as `blkid` prints it: `ABCD-1234`.
pub(crate) fn serial32(id: u32) -> String {
    format!("{:04X}-{:04X}", id >> 16, id & 0xffff)
}

pub(crate) fn is_pow2_in(v: u64, lo: u64, hi: u64) -> bool {
    v.is_power_of_two() && (lo..=hi).contains(&v)
}
