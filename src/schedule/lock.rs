//! One scheduled run at a time: a timer firing while a long run (or a hand-started
//! one) is still going must not start a second backup of the same disks. A lock file
//! holding the pid, taken over when that process is gone, so a crash never wedges the
//! schedule. (The repository has its own writer lock; this one also covers reaching
//! the repository and the snapshots, before the repository is opened.)

use super::error::ScheduleError;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    pub fn acquire(path: &Path) -> Result<RunLock, ScheduleError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(ScheduleError::io(dir))?;
        }
        // Two tries: the second after removing a dead holder's file.
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(RunLock {
                        path: path.to_path_buf(),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(path).unwrap_or_default();
                    let pid = pid.trim();
                    let alive = !pid.is_empty()
                        && pid.bytes().all(|b| b.is_ascii_digit())
                        && Path::new("/proc").join(pid).exists();
                    if alive {
                        return Err(ScheduleError::Locked {
                            path: path.to_path_buf(),
                            pid: pid.to_string(),
                        });
                    }
                    let _ = std::fs::remove_file(path);
                }
                Err(e) => return Err(ScheduleError::io(path)(e)),
            }
        }
        Err(ScheduleError::Locked {
            path: path.to_path_buf(),
            pid: "?".into(),
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_and_a_dead_ones_lock_taken_over() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("x/schedule.lock");
        let l = RunLock::acquire(&p).unwrap();
        assert!(matches!(
            RunLock::acquire(&p),
            Err(ScheduleError::Locked { .. })
        ));
        drop(l);
        assert!(!p.exists());
        // A pid that cannot be alive (above the kernel's pid_max).
        std::fs::write(&p, "99999999\n").unwrap();
        let l = RunLock::acquire(&p).unwrap();
        let body = std::fs::read_to_string(&p).unwrap();
        assert_eq!(body.trim(), std::process::id().to_string());
        drop(l);
    }
}
