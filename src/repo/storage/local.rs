//! A repository in a local or mounted directory: object names are relative paths, and
//! every object is published the way the repository always did it (written under
//! `tmp/`, fsynced, renamed into place, directory fsynced), so existing repositories
//! and their crash safety stay exactly as they were.

use super::{ObjectInfo, ObjectReader, ObjectWriter, PutMode, Storage};
use crate::repo::fsutil;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Directories deeper than this under a listed prefix are not walked (packs are two
/// levels down); a symlink loop cannot make a listing spin.
const MAX_DEPTH: usize = 4;

pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    pub fn new(root: PathBuf) -> Self {
        LocalStorage { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Vec<(String, u64)>) -> io::Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Ok(meta) = e.metadata() else { continue };
        let child = format!("{rel}{name}");
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                // A subdirectory that vanished or cannot be read is skipped, as before.
                let _ = walk(&e.path(), &format!("{child}/"), depth + 1, out);
            }
        } else {
            out.push((child, meta.len()));
        }
    }
    Ok(())
}

impl Storage for LocalStorage {
    fn location(&self, name: &str) -> PathBuf {
        self.path(name)
    }

    fn create(&self) -> io::Result<()> {
        for d in ["packs", "index", "images", "tmp", "locks"] {
            fs::create_dir_all(self.root.join(d))?;
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        walk(&self.path(prefix), prefix, 0, &mut out)?;
        Ok(out)
    }

    fn stat(&self, name: &str) -> io::Result<Option<ObjectInfo>> {
        match fs::metadata(self.path(name)) {
            Ok(m) => Ok(Some(ObjectInfo {
                len: m.len(),
                modified: m.modified().ok(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn get(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        let mut f = File::open(self.path(name))?;
        let len = f.metadata()?.len();
        if len > max {
            return Err(super::too_big(len, max));
        }
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        // As `fs::read`: to the end, however long the file has become since.
        f.read_to_end(&mut buf)?;
        Ok(buf)
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn ObjectReader>> {
        Ok(Arc::new(File::open(self.path(name))?))
    }

    fn put(&self, name: &str, data: &[u8], mode: PutMode) -> io::Result<()> {
        let dest = self.path(name);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        if mode == PutMode::IfAbsent {
            // create_new is the atomic test-and-set; the object is small (a lock).
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&dest)?;
            return f.write_all(data);
        }
        fs::create_dir_all(self.tmp_dir())?;
        let stem = dest
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let tmp = fsutil::temp_path(&self.tmp_dir(), &stem);
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        publish(&tmp, &dest)
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        if let Some(parent) = path.parent() {
            fsutil::fsync_dir(parent);
        }
        Ok(())
    }

    fn writer(&self) -> io::Result<Box<dyn ObjectWriter>> {
        fs::create_dir_all(self.tmp_dir())?;
        let tmp = fsutil::temp_path(&self.tmp_dir(), "pack");
        let out = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(Box::new(LocalWriter {
            root: self.root.clone(),
            tmp,
            out,
            unkicked: 0,
            published: false,
        }))
    }

    fn clear_partial(&self) -> io::Result<usize> {
        let mut n = 0;
        if let Ok(rd) = fs::read_dir(self.tmp_dir()) {
            for e in rd.flatten() {
                if fs::remove_file(e.path()).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    fn is_local(&self) -> bool {
        true
    }

    fn scratch_dir(&self) -> Option<PathBuf> {
        Some(self.tmp_dir())
    }
}

/// Moves a fully written, synced temp file to `dest` and syncs the directory.
fn publish(tmp: &Path, dest: &Path) -> io::Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::rename(tmp, dest)?;
    if let Some(parent) = dest.parent() {
        fsutil::fsync_dir(parent);
    }
    Ok(())
}

/// Bytes after which a pack's writeback is started, so the disk writes while chunks
/// are compressed and `finish`'s fsync waits for little (it was 1-2 s a backup).
const WRITEBACK_EVERY: u64 = 16 << 20;

/// A pack (or a manifest) under `tmp/`, written without a user-space buffer: records
/// are megabytes each, and a buffer would only add a copy of every byte. Dropped
/// unpublished (a failed backup), its temp file is deleted.
struct LocalWriter {
    root: PathBuf,
    tmp: PathBuf,
    out: File,
    /// Bytes handed to the kernel since its writeback was last started.
    unkicked: u64,
    published: bool,
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl ObjectWriter for LocalWriter {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.unkicked += b.len() as u64;
        if self.unkicked >= WRITEBACK_EVERY {
            self.unkicked = 0;
            crate::device::start_file_writeback(&self.out);
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, name: &str) -> io::Result<()> {
        self.out.sync_all()?;
        publish(&self.tmp, &self.root.join(name))?;
        self.published = true;
        Ok(())
    }
}
