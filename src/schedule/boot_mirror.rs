//! The schedule next to the rescue kernel, for an installed system whose root
//! filesystem is on device-mapper (a plain LUKS root, an LVM root). The rescue run
//! cannot reach such a root: the live system has no key for the LUKS volume and
//! activates no VG. So the rescue entry's own folder on the boot partition (the ESP's
//! `EFI/ironclone`, or `ironclone/` on a separate /boot), which the live system reads
//! anyway to boot, also holds:
//!
//! - `schedule.json`: a copy of /etc/ironclone/schedule.json, written by `schedule
//!   init`, `rescue install` and every run that requests a rescue boot;
//! - `request.json`: the host name (image names) and the pending rescue request with
//!   the disks' identities, written before the boot is requested;
//! - `outcome.json`: the rescue run's record, written by the rescue run and merged
//!   into /var/lib/ironclone/schedule-state.json by the installed system's next
//!   `schedule status` or `schedule run`, then removed.
//!
//! The rescue entry then names that partition by filesystem UUID
//! (`--rescue-boot <uuid>`) instead of the root. The schedule holds no secret (a
//! repository by path, by filesystem UUID, or an SMB guest / NFS share):
//! [`check_no_secret`] refuses one that would, rather than write it unencrypted there.
//!
//! Why a mirror for an LVM root too, rather than activating the VG in the rescue
//! system: one mechanism for every device-mapper stack (LVM on LUKS, on RAID, thin
//! roots), no VG of the disk being imaged active in the rescue system, and no write to
//! the installed root's LV from a system that did not boot it.
//!
//! FAT has no atomic rename over a crash. Each file is written as `<name>.tmp`,
//! fsynced, renamed over `<name>.json`, and the folder fsynced; a reader takes a
//! `.tmp` that parses whole (JSON that was cut short does not) over the `.json`,
//! since a complete `.tmp` is only left by a crash between its fsync and the rename,
//! when it is the newer of the two.

use super::config::{RepoLocation, ScheduleConfig};
use super::error::ScheduleError;
use super::rescue_entry::RescueEntry;
use super::state::{PendingRescue, RunRecord, ScheduleState};
use super::Roots;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "schedule.json";
pub const REQUEST: &str = "request.json";
pub const OUTCOME: &str = "outcome.json";
/// Every file of the mirror (removed with the rescue entry).
pub const FILES: [&str; 3] = [CONFIG, REQUEST, OUTCOME];
pub const MIRROR_VERSION: u32 = 1;
const MAX_FILE: u64 = 4 << 20;

/// `request.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub version: u32,
    /// The installed system's host name, so the rescue run's images carry its names.
    pub host: String,
    /// The request (its `how` is empty: the copy is written before the boot is asked
    /// for, so that a requested boot always finds it). `None` until a run asks.
    pub pending: Option<PendingRescue>,
}

/// `outcome.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub version: u32,
    pub run: RunRecord,
}

fn err(why: impl Into<String>) -> ScheduleError {
    ScheduleError::Rescue { why: why.into() }
}

/// Refuses a schedule that would put a secret on the boot partition. None of today's
/// locations holds one (SMB is guest-only and refuses `user@`); the match has no
/// wildcard so that a location added later has to be decided here.
pub fn check_no_secret(cfg: &ScheduleConfig) -> Result<(), ScheduleError> {
    let secret = match &cfg.repo {
        RepoLocation::Local(_) | RepoLocation::FsUuid { .. } => false,
        RepoLocation::Share(s) => {
            let l = s.to_ascii_lowercase();
            s.contains('@')
                || ["password", "pass=", "credentials", "cred="]
                    .iter()
                    .any(|w| l.contains(w))
        }
    };
    if secret {
        return Err(err(format!(
            "the repository location {} holds a login; the rescue entry of a system whose root \
             is on device-mapper keeps the schedule unencrypted on the boot partition, so it \
             cannot hold one (use a guest share or a disk by UUID)",
            cfg.repo
        )));
    }
    Ok(())
}

/// The folder the rescue entry mirrors the schedule to, when it does (`boot_uuid`).
pub fn mirror_dir(roots: &Roots) -> Result<Option<PathBuf>, ScheduleError> {
    Ok(RescueEntry::load(roots)?
        .filter(|e| e.boot_uuid.is_some())
        .map(|e| e.dir))
}

