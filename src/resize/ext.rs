//! ext2/3/4 through e2fsprogs: `e2fsck -f` before any resize (resize2fs insists on a
//! freshly checked filesystem), `resize2fs -P` for the minimum, `resize2fs` to resize.

use super::tool::{run_tool, ToolError};
use std::path::Path;

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// `e2fsck -f -y`: exit 0 (clean) and 1 (errors corrected) are success; anything else
/// means the filesystem is not safe to resize.
pub fn ext_check(path: &Path) -> Result<(), ToolError> {
    run_tool("e2fsck", &["-f", "-y", &p(path)], None, &[0, 1]).map(|_| ())
}

/// `e2fsck -f -y -b <block> -B <block size>`: checks the filesystem through the backup
/// superblock at `block` and writes a new primary superblock and primary descriptors
/// from it, with every count and flag the backup holds stale recomputed (see
/// docs/RESIZE.md). Exit 0 and 1 (errors corrected) are success; the code is returned.
pub fn ext_rebuild_primary(path: &Path, block: u64, block_size: u64) -> Result<i32, ToolError> {
    let (b, bs) = (block.to_string(), block_size.to_string());
    let args = ["-f", "-y", "-b", &b, "-B", &bs, &p(path)];
    run_tool("e2fsck", &args, None, &[0, 1]).map(|o| o.code)
}

/// The block size, from `dumpe2fs -h`.
pub fn ext_block_size(path: &Path) -> Result<u64, ToolError> {
    let out = run_tool("dumpe2fs", &["-h", &p(path)], None, &[0])?;
    field(&out.stdout, "Block size:").ok_or_else(|| ToolError::Parse {
        tool: "dumpe2fs".into(),
        what: "no 'Block size:' line".into(),
    })
}

/// `resize2fs -P`: the estimated minimum, in bytes.
pub fn ext_min_size(path: &Path) -> Result<u64, ToolError> {
    let bs = ext_block_size(path)?;
    let out = run_tool("resize2fs", &["-P", &p(path)], None, &[0])?;
    let blocks =
        field(&out.stdout, "Estimated minimum size of the filesystem:").ok_or_else(|| {
            ToolError::Parse {
                tool: "resize2fs".into(),
                what: format!("no minimum size in: {}", out.stdout.trim()),
            }
        })?;
    blocks.checked_mul(bs).ok_or_else(|| ToolError::Parse {
        tool: "resize2fs".into(),
        what: "minimum size overflows".into(),
    })
}

/// Resizes to `new_size` bytes (rounded down to whole blocks).
pub fn ext_resize(path: &Path, new_size: u64) -> Result<(), ToolError> {
    let bs = ext_block_size(path)?;
    let blocks = (new_size / bs).to_string();
    run_tool("resize2fs", &[&p(path), &blocks], None, &[0]).map(|_| ())
}

fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields() {
        let t = "Block count:              65536\nBlock size:               4096\n";
        assert_eq!(field(t, "Block size:"), Some(4096));
        assert_eq!(field(t, "Inode size:"), None);
    }
}
