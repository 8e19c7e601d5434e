//! Device errors name the device, the byte offset and the length, so a failing read
//! on a dying disk can be reported as "sector N of /dev/sdb" rather than "I/O error".

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("{device}: cannot open: {source}")]
    Open {
        device: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{device}: I/O error at byte {offset} (+{len}): {source}")]
    Io {
        device: String,
        offset: u64,
        len: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("{device}: range {offset}+{len} is outside the device ({size} bytes)")]
    OutOfRange {
        device: String,
        offset: u64,
        len: u64,
        size: u64,
    },
    #[error("{device}: refusing to write at byte {offset}: device is open read-only")]
    ReadOnly { device: String, offset: u64 },
    #[error("{device}: refusing a {len}-byte metadata read at byte {offset}: too large")]
    TooLarge {
        device: String,
        offset: u64,
        len: u64,
    },
    #[error("{device}: {what}")]
    Query { device: String, what: String },
}

impl DeviceError {
    /// True when the error came from the medium (EIO and friends), as opposed to a
    /// caller's mistake. Rescue reading retries only these.
    pub fn is_media_error(&self) -> bool {
        matches!(self, DeviceError::Io { .. })
    }
}
