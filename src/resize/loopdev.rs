//! A loop device over a byte range of a file or disk, so the resize tools (which
//! take a path to a whole filesystem) can work on a partition of a disk image.

use super::tool::{run_tool, ToolError};
use std::path::{Path, PathBuf};

/// An attached loop device, detached on drop.
pub struct LoopDevice {
    path: PathBuf,
}

impl LoopDevice {
    /// `losetup --find --show --offset OFF --sizelimit LEN backing`.
    pub fn attach(backing: &Path, offset: u64, len: u64) -> Result<Self, ToolError> {
        Self::attach_with(backing, offset, len, false)
    }

    /// The same with `--read-only`: for reading a backup source through a loop device.
    pub fn attach_read_only(backing: &Path, offset: u64, len: u64) -> Result<Self, ToolError> {
        Self::attach_with(backing, offset, len, true)
    }

    fn attach_with(backing: &Path, offset: u64, len: u64, ro: bool) -> Result<Self, ToolError> {
        let off = offset.to_string();
        let lim = len.to_string();
        let b = backing.display().to_string();
        let mut args = vec!["--find", "--show", "--offset", &off, "--sizelimit", &lim];
        if ro {
            args.push("--read-only");
        }
        args.push(&b);
        let out = run_tool("losetup", &args, None, &[0])?;
        let path = PathBuf::from(out.stdout.trim());
        if !path.starts_with("/dev/") {
            return Err(ToolError::Parse {
                tool: "losetup".into(),
                what: format!("unexpected output {:?}", out.stdout),
            });
        }
        Ok(LoopDevice { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let p = self.path.display().to_string();
        let _ = run_tool("losetup", &["-d", &p], None, &[0]);
    }
}
