//! Why a sealed object or key slot could not be used.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CryptoError {
    /// The tag does not match: the bytes, their place (AAD) or the key are wrong. The
    /// caller names the object.
    #[error("authentication failed (altered, moved, or sealed with another key)")]
    Auth,
    #[error("sealed object of {0} bytes is shorter than its nonce and tag")]
    Short(usize),
    #[error("encryption failed")]
    Seal,
    #[error("no random bytes from the OS: {0}")]
    Random(String),
    #[error("key derivation: {0}")]
    Kdf(String),
    #[error("key slot {slot}: {what}")]
    BadSlot { slot: String, what: String },
    /// A segment of a stream object (stream.rs) does not authenticate: altered,
    /// moved, reordered, or the stream cut or extended there.
    #[error("segment {number} of {count}: authentication failed (altered, reordered, truncated or sealed with another key)")]
    Segment { number: usize, count: usize },
    #[error("sealed stream: {0}")]
    BadStream(String),
    #[error("writing a sealed stream: {0}")]
    Write(String),
}
