//! One scheduled run: take the run lock, load the config, reach the repository, image
//! each disk in the mode it needs, apply retention and the budget, prune, and record
//! the outcome. Nothing prompts; every failure ends up in the returned record (and
//! the state file) as text a user can act on.
//!
//! A disk with a plain partition mounted read-write is not imaged here: the run asks
//! for one boot into the rescue entry (`rescue_entry`), records that as pending, and
//! reboots; the rescue system's run (`run_rescue`, started by `rescue_run`) images it
//! and records the outcome. That run never asks for the rescue entry itself, so a disk
//! still busy there fails instead of looping.
//!
//! A failed backup leaves no image: the repository writes an image's manifest last.
//! Its packs are chunks no image uses, which the prune at the end removes; retention
//! removes nothing after a failed backup, so the last good images stay.

use super::config::ScheduleConfig;
use super::error::ScheduleError;
use super::lock::RunLock;
use super::mode::{self, Mode};
use super::retention::{self, Candidate, Policy};
use super::snapshot::{self, Snapshot};
use super::state::{ImageRecord, PendingRescue, RunRecord, ScheduleState};
use super::thin_delta;
use super::{target, Roots};
use crate::device::{open_path, Access};
use crate::imaging::plan_backup_unlocked;
use crate::progress::NoProgress;
use crate::repo::{self, BackupOptions, Repository, SourceInfo};
use std::path::{Path, PathBuf};

pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Letters, digits and `-_.` of `text`, the rest as `-` (image names allow no more),
/// without leading or trailing `-` and `.` (a name must not start with a dot).
pub fn name_part(text: &str) -> String {
    let c: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    c.trim_matches(|c| c == '-' || c == '.').to_string()
}

pub fn host_name() -> String {
    let h = crate::hostname::hostname().unwrap_or_default();
    match name_part(&h) {
        s if s.is_empty() => "host".into(),
        s => s,
    }
}

/// `<host>-<disk>-`: the prefix of a disk's scheduled images.
pub fn image_prefix(host: &str, disk: &Path) -> String {
    let d = disk
        .file_name()
        .map(|n| name_part(&n.to_string_lossy()))
        .unwrap_or_default();
    // Image names are at most 100 characters; the stamp takes 17 and a dash.
    let mut p = format!("{host}-{}", if d.is_empty() { "disk" } else { &d });
    p.truncate(80);
    p.push('-');
    p
}

/// True when `name` is `prefix` followed by exactly a `utc_stamp` (so disk `a` does
/// not claim the images of disk `a-b`).
fn is_scheduled(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|s| {
        s.len() == 17
            && s.bytes().enumerate().all(|(i, b)| {
                matches!(i, 4 | 7 | 10) == (b == b'-') && (b == b'-' || b.is_ascii_digit())
            })
    })
}

/// How the installed system's run behaves when a disk needs the rescue entry.
pub struct RunOptions {
    /// efivarfs (or a directory like it, for tests).
    pub efivars: PathBuf,
    /// Reboot into the rescue entry after asking for it (`--no-reboot` for tests).
    /// The caller reboots, with [`reboot`], once it has said why: a message printed
    /// after `systemctl reboot` is lost with the service that was to print it.
    pub reboot: bool,
}

pub enum Outcome {
    /// The run happened here (ok or not) and is recorded.
    Done(RunRecord),
    /// The next boot goes to the rescue entry, which makes the run.
    RescueRequested(PendingRescue),
}

/// Performs one run and records it in the state file, or asks for the rescue entry.
/// `Err` only when the run could not start (another run holds the lock) or its outcome
/// could not be recorded; a failed run is `Done` with `ok == false`.
pub fn run(roots: &Roots, opts: &RunOptions) -> Result<Outcome, ScheduleError> {
    let _lock = RunLock::acquire(&roots.lock_path())?;
    // A rescue run's outcome left on the boot partition first, so it is not lost.
    let merged = super::boot_mirror::merge(roots)
        .err()
        .map(|e| e.to_string());
    let mut rec = RunRecord {
        start_unix: now_unix(),
        warnings: merged.into_iter().collect(),
        ..RunRecord::default()
    };
    let prepared = ScheduleConfig::load(&roots.config_path()).and_then(|cfg| {
        rec.repo = cfg.repo.to_string();
        let modes = choose_modes(&cfg)?;
        Ok((cfg, modes))
    });
    let result = match prepared {
        Ok((cfg, modes)) if modes.iter().any(|m| matches!(m, Mode::Rescue(_))) => {
            return super::rescue_request::request(roots, opts, &cfg, &modes, rec);
        }
        Ok((cfg, modes)) => run_config(&cfg, &cfg.disks, &modes, &host_name(), "direct", &mut rec),
        Err(e) => Err(e),
    };
    finish(roots, rec, result).map(Outcome::Done)
}

