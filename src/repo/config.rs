//! The repository's `config` file: what format the rest of the directory is in and
//! how data was cut. It is read first by every job, so an old build meeting a newer
//! or encrypted repository stops with a clear message instead of misreading it.

use super::error::{RepoError, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The repository format version this build writes and reads (docs/FORMAT.md).
pub const FORMAT_VERSION: u32 = 1;
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
    /// Reserved for the encryption issue: `null` means plaintext.
    pub encryption: Option<serde_json::Value>,
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
        }
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
        if self.version != FORMAT_VERSION {
            return Err(RepoError::Version {
                path: path.to_path_buf(),
                found: self.version,
                supported: FORMAT_VERSION,
            });
        }
        if let Some(e) = &self.encryption {
            return Err(RepoError::Encrypted {
                path: path.to_path_buf(),
                scheme: e.to_string(),
            });
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
        v.version = 2;
        assert!(matches!(
            v.validate(p),
            Err(RepoError::Version { found: 2, .. })
        ));
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
