//! What can be wrong in an LVM2 PV, naming the structure and the byte or line.

use crate::device::DeviceError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LvmError {
    #[error("LVM2: no \"LABELONE\" label in the first 4 sectors")]
    NoLabel,
    #[error("LVM2 label in sector {sector}: {what}")]
    Label { sector: u64, what: String },
    #[error("LVM2 PV header: {0}")]
    PvHeader(String),
    #[error("LVM2 PV header lists no metadata area (a PV made with --metadatacopies 0)")]
    NoMetadataArea,
    #[error("LVM2 metadata area header at byte {offset}: {what}")]
    MdaHeader { offset: u64, what: String },
    #[error("LVM2 metadata text at byte {offset} ({len} bytes): {what}")]
    Metadata { offset: u64, len: u64, what: String },
    #[error("LVM2 metadata text, line {line}: {what}")]
    Syntax { line: usize, what: String },
    #[error("LVM2 volume group {vg}: {what}")]
    Vg { vg: String, what: String },
    #[error("reading the LVM2 PV: {0}")]
    Device(#[from] DeviceError),
}
