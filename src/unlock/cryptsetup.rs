//! `cryptsetup` calls with the key on stdin: the passphrase test (no device-mapper
//! needed, so it runs before anything is stored or written) and open/close of a
//! mapping. Exit codes are checked and cryptsetup's stderr is carried into the error;
//! exit code 2 is cryptsetup's "no key slot accepts this key".

use super::error::UnlockError;
use super::key::LuksKey;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// cryptsetup's exit code for a wrong passphrase or key file (`man cryptsetup`).
const EXIT_BAD_KEY: i32 = 2;

/// Runs `cryptsetup args` with `key` (if any) on stdin; `device` names the volume in
/// a wrong-key error.
fn cryptsetup(args: &[&str], key: Option<&LuksKey>, device: &Path) -> Result<(), UnlockError> {
    let mut child = Command::new("cryptsetup")
        .args(args)
        .stdin(if key.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(UnlockError::Spawn)?;
    if let (Some(k), Some(mut pipe)) = (key, child.stdin.take()) {
        // A cryptsetup that exits early closes the pipe; its exit code tells why.
        let _ = pipe.write_all(k.bytes());
    }
    let out = child.wait_with_output().map_err(UnlockError::Spawn)?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(EXIT_BAD_KEY) if key.is_some() => Err(UnlockError::WrongKey {
            device: device.display().to_string(),
        }),
        code => Err(UnlockError::Tool {
            args: args.join(" "),
            code: code.unwrap_or(-1),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
    }
}

/// Checks that `key` opens the LUKS volume on `device` without opening it (works on a
/// plain file and without device-mapper).
pub fn test_key(device: &Path, key: &LuksKey) -> Result<(), UnlockError> {
    let dev = device.display().to_string();
    cryptsetup(
        &["open", "--test-passphrase", "--key-file", "-", &dev],
        Some(key),
        device,
    )
}

/// An open LUKS mapping (`/dev/mapper/<name>`), closed when dropped.
pub struct Mapping {
    name: String,
    device: PathBuf,
    open: bool,
}

/// Makes mapping names unique within this process; the pid makes them unique between
/// processes.
static NEXT: AtomicU32 = AtomicU32::new(0);

impl Mapping {
    /// `cryptsetup open [--readonly] --key-file - DEVICE NAME`.
    pub fn open(device: &Path, key: &LuksKey, read_only: bool) -> Result<Mapping, UnlockError> {
        let name = format!(
            "ironclone-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dev = device.display().to_string();
        let mut args = vec!["open", "--type", "luks"];
        if read_only {
            args.push("--readonly");
        }
        args.extend(["--key-file", "-", &dev, &name]);
        cryptsetup(&args, Some(key), device)?;
        Ok(Mapping {
            name,
            device: device.to_path_buf(),
            open: true,
        })
    }

    /// The plaintext device.
    pub fn path(&self) -> PathBuf {
        Path::new("/dev/mapper").join(&self.name)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the mapping, reporting a failure (drop closes too, but silently).
    pub fn close(mut self) -> Result<(), UnlockError> {
        self.open = false;
        cryptsetup(&["close", &self.name], None, &self.device)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.open {
            let _ = cryptsetup(&["close", &self.name], None, &self.device);
        }
    }
}
