//! NTFS through ntfsresize, the ntfs-3g project's resizer. It updates the boot
//! sector's total sectors and writes the backup boot sector at the new end; the
//! hidden-sectors field is left to boot repair.

use super::tool::{run_tool, ToolError};
use std::path::Path;

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// `ntfsresize --info`: "You might resize at N bytes", the smallest safe size.
pub fn ntfs_min_size(path: &Path) -> Result<u64, ToolError> {
    let out = run_tool(
        "ntfsresize",
        &["--info", "--force", "--no-progress-bar", &p(path)],
        None,
        &[0],
    )?;
    out.stdout
        .lines()
        .find_map(|l| l.split("You might resize at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| ToolError::Parse {
            tool: "ntfsresize".into(),
            what: format!("no minimum size in: {}", out.stdout.trim()),
        })
}

/// Resizes to `new_size` bytes. ntfsresize asks for confirmation on stdin even
/// with --force, so the answer is fed to it.
pub fn ntfs_resize(path: &Path, new_size: u64) -> Result<(), ToolError> {
    let size = new_size.to_string();
    run_tool(
        "ntfsresize",
        &["--force", "--no-progress-bar", "-s", &size, &p(path)],
        Some("y\n"),
        &[0],
    )
    .map(|_| ())
}

/// ntfsresize marks the volume for a check by Windows. After a restore the volume is
/// known consistent (it was checked by ntfsresize itself), so the flag is cleared as
/// Clonezilla does, which also lets ntfs-3g tools open it. Call this only once the
/// container has its final size: ntfsfix checks the backup boot sector at the end.
pub fn ntfs_clear_dirty(path: &Path) -> Result<(), ToolError> {
    run_tool("ntfsfix", &["-d", &p(path)], None, &[0]).map(|_| ())
}
