//! How a deploy client picks the disk it overwrites, by a rule that cannot pick the
//! wrong one: only an EMPTY disk (no byte other than zero in its first and last MiB,
//! where every partition table and filesystem signature lives) that is not the boot
//! medium, not mounted, not read-only and not in use. A disk holding data is taken
//! only when the site said so on the kernel command line (`ironclone.erase=any`).

use super::protocol::DiskInfo;
use super::DeployError;
use crate::discover::{self, Disk, SysPaths};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// What `--target` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetRule {
    /// The only empty disk.
    Auto,
    /// The largest empty disk.
    Largest,
    /// This disk or disk-image file.
    Path(PathBuf),
}

impl std::str::FromStr for TargetRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => TargetRule::Auto,
            "largest" => TargetRule::Largest,
            p if p.starts_with('/') || p.starts_with('.') => TargetRule::Path(PathBuf::from(p)),
            p => return Err(format!("{p:?}: expected auto, largest or a path")),
        })
    }
}

/// The kernel command line allows overwriting a disk with data.
pub fn cmdline_erase_any(cmdline: &str) -> bool {
    cmdline
        .split_whitespace()
        .any(|w| w == "ironclone.erase=any")
}

/// Bytes looked at, at each end, to call a disk empty: MBR/GPT, the backup GPT, and the
/// signatures of ext, XFS, btrfs (64 KiB), NTFS, FAT, exFAT, LVM, LUKS, swap, ISO 9660.
const EDGE: u64 = 1 << 20;

/// Whether the first and last MiB of `path` (of `size` bytes) are all zeros.
pub fn is_empty(path: &Path, size: u64) -> Result<bool, DeployError> {
    let io = |e: std::io::Error| DeployError::Io {
        what: format!("reading {} to see whether it is empty", path.display()),
        source: e,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let head = EDGE.min(size);
    let tail_at = size.saturating_sub(EDGE).max(head);
    let mut buf = vec![0u8; EDGE as usize];
    for (at, len) in [(0, head), (tail_at, size - tail_at)] {
        let b = &mut buf[..len as usize];
        f.read_exact_at(b, at).map_err(io)?;
        if b.iter().any(|&x| x != 0) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A chosen target.
#[derive(Clone, Debug)]
pub struct Chosen {
    pub path: PathBuf,
    pub info: DiskInfo,
}

fn info(d: &Disk, erased_data: bool) -> DiskInfo {
    DiskInfo {
        path: d.path.display().to_string(),
        model: d.model.clone(),
        serial: d.serial.clone(),
        size: d.size_bytes,
        erased_data,
    }
}

/// Why `d` may not be a deploy target at all, data or not.
fn off_limits(d: &Disk) -> Option<String> {
    if let Err(r) = discover::check_target_allowed(d) {
        return Some(r.to_string());
    }
    if d.size_bytes == 0 {
        return Some("has no medium".into());
    }
    None
}

/// Chooses the target by `rule`; `erase_any`: a disk with data may be taken.
pub fn choose(rule: &TargetRule, erase_any: bool) -> Result<Chosen, DeployError> {
    use std::os::unix::fs::FileTypeExt;
    if let TargetRule::Path(p) = rule {
        let meta = std::fs::metadata(p).map_err(|e| DeployError::Io {
            what: format!("target {}", p.display()),
            source: e,
        })?;
        if !meta.file_type().is_block_device() {
            // A disk-image file (tests, VMs): no disk rules apply, emptiness does.
            let empty = is_empty(p, meta.len())?;
            if !empty && !erase_any {
                return Err(refused(p, "it holds data"));
            }
            return Ok(Chosen {
                path: p.clone(),
                info: DiskInfo {
                    path: p.display().to_string(),
                    model: Some("image file".into()),
                    serial: None,
                    size: meta.len(),
                    erased_data: !empty,
                },
            });
        }
    }
    let disks = discover::list_disks(&SysPaths::default())?;
    if let TargetRule::Path(p) = rule {
        let canon = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        let d = disks
            .iter()
            .find(|d| d.path == canon)
            .ok_or_else(|| refused(p, "not a whole disk"))?;
        if let Some(why) = off_limits(d) {
            return Err(refused(p, &why));
        }
        let empty = is_empty(&d.path, d.size_bytes)?;
        if !empty && !erase_any {
            return Err(refused(p, "it holds data"));
        }
        return Ok(Chosen {
            path: d.path.clone(),
            info: info(d, !empty),
        });
    }
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for d in &disks {
        if let Some(why) = off_limits(d) {
            skipped.push(format!("{}: {why}", d.describe()));
            continue;
        }
        let empty = is_empty(&d.path, d.size_bytes)?;
        if empty || erase_any {
            usable.push((d, !empty));
        } else {
            skipped.push(format!("{}: holds data", d.describe()));
        }
    }
    let pick = match rule {
        TargetRule::Auto if usable.len() == 1 => usable.pop(),
        TargetRule::Auto if usable.len() > 1 => {
            return Err(DeployError::NoTarget(format!(
                "--target auto needs exactly one empty disk; these qualify: {} (name one with --target)",
                usable
                    .iter()
                    .map(|(d, _)| d.describe())
                    .collect::<Vec<_>>()
                    .join("; ")
            )))
        }
        _ => usable.into_iter().max_by_key(|(d, _)| d.size_bytes),
    };
    let Some((d, erased)) = pick else {
        return Err(DeployError::NoTarget(format!(
            "no empty disk (add ironclone.erase=any to the kernel command line to allow a disk with data){}",
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; skipped: {}", skipped.join("; "))
            }
        )));
    };
    Ok(Chosen {
        path: d.path.clone(),
        info: info(d, erased),
    })
}

fn refused(p: &Path, why: &str) -> DeployError {
    DeployError::NoTarget(format!(
        "{}: {why}{}",
        p.display(),
        if why == "it holds data" {
            " (a deploy client only overwrites an empty disk unless the kernel command line has ironclone.erase=any)"
        } else {
            ""
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline() {
        assert!(cmdline_erase_any("quiet ironclone.erase=any console=ttyS0"));
        assert!(!cmdline_erase_any("ironclone.erase=anyx"));
        assert!(!cmdline_erase_any("xironclone.erase=any"));
    }

    #[test]
    fn empty_means_both_ends_zero() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("disk");
        let f = std::fs::File::create(&p).unwrap();
        f.set_len(8 << 20).unwrap();
        assert!(is_empty(&p, 8 << 20).unwrap());
        f.write_all_at(&[1], (8 << 20) - 1).unwrap();
        assert!(!is_empty(&p, 8 << 20).unwrap());
        f.write_all_at(&[0], (8 << 20) - 1).unwrap();
        f.write_all_at(&[0x53, 0xef], 1024 + 56).unwrap();
        assert!(!is_empty(&p, 8 << 20).unwrap());
        assert!(matches!(
            choose(&TargetRule::Path(p.clone()), false),
            Err(DeployError::NoTarget(_))
        ));
        assert!(choose(&TargetRule::Path(p), true).unwrap().info.erased_data);
    }
}
