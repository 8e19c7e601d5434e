//! Who may touch the repository at once. Lock files (not `flock`) because the
//! repository lives on whatever a rescuer has (FAT32, exFAT, network shares), where
//! `flock` is missing or lies.
//!
//! - One writer at a time: backup, prune and index repair take `locks/lock`, holding
//!   the pid and the job.
//! - Readers (restore, verify) each leave `locks/read-<pid>-<n>`. Prune rewrites and
//!   deletes packs, which would pull the data from under a restore halfway through
//!   writing a disk, so prune refuses while a reader is alive, and a reader refuses
//!   while a prune runs. Each side writes its own file before looking for the other,
//!   so of two that start together at least one sees the other. A backup only adds
//!   files, so readers and a backup go together.
//!
//! A lock left by a killed process (its pid is gone) is taken over or ignored, so a
//! crash never wedges the repository.

use super::error::{RepoError, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The job that holds the writer lock; readers only mind `Prune`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Backup,
    Prune,
    RepairIndex,
}

impl Job {
    fn word(self) -> &'static str {
        match self {
            Job::Backup => "backup",
            Job::Prune => "prune",
            Job::RepairIndex => "repair-index",
        }
    }
}

/// `(pid, job word)` from a lock file, if its process is alive.
fn live_holder(path: &Path) -> Option<(String, String)> {
    let body = std::fs::read_to_string(path).ok()?;
    let mut words = body.split_whitespace();
    let pid = words.next()?.to_string();
    let job = words.next().unwrap_or("").to_string();
    let alive = pid.bytes().all(|b| b.is_ascii_digit()) && Path::new("/proc").join(&pid).exists();
    alive.then_some((pid, job))
}

fn locks_dir(repo: &Path) -> Result<PathBuf> {
    let dir = repo.join("locks");
    std::fs::create_dir_all(&dir).map_err(RepoError::io(&dir))?;
    Ok(dir)
}

pub struct Lock {
    path: PathBuf,
}

impl Lock {
    pub fn acquire(repo: &Path, job: Job) -> Result<Lock> {
        let dir = locks_dir(repo)?;
        let path = dir.join("lock");
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let _ = writeln!(f, "{} {}", std::process::id(), job.word());
                    let lock = Lock { path };
                    if job == Job::Prune {
                        // Dropping `lock` on refusal removes the file again.
                        refuse_if_read(&dir)?;
                    }
                    return Ok(lock);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if let Some((pid, _)) = live_holder(&path) {
                        return Err(RepoError::Locked { path, pid });
                    }
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(RepoError::io(&path)(e)),
            }
        }
        Err(RepoError::Locked {
            path,
            pid: "?".into(),
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Refuses when a live reader holds the repository; removes readers' files left by
/// dead processes.
fn refuse_if_read(dir: &Path) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(RepoError::io(dir))?;
    for e in rd.filter_map(|e| e.ok()) {
        let path = e.path();
        if !e.file_name().to_string_lossy().starts_with("read-") {
            continue;
        }
        match live_holder(&path) {
            Some((pid, job)) => return Err(RepoError::InUse { path, pid, job }),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    Ok(())
}

/// A reader's mark (restore, verify): keeps prune away while it lives. `None` on a
/// repository nobody can write (a write-protected stick, a read-only share): there
/// is no prune to fear there, and reading it must still work.
pub struct ReadLock {
    path: Option<PathBuf>,
}

fn unwritable(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EROFS | nix::libc::EACCES | nix::libc::EPERM)
    )
}

impl ReadLock {
    pub fn acquire(repo: &Path, job: &str) -> Result<ReadLock> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let dir = repo.join("locks");
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("read-{}-{n}", std::process::id()));
        let created = std::fs::create_dir_all(&dir).and_then(|()| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            writeln!(f, "{} {job}", std::process::id())
        });
        let me = match created {
            Ok(()) => ReadLock { path: Some(path) },
            Err(e) if unwritable(&e) => ReadLock { path: None },
            Err(e) => return Err(RepoError::io(&path)(e)),
        };
        let writer = dir.join("lock");
        if let Some((pid, job)) = live_holder(&writer) {
            if job == Job::Prune.word() {
                return Err(RepoError::InUse {
                    path: writer,
                    pid,
                    job,
                });
            }
        }
        Ok(me)
    }
}

impl Drop for ReadLock {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_and_readers_exclude_each_other_and_backup_goes_with_readers() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        let r = ReadLock::acquire(repo, "restore").unwrap();
        let e = Lock::acquire(repo, Job::Prune).err().unwrap();
        assert!(
            matches!(&e, RepoError::InUse { job, .. } if job == "restore"),
            "{e}"
        );
        assert!(
            !repo.join("locks/lock").exists(),
            "a refused prune leaves no lock"
        );
        let b = Lock::acquire(repo, Job::Backup).unwrap();
        let r2 = ReadLock::acquire(repo, "verify").unwrap();
        drop((b, r, r2));
        let p = Lock::acquire(repo, Job::Prune).unwrap();
        let e = ReadLock::acquire(repo, "restore").err().unwrap();
        assert!(
            matches!(&e, RepoError::InUse { job, .. } if job == "prune"),
            "{e}"
        );
        drop(p);
        assert!(ReadLock::acquire(repo, "restore").is_ok());
        // Only this test's files were ever in the directory, and all are gone.
        assert_eq!(std::fs::read_dir(repo.join("locks")).unwrap().count(), 0);
    }

    #[test]
    fn locks_of_dead_processes_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join("locks");
        std::fs::create_dir_all(&locks).unwrap();
        // Pid 0 is never a process that /proc lists.
        std::fs::write(locks.join("read-0-0"), "0 restore\n").unwrap();
        std::fs::write(locks.join("lock"), "0 prune\n").unwrap();
        assert!(ReadLock::acquire(dir.path(), "verify").is_ok());
        let p = Lock::acquire(dir.path(), Job::Prune).unwrap();
        assert!(!locks.join("read-0-0").exists());
        drop(p);
    }
}
