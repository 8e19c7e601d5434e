//! The whole disk of an encrypted-LVM install (ESP + /boot + LUKS → PV → VG → LVs) in
//! one scheduled image, online and without the key (docs/SCHEDULE.md, "Encrypted
//! disks"). The running system has the LUKS volume open, so its plaintext is readable;
//! the image is what `ironclone backup --unlock` writes (the header area raw, the
//! plaintext area mapped by the PV's LVs), and `restore --unlock` rebuilds the disk.
//!
//! What makes it consistent:
//! - each LV mounted read-write is read from its snapshot (`enc_run`), and the PV's
//!   label and metadata area as they were before the snapshots were created, so the
//!   image's VG has no snapshot LVs and their copy-on-write extents stay free space;
//! - each plain partition mounted read-write (/boot, the ESP) is made still for the
//!   run: `fsfreeze` where the filesystem can freeze (ext2/3/4, XFS, btrfs), a
//!   read-only remount where it cannot (FAT, exFAT); both undone afterwards, on error
//!   too ([`Quiesced`]'s drop), on SIGTERM/SIGINT/SIGHUP (a thread undoes them and
//!   exits), and after a SIGKILL by the next run ([`recover`], from the record in
//!   /run, which a reboot clears together with the freeze).

use super::error::ScheduleError;
use super::snapshot::LvRef;
use crate::resize::run_tool;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a plain partition mounted read-write is kept still during the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Quiesce {
    /// `fsfreeze --freeze` (writers wait until `fsfreeze --unfreeze`).
    Freeze,
    /// `mount -o remount,ro`, then `remount,rw` (FAT cannot freeze).
    RemountRo,
}

impl Quiesce {
    /// The way for filesystem type `fs` (as /proc/self/mountinfo names it), if any.
    pub fn for_fs(fs: &str) -> Option<Quiesce> {
        match fs {
            "ext2" | "ext3" | "ext4" | "xfs" | "btrfs" => Some(Quiesce::Freeze),
            "vfat" | "msdos" | "exfat" => Some(Quiesce::RemountRo),
            _ => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Quiesce::Freeze => "frozen",
            Quiesce::RemountRo => "remounted read-only",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainMount {
    pub part: String,
    pub mount: PathBuf,
    pub fs_type: String,
    pub how: Quiesce,
}

/// A LUKS partition of the disk, open in the running system, holding a PV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptPv {
    pub part: String,
    /// The partition's byte offset on the disk.
    pub offset: u64,
    /// The mapping's name (/dev/mapper/<name>).
    pub mapping: String,
    /// The LVs on it mounted read-write: read from their snapshots.
    pub lvs: Vec<LvRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncDisk {
    pub plain: Vec<PlainMount>,
    pub volumes: Vec<CryptPv>,
}

impl EncDisk {
    /// One line for `schedule init` and the run: what is snapshotted and what is still.
    pub fn summary(&self) -> String {
        let mut parts: Vec<String> = self
            .volumes
            .iter()
            .map(|v| {
                let lvs: Vec<String> = v.lvs.iter().map(|l| format!("{}/{}", l.vg, l.lv)).collect();
                format!(
                    "{} (LUKS volume {}, read without the key: the image holds its PLAINTEXT) with {} from snapshots",
                    v.part,
                    v.mapping,
                    lvs.join(", ")
                )
            })
            .collect();
        parts.extend(self.plain.iter().map(|p| {
            format!(
                "{} ({} at {}) {} for the run",
                p.part,
                p.fs_type,
                p.mount.display(),
                p.how.word()
            )
        }));
        parts.join("; ")
    }
}

/// `fsfreeze`/`mount` arguments that make `mount` still (`on`) or undo it.
pub fn quiesce_args(how: Quiesce, mount: &Path, on: bool) -> (&'static str, Vec<String>) {
    let m = mount.display().to_string();
    match (how, on) {
        // The long options: busybox's fsfreeze (the live system's) has no -f/-u.
        (Quiesce::Freeze, true) => ("fsfreeze", vec!["--freeze".into(), m]),
        (Quiesce::Freeze, false) => ("fsfreeze", vec!["--unfreeze".into(), m]),
        (Quiesce::RemountRo, true) => ("mount", vec!["-o".into(), "remount,ro".into(), m]),
        (Quiesce::RemountRo, false) => ("mount", vec!["-o".into(), "remount,rw".into(), m]),
    }
}

fn tool(how: Quiesce, mount: &Path, on: bool) -> Result<(), ScheduleError> {
    let (t, a) = quiesce_args(how, mount, on);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    run_tool(t, &a, None, &[0])
        .map(drop)
        .map_err(ScheduleError::from)
}

/// Held while a step is recorded and done or undone, so that the signal thread's undo
/// never runs between a freeze being recorded and done (it would thaw first, and the
/// freeze that follows would outlive the run).
static STEP: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn step() -> std::sync::MutexGuard<'static, ()> {
    STEP.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a run records what it has made still, for the next run after a SIGKILL: /run
/// is emptied by a reboot, which also ends a freeze and remounts from fstab.
pub const RECORD: &str = "/run/ironclone/quiesced.json";

#[derive(Serialize, Deserialize)]
struct Still {
    mount: PathBuf,
    how: Quiesce,
}

fn write_record(list: &[Still]) -> Result<(), ScheduleError> {
    let p = Path::new(RECORD);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).map_err(ScheduleError::io(d))?;
    }
    let body = serde_json::to_vec(list).map_err(|e| ScheduleError::Syntax {
        path: p.to_path_buf(),
        why: e.to_string(),
    })?;
    std::fs::write(p, body).map_err(ScheduleError::io(p))
}

/// Undoes what a killed run left still (from [`RECORD`]); returns what it did, for the
/// run's warnings. Thawing what is not frozen fails harmlessly and is not reported.
pub fn recover() -> Vec<String> {
    let p = Path::new(RECORD);
    let Ok(text) = std::fs::read(p) else {
        return Vec::new();
    };
    let list: Vec<Still> = serde_json::from_slice(&text).unwrap_or_default();
    let mut out = Vec::new();
    for s in list.iter().rev() {
        if tool(s.how, &s.mount, false).is_ok() {
            out.push(format!(
                "{} was left {} by a previous run; undone",
                s.mount.display(),
                s.how.word()
            ));
        }
    }
    let _ = std::fs::remove_file(p);
    out
}

/// The plain partitions made still; dropping it undoes them (reporting nothing:
/// [`Quiesced::release`] reports).
pub struct Quiesced {
    done: Vec<Still>,
    _signals: Option<super::enc_signal::UndoOnSignal>,
}

impl Quiesced {
    /// Makes each of `plain` still, in order; on a failure undoes those done and says
    /// which one failed and why (a FAT remount fails with EBUSY while a file on it is
    /// open for writing).
    pub fn enter(plain: &[PlainMount]) -> Result<Quiesced, ScheduleError> {
        let mut q = Quiesced {
            done: Vec::new(),
            _signals: None,
        };
        if plain.is_empty() {
            return Ok(q);
        }
        q._signals = Some(super::enc_signal::UndoOnSignal::install()?);
        for p in plain {
            let _step = step();
            // Recorded before it is done: a kill in between leaves a record of something
            // not done, which the next run's undo skips.
            q.done.push(Still {
                mount: p.mount.clone(),
                how: p.how,
            });
            write_record(&q.done)?;
            if let Err(e) = tool(p.how, &p.mount, true) {
                q.done.pop();
                write_record(&q.done)?;
                return Err(ScheduleError::Disk {
                    disk: p.part.clone(),
                    why: format!(
                        "{} ({}) could not be {} for the run: {e}",
                        p.mount.display(),
                        p.fs_type,
                        p.how.word()
                    ),
                });
            }
        }
        Ok(q)
    }