/// The UUID of the partition mounted at `dir` (the ESP, a separate /boot), which the
/// rescue entry names instead of the root on device-mapper `root_dm`.
pub fn boot_partition_uuid(dir: &Path, root_dm: &str) -> Result<String, ScheduleError> {
    let why = |e: String| {
        err(format!(
            "the root filesystem is on {root_dm}, which the rescue system cannot open, so the \
             schedule is kept on the partition the rescue entry boots from; {e} (give the ESP with \
             --esp, or a /boot that is a plain partition of its own)"
        ))
    };
    if let Some(dm) = super::mode::dm_at(dir) {
        return Err(why(format!("{} is on {dm} too", dir.display())));
    }
    super::rescue_entry::fs_uuid_at(dir).map_err(|e| why(e.to_string()))
}

/// The installed system's host name (image names), from `root`'s /etc/hostname.
pub fn installed_host(root: &Path) -> String {
    std::fs::read_to_string(root.join("etc/hostname"))
        .ok()
        .map(|h| super::run::name_part(h.trim()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(super::run::host_name)
}

/// Writes `bytes` to `dir/name` through `name`'s `.tmp`, then fsyncs the folder.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ScheduleError> {
    let path = dir.join(name);
    super::write_atomic(&path, bytes)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ScheduleError::io(dir))
}

/// Reads `dir/name` (or its complete `.tmp`, above) with `parse`; `None` when neither
/// exists. A malformed `.json` is an error naming it.
fn read_file<T>(
    dir: &Path,
    name: &str,
    parse: impl Fn(&Path, &[u8]) -> Result<T, ScheduleError>,
) -> Result<Option<T>, ScheduleError> {
    let load = |p: &Path| -> Result<Option<T>, ScheduleError> {
        let meta = match std::fs::metadata(p) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            other => other.map_err(ScheduleError::io(p))?,
        };
        if meta.len() > MAX_FILE {
            return Err(ScheduleError::Syntax {
                path: p.to_path_buf(),
                why: format!("{} bytes is too large", meta.len()),
            });
        }
        let bytes = std::fs::read(p).map_err(ScheduleError::io(p))?;
        parse(p, &bytes).map(Some)
    };
    let path = dir.join(name);
    if let Ok(Some(t)) = load(&path.with_extension("tmp")) {
        return Ok(Some(t));
    }
    load(&path)
}

fn json<T: serde::de::DeserializeOwned>(p: &Path, b: &[u8]) -> Result<T, ScheduleError> {
    serde_json::from_slice(b).map_err(|e| ScheduleError::Syntax {
        path: p.to_path_buf(),
        why: e.to_string(),
    })
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap_or_default();
    b.push(b'\n');
    b
}

fn check_version(p: &Path, v: u32) -> Result<(), ScheduleError> {
    if v != MIRROR_VERSION {
        return Err(ScheduleError::Field {
            path: p.to_path_buf(),
            field: "version".into(),
            why: format!("{v} is not {MIRROR_VERSION}"),
        });
    }
    Ok(())
}

/// Writes the schedule (when one is configured) and the request to `dir`.
pub fn write_mirror(
    dir: &Path,
    config: Option<&ScheduleConfig>,
    host: &str,
    pending: Option<&PendingRescue>,
) -> Result<(), ScheduleError> {
    if let Some(cfg) = config {
        check_no_secret(cfg)?;
        write_file(dir, CONFIG, &cfg.to_json())?;
    }
    let req = Request {
        version: MIRROR_VERSION,
        host: host.to_string(),
        pending: pending.cloned(),
    };
    write_file(dir, REQUEST, &to_json(&req))
}

/// The folder the mirror goes to, `None` when the installed rescue entry keeps none.
/// A folder without the rescue kernel is an error: the ESP (or /boot) is not mounted,
/// and writing there would put the copy on the root, where nothing reads it.
pub fn target_dir(roots: &Roots) -> Result<Option<PathBuf>, ScheduleError> {
    let Some(entry) = RescueEntry::load(roots)?.filter(|e| e.boot_uuid.is_some()) else {
        return Ok(None);
    };
    if !entry.dir.join(super::rescue_entry::KERNEL_FILE).is_file() {
        return Err(err(format!(
            "{} holds no rescue kernel (is the ESP or /boot mounted?): the schedule's copy for \
             the rescue entry cannot be written there",
            entry.dir.display()
        )));
    }
    Ok(Some(entry.dir))
}

