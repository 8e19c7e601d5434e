//! A new encrypted repository whose first key slot is wrapped while the backup runs.
//!
//! The master key is random, so a first backup can hash, seal and write packs at
//! once; only the slot needs the passphrase's Argon2id (64 MiB, t=3: 0.15-0.2 s of
//! one core, docs/BENCH.md "Branch encgap"), which ran before anything else and
//! left a core idle. Here it runs on its own thread, and the slot and then the config
//! are written before the repository's first pack, index file or manifest is
//! published (`Repository::settle`), in the same order as `init_encrypted`: a config
//! is never without the slot that opens it, and nothing a key sealed is published
//! without both. Until then the directory holds no config, so it is no repository
//! yet; a crash there leaves what a crash before `init_encrypted` would (plus a lock
//! and temp files), and the next backup creates the repository again.

use super::config::RepoConfig;
use super::crypto::{slot, CryptoError, Keys};
use super::error::{RepoError, Result};
use super::storage::Storage;
use super::Repository;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use zeroize::Zeroizing;

/// What `settle` still has to write.
struct Pending {
    root: PathBuf,
    store: Arc<dyn Storage>,
    config: RepoConfig,
    slot_id: String,
    wrap: JoinHandle<std::result::Result<slot::KeySlot, CryptoError>>,
}

impl Pending {
    /// Waits for the slot, then writes it and the config.
    fn commit(self) -> Result<()> {
        let crypt = |source| RepoError::Crypto {
            path: self.root.clone(),
            source,
        };
        let s = self
            .wrap
            .join()
            .map_err(|_| crypt(CryptoError::Kdf("the key slot's thread panicked".into())))?
            .map_err(crypt)?;
        super::keys::put_slot(self.store.as_ref(), &self.slot_id, &s)?;
        self.config.write(self.store.as_ref())
    }
}

/// The unwritten slot and config of a repository made by `init_encrypted_deferred`;
/// written by `Repository::settle`, or when dropped (a first backup that failed
/// before publishing anything still leaves the empty repository `init_encrypted`
/// would have, not a directory without a config).
#[derive(Default)]
pub(crate) struct Unsettled(Mutex<State>);

#[derive(Default)]
enum State {
    /// Nothing to write (any other repository, or written).
    #[default]
    Done,
    Pending(Box<Pending>),
    /// Writing them failed: nothing may be published, by this call or a later one.
    Failed(String),
}

impl Unsettled {
    fn pending(p: Pending) -> Unsettled {
        Unsettled(Mutex::new(State::Pending(Box::new(p))))
    }

    /// The lock is held while the slot and config are written, so a second
    /// publisher (several on a remote store) waits for them instead of passing.
    fn settle(&self) -> Result<()> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::take(&mut *g) {
            State::Done => Ok(()),
            State::Failed(why) => {
                *g = State::Failed(why.clone());
                Err(RepoError::Pipeline(why))
            }
            State::Pending(p) => (*p).commit().inspect_err(|e| {
                *g = State::Failed(format!("creating the repository failed: {e}"));
            }),
        }
    }
}

impl Drop for Unsettled {
    fn drop(&mut self) {
        let _ = self.settle();
    }
}

impl Repository {
    /// `init_encrypted`, returning before the slot's Argon2id has run: the repository
    /// can be written to at once (its keys are ready), and its slot and config are
    /// written by `settle`, which every publish of a pack or manifest calls first.
    pub fn init_encrypted_deferred(
        path: &Path,
        chunk_size: u32,
        pack_size: u64,
        secret: &[u8],
    ) -> Result<Repository> {
        let params = slot::new_params();
        Repository::init_encrypted_deferred_with(path, chunk_size, pack_size, secret, params)
    }

    /// `init_encrypted_deferred` with given Argon2id parameters (tests).
    pub(crate) fn init_encrypted_deferred_with(
        path: &Path,
        chunk_size: u32,
        pack_size: u64,
        secret: &[u8],
        (m_kib, t, p): (u32, u32, u32),
    ) -> Result<Repository> {
        let crypt = |source| RepoError::Crypto {
            path: path.to_path_buf(),
            source,
        };
        // Bad parameters fail here, before anything is created, as in `init_encrypted`.
        slot::check_params(m_kib, t, p).map_err(crypt)?;
        let keys = Keys::generate().map_err(crypt)?;
        let mut config = RepoConfig::new(chunk_size, pack_size);
        let store = super::open_storage(path)?;
        config.seal_with(&keys, &store.location("config"))?;
        let mut repo = Repository::create_unconfigured(path, Arc::clone(&store), config.clone())?;
        let slot_id = super::keys::new_slot_id(store.as_ref())?;
        let (repo_id, master) = (config.id.clone(), Zeroizing::new(*keys.master()));
        let secret = Zeroizing::new(secret.to_vec());
        let wrap = std::thread::Builder::new()
            .name("key slot".into())
            .spawn(move || slot::create(&repo_id, &master, &secret, "initial", (m_kib, t, p)))
            .map_err(RepoError::io(path))?;
        repo.keys = Some(Arc::new(keys));
        repo.slot = Some(slot_id.clone());
        repo.unsettled = Unsettled::pending(Pending {
            root: path.to_path_buf(),
            store,
            config,
            slot_id,
            wrap,
        });
        Ok(repo)
    }

    /// Writes what `init_encrypted_deferred` left to write (its slot, then its
    /// config), waiting for the slot's Argon2id if it still runs; a no-op for any
    /// other repository and after the first call. Called before anything sealed
    /// with the repository's keys is published.
    pub fn settle(&self) -> Result<()> {
        self.unsettled.settle()
    }
}
