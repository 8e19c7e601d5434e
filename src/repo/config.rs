//! The repository's `config` file: what format the rest of the directory is in and
//! how data was cut. It is read first by every job, so an old build meeting a newer
//! or encrypted repository stops with a clear message instead of misreading it.

use super::crypto::{self, Keys};
use super::error::{RepoError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The repository format version this build writes (docs/FORMAT.md); it reads 1 and 2.
pub const FORMAT_VERSION: u32 = 2;
/// Chunks of file data: each file is cut at multiples of this many bytes of its own
/// offsets (docs/FORMAT.md, "Chunking", has the measurements).
pub const DEFAULT_FILE_CHUNK: u32 = 256 << 10;
/// Chunks of everything else (metadata, journal, unknown filesystems), counted from
/// the area start: small, because metadata changes in place a block at a time.
pub const DEFAULT_OTHER_CHUNK: u32 = 64 << 10;
/// 8 MiB: see docs/FORMAT.md, "Chunking".
pub const DEFAULT_CHUNK_SIZE: u32 = 8 << 20;
/// 128 MiB packs: far under FAT32's 4 GiB, few enough files for a 1 TB disk (~8000).
pub const DEFAULT_PACK_SIZE: u64 = 128 << 20;
/// Chunk sizes accepted when opening a repository (bounds allocations).
pub const MAX_CHUNK_SIZE: u32 = 16 << 20;
/// Packs larger than this are refused (bounds allocations, stays under FAT32 limits).
pub const MAX_PACK_SIZE: u64 = 512 << 20;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RepoConfig {
    /// Always "ironclone-repository".
    pub kind: String,
    pub version: u32,
    /// A random id, so two repositories are never mistaken for each other.
    pub id: String,
    /// Fixed chunk size in bytes; chunks are aligned to this grid within each area.
    pub chunk_size: u32,
    /// A pack is closed once it reaches this many bytes.
    pub pack_size: u64,
    /// `null`: plaintext. Otherwise `{"scheme": crypto::SCHEME, "mac": hex}`
    /// (docs/FORMAT.md, "Encryption"); other schemes are refused by name.
    pub encryption: Option<serde_json::Value>,
    /// How chunks are cut (version 2). Version 1 repositories cut every extent at
    /// multiples of `chunk_size`; a backup into one turns it into version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunking: Option<Chunking>,
}

/// Chunk sizes of a version 2 repository; `chunk_size` is then the largest frame.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Chunking {
    pub file: u32,
    pub other: u32,
}

impl Chunking {
    /// The defaults, or `IRONCLONE_CHUNKING=FILE,OTHER` (bytes) for measurements
    /// (scripts/bench-dedup.sh); read only when a repository is created.
    fn for_new_repository() -> Chunking {
        let default = Chunking {
            file: DEFAULT_FILE_CHUNK,
            other: DEFAULT_OTHER_CHUNK,
        };
        let Ok(v) = std::env::var("IRONCLONE_CHUNKING") else {
            return default;
        };
        let mut it = v.split(',').map(|x| x.trim().parse::<u32>());
        match (it.next(), it.next()) {
            (Some(Ok(file)), Some(Ok(other))) => Chunking { file, other },
            _ => default,
        }
    }
}
impl RepoConfig {
    pub fn new(chunk_size: u32, pack_size: u64) -> Self {
        RepoConfig {
            kind: "ironclone-repository".into(),
            version: FORMAT_VERSION,
            id: uuid::Uuid::new_v4().to_string(),
            chunk_size,
            pack_size,
            encryption: None,
            chunking: Some(Chunking::for_new_repository()),
        }
    }

    /// A config whose chunks are all `chunk` bytes, cut into frames of up to
    /// `frame` bytes in packs of `pack_size`: small enough for a test to damage one
    /// record among many.
    #[cfg(test)]
    pub(crate) fn with_chunks(frame: u32, pack_size: u64, chunk: u32) -> Self {
        let mut c = RepoConfig::new(frame, pack_size);
        c.chunking = Some(Chunking {
            file: chunk,
            other: chunk,
        });
        c
    }

    /// The chunk sizes a backup uses: a version 1 repository gets the defaults as it
    /// becomes version 2 (`upgraded`).
    pub fn chunking(&self) -> Chunking {
        self.chunking.unwrap_or(Chunking {
            file: DEFAULT_FILE_CHUNK.min(self.chunk_size),
            other: DEFAULT_OTHER_CHUNK.min(self.chunk_size),
        })
    }

    /// This config as version 2, for the first backup into a version 1 repository.
    pub fn upgraded(&self) -> Option<RepoConfig> {
        (self.version < FORMAT_VERSION).then(|| RepoConfig {
            version: FORMAT_VERSION,
            chunking: Some(self.chunking()),
            ..self.clone()
        })
    }

    /// Writes this config as the object `config`, whole.
    pub(super) fn write(&self, store: &dyn super::storage::Storage) -> Result<()> {
        let path = store.location("config");
        let body = serde_json::to_vec_pretty(self).map_err(|e| RepoError::BadConfig {
            path: path.clone(),
            what: e.to_string(),
        })?;
        store
            .put("config", &body, super::storage::PutMode::Replace)
            .map_err(RepoError::io(&path))
    }

