//! Clonezilla's small text files: `disk` and `parts` (device names separated by
//! blanks), `dev-fs.list` (`<dev> <fs> [<size>]` lines, `#` comments), `clonezilla-img`
//! (the save log, whose "Image created time" line dates the image) and `<d>-pt.parted`
//! (`parted unit s print`, whose "Disk /dev/sda: Ns" line sizes the disk).

use super::error::ClonezillaError;
use std::path::Path;

/// Bounds a names file: Clonezilla lists one name a disk or partition.
const MAX_NAMES: usize = 1024;

pub fn names(file: &Path, text: &str) -> Result<Vec<String>, ClonezillaError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for w in line.split_whitespace() {
            let ok = w.len() <= 128
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if !ok || w.starts_with('.') {
                return Err(ClonezillaError::BadLine {
                    file: file.to_path_buf(),
                    line: i + 1,
                    why: "not a device name",
                    text: line.to_string(),
                });
            }
            if out.len() >= MAX_NAMES {
                return Err(ClonezillaError::Bad {
                    file: file.to_path_buf(),
                    why: format!("more than {MAX_NAMES} names"),
                });
            }
            out.push(w.to_string());
        }
    }
    Ok(out)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevFs {
    /// Name without `/dev/`, e.g. `sda1`.
    pub dev: String,
    pub fs: String,
    pub size: Option<String>,
}

pub fn dev_fs(file: &Path, text: &str) -> Result<Vec<DevFs>, ClonezillaError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut w = line.split_whitespace();
        let (Some(dev), Some(fs)) = (w.next(), w.next()) else {
            return Err(ClonezillaError::BadLine {
                file: file.to_path_buf(),
                line: i + 1,
                why: "expected `<device> <filesystem> [<size>]`",
                text: line.to_string(),
            });
        };
        if out.len() >= MAX_NAMES {
            break;
        }
        out.push(DevFs {
            dev: dev.trim_start_matches("/dev/").to_string(),
            fs: fs.to_string(),
            size: w.next().map(str::to_string),
        });
    }
    Ok(out)
}

/// The creation time from the `clonezilla-img` log, as written there.
pub fn created(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let lower = l.to_ascii_lowercase();
        let at = lower.find("image created time")?;
        let rest = l.get(at..)?.split_once(':')?.1.trim();
        (!rest.is_empty()).then(|| rest.to_string())
    })
}

/// Disk size in sectors from `parted -s <disk> unit s print` output.
pub fn parted_sectors(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("Disk /dev/")?;
        let size = rest.rsplit_once(": ")?.1.trim();
        size.strip_suffix('s')?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_small_files() {
        let p = Path::new("x");
        assert_eq!(
            names(p, "sda1 sda2\n sda3 \n").unwrap(),
            ["sda1", "sda2", "sda3"]
        );
        assert!(names(p, "sda1 ../etc\n").is_err());
        let d = dev_fs(
            p,
            "# <Device name>   <File system>   <Size>\n/dev/sda1 vfat 64M\n/dev/sda2 ext4 100M\n",
        )
        .unwrap();
        assert_eq!(
            d[1],
            DevFs {
                dev: "sda2".into(),
                fs: "ext4".into(),
                size: Some("100M".into())
            }
        );
        assert!(dev_fs(p, "/dev/sda1\n")
            .unwrap_err()
            .to_string()
            .contains("line 1"));
        assert_eq!(
            created("x\n### Image created time: 2026-1130-1200\n").as_deref(),
            Some("2026-1130-1200")
        );
        assert_eq!(
            parted_sectors("Model: x\nDisk /dev/sda: 204800s\nSector size"),
            Some(204800)
        );
    }
}
