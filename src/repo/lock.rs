//! One writer at a time. Backup and prune take `locks/lock` holding the pid; a lock
//! left by a killed process (its pid is gone) is taken over, so a crash never wedges
//! the repository.

use super::error::{RepoError, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct Lock {
    path: PathBuf,
}

impl Lock {
    pub fn acquire(repo: &Path) -> Result<Lock> {
        let dir = repo.join("locks");
        std::fs::create_dir_all(&dir).map_err(RepoError::io(&dir))?;
        let path = dir.join("lock");
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = pid.trim().to_string();
                    let alive = !pid.is_empty() && Path::new("/proc").join(&pid).exists();
                    if alive {
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