/// Brings the mirror up to date when the installed rescue entry keeps one (above): the
/// schedule, and `pending` as the request. Returns whether it does. Asked for a rescue
/// boot (`pending`), an entry that finds the schedule on a root that is on
/// device-mapper (installed before the mirror existed) is an error: its rescue run
/// could never find the schedule, and the request would never be answered.
pub fn sync(roots: &Roots, pending: Option<&PendingRescue>) -> Result<bool, ScheduleError> {
    let Some(dir) = target_dir(roots)? else {
        if let (Some(_), Some(entry), Some(dm)) = (
            pending,
            RescueEntry::load(roots)?,
            super::mode::dm_at(roots.root()),
        ) {
            return Err(err(format!(
                "the rescue entry finds the installed system by its root filesystem (UUID {}), \
                 which is on {dm}: the rescue system cannot open it. Run `ironclone rescue install` \
                 again: it keeps a copy of the schedule on the ESP (or /boot) instead",
                entry.root_uuid
            )));
        }
        return Ok(false);
    };
    let cfg = match ScheduleConfig::load(&roots.config_path()) {
        Ok(c) => Some(c),
        Err(ScheduleError::NotConfigured { .. }) => None,
        Err(e) => return Err(e),
    };
    write_mirror(&dir, cfg.as_ref(), &installed_host(roots.root()), pending)?;
    Ok(true)
}

/// [`sync`] with the request the state holds (`schedule init`, `rescue install`).
pub fn sync_state(roots: &Roots) -> Result<bool, ScheduleError> {
    let pending = ScheduleState::load(roots)
        .ok()
        .and_then(|s| s.pending_rescue);
    sync(roots, pending.as_ref())
}

/// The rescue run's side: the request in `dir`.
pub fn read_request(dir: &Path) -> Result<Request, ScheduleError> {
    let req: Request = read_file(dir, REQUEST, json)?.ok_or_else(|| {
        err(format!(
            "{} is missing: no schedule was mirrored to the boot partition (run `ironclone \
             schedule init` on the installed system)",
            dir.join(REQUEST).display()
        ))
    })?;
    check_version(&dir.join(REQUEST), req.version)?;
    Ok(req)
}

/// The mirrored schedule (or its complete `.tmp`), validated.
pub fn read_config(dir: &Path) -> Result<ScheduleConfig, ScheduleError> {
    let path = dir.join(CONFIG);
    read_file(dir, CONFIG, ScheduleConfig::parse)?.ok_or(ScheduleError::NotConfigured { path })
}

/// The rescue run records its outcome.
pub fn write_outcome(dir: &Path, run: &RunRecord) -> Result<(), ScheduleError> {
    let o = Outcome {
        version: MIRROR_VERSION,
        run: run.clone(),
    };
    write_file(dir, OUTCOME, &to_json(&o))
}

/// The recorded outcome in `dir`, if any.
pub fn read_outcome(dir: &Path) -> Result<Option<RunRecord>, ScheduleError> {
    let Some(o): Option<Outcome> = read_file(dir, OUTCOME, json)? else {
        return Ok(None);
    };
    check_version(&dir.join(OUTCOME), o.version)?;
    Ok(Some(o.run))
}

/// Merges the outcome in `dir` into the state under `roots` (once: a record equal to
/// the last run is not recorded again), then removes it. Returns what was merged.
pub fn merge_from(roots: &Roots, dir: &Path) -> Result<Option<RunRecord>, ScheduleError> {
    let Some(run) = read_outcome(dir)? else {
        return Ok(None);
    };
    let st = ScheduleState::load(roots).unwrap_or_default();
    if st.last_run.as_ref() != Some(&run) {
        ScheduleState::record(roots, &run)?;
    }
    for p in [dir.join(OUTCOME), dir.join(OUTCOME).with_extension("tmp")] {
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ScheduleError::io(&p)(e))
            }
            _ => {}
        }
    }
    Ok(Some(run))
}

/// [`merge_from`] the installed rescue entry's folder, when it keeps a mirror. Errors
/// name the file; a folder that is not there (the ESP not mounted) is one too, since
/// the state would otherwise miss the rescue run silently.
pub fn merge(roots: &Roots) -> Result<Option<RunRecord>, ScheduleError> {
    let Some(dir) = mirror_dir(roots)? else {
        return Ok(None);
    };
    if !dir.is_dir() {
        return Err(err(format!(
            "{} is not there (is the ESP or /boot mounted?): the rescue run's outcome cannot be read",
            dir.display()
        )));
    }
    merge_from(roots, &dir)
}

/// [`merge`] for `schedule status`: not while a run holds the lock (it merges first).
pub fn merge_unless_running(roots: &Roots) -> Result<Option<RunRecord>, ScheduleError> {
    if mirror_dir(roots)?.is_none() {
        return Ok(None);
    }
    match super::lock::RunLock::acquire(&roots.lock_path()) {
        Err(ScheduleError::Locked { .. }) => Ok(None),
        Err(e) => Err(e),
        Ok(_lock) => merge(roots),
    }
}

#[cfg(test)]
#[path = "boot_mirror_tests.rs"]
mod tests;
