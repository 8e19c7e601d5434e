//! The key that opens a LUKS volume, and where it comes from.

use super::error::UnlockError;
use std::path::Path;

/// A passphrase given in the environment (tests, scripted restores).
pub const ENV_PASSPHRASE: &str = "IRONCLONE_LUKS_PASSPHRASE";

/// The key bytes, exactly as cryptsetup takes them from `--key-file`: a key file is
/// used whole, a passphrase without its line ending. Zeroed when dropped.
pub struct LuksKey(Vec<u8>);

impl LuksKey {
    pub fn new(bytes: Vec<u8>) -> LuksKey {
        LuksKey(bytes)
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// True when `haystack` holds the key (the tests' check that nothing stores it).
    pub fn occurs_in(&self, haystack: &[u8]) -> bool {
        !self.0.is_empty() && haystack.windows(self.0.len()).any(|w| w == self.0)
    }
}

impl std::fmt::Debug for LuksKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LuksKey(<redacted>)")
    }
}

impl Drop for LuksKey {
    fn drop(&mut self) {
        // Fewer copies of the key left in freed memory; not a guarantee (the
        // compiler or an earlier reallocation may have left others).
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// The key asked for on the command line: `--key-file` wins, then
/// `$IRONCLONE_LUKS_PASSPHRASE`, then a prompt on the terminal. `None` when neither
/// `--unlock` nor `--key-file` was given: a passphrase left in the environment alone
/// does not turn an encrypted image into a plaintext one.
pub fn resolve_key(unlock: bool, key_file: Option<&Path>) -> Result<Option<LuksKey>, UnlockError> {
    if let Some(path) = key_file {
        let bytes = std::fs::read(path).map_err(|source| UnlockError::KeyFile {
            path: path.display().to_string(),
            source,
        })?;
        if bytes.is_empty() {
            return Err(UnlockError::Empty("key file"));
        }
        return Ok(Some(LuksKey(bytes)));
    }
    if !unlock {
        return Ok(None);
    }
    if let Some(v) = std::env::var_os(ENV_PASSPHRASE) {
        let bytes = std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec();
        if bytes.is_empty() {
            return Err(UnlockError::Empty(ENV_PASSPHRASE));
        }
        return Ok(Some(LuksKey(bytes)));
    }
    let line = super::tty::read_secret("LUKS passphrase: ").map_err(UnlockError::Prompt)?;
    if line.is_empty() {
        return Err(UnlockError::Empty("passphrase"));
    }
    Ok(Some(LuksKey(line.into_bytes())))
}
