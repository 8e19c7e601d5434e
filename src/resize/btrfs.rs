//! btrfs through btrfs-progs: `btrfs filesystem resize` grows or shrinks a mounted
//! btrfs (a shrink relocates the chunks past the new end first), and `btrfs
//! inspect-internal min-dev-size` says how small its one device can become.
//!
//! Both need the filesystem mounted, so it is mounted on a private temporary
//! directory: the restored partition's loop device to grow, the scratch file to
//! shrink. A resize rewrites only sizes (superblock `total_bytes`, the device item),
//! never the fsid or device UUID, so the restored filesystem keeps its identity.
//! Since Linux 6.7 a single-device btrfs whose fsid is already mounted (the live
//! system's own disk, the backup's source) is mounted with a temporary fsid, so the
//! restored copy can be mounted beside it.
//!
//! Only single-device btrfs gets here: a multi-device one is imaged raw
//! (usedmap/btrfs) and raw areas are never resized.

use super::mount::TempMount;
use super::tool::{run_tool, ToolError};
use std::path::Path;

/// The kernel refuses to resize a btrfs to less than 256 MiB (`btrfs_ioctl_resize`
/// returns EINVAL below `SZ_256M`, checked on this live system's 6.18 kernel: 255 MiB
/// fails, 256 MiB works), although mkfs.btrfs makes them from about 109 MiB. So no
/// shrink goes below it, and a btrfs given a partition under it keeps its size.
pub const BTRFS_MIN_RESIZE: u64 = 256 << 20;

/// Grows the btrfs on `dev` (the restored partition's loop device) to fill it.
pub fn btrfs_grow(dev: &Path) -> Result<(), ToolError> {
    let m = TempMount::mount("btrfs", dev, "")?;
    run_tool(
        "btrfs",
        &["filesystem", "resize", "max", &m.path()],
        None,
        &[0],
    )?;
    m.unmount()
}

/// The smallest size the btrfs in `path` (a scratch file) can be shrunk to:
/// `btrfs inspect-internal min-dev-size`, never below `BTRFS_MIN_RESIZE`.
pub fn btrfs_min_size(path: &Path) -> Result<u64, ToolError> {
    let m = TempMount::mount("btrfs", path, "ro")?;
    let out = run_tool(
        "btrfs",
        &["inspect-internal", "min-dev-size", &m.path()],
        None,
        &[0],
    )?;
    m.unmount()?;
    parse_min_dev_size(&out.stdout).map(|b| b.max(BTRFS_MIN_RESIZE))
}

/// Shrinks (or grows) the btrfs in `path` to `new_size` bytes, rounded down to whole
/// 4 KiB units as the kernel would (the sector size of every btrfs ironclone maps).
pub fn btrfs_resize(path: &Path, new_size: u64) -> Result<(), ToolError> {
    if new_size < BTRFS_MIN_RESIZE {
        return Err(ToolError::Unsupported {
            what: format!("resizing a btrfs to {new_size} bytes (below the kernel's 256 MiB)"),
        });
    }
    let size = (new_size / 4096 * 4096).to_string();
    let m = TempMount::mount("btrfs", path, "")?;
    run_tool(
        "btrfs",
        &["filesystem", "resize", &size, &m.path()],
        None,
        &[0],
    )?;
    m.unmount()
}

/// "206569472 bytes (197.00MiB)": the number before "bytes".
fn parse_min_dev_size(stdout: &str) -> Result<u64, ToolError> {
    stdout
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            let n = w.next()?.parse().ok()?;
            (w.next() == Some("bytes")).then_some(n)
        })
        .ok_or_else(|| ToolError::Parse {
            tool: "btrfs inspect-internal min-dev-size".into(),
            what: format!("no size in: {}", stdout.trim()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_min_dev_size() {
        assert_eq!(
            parse_min_dev_size("206569472 bytes (197.00MiB)\n").unwrap(),
            206_569_472
        );
        assert!(parse_min_dev_size("ERROR: not a btrfs\n").is_err());
        assert!(parse_min_dev_size("12 blocks\n").is_err());
    }

    #[test]
    fn no_resize_below_the_kernel_floor() {
        // Refused before anything is mounted: the path need not exist.
        let e = btrfs_resize(Path::new("/nonexistent"), BTRFS_MIN_RESIZE - 4096).unwrap_err();
        assert!(matches!(e, ToolError::Unsupported { .. }), "{e}");
    }
}