/// The rescue system's run of the schedule `config` (read from the installed root
/// mounted read-only, or from its mirror on the boot partition): the disks are not
/// mounted read-write any more, so they are imaged directly. The caller records the
/// outcome (it must make the root or the boot partition writable first).
pub fn run_rescue(
    config: Result<ScheduleConfig, ScheduleError>,
    host: &str,
    pending: Option<&PendingRescue>,
) -> Result<RunRecord, ScheduleError> {
    let _lock = RunLock::acquire(&Path::new(target::RUN_DIR).join("schedule.lock"))?;
    let mut rec = RunRecord {
        start_unix: now_unix(),
        rescue: true,
        ..RunRecord::default()
    };
    let result = config.and_then(|cfg| {
        rec.repo = cfg.repo.to_string();
        let paths = cfg
            .disks
            .iter()
            .map(|d| resolve_in_rescue(d, pending))
            .collect::<Result<Vec<_>, _>>()?;
        let modes = choose_modes_of(&paths)?;
        // Never the rescue entry again from here: that would be a boot loop.
        if let Some(Mode::Rescue(why)) = modes.iter().find(|m| matches!(m, Mode::Rescue(_))) {
            return Err(ScheduleError::Rescue {
                why: format!("still busy in the rescue system: {why}"),
            });
        }
        run_config(&cfg, &paths, &modes, host, "rescue", &mut rec)
    });
    rec.end_unix = now_unix();
    rec.ok = result.is_ok();
    rec.error = result.err().map(|e| e.to_string());
    Ok(rec)
}

fn finish(
    roots: &Roots,
    mut rec: RunRecord,
    result: Result<(), ScheduleError>,
) -> Result<RunRecord, ScheduleError> {
    rec.end_unix = now_unix();
    rec.ok = result.is_ok();
    rec.error = result.err().map(|e| e.to_string());
    ScheduleState::record(roots, &rec)?;
    Ok(rec)
}

/// The device the rescue system reads for the configured `disk`: the one disk whose
/// identity (WWN, serial, model, size) is the one recorded when the rescue boot was
/// requested; a configured path that exists is used when nothing was recorded for it
/// (an image file, or a request made before identities were recorded).
fn resolve_in_rescue(
    disk: &Path,
    pending: Option<&PendingRescue>,
) -> Result<PathBuf, ScheduleError> {
    let conf = disk.display().to_string();
    let Some(pd) = pending.and_then(|p| p.disks.iter().find(|d| d.configured == conf)) else {
        return Ok(disk.to_path_buf());
    };
    let disks =
        crate::discover::list_disks(&crate::discover::SysPaths::default()).map_err(|e| {
            ScheduleError::Disk {
                disk: conf.clone(),
                why: e.to_string(),
            }
        })?;
    let hits = crate::discover::find_by_identity(&disks, &pd.identity);
    match hits.as_slice() {
        [one] => Ok(one.path.clone()),
        [] => Err(ScheduleError::Disk {
            disk: conf,
            why: format!(
                "no disk in the rescue system is the one recorded ({})",
                describe_identity(&pd.identity)
            ),
        }),
        many => Err(ScheduleError::Disk {
            disk: conf,
            why: format!(
                "{} disks match {}; refusing to guess",
                many.len(),
                describe_identity(&pd.identity)
            ),
        }),
    }
}

fn describe_identity(id: &crate::discover::DiskIdentity) -> String {
    format!(
        "model {}, serial {}, {} bytes",
        id.model.as_deref().unwrap_or("?"),
        id.serial.as_deref().unwrap_or("?"),
        id.size
    )
}

fn choose_modes(cfg: &ScheduleConfig) -> Result<Vec<Mode>, ScheduleError> {
    choose_modes_of(&cfg.disks)
}

fn choose_modes_of(disks: &[PathBuf]) -> Result<Vec<Mode>, ScheduleError> {
    disks
        .iter()
        .map(|d| {
            mode::choose(d).map(|m| match m {
                Mode::Rescue(why) => Mode::Rescue(format!("disk {}: {why}", d.display())),
                m => m,
            })
        })
        .collect()
}

/// Reboots through systemd when it runs (a clean shutdown), else with `reboot`.
pub fn reboot() -> Result<(), ScheduleError> {
    if Path::new("/run/systemd/system").is_dir() {
        crate::resize::run_tool("systemctl", &["reboot"], None, &[0])?;
    } else {
        crate::resize::run_tool("reboot", &[], None, &[0])?;
    }
    Ok(())
}

