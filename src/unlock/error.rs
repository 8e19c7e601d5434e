//! Why a LUKS volume could not be opened. No variant carries the key.

use crate::resize::ToolError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum UnlockError {
    #[error("the key does not open the LUKS volume on {device}: no key slot accepts it")]
    WrongKey { device: String },
    #[error("reading the key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the key is empty ({0})")]
    Empty(&'static str),
    #[error("--unlock: cannot ask for the passphrase on the terminal ({0}); give --key-file or set $IRONCLONE_LUKS_PASSPHRASE")]
    Prompt(std::io::Error),
    #[error("cannot run cryptsetup: {0} (is it installed?)")]
    Spawn(std::io::Error),
    #[error("cryptsetup {args} failed with exit code {code}:\n{stderr}")]
    Tool {
        args: String,
        code: i32,
        stderr: String,
    },
    #[error("a loop device for the LUKS partition: {0}")]
    Loop(#[from] ToolError),
}
