//! Opening an encrypted repository and managing its key slots (`keys/<slot-id>`):
//! the file side of `crypto::slot`. Slots are independent files, so adding or
//! removing one touches nothing else; the data is never rewritten.

use super::config::RepoConfig;
use super::crypto::{slot, CryptoError, Keys};
use super::error::{RepoError, Result};
use super::storage::{PutMode, Storage};
use super::{open_storage, Repository};
use std::path::Path;
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

/// The objects holding slots are `keys/<id>`.
fn slot_name(id: &str) -> String {
    format!("keys/{id}")
}

fn crypt_err(path: &Path) -> impl Fn(CryptoError) -> RepoError + '_ {
    move |e| RepoError::Crypto {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Every slot's id, sorted; names that are not hex (temporaries) are left out.
fn slot_ids(store: &dyn Storage) -> Result<Vec<String>> {
    let mut v: Vec<String> = store
        .list("keys/")
        .map_err(RepoError::io(store.location("keys")))?
        .into_iter()
        .filter_map(|(n, _)| n.strip_prefix("keys/").map(str::to_string))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    v.sort();
    Ok(v)
}

fn read_slot(store: &dyn Storage, id: &str) -> Result<slot::KeySlot> {
    let name = slot_name(id);
    let path = store.location(&name);
    let bytes = store
        .get(&name, MAX_SLOT_FILE)
        .map_err(RepoError::io(&path))?;
    slot::parse(id, &bytes).map_err(crypt_err(&path))
}

fn write_slot(store: &dyn Storage, s: &slot::KeySlot) -> Result<String> {
    let id = new_slot_id(store)?;
    put_slot(store, &id, s)?;
    Ok(id)
}

/// A fresh random slot id.
pub(super) fn new_slot_id(store: &dyn Storage) -> Result<String> {
    let mut raw = [0u8; 8];
    let here = store.location("keys");
    getrandom::fill(&mut raw).map_err(|e| crypt_err(&here)(CryptoError::Random(e.to_string())))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes slot `s` as `keys/<id>`.
pub(super) fn put_slot(store: &dyn Storage, id: &str, s: &slot::KeySlot) -> Result<()> {
    let name = slot_name(id);
    let path = store.location(&name);
    let body = serde_json::to_vec_pretty(s).map_err(|e| RepoError::BadConfig {
        path: path.clone(),
        what: e.to_string(),
    })?;
    // Replace is the atomic put (temp name, then rename); the id is random, so there
    // is nothing to replace.
    store
        .put(&name, &body, PutMode::Replace)
        .map_err(RepoError::io(&path))
}

impl Repository {
    /// Whether the repository at `path` is encrypted (needs a passphrase to open).
    pub fn is_encrypted(path: &Path) -> Result<bool> {
        Ok(RepoConfig::read(open_storage(path)?.as_ref())?
            .encryption
            .is_some())
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
        let store = open_storage(path)?;
        config.seal_with(&keys, &store.location("config"))?;
        let s = slot::create(
            &config.id,
            keys.master(),
            secret,
            "initial",
            slot::new_params(),
        )
        .map_err(crypt_err(path))?;
        // The slot goes first: a config without a slot would be a locked-out repository.
        store.create().map_err(RepoError::io(path))?;
        let slot_id = write_slot(store.as_ref(), &s)?;
        let mut repo = Repository::init_with(path, config)?;
        repo.keys = Some(Arc::new(keys));
        repo.slot = Some(slot_id);
        Ok(repo)
    }

    /// Opens an encrypted repository with `secret`: the first slot it opens gives the
    /// master key, which must then authenticate the config. A plaintext repository
    /// opens as with `open`.
    pub fn open_with_secret(path: &Path, secret: &[u8]) -> Result<Repository> {
        let store = open_storage(path)?;
        let config = RepoConfig::read(store.as_ref())?;
        if config.encryption.is_none() {
            return Repository::open(path);
        }
        let ids = slot_ids(store.as_ref())?;
        if ids.len() > MAX_SLOTS {
            return Err(RepoError::BadConfig {
                path: store.location("keys"),
                what: format!("{} key slots, more than {MAX_SLOTS}", ids.len()),
            });
        }
        let mut damaged = Vec::new();
        for id in &ids {
            let s = match read_slot(store.as_ref(), id) {
                Ok(s) => s,
                Err(e) => {
                    damaged.push(e.to_string());
                    continue;
                }
            };
            match slot::unwrap(&config.id, &s, secret) {
                Ok(master) => {
                    let keys = Keys::from_master(&master);
                    config.check_mac(&keys, &store.location("config"))?;
                    return Ok(Repository {
                        keys: Some(Arc::new(keys)),
                        slot: Some(id.clone()),
                        ..Repository::from_config(path, store, config)
                    });
                }
                Err(CryptoError::Auth) => {}
                Err(e) => {
                    damaged.push(format!("{}: {e}", store.location(&slot_name(id)).display()))
                }
            }
        }
        Err(RepoError::WrongPassphrase {
            repo: path.to_path_buf(),
            tried: ids.len(),
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
        write_slot(self.store(), &s)
    }

    pub fn list_keys(&self) -> Result<Vec<SlotSummary>> {
        self.keys.as_ref().ok_or_else(|| self.not_encrypted())?;
        slot_ids(self.store())?
            .into_iter()
            .map(|id| {
                let s = read_slot(self.store(), &id)?;
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
        let files = slot_ids(self.store())?;
        if !files.iter().any(|s| s == id) {
            return Err(RepoError::KeySlot {
                repo: self.root.clone(),
                what: format!("no key slot {id}"),
            });
        }
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
        let name = slot_name(id);
        self.store()
            .delete(&name)
            .map_err(RepoError::io(self.loc(&name)))
    }

    fn not_encrypted(&self) -> RepoError {
        RepoError::KeySlot {
            repo: self.root.clone(),
            what: "the repository is not encrypted".into(),
        }
    }
}