fn run_config(
    cfg: &ScheduleConfig,
    read_paths: &[PathBuf],
    modes: &[Mode],
    host: &str,
    direct_word: &'static str,
    rec: &mut RunRecord,
) -> Result<(), ScheduleError> {
    if modes.iter().any(|m| matches!(m, Mode::EncryptedLvm(_))) {
        rec.warnings.extend(super::enc_disk::recover());
    }
    if modes
        .iter()
        .any(|m| matches!(m, Mode::LvmSnapshot(_) | Mode::EncryptedLvm(_)))
    {
        for s in snapshot::remove_stale()? {
            rec.warnings
                .push(format!("removed the snapshot {s} a previous run left"));
        }
    }
    let reached = target::reach(&cfg.repo)?;
    let repo = Repository::open_or_init(&reached.path)?;
    let budget = cfg.budget.bytes(target::fs_size(&reached.path)?);
    rec.budget_bytes = budget;
    let mut failed: Option<ScheduleError> = None;
    for ((disk, read), mode) in cfg.disks.iter().zip(read_paths).zip(modes) {
        // Encrypted LVM: /boot is frozen for the run, and a repository on it would hang it.
        if matches!(mode, Mode::Direct | Mode::EncryptedLvm(_))
            && mode::holds_path(read, &reached.path)
        {
            failed.get_or_insert(ScheduleError::Disk {
                disk: disk.display().to_string(),
                why: format!(
                    "{} holds the repository {}; a disk cannot be imaged into itself",
                    read.display(),
                    reached.path.display()
                ),
            });
            continue;
        }
        let name = format!(
            "{}{}",
            image_prefix(host, disk),
            crate::timefmt::utc_stamp(now_unix())
        );
        match backup_disk(
            &repo,
            disk,
            read,
            mode,
            &name,
            direct_word,
            &mut rec.warnings,
        ) {
            Ok(r) => rec.images.push(r),
            Err(e) => {
                failed.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failed {
        // Cleanup after a failure must not hide it: its own errors become warnings.
        // The prune removes the packs of the image that was not finished.
        if let Err(p) = repo::prune(&repo, &NoProgress) {
            rec.warnings.push(format!("prune after the failure: {p}"));
        }
        rec.repo_bytes = target::repo_bytes(repo.path());
        drop(repo);
        if let Err(u) = reached.release() {
            rec.warnings.push(u.to_string());
        }
        return Err(e);
    }
    apply_retention(cfg, &repo, host, budget, rec)?;
    rec.repo_bytes = target::repo_bytes(repo.path());
    if rec.repo_bytes > budget {
        rec.warnings.push(format!(
            "the repository takes {} bytes, over its budget of {budget}, with only the newest images left",
            rec.repo_bytes
        ));
    }
    drop(repo);
    reached.release()
}

fn backup_disk(
    repo: &Repository,
    disk: &Path,
    read: &Path,
    mode: &Mode,
    name: &str,
    direct_word: &'static str,
    warnings: &mut Vec<String>,
) -> Result<ImageRecord, ScheduleError> {
    let fail = |why: String| ScheduleError::Backup {
        disk: disk.display().to_string(),
        why,
    };
    // A thin LV's snapshot is tagged with the image it makes, so that it can be the
    // next run's base (thin_delta).
    let thin = match mode {
        Mode::LvmSnapshot(lv) if lv.pool.is_some() => Some(lv),
        _ => None,
    };
    let base = match thin.map(thin_delta::find_base).transpose() {
        Ok(b) => b.flatten(),
        Err(e) => {
            warnings.push(format!("changed-block tracking: {e}"));
            None
        }
    };
    let tag = thin.map(|_| thin_delta::image_tag(name));
    let (snap, read_path, mut mode_word) = match mode {
        Mode::Direct => (None, read.to_path_buf(), direct_word),
        Mode::LvmSnapshot(lv) => {
            let s = Snapshot::create(lv, tag.as_deref())?;
            let p = s.device();
            (Some(s), p, "lvm-snapshot")
        }
        Mode::Rescue(why) => return Err(fail(why.clone())),
        Mode::EncryptedLvm(enc) => {
            let m = super::enc_run::backup(repo, disk, read, enc, name)?;
            return Ok(image_record(disk, &m, "encrypted-lvm"));
        }
    };
    let dev = open_path(&read_path, Access::ReadOnly).map_err(|e| fail(e.to_string()))?;
    // On a block device the kernel's read-only flag too, for the whole backup.
    let _ro = crate::rescue::set_read_only(dev.file(), &read_path).ok();
    let source = SourceInfo::of_device(disk, &dev);
    let planned = plan_backup_unlocked(&dev, source, None).map_err(|e| fail(e.to_string()))?;
    // The previous image and the blocks changed since its snapshot; on any failure the
    // used blocks are read as for every other disk.
    let tracked = match (thin, &base) {
        (Some(lv), Some(b)) if !thin_delta::disabled() => {
            let got = if b.image.is_empty() {
                Err(fail(format!("{} names no image", b.lv)))
            } else {
                repo.load_spilled(&b.image)
                    .map_err(ScheduleError::from)
                    .and_then(|m| Ok((m, thin_delta::delta(lv, b, &lv.snap_name())?)))
            };
            match got {
                Ok(t) => Some(t),
                Err(e) => {
                    warnings.push(format!(
                        "changed-block tracking off for this run (reading the used blocks): {e}"
                    ));
                    None
                }
            }
        }
        _ => None,
    };
    let unchanged = tracked.as_ref().map(|(m, d)| repo::Unchanged {
        parent: m.as_ref(),
        changed: &d.changed,
    });
    if unchanged.is_some() {
        mode_word = "lvm-thin-delta";
    }
    let m = repo::backup_unchanged(
        repo,
        &dev,
        &planned.plan,
        &BackupOptions::new(name),
        unchanged.as_ref(),
        &NoProgress,
    )
    .map_err(|e| fail(e.to_string()))?;
    drop(_ro);
    drop(dev);
    match (snap, thin) {
        // The image is complete: a base that could not be kept only costs the next
        // run its tracking (and a left snapshot is removed at its start).
        (Some(s), Some(_)) => {
            if let Err(e) = s.keep_as_base() {
                warnings.push(format!("changed-block tracking: keeping the snapshot: {e}"));
            }
        }
        (Some(s), None) => s.remove()?,
        (None, _) => {}
    }
    Ok(image_record(disk, &m, mode_word))
}

fn image_record(disk: &Path, m: &repo::Manifest, mode: &str) -> ImageRecord {
    ImageRecord {
        disk: disk.display().to_string(),
        image: m.name.clone(),
        mode: mode.into(),
        bytes_read: m.stats.bytes_read,
        new_bytes: m.stats.new_bytes,
        new_stored_bytes: m.stats.new_stored_bytes,
        unchanged_bytes: m.stats.unchanged_bytes,
    }
}

fn apply_retention(
    cfg: &ScheduleConfig,
    repo: &Repository,
    host: &str,
    budget: u64,
    rec: &mut RunRecord,
) -> Result<(), ScheduleError> {
    let policy = Policy {
        keep_last: cfg.keep_last,
        keep_weekly: cfg.keep_weekly,
        keep_monthly: cfg.keep_monthly,
    };
    let names = repo.image_names()?;
    let mut kept_groups = Vec::new();
    for disk in &cfg.disks {
        let prefix = image_prefix(host, disk);
        let mut group = Vec::new();
        for n in names.iter().filter(|n| is_scheduled(n, &prefix)) {
            group.push(Candidate {
                name: n.clone(),
                created_unix: repo.image_created(n)?,
            });
        }
        let d = retention::decide(&group, policy);
        for n in &d.delete {
            repo.delete_image(n)?;
            rec.pruned.push(n.clone());
        }
        kept_groups.push(
            group
                .into_iter()
                .filter(|c| d.keep.contains(&c.name))
                .collect::<Vec<_>>(),
        );
    }
    repo::prune(repo, &NoProgress)?;
    let order = retention::budget_order(&kept_groups);
    let used = target::repo_bytes(repo.path());
    let mut waiting = false;
    let removed = retention::trim_to_budget(&order, budget, used, |n| {
        repo.delete_image(n)?;
        // Beside another machine's running backup prune only marks (docs/MULTI.md):
        // the space comes back later, and measuring now would delete image after
        // image for nothing. Trimming stops; the next run goes on.
        if repo::prune(repo, &NoProgress)?.packs_waiting > 0 {
            waiting = true;
            return Ok(0);
        }
        Ok::<_, ScheduleError>(target::repo_bytes(repo.path()))
    })?;
    if waiting {
        rec.warnings.push(
            "space budget: another backup is writing the repository; its space is freed by a later prune".into(),
        );
    }
    rec.pruned.extend(removed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let p = image_prefix("pc1", Path::new("/dev/disk/by-id/ata-Samsung SSD_860:1"));
        assert_eq!(p, "pc1-ata-Samsung-SSD_860-1-");
        assert!(is_scheduled("pc1-a-2026-11-23-091500", "pc1-a-"));
        assert!(!is_scheduled("pc1-a-b-2026-11-23-091500", "pc1-a-"));
        assert!(!is_scheduled("pc1-a-2026-11-23-09150x", "pc1-a-"));
        assert!(!is_scheduled("pc1-a-manual", "pc1-a-"));
        assert_eq!(name_part("..a b."), "a-b");
    }
}
