//! Typed errors for the ext map: each says which device, group, block or field was wrong,
//! so a refusal to map (and the raw fallback it causes) can be explained to a person.

use crate::device::DeviceError;
use crate::ondisk::ext::ExtDecodeError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExtError {
    #[error("{device}: reading {what} at byte {offset}: {source}")]
    Read {
        device: String,
        what: String,
        offset: u64,
        #[source]
        source: DeviceError,
    },
    #[error("{device}: writing {what} at byte {offset}: {source}")]
    Write {
        device: String,
        what: &'static str,
        offset: u64,
        #[source]
        source: DeviceError,
    },
    #[error(transparent)]
    Decode(#[from] ExtDecodeError),
    #[error("{device}: superblock field {field} = {value}: {why}")]
    BadField {
        device: String,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("{device}: group {group}: {field} = {value}: {why}")]
    BadGroup {
        device: String,
        group: u64,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("{device}: filesystem is {fs_bytes} bytes but the device holds only {device_bytes}")]
    Truncated {
        device: String,
        fs_bytes: u64,
        device_bytes: u64,
    },
    #[error("{device}: {what}")]
    Unsupported { device: String, what: String },
    #[error("{device}: arithmetic overflow computing {what}")]
    Overflow { device: String, what: &'static str },
}
