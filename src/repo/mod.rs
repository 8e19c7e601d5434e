//! The image repository: a directory of content-addressed, compressed, checksummed
//! chunks in packs, an index, and one manifest per image (format: docs/FORMAT.md).
//!
//! It works on a generic `BackupPlan` (areas of a device and the extents to read), so
//! partition tables and used-block maps stay outside: the same engine backs up a whole
//! disk, one partition or a hand-built test plan, and restores it at any offsets.

mod backup;
mod bufpool;
mod chunk_cache;
mod compress;
mod config;
pub mod crypto;
mod error;
mod fsutil;
mod id;
mod id_set;
mod image_device;
mod index;
mod index_wanted;
mod keys;
mod keys_deferred;
#[cfg(test)]
mod keys_deferred_tests;
mod lock;
mod manifest;
mod manifest_load;
#[cfg(test)]
mod manifest_load_tests;
pub(crate) mod manifest_stream;
#[cfg(test)]
mod manifest_stream_tests;
mod pack;
mod plan;
mod prune;
mod prune_mark;
#[cfg(test)]
mod prune_tests;
mod prune_uploads;
mod prune_use;
mod restore;
mod restore_cache;
mod restore_check;
mod restore_chunks;
mod restore_passes;
mod restore_read;
mod restore_readback;
mod restore_runs;
mod restore_spans;
mod restore_write;
pub mod storage;
pub(crate) mod summary;
pub mod transfer;
mod verify;
mod verify_pass;
#[cfg(test)]
mod verify_tests;
mod zstd_ctx;

pub use backup::{backup, backup_unchanged, BackupOptions, Unchanged};
pub use bufpool::{backup_piece_bytes, PIPELINE_BUDGET};
pub use config::{Chunking, RepoConfig, DEFAULT_CHUNK_SIZE, DEFAULT_PACK_SIZE, FORMAT_VERSION};
pub use error::RepoError;
pub use id::{ChunkId, PackId};
pub use image_device::ImageDevice;
pub use index::{parse as parse_index_file, Index, IndexFile, Location};
pub use keys::SlotSummary;
pub use manifest::{AreaManifest, ChunkRef, ImageStats, Manifest};
pub use manifest_stream::load_bytes as load_manifest_spilled;
pub use pack::ChunkDecodeError;
// The byte-level decoders are public for the fuzz targets (fuzz/fuzz_targets/repo.rs).
pub use lock::STALE_ENV as LOCK_STALE_ENV;
pub use pack::{
    scan_bytes as scan_pack_bytes, scan_bytes_windowed as scan_pack_bytes_windowed, Compression,
    PackScan, RecordInfo,
};
pub use plan::{AreaKind, BackupPlan, PlannedArea, SourceInfo};
pub use prune::{prune, PruneReport};
pub use prune_uploads::UploadsReport;
pub use restore::{restore, AreaMapping, RestoreOptions, RestoreReport};
pub use verify::{verify, verify_subset, Damage, DataSubset, VerifyReport};
pub use zstd_ctx::ZstdError;

use error::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use storage::{PutMode, Storage};

/// An open repository: a directory, or objects on S3 or SFTP (`storage`).
pub struct Repository {
    /// Where it is, as the user named it (a path or a URL), for messages.
    root: PathBuf,
    store: Arc<dyn Storage>,
    config: RepoConfig,
    /// The manifest loaded last, with its file's length and mtime: a restore reads
    /// the same one three times (plan, repairs, the write), and parsing the JSON of
    /// 40 000 chunks took 0.1 s each time.
    last_manifest: std::sync::Mutex<Option<LoadedManifest>>,
    /// The manifest a restore loaded last, its chunk lists in a scratch file
    /// (manifest_load.rs): the plan and the write read the same one.
    last_spilled: std::sync::Mutex<Option<LoadedSpilled>>,
    /// Where a restore keeps its chunk list when told (`restore --scratch`).
    scratch: std::sync::Mutex<Option<PathBuf>>,
    /// The subkeys of an unlocked encrypted repository (keys.rs); `None`: plaintext.
    keys: Option<std::sync::Arc<crypto::Keys>>,
    /// The key slot the keys came from.
    slot: Option<String>,
    /// A new encrypted repository's slot and config not yet written (keys_deferred.rs).
    unsettled: keys_deferred::Unsettled,
}

/// The last manifest loaded, with its name and its object's (length, mtime) when it was
/// read. Shared, not copied: a restore asks for it several times (plan, damage report,
/// write), and each copy of a 1 TB image's chunk list is hundreds of MB.
type LoadedManifest = (
    String,
    (u64, Option<std::time::SystemTime>),
    std::sync::Arc<Manifest>,
);

/// `LoadedManifest` for a spilled manifest.
type LoadedSpilled = (
    String,
    (u64, Option<std::time::SystemTime>),
    std::sync::Arc<manifest_stream::Spilled>,
);

