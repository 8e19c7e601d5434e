//! A manifest read as a stream, for a restore: the object is read in pieces (a sealed
//! stream opened a segment at a time) and its chunk lists go to a scratch file
//! (manifest_stream.rs). A 1 TB image's manifest is some 200 MB stored and its chunk
//! references 48 bytes each in memory; read whole, the stored bytes and the parsed
//! lists were the largest part of a restore's memory (issue 20: under 200 MB for 1 TB).

use super::error::{RepoError, Result};
use super::manifest::{self, Manifest};
use super::manifest_stream::{self, Spilled, StreamError};
use super::storage::ObjectReader;
use super::{fsutil, Repository};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes of a plaintext manifest object read per request (each a ranged GET remotely).
const PIECE: usize = 4 << 20;

/// An object's bytes from `pos` on, read `PIECE` at a time by the caller's buffer.
struct ObjectStream {
    r: Arc<dyn ObjectReader>,
    len: u64,
    pos: u64,
}

impl Read for ObjectStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let Some(dst) = buf.get_mut(..n) else {
            return Ok(0);
        };
        self.r.read_exact_at(dst, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Repository {
    /// Where a restore keeps its chunk lists from now on (before the repository's
    /// own folder).
    pub fn set_scratch_dir(&self, dir: &Path) {
        *self.scratch.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir.to_path_buf());
    }

    /// Where a restore's chunk lists go: the folder it was told, else the repository's
    /// own `tmp/` on a local disk (not the live system's RAM), else
    /// `$IRONCLONE_SCRATCH` or `$TMPDIR`. One that cannot be written (a repository on
    /// read-only media) gives way to the next.
    fn restore_scratch(&self) -> Vec<PathBuf> {
        let told = self
            .scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let env = std::env::var_os("IRONCLONE_SCRATCH").map(PathBuf::from);
        told.into_iter()
            .chain(self.store().scratch_dir())
            .chain(env)
            .chain([std::env::temp_dir()])
            .collect()
    }

    /// Manifest `name` with its chunk lists in a scratch file, checked as
    /// `load_manifest` checks it. The last one is kept (a restore plans from it, then
    /// writes from it): its scratch file costs disk, not memory.
    pub fn load_spilled(&self, name: &str) -> Result<Arc<Spilled>> {
        let (obj, path, stamp) = self.manifest_object(name)?;
        let mut last = self.last_spilled.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, s, m)) = last.as_ref() {
            if n == name && *s == stamp && stamp.1.is_some() {
                return Ok(Arc::clone(m));
            }
        }
        *last = None;
        // A whole copy of the same manifest kept by `load_manifest` is let go too.
        *self.last_manifest.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let dirs = self.restore_scratch();
        let mut tried = Vec::new();
        let mut spilled = None;
        for dir in &dirs {
            match self.stream_into(name, &obj, &path, stamp.0, dir) {
                Err(StreamError::Repo(e)) if scratch_failed(&e, dir) => {
                    // The scratch folder cannot be written or is full: the next one.
                    tried.push(e.to_string());
                }
                other => {
                    spilled = Some(other);
                    break;
                }
            }
        }
        let s = match spilled {
            Some(Ok(s)) => s,
            Some(Err(StreamError::Repo(e))) => return Err(e),
            // Not in the form ironclone writes: read whole, then spilled.
            Some(Err(StreamError::NotCanonical)) => {
                let m = self.load_manifest(name)?;
                *self.last_manifest.lock().unwrap_or_else(|p| p.into_inner()) = None;
                let mut spilled = Err(RepoError::Pipeline("no scratch folder".into()));
                for dir in &dirs {
                    spilled = Spilled::from_manifest(&m, dir);
                    if spilled.is_ok() {
                        break;
                    }
                }
                spilled?
            }
            None => {
                return Err(RepoError::Pipeline(format!(
                    "no folder for the restore's chunk list: {}",
                    tried.join("; ")
                )))
            }
        };
        let s = Arc::new(s);
        *last = Some((name.to_string(), stamp, Arc::clone(&s)));
        Ok(s)
    }

    /// Manifest `name` without its chunk lists (what a restore plans from).
    pub fn load_head(&self, name: &str) -> Result<Manifest> {
        Ok(self.load_spilled(name)?.head.clone())
    }

    fn stream_into(
        &self,
        name: &str,
        obj: &str,
        path: &Path,
        len: u64,
        scratch: &Path,
    ) -> std::result::Result<Spilled, StreamError> {
        let bad = |what: String| RepoError::CorruptManifest {
            image: name.to_string(),
            path: path.to_path_buf(),
            what,
        };
        if len > manifest::MAX_MANIFEST {
            return Err(bad(format!("{len} bytes, over the limit")).into());
        }
        let r = self.store.open(obj).map_err(RepoError::io(path))?;
        let opener = match self.keys() {
            None => None,
            Some(k) => {
                let r = Arc::clone(&r);
                let read_at = Box::new(move |buf: &mut [u8], at: u64| r.read_exact_at(buf, at));
                k.open_image_stream(name, len, read_at)
                    .map_err(|e| bad(e.to_string()))?
            }
        };
        let plain: Box<dyn Read + '_> = match (opener, self.keys()) {
            (Some(o), _) => Box::new(o),
            // A one-piece sealed manifest (older): opened whole.
            (None, Some(k)) => {
                let bytes = self
                    .store
                    .get(obj, manifest::MAX_MANIFEST)
                    .map_err(RepoError::io(path))?;
                let open = k.open_image(name, &bytes).map_err(|e| bad(e.to_string()))?;
                Box::new(std::io::Cursor::new(open))
            }
            (None, None) => Box::new(ObjectStream { r, len, pos: 0 }),
        };
        let plain = std::io::BufReader::with_capacity(PIECE, plain);
        let json = fsutil::json_stream(plain, manifest::MAX_MANIFEST).map_err(bad)?;
        manifest_stream::load(name, path, json, scratch)
    }
}

/// Whether `e` is the scratch folder `dir` failing (unwritable or full), which another
/// folder may not.
pub(super) fn scratch_failed(e: &RepoError, dir: &Path) -> bool {
    match e {
        RepoError::Io { path, .. } | RepoError::ScratchFull { dir: path, .. } => {
            path.starts_with(dir)
        }
        _ => false,
    }
}
