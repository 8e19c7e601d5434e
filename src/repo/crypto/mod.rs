//! Repository encryption (docs/FORMAT.md, "Encryption"): a random 256-bit master key,
//! wrapped by one or more key slots (`keys/<slot-id>`), from which distinct subkeys
//! are derived for the AEAD, for keyed chunk ids and for the config's MAC.
//!
//! Everything cryptographic lives here so the rest of the repository code only calls
//! `seal`/`open` on the bytes it is about to write or has just read. The primitives
//! come from crates (RustCrypto's XChaCha20-Poly1305 and Argon2, blake3's keyed modes);
//! the only hand-written parts are the framing (nonce ‖ ciphertext ‖ tag) and the AAD
//! strings, which are this format's own and pinned by the known-answer tests.

mod aad;
mod error;
mod seal;
pub mod slot;
pub mod stream;

#[cfg(test)]
mod tests;

pub use aad::Aad;
pub use error::CryptoError;
pub use seal::{NONCE_LEN, SEAL_OVERHEAD, TAG_LEN};
pub use stream::StreamSealer;

use super::id::ChunkId;
use zeroize::Zeroizing;

/// The `encryption.scheme` of an encrypted repository's config.
pub const SCHEME: &str = "xchacha20poly1305-blake3-v1";

/// blake3 `derive_key` contexts: one per subkey, so no key is ever used for two jobs.
const CTX_AEAD: &str = "ironclone 2026-12 repository aead key";
const CTX_IDS: &str = "ironclone 2026-12 repository chunk id key";
const CTX_CONFIG: &str = "ironclone 2026-12 repository config mac key";

/// The 32 bytes every slot wraps.
pub type MasterKey = Zeroizing<[u8; 32]>;

/// The subkeys of an unlocked repository; zeroed when dropped.
pub struct Keys {
    aead: Zeroizing<[u8; 32]>,
    ids: Zeroizing<[u8; 32]>,
    config: Zeroizing<[u8; 32]>,
    master: MasterKey,
}

impl Keys {
    pub fn from_master(master: &[u8; 32]) -> Keys {
        Keys {
            aead: Zeroizing::new(blake3::derive_key(CTX_AEAD, master)),
            ids: Zeroizing::new(blake3::derive_key(CTX_IDS, master)),
            config: Zeroizing::new(blake3::derive_key(CTX_CONFIG, master)),
            master: Zeroizing::new(*master),
        }
    }

    /// A fresh random master key.
    pub fn generate() -> Result<Keys, CryptoError> {
        let mut m = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut m[..]).map_err(|e| CryptoError::Random(e.to_string()))?;
        Ok(Keys::from_master(&m))
    }

    pub(crate) fn master(&self) -> &[u8; 32] {
        &self.master
    }

    /// A chunk's id: blake3 keyed with the id subkey, so an id says nothing about the
    /// bytes to anyone without the key (a plain hash would confirm a guessed file).
    pub fn chunk_id(&self, data: &[u8]) -> ChunkId {
        ChunkId(*blake3::keyed_hash(&self.ids, data).as_bytes())
    }

    /// The MAC of the config's canonical JSON (docs/FORMAT.md, "Encryption").
    pub fn config_mac(&self, canonical: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.config, canonical).as_bytes()
    }

    /// `plain` sealed as nonce ‖ ciphertext ‖ tag under `aad`.
    pub fn seal(&self, aad: &Aad, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal::seal(&self.aead, aad, plain, None)
    }

    /// `seal` with a given nonce, for the known-answer tests only.
    #[cfg(test)]
    pub(crate) fn seal_with_nonce(&self, aad: &Aad, plain: &[u8], nonce: &[u8; 24]) -> Vec<u8> {
        seal::seal(&self.aead, aad, plain, Some(nonce)).unwrap_or_default()
    }

    /// `buf` (plaintext) sealed in place: it becomes nonce ‖ ciphertext ‖ tag.
    pub fn seal_vec(&self, aad: &Aad, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        seal::seal_vec(&self.aead, aad, buf)
    }

    /// `buf` = `NONCE_LEN` bytes of room ‖ plaintext, sealed in place into nonce ‖
    /// ciphertext ‖ tag without moving the plaintext.
    pub fn seal_in_place(&self, aad: &Aad, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        seal::seal_in_place(&self.aead, aad, buf)
    }

    /// A writer sealing image `name`'s manifest as a stream object (stream.rs) into
    /// `out`, a segment at a time.
    pub fn image_sealer<'a, W: std::io::Write>(
        &self,
        name: &'a str,
        out: W,
    ) -> Result<StreamSealer<'a, W>, CryptoError> {
        let aad = move |i, last, seg| Aad::image_segment(name, i, last, seg);
        StreamSealer::new(&self.aead, Box::new(aad), stream::SEGMENT, None, out)
    }

    /// `image_sealer` with a given segment size and nonce prefix (known-answer tests).
    #[cfg(test)]
    pub(crate) fn image_sealer_with<'a, W: std::io::Write>(
        &self,
        name: &'a str,
        segment: u32,
        prefix: [u8; 16],
        out: W,
    ) -> Result<StreamSealer<'a, W>, CryptoError> {
        let aad = move |i, last, seg| Aad::image_segment(name, i, last, seg);
        StreamSealer::new(&self.aead, Box::new(aad), segment, Some(prefix), out)
    }

    /// The plaintext of image `name`'s sealed manifest: a stream object, or one
    /// sealed in one piece (written before streams). An object that fails as a
    /// stream is tried as one piece too (its random nonce may start like a stream
    /// header, 2^-64); if both fail, the stream's error says which segment.
    pub fn open_image(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let one_piece = Aad::image(name);
        if !stream::is_stream(sealed) {
            return self.open(&one_piece, sealed);
        }
        let aad = |i, last, seg| Aad::image_segment(name, i, last, seg);
        stream::open(&self.aead, &aad, sealed)
            .or_else(|e| self.open(&one_piece, sealed).map_err(|_| e))
    }

    /// `open_image` of a stream object read a segment at a time through `read_at`
    /// (its `len` bytes are never held whole). `None` when the object is not a stream
    /// (an older one-piece manifest: the caller reads it whole).
    pub fn open_image_stream<'a>(
        &'a self,
        name: &'a str,
        len: u64,
        mut read_at: stream::ReadAt<'a>,
    ) -> Result<Option<stream::Opener<'a>>, CryptoError> {
        // The header is read once: it tells a stream, and the opener takes it.
        let mut header = [0u8; stream::HEADER_LEN];
        if len < stream::HEADER_LEN as u64 || read_at(&mut header, 0).is_err() {
            return Ok(None);
        }
        if !stream::is_stream(&header) {
            return Ok(None);
        }
        let aad = Box::new(move |i, last, seg| Aad::image_segment(name, i, last, seg));
        stream::Opener::new(&self.aead, aad, len, &header, read_at).map(Some)
    }

    /// The plaintext of `sealed`, or `CryptoError::Auth` if any byte of it or of the
    /// AAD differs from what was sealed.
    pub fn open(&self, aad: &Aad, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        seal::open(&self.aead, aad, sealed)
    }

    /// `open` into `out` (resized to the plaintext's length), reusing its allocation.
    pub fn open_into(
        &self,
        aad: &Aad,
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        seal::open_into(&self.aead, aad, sealed, out)
    }
}

/// A chunk's id in a repository with `keys` (keyed) or without (plain blake3).
pub fn chunk_id(keys: Option<&Keys>, data: &[u8]) -> ChunkId {
    match keys {
        Some(k) => k.chunk_id(data),
        None => ChunkId::of(data),
    }
}
