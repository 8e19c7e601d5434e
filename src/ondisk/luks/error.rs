//! What can be wrong in a LUKS header, naming the structure (LUKS1 `phdr`, LUKS2 binary
//! header, JSON area, segment, keyslot) and the field, as cryptsetup's `luks.h` and
//! `luks2.h` spell them.

use crate::device::DeviceError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LuksError {
    #[error("LUKS: no \"LUKS\\xba\\xbe\" magic at byte 0")]
    NoMagic,
    #[error("LUKS header at byte 0: version {0} is neither 1 nor 2")]
    Version(u16),
    #[error("LUKS1 phdr: {field}: {what}")]
    Phdr { field: &'static str, what: String },
    #[error("LUKS1 phdr key slot {slot}: {field}: {what}")]
    Keyblock {
        slot: usize,
        field: &'static str,
        what: String,
    },
    #[error("LUKS2 binary header at byte {offset}: {field}: {what}")]
    BinHeader {
        offset: u64,
        field: &'static str,
        what: String,
    },
    #[error("LUKS2 JSON area ({len} bytes at byte 4096): {what}")]
    Json { len: u64, what: String },
    #[error("LUKS2 segment {key}: {field}: {what}")]
    Segment {
        key: String,
        field: &'static str,
        what: String,
    },
    #[error("LUKS2 keyslot {key}: area.{field}: {what}")]
    Keyslot {
        key: String,
        field: &'static str,
        what: String,
    },
    #[error("LUKS{version} header: the data area ({what}) does not fit the {device} byte device")]
    Beyond {
        version: u16,
        what: String,
        device: u64,
    },
    #[error("reading the LUKS header: {0}")]
    Device(#[from] DeviceError),
}
