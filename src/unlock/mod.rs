//! Opening LUKS volumes with a key the person gives, through `cryptsetup`, so that a
//! backup can image the plaintext filesystem inside by its used blocks. The key comes
//! from `--key-file`, `$IRONCLONE_LUKS_PASSPHRASE` or a prompt without echo (`--unlock`);
//! it is never printed, logged or put on a command line: cryptsetup reads it on stdin
//! (`--key-file -`), and [`LuksKey`] has no `Display` and a redacted `Debug`.
//!
//! Every mapping gets a name of its own (`ironclone-<pid>-<n>`) and is closed when its
//! [`Mapping`] is dropped, on the error paths too.

mod cryptsetup;
mod error;
mod key;
mod tty;

pub use cryptsetup::{test_key, Mapping};
pub use error::UnlockError;
pub use key::{resolve_key, LuksKey, ENV_PASSPHRASE};
pub use tty::read_secret;