    /// Undoes everything, reporting the first failure.
    pub fn release(mut self) -> Result<(), ScheduleError> {
        let r = self.undo();
        self._signals.take();
        r
    }

    fn undo(&mut self) -> Result<(), ScheduleError> {
        let _step = step();
        let mut first = None;
        while let Some(s) = self.done.pop() {
            if let Err(e) = tool(s.how, &s.mount, false) {
                first.get_or_insert(e);
            }
        }
        let _ = std::fs::remove_file(RECORD);
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Quiesced {
    fn drop(&mut self) {
        let _ = self.undo();
    }
}

/// Undoes the record (the signal thread's way out); errors are ignored, the next run
/// tries again.
pub(super) fn undo_record() {
    let _step = step();
    let _ = recover();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_filesystem_its_way_and_command_lines() {
        assert_eq!(Quiesce::for_fs("ext4"), Some(Quiesce::Freeze));
        assert_eq!(Quiesce::for_fs("xfs"), Some(Quiesce::Freeze));
        assert_eq!(Quiesce::for_fs("vfat"), Some(Quiesce::RemountRo));
        assert_eq!(Quiesce::for_fs("ntfs3"), None);
        let m = Path::new("/boot/efi");
        let j = |(t, a): (&str, Vec<String>)| format!("{t} {}", a.join(" "));
        assert_eq!(
            j(quiesce_args(Quiesce::Freeze, m, true)),
            "fsfreeze --freeze /boot/efi"
        );
        assert_eq!(
            j(quiesce_args(Quiesce::Freeze, m, false)),
            "fsfreeze --unfreeze /boot/efi"
        );
        assert_eq!(
            j(quiesce_args(Quiesce::RemountRo, m, true)),
            "mount -o remount,ro /boot/efi"
        );
        assert_eq!(
            j(quiesce_args(Quiesce::RemountRo, m, false)),
            "mount -o remount,rw /boot/efi"
        );
    }
}
