//! Repository errors say which file, which byte, which chunk and which image, so a
//! damaged repository can be reported as "pack X at byte N holds a bad chunk used by
//! image Y, partition p2" rather than "checksum mismatch".

use crate::device::DeviceError;
use std::path::PathBuf;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RepoError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Location(#[from] super::storage::LocationError),
    #[error("{path}: not a usable repository config: {what}")]
    BadConfig { path: PathBuf, what: String },
    #[error(
        "{path}: repository format version {found} is not supported (this build reads {supported})"
    )]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "{path}: repository is encrypted ({scheme}); this build cannot read encrypted repositories"
    )]
    Encrypted { path: PathBuf, scheme: String },
    #[error("{path}: repository is encrypted; give its passphrase (--password-file, $IRONCLONE_PASSWORD or the prompt)")]
    NeedsPassphrase { path: PathBuf },
    #[error("wrong passphrase for repository {}: no key slot opens with it ({tried} tried){}", repo.display(), damaged.iter().map(|d| format!("; {d}")).collect::<String>())]
    WrongPassphrase {
        repo: PathBuf,
        tried: usize,
        damaged: Vec<String>,
    },
    #[error("repository {}: {what}", repo.display())]
    KeySlot { repo: PathBuf, what: String },
    #[error("{path}: {source}")]
    Crypto {
        path: PathBuf,
        #[source]
        source: super::crypto::CryptoError,
    },
    #[error("{path} at byte {offset}: corrupt pack: {what}")]
    CorruptPack {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{path}: corrupt index file: {what}")]
    CorruptIndex { path: PathBuf, what: String },
    #[error("image {image}: {path}: corrupt manifest: {what}")]
    CorruptManifest {
        image: String,
        path: PathBuf,
        what: String,
    },
    #[error("image {image} not found in {repo}")]
    NoImage { image: String, repo: PathBuf },
    #[error("image {image} has no area {area} (it has: {})", have.join(", "))]
    NoArea {
        image: String,
        area: String,
        have: Vec<String>,
    },
    #[error(
        "the backup's chunk list needs {} MiB of scratch space in {}{}, and {} MiB are free there: give a folder on a disk with --scratch DIR (or IRONCLONE_SCRATCH)",
        need.div_ceil(1 << 20),
        dir.display(),
        if *in_ram { ", which is RAM here (tmpfs; MemAvailable counted)" } else { "" },
        free >> 20
    )]
    ScratchRoom {
        dir: PathBuf,
        need: u64,
        free: u64,
        in_ram: bool,
    },
    /// A chunk list whose size was not known beforehand (a manifest being read) ran
    /// out of room: an `Io` "no space left" would not say what to do about it.
    #[error(
        "the scratch folder {} filled up after {} MiB of the image's chunk list{}: give a folder on a disk with room with --scratch DIR (or IRONCLONE_SCRATCH)",
        dir.display(),
        written >> 20,
        if *in_ram { " (it is RAM here: a tmpfs)" } else { "" }
    )]
    ScratchFull {
        dir: PathBuf,
        written: u64,
        in_ram: bool,
    },
    #[error(
        "the source cuts into {chunks} chunks, more than an image's manifest may list ({max}, \
         docs/FORMAT.md \"Manifest\"); no image was written"
    )]
    TooManyChunks { chunks: u64, max: u64 },
    #[error("image {image} already exists in {repo}")]
    ImageExists { image: String, repo: PathBuf },
    #[error("invalid image name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
    #[error("invalid backup plan: area {area}: {what}")]
    BadPlan { area: String, what: String },
    #[error("restore of image {image} refused before writing anything: {} problem(s), first: {}", problems.len(), problems.first().map(String::as_str).unwrap_or("?"))]
    RestoreRefused {
        image: String,
        problems: Vec<String>,
    },
    #[error(
        "target {target}: area {area} needs bytes [{offset}, {end}) but the target has {size}"
    )]
    TargetTooSmall {
        target: String,
        area: String,
        offset: u64,
        end: u64,
        size: u64,
    },
    #[error("image {image}, area {area}: chunk {id} at area byte {offset} (+{len}): {what}")]
    BadChunk {
        image: String,
        area: String,
        id: String,
        offset: u64,
        len: u64,
        what: String,
    },
    #[error("verify after restore: image {image}, area {area}, target byte {target_offset} (+{len}): read back differs")]
    ReadBackMismatch {
        image: String,
        area: String,
        target_offset: u64,
        len: u64,
    },
    #[error(
        "{path}: repository is locked by process {pid}; remove the file if that process is gone"
    )]
    Locked { path: PathBuf, pid: String },
    #[error("{path}: repository is in use by a {job} (process {pid}); try again when it is done")]
    InUse {
        path: PathBuf,
        pid: String,
        job: String,
    },
    #[error("{path}: this backup's lock was lost ({why}); a prune may have removed packs it reuses, so no image was written: run the backup again")]
    LockLost { path: PathBuf, why: String },
    #[error("zstd: {0}")]
    Compression(#[from] super::zstd_ctx::ZstdError),
    #[error("backup pipeline: {0}")]
    Pipeline(String),
}

impl RepoError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RepoError {
        let path = path.into();
        move |source| RepoError::Io { path, source }
    }
}

pub type Result<T, E = RepoError> = std::result::Result<T, E>;
