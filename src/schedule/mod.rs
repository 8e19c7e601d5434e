//! Scheduled image backups (issue 23): configured once with `schedule init`, run by a
//! systemd timer at low priority, pruned to a space budget, reported by `schedule
//! status`. The files live under a root directory (`/`, or `--root DIR` for packaging
//! and tests, as `systemctl --root` does), so nothing outside it is touched.
//!
//! - `config`: the typed, versioned schedule.json and its field-named validation.
//! - `calendar`: systemd calendar specs, checked by `systemd-analyze calendar`.
//! - `units`: the service and timer files and their installation; `install`: checking
//!   a schedule and installing it (`schedule init`, the TUI).
//! - `target`: reaching the repository (a filesystem by UUID, a share, a path).
//! - `mode`: how each disk can be imaged consistently (direct, LVM snapshot, the
//!   whole disk of an encrypted-LVM install, the rescue entry, refused);
//!   `enc_disk`, `enc_run`, `enc_signal`: that encrypted-LVM disk's online image.
//! - `snapshot`: the temporary LVM snapshot's lvm command lines and cleanup;
//!   `thin_delta`: a thin LV's kept snapshot and the blocks changed since it.
//! - `retention`: which images to keep (pure logic).
//! - `run`: one scheduled run; `lock`: one run at a time; `state`: its recorded
//!   outcome for `status`.
//! - `rescue_entry`: the boot entry into the live system for disks with a plain
//!   partition mounted read-write; `rescue_request`: a run asking for it;
//!   `rescue_run`: the run that entry makes; `boot_mirror`: the schedule's copy on
//!   the boot partition for a root on device-mapper (LUKS, LVM).

pub mod boot_mirror;
pub mod calendar;
pub mod config;
pub mod enc_disk;
pub mod enc_run;
mod enc_signal;
pub mod error;
pub mod install;
pub mod lock;
pub mod mode;
pub mod rescue_entry;
pub mod rescue_request;
pub mod rescue_run;
pub mod retention;
pub mod run;
pub mod snapshot;
pub mod state;
pub mod target;
pub mod thin_delta;
pub mod units;

pub use config::{Budget, RepoLocation, ScheduleConfig};
pub use error::ScheduleError;

use std::path::{Path, PathBuf};

/// Where the schedule's files are, under a root directory.
#[derive(Clone, Debug)]
pub struct Roots {
    root: PathBuf,
    /// The rescue run's lock lives in /run: the installed root is read-only then.
    lock: Option<PathBuf>,
}

impl Roots {
    pub fn new(root: Option<&Path>) -> Roots {
        Roots {
            root: root.map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
            lock: None,
        }
    }
    /// The installed system mounted at `root` by the rescue system.
    pub fn rescue(root: &Path) -> Roots {
        Roots {
            root: root.to_path_buf(),
            lock: Some(Path::new(target::RUN_DIR).join("schedule.lock")),
        }
    }
    /// True when the files go to a root other than the running system's `/`.
    pub fn is_alternate(&self) -> bool {
        self.root != Path::new("/")
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join("etc/ironclone/schedule.json")
    }
    pub fn unit_dir(&self) -> PathBuf {
        self.root.join("etc/systemd/system")
    }
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("var/lib/ironclone")
    }
    pub fn state_path(&self) -> PathBuf {
        self.state_dir().join("schedule-state.json")
    }
    pub fn lock_path(&self) -> PathBuf {
        if let Some(l) = &self.lock {
            return l.clone();
        }
        self.state_dir().join("schedule.lock")
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash leaves
/// the old file or the new one, never half of one (a half config stops every run).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ScheduleError> {
    use std::io::Write;
    let io = ScheduleError::io(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(ScheduleError::io(dir))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(ScheduleError::io(&tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(ScheduleError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io)
}
