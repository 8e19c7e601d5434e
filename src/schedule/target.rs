//! Reaching the repository for one run. A disk named by filesystem UUID or a share is
//! mounted under /run/ironclone/ only for the run (a backup disk that stays mounted
//! is one a crypto-locker also reaches) and unmounted after; one that is already
//! mounted is used where it is and left mounted.

use super::config::RepoLocation;
use super::error::ScheduleError;
use crate::discover::mountinfo;
use crate::resize::run_tool;
use crate::share::{self, NfsExport, NfsOptions, SmbOptions, SmbShare};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where runs mount what they reach.
pub const RUN_DIR: &str = "/run/ironclone";
/// How long a run waits for the network before a share counts as unreachable.
const NET_WAIT: Duration = Duration::from_secs(60);

/// The repository directory for this run; unmounts what the run mounted when dropped.
pub struct Reached {
    pub path: PathBuf,
    mounted: Option<PathBuf>,
}

impl Reached {
    /// Unmounts now, reporting a failure (dropping ignores it).
    pub fn release(mut self) -> Result<(), ScheduleError> {
        match self.mounted.take() {
            Some(mp) => unmount(&mp),
            None => Ok(()),
        }
    }
}

impl Drop for Reached {
    fn drop(&mut self) {
        if let Some(mp) = self.mounted.take() {
            let _ = unmount(&mp);
        }
    }
}

fn unmount(mp: &Path) -> Result<(), ScheduleError> {
    share::umount(mp).map_err(|e| ScheduleError::Target {
        location: mp.display().to_string(),
        why: e.to_string(),
    })?;
    let _ = std::fs::remove_dir(mp);
    Ok(())
}

fn unreachable(loc: &RepoLocation, why: impl Into<String>) -> ScheduleError {
    ScheduleError::Target {
        location: loc.to_string(),
        why: why.into(),
    }
}

pub fn reach(loc: &RepoLocation) -> Result<Reached, ScheduleError> {
    match loc {
        RepoLocation::Local(p) => {
            // The repository may be created, its parent must exist: a missing parent is
            // a disk that is not attached, and creating the path would fill the root fs.
            let parent = p.parent().unwrap_or(Path::new("/"));
            if !parent.is_dir() {
                return Err(unreachable(
                    loc,
                    format!(
                        "{} does not exist (is the backup disk attached and mounted?)",
                        parent.display()
                    ),
                ));
            }
            Ok(Reached {
                path: p.clone(),
                mounted: None,
            })
        }
        RepoLocation::FsUuid { uuid, path } => reach_uuid(loc, uuid, path),
        RepoLocation::Share(text) => reach_share(loc, text),
    }
}

/// The path inside a mounted filesystem (`inner` is absolute within it).
fn inside(mount_point: &Path, inner: &Path) -> PathBuf {
    mount_point.join(inner.strip_prefix("/").unwrap_or(inner))
}

/// The device holding the filesystem `uuid`, if one is attached. blkid probes the
/// devices itself: no udev (/dev/disk/by-uuid) is needed, as in the live system.
/// Without its cache (-c /dev/null): a cached entry can name a device or file long gone.
pub(super) fn device_by_uuid(uuid: &str) -> Result<Option<PathBuf>, crate::resize::ToolError> {
    let tag = format!("UUID={uuid}");
    Ok(blkid(&["-o", "device", "-t", &tag])?.map(PathBuf::from))
}

/// The filesystem UUID of block device `dev` (None when it has none), read by blkid
/// from the device itself, not its cache, like `device_by_uuid`.
pub fn uuid_of_device(dev: &Path) -> Result<Option<String>, crate::resize::ToolError> {
    let dev = dev.to_string_lossy();
    Ok(blkid(&["-o", "value", "-s", "UUID", &dev])?.map(|u| u.to_ascii_lowercase()))
}

/// blkid without its cache: the first line it prints, or None when it found nothing
/// (exit code 2) or printed nothing.
fn blkid(args: &[&str]) -> Result<Option<String>, crate::resize::ToolError> {
    let all: Vec<&str> = ["-c", "/dev/null"].iter().chain(args).copied().collect();
    let o = run_tool("blkid", &all, None, &[0, 2])?;
    Ok(o.stdout
        .lines()
        .next()
        .map(str::trim)
        .filter(|l| o.code == 0 && !l.is_empty())
        .map(str::to_string))
}

fn reach_uuid(loc: &RepoLocation, uuid: &str, inner: &Path) -> Result<Reached, ScheduleError> {
    let dev = match device_by_uuid(uuid) {
        Ok(Some(dev)) => dev,
        Ok(None) => {
            return Err(unreachable(
                loc,
                format!(
                    "no filesystem with UUID {uuid} is attached (is the backup disk plugged in?)"
                ),
            ))
        }
        Err(e) => return Err(unreachable(loc, e.to_string())),
    };
    let rdev = std::fs::metadata(&dev)
        .map_err(ScheduleError::io(&dev))?
        .rdev();
    let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
    let mounts = mountinfo::load(Path::new("/proc/self/mountinfo"))
        .map_err(ScheduleError::io(Path::new("/proc/self/mountinfo")))?;
    if let Some(m) = mounts
        .iter()
        .find(|m| u64::from(m.major) == major && u64::from(m.minor) == minor)
    {
        return Ok(Reached {
            path: inside(&m.mount_point, inner),
            mounted: None,
        });
    }
    let mp = Path::new(RUN_DIR).join(format!("repo-{uuid}"));
    std::fs::create_dir_all(&mp).map_err(ScheduleError::io(&mp))?;
    let (d, m) = (dev.to_string_lossy(), mp.to_string_lossy());
    run_tool("mount", &[&d, &m], None, &[0])
        .map_err(|e| unreachable(loc, format!("mounting {d}: {e}")))?;
    Ok(Reached {
        path: inside(&mp, inner),
        mounted: Some(mp),
    })
}

fn reach_share(loc: &RepoLocation, text: &str) -> Result<Reached, ScheduleError> {
    let err = |e: share::ShareError| unreachable(loc, e.to_string());
    let clean: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mp = Path::new(RUN_DIR).join(format!("share-{}", clean.trim_matches('-')));
    let path = if NfsExport::looks_like(text) {
        let x = NfsExport::parse(text).map_err(err)?;
        share::mount_nfs(&x, &mp, &NfsOptions::default(), NET_WAIT).map_err(err)?
    } else {
        // Guest login: a timer has nobody to type a password, and the schedule file
        // is no place for one.
        let s = SmbShare::parse(text).map_err(err)?;
        share::mount_smb(&s, &mp, &SmbOptions::default(), NET_WAIT).map_err(err)?
    };
    Ok(Reached {
        path,
        mounted: Some(mp),
    })
}

/// Size in bytes of the filesystem holding `path` (for a percentage budget).
pub fn fs_size(path: &Path) -> Result<u64, ScheduleError> {
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| ScheduleError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok(st.blocks().saturating_mul(st.fragment_size()))
}

/// Bytes the repository's files take (what the budget limits).
pub fn repo_bytes(root: &Path) -> u64 {
    fn walk(dir: &Path, depth: u32) -> u64 {
        // A repository is three levels deep; the bound stops a symlink loop.
        if depth > 8 {
            return 0;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        rd.filter_map(|e| e.ok())
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => walk(&e.path(), depth + 1),
                Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
                _ => 0,
            })
            .sum()
    }
    walk(root, 0)
}
