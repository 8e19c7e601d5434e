//! Partition-table errors name the device, the structure (MBR, EBR, GPT header or
//! entry) and the LBA or field that was wrong, because a refused table on a rescue
//! disk must tell the person what to look at.

use crate::device::DeviceError;
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
    #[error("{device}: no valid GPT: primary: {primary}; backup: {backup}")]
    NoValidGpt {
        device: String,
        primary: String,
        backup: String,
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
