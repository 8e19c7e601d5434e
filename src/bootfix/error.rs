//! One error type for the boot repairs, each variant saying where (device, LBA, byte
//! offset, file) and what (field, value), because a repair that refuses must tell the
//! user exactly which structure it did not trust.

use crate::device::DeviceError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BootfixError {
    #[error(transparent)]
    Device(#[from] DeviceError),

    #[error("field {field} at byte {at} runs past the end of the buffer")]
    Truncated { field: &'static str, at: usize },

    #[error("{device}: {what} at LBA {lba}: {why}")]
    NotRecognised {
        device: String,
        what: &'static str,
        lba: u64,
        why: String,
    },

    #[error("{device}: {what}: field {field} = {value} is invalid: {why}")]
    BadField {
        device: String,
        what: &'static str,
        field: &'static str,
        value: u64,
        why: String,
    },

    #[error("Windows boot store (\\Boot\\BCD): {what}")]
    Bcd { what: String },

    #[error("{device}: {what}: {why}")]
    Refused {
        device: String,
        what: &'static str,
        why: String,
    },

    #[error("arithmetic overflow computing {what} ({a} and {b})")]
    Overflow { what: &'static str, a: u64, b: u64 },

    #[error("EFI {what}: {why} (at byte {at})")]
    EfiFormat {
        what: &'static str,
        why: String,
        at: usize,
    },

    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("{tool} {args} failed ({status}): {stderr}")]
    Tool {
        tool: &'static str,
        args: String,
        status: String,
        stderr: String,
    },
}
