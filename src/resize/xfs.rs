//! XFS through xfsprogs: `xfs_growfs -d` grows the data section to fill its device.
//!
//! XFS only grows, and only while mounted, so the restored partition is mounted on a
//! private temporary directory for the duration. `nouuid`: the live system may have the
//! source filesystem (same UUID) mounted, and XFS refuses a second mount of one UUID.
//! XFS cannot shrink at all; the planner never asks (see `can_shrink`).

use super::tool::{run_tool, ToolError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A temporary mount point with the filesystem mounted on it. Dropped without
/// `unmount` (an error on the way), it is unmounted and removed best-effort.
struct TempMount {
    dir: PathBuf,
    mounted: bool,
}

impl TempMount {
    fn mount(dev: &Path) -> Result<Self, ToolError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ironclone-xfs-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|source| ToolError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut m = TempMount {
            dir,
            mounted: false,
        };
        let (d, p) = (m.dir.display().to_string(), dev.display().to_string());
        run_tool("mount", &["-t", "xfs", "-o", "nouuid", &p, &d], None, &[0])?;
        m.mounted = true;
        Ok(m)
    }

    fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// Unmounts, with umount's failure reported: an XFS still mounted when the restore
    /// ends would be left for the person to find.
    fn unmount(mut self) -> Result<(), ToolError> {
        run_tool("umount", &[&self.path()], None, &[0])?;
        self.mounted = false;
        Ok(())
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if self.mounted {
            let _ = run_tool("umount", &[&self.path()], None, &[0]);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Grows the XFS on `dev` (a block device: the restored partition's loop device) to
/// fill it.
pub fn xfs_grow(dev: &Path) -> Result<(), ToolError> {
    let m = TempMount::mount(dev)?;
    run_tool("xfs_growfs", &["-d", &m.path()], None, &[0])?;
    m.unmount()
}