    /// Reads and checks the object `config` (not its MAC: that needs the key).
    pub(super) fn read(store: &dyn super::storage::Storage) -> Result<Self> {
        let path = store.location("config");
        let bytes = store.get("config", 1 << 20).map_err(RepoError::io(&path))?;
        RepoConfig::parse(&path, &bytes)
    }

    /// The JSON the MAC covers: this config with an empty `mac`.
    fn canonical(&self, path: &Path) -> Result<Vec<u8>> {
        let mut c = self.clone();
        c.encryption = Some(serde_json::json!({"scheme": crypto::SCHEME, "mac": ""}));
        serde_json::to_vec(&c).map_err(|e| RepoError::BadConfig {
            path: path.to_path_buf(),
            what: e.to_string(),
        })
    }

    /// Marks this config encrypted and authenticates it with `keys`: a config can be
    /// read before unlocking (it says the repository is encrypted), so its fields are
    /// plaintext but none can be changed unnoticed.
    pub(super) fn seal_with(&mut self, keys: &Keys, path: &Path) -> Result<()> {
        let mac = keys.config_mac(&self.canonical(path)?);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        self.encryption = Some(serde_json::json!({"scheme": crypto::SCHEME, "mac": hex}));
        Ok(())
    }

    /// Checks the MAC `seal_with` stored against `keys`.
    pub(super) fn check_mac(&self, keys: &Keys, path: &Path) -> Result<()> {
        let mut sealed = self.clone();
        sealed.seal_with(keys, path)?;
        if sealed.encryption != self.encryption {
            return Err(RepoError::BadConfig {
                path: path.to_path_buf(),
                what: "its MAC does not match: the config was altered".into(),
            });
        }
        Ok(())
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let c: RepoConfig = serde_json::from_slice(bytes).map_err(|e| RepoError::BadConfig {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?;
        c.validate(path)?;
        Ok(c)
    }

    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |what: String| RepoError::BadConfig {
            path: path.to_path_buf(),
            what,
        };
        if self.kind != "ironclone-repository" {
            return Err(bad(format!("kind is {:?}", self.kind)));
        }
        if !(1..=FORMAT_VERSION).contains(&self.version) {
            return Err(RepoError::Version {
                path: path.to_path_buf(),
                found: self.version,
                supported: FORMAT_VERSION,
            });
        }
        if let Some(e) = &self.encryption {
            if e.get("scheme").and_then(|s| s.as_str()) != Some(crypto::SCHEME)
                || e.get("mac").and_then(|s| s.as_str()).is_none()
            {
                return Err(RepoError::Encrypted {
                    path: path.to_path_buf(),
                    scheme: e.to_string(),
                });
            }
        }
        if self.chunk_size < 4096
            || self.chunk_size > MAX_CHUNK_SIZE
            || !self.chunk_size.is_power_of_two()
        {
            return Err(bad(format!(
                "chunk_size {} is not a power of two in [4096, {MAX_CHUNK_SIZE}]",
                self.chunk_size
            )));
        }
        if self.pack_size < u64::from(self.chunk_size) || self.pack_size > MAX_PACK_SIZE {
            return Err(bad(format!(
                "pack_size {} is outside [chunk_size, {MAX_PACK_SIZE}]",
                self.pack_size
            )));
        }
        if let Some(c) = self.chunking {
            for (what, n) in [("chunking.file", c.file), ("chunking.other", c.other)] {
                if n < 4096 || n > self.chunk_size || !n.is_power_of_two() {
                    return Err(bad(format!(
                        "{what} {n} is not a power of two in [4096, chunk_size]"
                    )));
                }
            }
        } else if self.version >= 2 {
            return Err(bad("version 2 without chunking".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unknown_versions_encryption_and_bad_sizes() {
        let p = Path::new("config");
        let ok = RepoConfig::new(DEFAULT_CHUNK_SIZE, DEFAULT_PACK_SIZE);
        let body = serde_json::to_vec(&ok).unwrap();
        assert_eq!(RepoConfig::parse(p, &body).unwrap(), ok);
        let mut v = ok.clone();
        v.version = 3;
        assert!(matches!(
            v.validate(p),
            Err(RepoError::Version { found: 3, .. })
        ));
        let mut k = ok.clone();
        k.chunking = Some(Chunking {
            file: 3000,
            other: 4096,
        });
        assert!(k.validate(p).is_err());
        k.chunking = None;
        assert!(k.validate(p).is_err(), "version 2 needs its chunking");
        k.version = 1;
        k.validate(p).unwrap();
        assert_eq!(k.upgraded().unwrap().chunking, ok.chunking);
        let mut e = ok.clone();
        e.encryption = Some(serde_json::json!({"scheme": "x"}));
        assert!(matches!(e.validate(p), Err(RepoError::Encrypted { .. })));
        let mut c = ok.clone();
        c.chunk_size = 3000;
        assert!(c.validate(p).is_err());
        let mut s = ok;
        s.pack_size = 8 << 30;
        assert!(s.validate(p).is_err());
        assert!(RepoConfig::parse(p, b"\xff garbage").is_err());
    }
}
