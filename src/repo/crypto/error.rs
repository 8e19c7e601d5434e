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
}
