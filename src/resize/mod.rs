//! Growing and shrinking filesystems after (or on the way to) a restore (XFS only
//! grows; btrfs not below the kernel's 256 MiB), and
//! re-creating an ESP whose sector size the target cannot keep (`fat32`).
//!
//! No Rust library resizes ext4, NTFS, XFS or btrfs, and `resize2fs` / `ntfsresize` /
//! `xfs_growfs` / `btrfs filesystem resize` are the
//! reference implementations that users and distributions trust. So this module calls
//! them, checks their exit codes, and carries their stderr into the error so the
//! person at the console sees what the tool said. See docs/RESIZE.md for why shrinking
//! goes through a scratch file.

mod btrfs;
mod ext;
pub mod fat32;
mod loopdev;
mod lvm;
mod mount;
mod ntfs;
mod tool;
mod xfs;

pub use btrfs::{btrfs_grow, btrfs_min_size, btrfs_resize, BTRFS_MIN_RESIZE};
pub use ext::{ext_block_size, ext_check, ext_min_size, ext_rebuild_primary, ext_resize};
pub use fat32::fat32_min_size;
pub use loopdev::LoopDevice;
pub use lvm::{lvm_write_pv, lvm_write_vg};
pub use ntfs::{ntfs_clear_dirty, ntfs_min_size, ntfs_resize};
pub use tool::{run_tool, run_tool_env, ToolError, ToolOutput};
pub use xfs::{xfs_check, xfs_dump_restore, xfs_grow, xfs_mkfs, XfsSpec};

use crate::probe::FsKind;
use std::path::Path;

/// The smallest size (bytes) the filesystem at `path` can be shrunk to, as its own
/// resize tool computes it. `None` for filesystems we do not resize.
pub fn min_size(kind: FsKind, path: &Path) -> Result<Option<u64>, ToolError> {
    Ok(match kind {
        k if k.is_ext() => Some(ext_min_size(path)?),
        FsKind::Ntfs => Some(ntfs_min_size(path)?),
        FsKind::Btrfs => Some(btrfs_min_size(path)?),
        _ => None,
    })
}

/// Whether ironclone can make this filesystem smaller (in a scratch file).
pub fn can_shrink(kind: FsKind) -> bool {
    kind.is_ext() || kind == FsKind::Ntfs || kind == FsKind::Btrfs
}

/// Whether ironclone can make this filesystem larger after writing it.
pub fn can_grow(kind: FsKind) -> bool {
    can_shrink(kind) || kind == FsKind::Xfs
}

/// Resizes the filesystem at `path` to `new_size` bytes (checking it first). XFS only
/// grows, to fill `path` (a device `new_size` bytes long); btrfs grows the same way
/// and shrinks to `new_size`.
pub fn resize(kind: FsKind, path: &Path, new_size: u64) -> Result<(), ToolError> {
    match kind {
        k if k.is_ext() => {
            ext_check(path)?;
            ext_resize(path, new_size)
        }
        FsKind::Ntfs => ntfs_resize(path, new_size),
        FsKind::Xfs => xfs_grow(path),
        FsKind::Btrfs if is_device(path) => btrfs_grow(path),
        FsKind::Btrfs => btrfs_resize(path, new_size),
        other => Err(ToolError::Unsupported {
            what: format!("resizing {other}"),
        }),
    }
}

/// A block device (the restored partition's loop device, which a grow fills) rather
/// than a scratch file (which a shrink sizes explicitly).
fn is_device(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}