/// One line of `images`, stored beside the manifest (summary.rs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSummary {
    pub name: String,
    pub created_unix: u64,
    pub source: SourceInfo,
    pub areas: Vec<String>,
    pub data_bytes: u64,
    pub stats: ImageStats,
    /// Unreadable ranges and who owns them, in plain words (`Manifest::damage_lines`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub damage: Vec<String>,
    /// The same per area, structured, for tools reading `images --json`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub damage_reports: Vec<AreaDamage>,
    /// Areas holding the opened plaintext of a LUKS volume (`--luks-key`): what a
    /// reader of the repository can see of an encrypted disk.
    #[serde(
        default,
        rename = "plaintext_of_encrypted",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub plaintext_areas: Vec<String>,
}

/// One area's unreadable ranges (area-relative) and their owners.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AreaDamage {
    pub area: String,
    pub unreadable: Vec<crate::usedmap::ByteExtent>,
    pub report: Option<crate::rescue::owners::DamageReport>,
}

impl Repository {
    /// Creates an empty repository at `path` (which may exist but must be empty of a config).
    pub fn init(path: &Path, chunk_size: u32, pack_size: u64) -> Result<Repository> {
        Repository::init_with(path, RepoConfig::new(chunk_size, pack_size))
    }

    fn init_with(path: &Path, config: RepoConfig) -> Result<Repository> {
        let repo = Repository::create_unconfigured(path, open_storage(path)?, config)?;
        repo.config.write(repo.store.as_ref())?;
        Ok(repo)
    }

    fn from_config(path: &Path, store: Arc<dyn Storage>, config: RepoConfig) -> Repository {
        Repository {
            root: path.to_path_buf(),
            store,
            config,
            last_manifest: Default::default(),
            last_spilled: Default::default(),
            scratch: Default::default(),
            keys: None,
            slot: None,
            unsettled: Default::default(),
        }
    }

    /// `init_with` without writing the config (`init_encrypted_deferred` writes it).
    fn create_unconfigured(
        path: &Path,
        store: Arc<dyn Storage>,
        config: RepoConfig,
    ) -> Result<Repository> {
        let cfg_path = store.location("config");
        config.validate(&cfg_path)?;
        store.create().map_err(RepoError::io(path))?;
        if store
            .stat("config")
            .map_err(RepoError::io(&cfg_path))?
            .is_some()
        {
            return Err(RepoError::BadConfig {
                path: cfg_path,
                what: "a repository already exists here".into(),
            });
        }
        Ok(Repository::from_config(path, store, config))
    }

    /// Opens a plaintext repository; an encrypted one needs `open_with_secret`.
    pub fn open(path: &Path) -> Result<Repository> {
        let store = open_storage(path)?;
        let config = RepoConfig::read(store.as_ref())?;
        if config.encryption.is_some() {
            return Err(RepoError::NeedsPassphrase {
                path: path.to_path_buf(),
            });
        }
        Ok(Repository::from_config(path, store, config))
    }

    /// The keys of an unlocked encrypted repository.
    pub(crate) fn keys(&self) -> Option<&crypto::Keys> {
        self.keys.as_deref()
    }

    pub(crate) fn keys_arc(&self) -> Option<std::sync::Arc<crypto::Keys>> {
        self.keys.clone()
    }

    /// Whether `path` (a directory, `s3://...` or `sftp://...`) holds a repository.
    pub fn exists(path: &Path) -> Result<bool> {
        let store = open_storage(path)?;
        let cfg = store.location("config");
        Ok(store.stat("config").map_err(RepoError::io(&cfg))?.is_some())
    }

    /// Opens the repository, creating it with default parameters when `path` has none.
    pub fn open_or_init(path: &Path) -> Result<Repository> {
        if Self::exists(path)? {
            Self::open(path)
        } else {
            Self::init(path, DEFAULT_CHUNK_SIZE, DEFAULT_PACK_SIZE)
        }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }
    pub(crate) fn store(&self) -> &dyn Storage {
        self.store.as_ref()
    }
    pub(crate) fn store_arc(&self) -> Arc<dyn Storage> {
        self.store.clone()
    }
    /// An object's full name for messages.
    pub(crate) fn loc(&self, name: &str) -> PathBuf {
        self.store.location(name)
    }
    pub(crate) fn manifest_name(name: &str) -> String {
        format!("images/{name}.json")
    }

    /// Image names, sorted.
    pub fn image_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .store
            .list("images/")
            .map_err(RepoError::io(self.loc("images")))?
            .into_iter()
            .filter_map(|(n, _)| {
                let n = n.strip_prefix("images/")?;
                n.strip_suffix(".json").map(str::to_string)
            })
            .filter(|n| !n.starts_with('.') && !n.contains('/'))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Image `name`'s manifest object, where it is (for messages), and its length and
    /// mtime (what the loaded-manifest caches compare); `NoImage` when it is not there.
    fn manifest_object(
        &self,
        name: &str,
    ) -> Result<(String, PathBuf, (u64, Option<std::time::SystemTime>))> {
        manifest::check_name(name)?;
        let obj = Self::manifest_name(name);
        let path = self.loc(&obj);
        let Some(info) = self.store.stat(&obj).map_err(RepoError::io(&path))? else {
            return Err(RepoError::NoImage {
                image: name.to_string(),
                repo: self.root.clone(),
            });
        };
        Ok((obj, path, (info.len, info.modified)))
    }

