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
    #[error("MFT record {record}, attribute at byte {offset}: {fault}")]
    Attribute {
        record: u64,
        offset: usize,
        fault: AttrFault,
    },
    #[error("MFT record {record}, run list at byte {offset}: {fault}")]
    Runlist {
        record: u64,
        offset: usize,
        fault: RunFault,
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

/// Why an attribute header cannot be trusted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AttrFault {
    #[error("the attributes run past bytes_in_use without an end marker")]
    NoEndMarker,
    #[error("length {length} does not fit the record (at least 24, a multiple of 8)")]
    Length { length: usize },
    #[error("resident value {value_offset}+{value_length} past attribute length {length}")]
    ResidentValue {
        value_offset: usize,
        value_length: usize,
        length: usize,
    },
    #[error("mapping pairs offset {mapping_pairs_offset} outside attribute length {length}")]
    MappingPairs {
        mapping_pairs_offset: usize,
        length: usize,
    },
    #[error("$FILE_NAME value shorter than its name")]
    FileName,
}

/// Why a run list (mapping pairs) cannot be trusted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RunFault {
    #[error("no terminating zero byte")]
    NoTerminator,
    #[error("run header {header:#04x} has invalid field sizes")]
    Header { header: u8 },
    #[error("the run's {field} runs past the attribute")]
    Truncated { field: &'static str },
    #[error("run length {length} clusters is absurd for a {total_clusters}-cluster volume")]
    Length { length: u64, total_clusters: u64 },
    #[error("LCN delta {delta} overflows")]
    DeltaOverflow { delta: i64 },
    #[error("LCN {lcn} is negative")]
    NegativeLcn { lcn: i64 },
    #[error("run LCN {lcn}+{length} ends past the volume's {total_clusters} clusters")]
    PastVolume {
        lcn: u64,
        length: u64,
        total_clusters: u64,
    },
    #[error("VCNs exceed the volume's cluster count")]
    VcnOverflow,
}
