//! Opening an encrypted repository and managing its key slots (`keys/<slot-id>`):
//! the file side of `crypto::slot`. Slots are independent files, so adding or
//! removing one touches nothing else; the data is never rewritten.

use super::config::RepoConfig;
use super::crypto::{slot, CryptoError, Keys};
use super::error::{RepoError, Result};
use super::{fsutil, Repository};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Slot files are a few hundred bytes; bound what is read.
const MAX_SLOT_FILE: u64 = 64 << 10;
/// More slots than anyone needs; bounds the unlock time of a repository full of them.
const MAX_SLOTS: usize = 64;

/// One line of `key list`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SlotSummary {
    pub id: String,
    pub label: String,
    pub host: String,
    pub created_unix: u64,
    pub kdf: String,
    /// The slot this process unlocked the repository with.
    pub current: bool,
}

fn keys_dir(root: &Path) -> PathBuf {
    root.join("keys")
}

fn crypt_err(path: &Path) -> impl Fn(CryptoError) -> RepoError + '_ {
    move |e| RepoError::Crypto {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Every slot file as (id, path), sorted; names starting with `.` are temporaries.
fn slot_files(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let dir = keys_dir(root);
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&dir)
        .map_err(RepoError::io(&dir))?
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(n, _)| !n.starts_with('.') && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    v.sort();
    Ok(v)
}

fn read_slot(id: &str, path: &Path) -> Result<slot::KeySlot> {
    let bytes = fsutil::read_bounded(path, MAX_SLOT_FILE)?;
    slot::parse(id, &bytes).map_err(crypt_err(path))
}

fn write_slot(root: &Path, s: &slot::KeySlot) -> Result<String> {
    let mut raw = [0u8; 8];
    getrandom::fill(&mut raw).map_err(|e| crypt_err(root)(CryptoError::Random(e.to_string())))?;
    let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let dir = keys_dir(root);
    std::fs::create_dir_all(&dir).map_err(RepoError::io(&dir))?;
    let path = dir.join(&id);
    let body = serde_json::to_vec_pretty(s).map_err(|e| RepoError::BadConfig {
        path: path.clone(),
        what: e.to_string(),
    })?;
    fsutil::write_atomic(&root.join("tmp"), &path, &body)?;
    Ok(id)
}

impl Repository {
    /// Whether the repository at `path` is encrypted (needs a passphrase to open).
    pub fn is_encrypted(path: &Path) -> Result<bool> {
        Ok(RepoConfig::read(path)?.encryption.is_some())
    }

    /// Creates an empty encrypted repository whose first key slot opens with `secret`.
    pub fn init_encrypted(
        path: &Path,
        chunk_size: u32,
        pack_size: u64,
        secret: &[u8],
    ) -> Result<Repository> {
        let keys = Keys::generate().map_err(crypt_err(path))?;
        let mut config = RepoConfig::new(chunk_size, pack_size);
        config.seal_with(&keys, &path.join("config"))?;
        let s = slot::create(
            &config.id,
            keys.master(),
            secret,
            "initial",
            slot::new_params(),
        )
        .map_err(crypt_err(path))?;
        // The slot goes first: a config without a slot would be a locked-out repository.
        std::fs::create_dir_all(path).map_err(RepoError::io(path))?;
        std::fs::create_dir_all(path.join("tmp")).map_err(RepoError::io(path))?;
        let slot_id = write_slot(path, &s)?;
        let mut repo = Repository::init_with(path, config)?;
        repo.keys = Some(Arc::new(keys));
        repo.slot = Some(slot_id);
        Ok(repo)
    }

    /// Opens an encrypted repository with `secret`: the first slot it opens gives the
    /// master key, which must then authenticate the config. A plaintext repository
    /// opens as with `open`.
    pub fn open_with_secret(path: &Path, secret: &[u8]) -> Result<Repository> {
        let config = RepoConfig::read(path)?;
        if config.encryption.is_none() {
            return Repository::open(path);
        }
        let files = slot_files(path)?;
        if files.len() > MAX_SLOTS {
            return Err(RepoError::BadConfig {
                path: keys_dir(path),
                what: format!("{} key slots, more than {MAX_SLOTS}", files.len()),
            });
        }
        let mut damaged = Vec::new();
        for (id, p) in &files {
            let s = match read_slot(id, p) {
                Ok(s) => s,
                Err(e) => {
                    damaged.push(e.to_string());
                    continue;
                }
            };
            match slot::unwrap(&config.id, &s, secret) {
                Ok(master) => {
                    let keys = Keys::from_master(&master);
                    config.check_mac(&keys, &path.join("config"))?;
                    return Ok(Repository {
                        keys: Some(Arc::new(keys)),
                        slot: Some(id.clone()),
                        ..Repository::from_config(path, config)
                    });
                }
                Err(CryptoError::Auth) => {}
                Err(e) => damaged.push(format!("{}: {e}", p.display())),
            }
        }
        Err(RepoError::WrongPassphrase {
            repo: path.to_path_buf(),
            tried: files.len(),
            damaged,
        })
    }

    /// The slot this repository was unlocked with.
    pub fn unlocked_slot(&self) -> Option<&str> {
        self.slot.as_deref()
    }

    /// Adds a slot opening with `secret` (the repository must be unlocked already).
    pub fn add_key(&self, secret: &[u8], label: &str) -> Result<String> {
        let keys = self.keys.as_ref().ok_or_else(|| self.not_encrypted())?;
        let s = slot::create(
            &self.config.id,
            keys.master(),
            secret,
            label,
            slot::new_params(),
        )
        .map_err(crypt_err(&self.root))?;
        write_slot(&self.root, &s)
    }

    pub fn list_keys(&self) -> Result<Vec<SlotSummary>> {
        self.keys.as_ref().ok_or_else(|| self.not_encrypted())?;
        slot_files(&self.root)?
            .into_iter()
            .map(|(id, p)| {
                let s = read_slot(&id, &p)?;
                let slot::Kdf::Argon2id { m_kib, t, p, .. } = s.kdf;
                Ok(SlotSummary {
                    current: self.slot.as_deref() == Some(id.as_str()),
                    id,
                    label: s.label,
                    host: s.host,
                    created_unix: s.created_unix,
                    kdf: format!("argon2id m={m_kib}KiB t={t} p={p}"),
                })
            })
            .collect()
    }

    /// Removes slot `id`; never the last one, and the one unlocked with only when
    /// `force` (the caller may not know another passphrase).
    pub fn remove_key(&self, id: &str, force: bool) -> Result<()> {
        self.keys.as_ref().ok_or_else(|| self.not_encrypted())?;
        let files = slot_files(&self.root)?;
        let Some((_, path)) = files.iter().find(|(s, _)| s == id) else {
            return Err(RepoError::KeySlot {
                repo: self.root.clone(),
                what: format!("no key slot {id}"),
            });
        };
        if files.len() == 1 {
            return Err(RepoError::KeySlot {
                repo: self.root.clone(),
                what: format!(
                    "slot {id} is the last one; removing it would lock the data out for good"
                ),
            });
        }
        if self.slot.as_deref() == Some(id) && !force {
            return Err(RepoError::KeySlot {
                repo: self.root.clone(),
                what: format!(
                    "slot {id} is the one this passphrase opened; pass --force to remove it"
                ),
            });
        }
        std::fs::remove_file(path).map_err(RepoError::io(path))?;
        fsutil::fsync_dir(&keys_dir(&self.root))
    }

    fn not_encrypted(&self) -> RepoError {
        RepoError::KeySlot {
            repo: self.root.clone(),
            what: "the repository is not encrypted".into(),
        }
    }
}
