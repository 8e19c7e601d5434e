//! `/proc/self/mountinfo`: which block devices are mounted where. A disk with a
//! mounted partition must never be a restore target, and the disk behind `/` is
//! the one the running system lives on. FUSE mounts (ntfs-3g) have an anonymous
//! major:minor, so the mount source path is kept too.

use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub major: u32,
    pub minor: u32,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
    /// The mount's own `rw` option (a read-only mount can be imaged as it is).
    pub read_write: bool,
}

/// Reads and parses a mountinfo file; an unreadable file is an error because
/// "nothing is mounted" would be an unsafe guess.
pub fn load(path: &Path) -> std::io::Result<Vec<Mount>> {
    Ok(parse(&std::fs::read_to_string(path)?))
}

/// Lines that do not parse are skipped (the kernel format is fixed; a partial line
/// can only come from a truncated read).
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let fields: Vec<&str> = pre.split(' ').collect();
    let (major, minor) = fields.get(2)?.split_once(':')?;
    let mut post = post.split(' ');
    Some(Mount {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        mount_point: PathBuf::from(unescape(fields.get(4)?)),
        fs_type: post.next()?.to_string(),
        source: unescape(post.next().unwrap_or("")),
        read_write: fields
            .get(5)
            .is_some_and(|o| o.split(',').any(|o| o == "rw")),
    })
}

/// The kernel escapes space, tab, newline and backslash in paths as `\ooo` octal.
pub fn unescape(s: &str) -> String {
    super::escape::decode(s, b"\\", 3, 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_optional_fields_and_escapes() {
        let m = parse(
            "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n\
             40 35 0:52 / /media/win rw shared:7 - fuseblk /dev/sdb2 rw\n\
             garbage line\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].major, 98);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/my disk"));
        assert_eq!(m[0].fs_type, "ext3");
        assert_eq!(m[1].source, "/dev/sdb2");
        assert_eq!(unescape("a\\134b\\09"), "a\\b\\09");
    }
}
