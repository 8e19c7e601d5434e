//! Where the repository's bytes live. The repository names objects by today's relative
//! paths (`config`, `packs/ab/<id>.pack`, `index/<id>.json`, `images/<name>.json`,
//! `locks/...`); a `Storage` maps those names onto a local directory (`local`, exactly
//! the old layout and crash safety) or a remote store (`remote`: S3 and SFTP).
//!
//! The trait follows rustic_core's `ReadBackend`/`WriteBackend` split in spirit (list,
//! whole and ranged reads, put, delete) but stays synchronous: the repository code is
//! threads and rayon, and a remote backend owns the small runtime that drives its
//! async client. Errors are `std::io::Error`s so every call site keeps naming the
//! object with `RepoError::io(storage.location(name))`.

pub mod askpass;
mod local;
mod remote;
mod remote_object;
mod remote_stream;
mod s3_config;
mod s3_ranges;
#[cfg(test)]
mod s3_ranges_tests;
mod s3_uploads;
mod s3_uploads_xml;
#[cfg(test)]
mod s3_uploads_xml_tests;
mod url;

pub use local::LocalStorage;
pub use remote::{RemoteOptions, RemoteStorage, REMOTE_PACK_SIZE, REMOTE_PUTS};
pub use remote_stream::REMOTE_PART_SIZE;
pub use s3_uploads::UnfinishedUpload;
pub use url::{parse_location, Location, LocationError};

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// How `put` treats an object that already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Replace it (whole: readers see the old object or the new one).
    Replace,
    /// Fail with `ErrorKind::AlreadyExists` (lock objects). Backends without a
    /// conditional write check first, which narrows the race but cannot close it.
    IfAbsent,
}

/// Size and time of one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub len: u64,
    pub modified: Option<SystemTime>,
}

/// Reads byte ranges of one object (a pack) without fetching all of it.
pub trait ObjectReader: Send + Sync {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Fills `head` and then `body` from the bytes at `offset` on (a record's header
    /// and its stored bytes). A remote store makes it one request: two were two round
    /// trips per record, the restore's main cost on S3.
    fn read_two_at(&self, head: &mut [u8], body: &mut [u8], offset: u64) -> io::Result<()> {
        self.read_exact_at(head, offset)?;
        let at = offset
            .checked_add(head.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "offset overflow"))?;
        self.read_exact_at(body, at)
    }
}

impl ObjectReader for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

/// A new object written piece by piece (a pack) and named only when whole, so a
/// killed writer never leaves a torn object under a real name.
pub trait ObjectWriter: Send {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()>;
    /// Makes the bytes durable and publishes them as `name`.
    fn finish(self: Box<Self>, name: &str) -> io::Result<()>;
}

/// How a backup should cut and publish its packs on a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackUpload {
    /// Packs are closed at this size already when the repository's `pack_size` is
    /// larger (`None`: at `pack_size`). A remote writer holds each pack in memory, so
    /// this bounds the backup's memory, not the format (readers take any size).
    pub max_pack: Option<u64>,
    /// Packs published at once.
    pub parallel: usize,
}

/// The operations the repository needs from where it is stored.
pub trait Storage: Send + Sync {
    /// The object's full name for messages: a path, or `s3://bucket/prefix/name`.
    fn location(&self, name: &str) -> PathBuf;
    /// Prepares an empty repository (directories on a local disk).
    fn create(&self) -> io::Result<()>;
    /// Every object whose name starts with `prefix` (a directory such as `packs/`,
    /// walked to its bottom), with its length; nothing when there is none.
    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>>;
    /// `None` when the object does not exist.
    fn stat(&self, name: &str) -> io::Result<Option<ObjectInfo>>;
    /// The whole object, refused when it is over `max` bytes.
    fn get(&self, name: &str, max: u64) -> io::Result<Vec<u8>>;
    fn open(&self, name: &str) -> io::Result<Arc<dyn ObjectReader>>;
    fn put(&self, name: &str, data: &[u8], mode: PutMode) -> io::Result<()>;
    /// Deleting an object that is not there is not an error.
    fn delete(&self, name: &str) -> io::Result<()>;
    fn writer(&self) -> io::Result<Box<dyn ObjectWriter>>;
    /// A writer for an object whose name is known before its first byte (a
    /// manifest); its `finish` must be given that same `name`. A remote store streams
    /// it with bounded memory (`REMOTE_PART_SIZE` parts, remote_stream.rs) where
    /// `writer` holds a whole pack; a local disk needs nothing more than `writer`
    /// (a temp file, fsync, rename).
    fn named_writer(&self, name: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let _ = name;
        self.writer()
    }
    /// Removes what killed writers left half-written; returns how many.
    fn clear_partial(&self) -> io::Result<usize>;
    /// Multipart uploads begun under the repository and never completed or aborted
    /// (a killed backup's manifest on S3, remote_stream.rs), listed by the store;
    /// `None` where there are none: a local disk, and SFTP, whose temp files
    /// `clear_partial` removes.
    fn unfinished_uploads(&self) -> io::Result<Option<Vec<UnfinishedUpload>>> {
        Ok(None)
    }
    /// The bytes an unfinished upload's parts hold.
    fn upload_bytes(&self, u: &UnfinishedUpload) -> io::Result<u64> {
        Err(no_uploads(u))
    }
    /// Aborts an unfinished upload, freeing its parts (one gone already is no error).
    fn abort_upload(&self, u: &UnfinishedUpload) -> io::Result<()> {
        Err(no_uploads(u))
    }
    /// Whether lock holders on this store can be checked by pid (same machine).
    fn is_local(&self) -> bool;
    /// Where a backup keeps its scratch files (the chunk list of the image being
    /// written, the ids already stored): the repository's `tmp/` on a local disk, so
    /// they take disk rather than the live system's RAM; `None`: `$TMPDIR`.
    fn scratch_dir(&self) -> Option<PathBuf> {
        None
    }
    /// How a backup cuts and publishes packs here: on a local disk one pack of
    /// `pack_size` is published (fsync, rename) while the next one fills.
    fn pack_upload(&self) -> PackUpload {
        PackUpload {
            max_pack: None,
            parallel: 1,
        }
    }
}

/// A remote store's failure inside the `io::Error`s this module returns: its text,
/// and whether the store called it temporary (a dropped connection, a 5xx, a
/// timeout). A request is retried where it failed (remote.rs); this flag is for a
/// caller that can redo a whole step the store cannot resume, as a backup re-streams
/// its manifest from the chunk list after an SFTP connection was lost mid-file.
#[derive(Debug)]
pub struct StoreFailure {
    pub what: String,
    pub temporary: bool,
}

impl std::fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for StoreFailure {}

/// Whether `e` is a store failure the store called temporary (see `StoreFailure`).
pub fn is_temporary(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|r| r.downcast_ref::<StoreFailure>())
        .is_some_and(|f| f.temporary)
}

fn no_uploads(u: &UnfinishedUpload) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{}: this store has no multipart uploads", u.name),
    )
}

/// An error for an object over `max` bytes.
pub(crate) fn too_big(len: u64, max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("file is {len} bytes, over the {max}-byte limit"),
    )
}

/// Opens the storage a location names (`/path`, `s3://...`, `sftp://...`).
pub fn open(loc: &Location, opts: &RemoteOptions) -> io::Result<Arc<dyn Storage>> {
    Ok(match loc {
        Location::Local(p) => Arc::new(LocalStorage::new(p.clone())),
        remote => Arc::new(RemoteStorage::open(remote, opts)?),
    })
}
