//! Durable file replacement. Every file the repository publishes is written under a
//! temporary name, fsynced, renamed into place and its directory fsynced, so a crash
//! leaves either the old state or the new one, never a torn file under a real name.

use super::error::{RepoError, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique temporary path inside `tmp_dir` (same filesystem as the final place, so
/// rename is atomic).
pub fn temp_path(tmp_dir: &Path, stem: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    tmp_dir.join(format!("{stem}.{}.{n}.tmp", std::process::id()))
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    // Directories cannot be opened for fsync on every filesystem (FAT via some
    // drivers); the rename is still atomic there, so a failure to sync is not fatal.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Moves a fully written, synced temp file to `dest` and syncs the directory.
pub fn publish(tmp: &Path, dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(RepoError::io(parent))?;
    }
    fs::rename(tmp, dest).map_err(RepoError::io(dest))?;
    if let Some(parent) = dest.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

/// Writes `data` to `dest` atomically and durably.
pub fn write_atomic(tmp_dir: &Path, dest: &Path, data: &[u8]) -> Result<()> {
    let stem = dest
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = temp_path(tmp_dir, &stem);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(RepoError::io(&tmp))?;
    f.write_all(data).map_err(RepoError::io(&tmp))?;
    f.sync_all().map_err(RepoError::io(&tmp))?;
    drop(f);
    publish(&tmp, dest)
}

/// Reads a small metadata file, refusing anything over `max` bytes.
pub fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>> {
    let meta = fs::metadata(path).map_err(RepoError::io(path))?;
    if meta.len() > max {
        return Err(RepoError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("file is {} bytes, over the {max}-byte limit", meta.len()),
            ),
        });
    }
    fs::read(path).map_err(RepoError::io(path))
}
