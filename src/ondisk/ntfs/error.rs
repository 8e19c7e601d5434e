//! What can be wrong in an NTFS structure, naming the structure and the field or byte.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("not an NTFS volume (no \"NTFS    \" OEM id at byte 3)")]
    NotNtfs,
    #[error("NTFS boot sector: {field} = {value} is invalid")]
    BootSector { field: &'static str, value: u64 },
    #[error("MFT record {record}: {fault}")]
    MftRecord { record: u64, fault: RecordFault },
    #[error("MFT record {record}, attribute at {offset}: {reason}")]
    Attribute {
        record: u64,
        offset: usize,
        reason: String,
    },
    #[error("MFT record {record}, run list at {offset}: {reason}")]
    Runlist {
        record: u64,
        offset: usize,
        reason: String,
    },
}

impl DecodeError {
    /// True when the bytes are not a FILE record at all (a never-used MFT slot), as
    /// opposed to a FILE record that is damaged.
    pub fn is_not_a_record(&self) -> bool {
        matches!(
            self,
            DecodeError::MftRecord {
                fault: RecordFault::Magic { .. },
                ..
            }
        )
    }
}

/// Why a FILE record header or its update sequence cannot be trusted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordFault {
    #[error("magic is {found:02x?}, not FILE")]
    Magic { found: [u8; 4] },
    #[error(
        "update sequence array offset {usa_ofs} count {usa_count} does not fit a {size}-byte record"
    )]
    UsaShape {
        usa_ofs: usize,
        usa_count: usize,
        size: usize,
    },
    #[error("update sequence array at {usa_ofs} runs past the first 512-byte stride")]
    UsaPastStride { usa_ofs: usize },
    #[error("fixup mismatch in stride {stride} (byte {at}): found {found:#06x}, expected {usn:#06x} (torn write)")]
    TornWrite {
        stride: usize,
        at: usize,
        found: u16,
        usn: u16,
    },
    #[error(
        "attrs_offset {attrs_offset} / bytes_in_use {bytes_in_use} do not fit a {size}-byte record"
    )]
    Bounds {
        attrs_offset: usize,
        bytes_in_use: usize,
        size: usize,
    },
}
