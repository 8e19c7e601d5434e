//! Partition-table errors name the device, the structure (MBR, EBR, GPT header or
//! entry) and the LBA or field that was wrong, because a refused table on a rescue
//! disk must tell the person what to look at.

use super::gpt_entry::GptEntryError;
use super::gpt_header::GptHeaderError;
use crate::device::DeviceError;
use std::fmt;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TableError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("{device}: sector size {sector_size} is not supported (512..=65536, power of two)")]
    SectorSize { device: String, sector_size: u32 },
    #[error("{device}: device of {size} bytes is too small for a partition table")]
    TooSmallDevice { device: String, size: u64 },
    #[error("{device}: {what} at LBA {lba}: {reason}")]
    Invalid {
        device: String,
        what: String,
        lba: u64,
        reason: String,
    },
    #[error("{device}: EBR chain: {reason} (EBR at LBA {lba})")]
    EbrChain {
        device: String,
        lba: u64,
        reason: String,
    },
    #[error(
        "{device}: no valid GPT: primary {}; backup {}",
        primary.problem,
        backup.problem
    )]
    NoValidGpt {
        device: String,
        primary: Box<GptCopyError>,
        backup: Box<GptCopyError>,
    },
    #[error(
        "{device}: partition {number} ends at LBA {end_lba}, but the device ({sectors} sectors) \
         only allows up to LBA {limit}: short by {short_bytes} bytes"
    )]
    DoesNotFit {
        device: String,
        number: u32,
        end_lba: u64,
        limit: u64,
        sectors: u64,
        short_bytes: u64,
    },
    #[error("{device}: layout refused: {reason}")]
    Layout { device: String, reason: String },
}

/// Which of the two GPT copies: the primary at LBA 1 or the backup at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GptCopyKind {
    Primary,
    Backup,
}

impl fmt::Display for GptCopyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GptCopyKind::Primary => "primary",
            GptCopyKind::Backup => "backup",
        })
    }
}

/// Why one GPT copy (its header and entry array) is not used.
#[derive(Debug, Error)]
#[error("{device}: {copy} GPT {problem}")]
pub struct GptCopyError {
    pub device: String,
    pub copy: GptCopyKind,
    pub problem: GptProblem,
}

/// What is wrong in a GPT copy, with the structure (header or entry array) and its LBA.
#[derive(Debug, Error)]
pub enum GptProblem {
    #[error("header at LBA {lba}: past the device's end ({sectors} sectors)")]
    PastEnd { lba: u64, sectors: u64 },
    #[error("{structure} at LBA {lba}: its byte offset or length overflows")]
    Overflow { structure: &'static str, lba: u64 },
    #[error("{structure} at LBA {lba}: {source}")]
    Read {
        structure: &'static str,
        lba: u64,
        #[source]
        source: DeviceError,
    },
    #[error("header at LBA {lba}: {source}")]
    Header {
        lba: u64,
        #[source]
        source: GptHeaderError,
    },
    #[error(
        "entry array at LBA {lba}: PartitionEntryArrayCRC32 mismatch: \
         stored 0x{stored:08x}, computed 0x{computed:08x}"
    )]
    ArrayCrc {
        lba: u64,
        stored: u32,
        computed: u32,
    },
    #[error("entry array at LBA {lba}: entry {number}: {source}")]
    Entry {
        lba: u64,
        number: u32,
        #[source]
        source: GptEntryError,
    },
    /// The backup is neither where the primary says nor at the last LBA.
    #[error("{at_alternate}; at the last LBA: {at_last}")]
    NeitherPlace {
        at_alternate: Box<GptProblem>,
        at_last: Box<GptProblem>,
    },
}

impl GptProblem {
    /// True when there is simply no GPT header there (a blank or MBR-only disk).
    pub fn is_no_signature(&self) -> bool {
        matches!(
            self,
            GptProblem::Header {
                source: GptHeaderError::NoSignature,
                ..
            }
        )
    }

    /// True when the copy could not be read because the medium failed.
    pub fn is_media_error(&self) -> bool {
        match self {
            GptProblem::Read { source, .. } => source.is_media_error(),
            GptProblem::NeitherPlace {
                at_alternate,
                at_last,
            } => at_alternate.is_media_error() || at_last.is_media_error(),
            _ => false,
        }
    }
}