    /// Loads and checks an image manifest (root hash, chunk bounds).
    pub fn load_manifest(&self, name: &str) -> Result<std::sync::Arc<Manifest>> {
        let (obj, path, stamp) = self.manifest_object(name)?;
        let mut last = self.last_manifest.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, s, m)) = last.as_ref() {
            if n == name && *s == stamp && stamp.1.is_some() {
                return Ok(std::sync::Arc::clone(m));
            }
        }
        // The old one goes first: two manifests are never held for the cache's sake.
        *last = None;
        let bytes = self
            .store
            .get(&obj, manifest::MAX_MANIFEST)
            .map_err(RepoError::io(&path))?;
        let bad = |what: String| RepoError::CorruptManifest {
            image: name.to_string(),
            path: path.clone(),
            what,
        };
        let bytes = match self.keys() {
            None => bytes,
            // The image name is the AAD: a manifest renamed to another image fails.
            Some(k) => {
                let open = k.open_image(name, &bytes).map_err(|e| bad(e.to_string()));
                drop(bytes);
                open?
            }
        };
        let json = fsutil::json_reader(&bytes, manifest::MAX_MANIFEST).map_err(bad)?;
        let m = std::sync::Arc::new(Manifest::parse_from(name, &path, json)?);
        *last = Some((name.to_string(), stamp, std::sync::Arc::clone(&m)));
        Ok(m)
    }

    /// Summaries of every image, from their summary objects (summary.rs); an image
    /// without a usable one is summarised from its manifest, and one whose manifest is
    /// damaged then is returned as an error.
    pub fn list_images(&self) -> Result<Vec<std::result::Result<ImageSummary, RepoError>>> {
        Ok(self
            .image_names()?
            .into_iter()
            .map(|n| match summary::read(self, &n) {
                Ok(Some((s, _root))) => Ok(s),
                // Streamed: an old 1 TB image's chunk lists are not held to be counted.
                Ok(None) | Err(_) => self
                    .load_spilled(&n)
                    .and_then(|s| Ok(ImageSummary::of(&s.head, s.data_bytes()?))),
            })
            .collect())
    }

    /// When image `name` was made: from its summary (one small object), else from its
    /// manifest's head (the chunk lists streamed past, not held).
    pub fn image_created(&self, name: &str) -> Result<u64> {
        match summary::read(self, name) {
            Ok(Some((s, _root))) => Ok(s.created_unix),
            Ok(None) | Err(_) => Ok(self.load_head(name)?.created_unix),
        }
    }

    /// Removes an image's manifest; its chunks stay until `prune`.
    pub fn delete_image(&self, name: &str) -> Result<()> {
        manifest::check_name(name)?;
        let obj = Self::manifest_name(name);
        let path = self.loc(&obj);
        if self
            .store
            .stat(&obj)
            .map_err(RepoError::io(&path))?
            .is_none()
        {
            return Err(RepoError::io(&path)(std::io::ErrorKind::NotFound.into()));
        }
        self.store.delete(&obj).map_err(RepoError::io(&path))?;
        // Without its manifest the summary lists nothing; gone with it.
        let sum = summary::object_name(name);
        match self.store.delete(&sum) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(RepoError::io(self.loc(&sum))(e))
            }
            _ => Ok(()),
        }
    }

    pub fn load_index(&self) -> Result<Index> {
        Index::load(self)
    }

    /// Rebuilds index files from the packs themselves (after index damage). Returns the
    /// number of packs re-indexed.
    pub fn repair_index(&self) -> Result<usize> {
        let _lock = lock::Lock::acquire(self, lock::Job::RepairIndex)?;
        let mut n = 0;
        let mut buf = Vec::new();
        let chunk_size = self.config.chunk_size;
        for (pack_id, name, len) in verify::list_packs(self)? {
            let scan = pack::scan(self, &name, len, &mut buf, Some(&pack_id), chunk_size)?;
            index::write(self, &pack_id, scan.good)?;
            n += 1;
        }
        Ok(n)
    }

    /// Writes a small metadata object whole.
    pub(crate) fn put(&self, name: &str, data: &[u8]) -> Result<()> {
        self.store
            .put(name, data, PutMode::Replace)
            .map_err(RepoError::io(self.loc(name)))
    }
}

/// The storage `path` names: a directory, `s3://...` or `sftp://...`.
fn open_storage(path: &Path) -> Result<Arc<dyn Storage>> {
    let loc = storage::parse_location(path)?;
    storage::open(&loc, &storage::RemoteOptions::for_location(path)).map_err(RepoError::io(path))
}
