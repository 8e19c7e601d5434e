//! A private temporary mount point, for the resizers that work only on a mounted
//! filesystem (xfs_growfs, `btrfs filesystem resize`, `btrfs inspect-internal
//! min-dev-size`) and for xfsdump | xfsrestore.

use super::tool::{run_tool, ToolError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A temporary mount point with a filesystem mounted on it. Dropped without
/// `unmount` (an error on the way), it is unmounted and removed best-effort.
pub(super) struct TempMount {
    dir: PathBuf,
    mounted: bool,
}

impl TempMount {
    /// `mount -t FSTYPE -o OPTS DEV DIR` on a new directory under the temp dir. A
    /// regular file (a scratch file) is mounted through a loop device that the mount
    /// helper attaches and the unmount detaches (`loop` option).
    pub fn mount(fstype: &str, dev: &Path, opts: &str) -> Result<Self, ToolError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ironclone-{fstype}-{}-{}",
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
        let is_file = std::fs::metadata(dev).is_ok_and(|md| md.is_file());
        let opts = match (is_file, opts.is_empty()) {
            (true, true) => "loop".to_string(),
            (true, false) => format!("loop,{opts}"),
            (false, _) => opts.to_string(),
        };
        let (d, p) = (m.dir.display().to_string(), dev.display().to_string());
        let mut args = vec!["-t", fstype];
        if !opts.is_empty() {
            args.extend_from_slice(&["-o", &opts]);
        }
        args.extend_from_slice(&[&p, &d]);
        run_tool("mount", &args, None, &[0])?;
        m.mounted = true;
        Ok(m)
    }

    pub fn path(&self) -> String {
        self.dir.display().to_string()
    }

    /// Unmounts, with umount's failure reported: a filesystem still mounted when the
    /// restore ends would be left for the person to find, and a resize is only on
    /// disk once it is unmounted.
    pub fn unmount(mut self) -> Result<(), ToolError> {
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
