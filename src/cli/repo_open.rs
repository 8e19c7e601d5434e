//! Opening a repository from the command line: the one place that reads the config
//! and, for an encrypted repository, gets its passphrase from `--password-file`,
//! `$IRONCLONE_PASSWORD` or the no-echo prompt, in that order. Nothing here prints
//! or logs a secret; the passphrase is zeroed when dropped.

use anyhow::Context;
use clap::Args as ClapArgs;
use ironclone::repo::Repository;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The passphrase of an encrypted repository (what every command opening one takes).
#[derive(ClapArgs, Clone, Debug, Default)]
pub struct Secret {
    /// File holding the repository passphrase (one trailing newline is dropped);
    /// otherwise $IRONCLONE_PASSWORD, otherwise a prompt on a terminal. Global, so it
    /// may also follow a subcommand (`browse REPO IMAGE AREA ls / --password-file F`).
    #[arg(long, value_name = "FILE", global = true)]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the password file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("repository {0}: no passphrase was given: use a password file or ${1} (stdin is not a terminal to ask on)")]
    NoSource(PathBuf, String),
    #[error("reading the passphrase: {0}")]
    Prompt(#[source] std::io::Error),
    #[error("the two passphrases differ")]
    Mismatch,
    #[error("an empty passphrase is refused")]
    Empty,
}

/// Where the passphrase of a repository comes from when no file is given.
pub const ENV: &str = "IRONCLONE_PASSWORD";

impl Secret {
    /// The passphrase for `repo`: from the file, else the environment variable `env`
    /// (a new key's passphrase has its own, never the old one's), else a prompt, which
    /// with `confirm` asks it twice (a new key). Never empty.
    pub fn get(
        &self,
        env: &str,
        repo: &Path,
        what: &str,
        confirm: bool,
    ) -> Result<Zeroizing<String>, SecretError> {
        let p = if let Some(f) = &self.password_file {
            let text = std::fs::read_to_string(f).map_err(|source| SecretError::File {
                path: f.clone(),
                source,
            })?;
            let mut s = Zeroizing::new(text);
            if s.ends_with('\n') {
                s.pop();
            }
            s
        } else if let Ok(v) = std::env::var(env) {
            Zeroizing::new(v)
        } else if !std::io::stdin().is_terminal() {
            return Err(SecretError::NoSource(repo.to_path_buf(), env.to_string()));
        } else {
            let prompt = format!("{what} for {}: ", repo.display());
            let read = |p: &str| ironclone::unlock::read_secret(p).map_err(SecretError::Prompt);
            let first = Zeroizing::new(read(&prompt)?);
            if confirm && *Zeroizing::new(read("Same passphrase again: ")?) != *first {
                return Err(SecretError::Mismatch);
            }
            first
        };
        if p.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(p)
    }
}

/// Opens the repository at `path`; an encrypted one is unlocked with `secret`.
pub fn open(path: &Path, secret: &Secret) -> anyhow::Result<Repository> {
    let ctx = || format!("opening {}", path.display());
    if !Repository::is_encrypted(path).with_context(ctx)? {
        return Repository::open(path).with_context(ctx);
    }
    let p = secret.get(ENV, path, "Repository passphrase", false)?;
    Ok(Repository::open_with_secret(path, p.as_bytes())?)
}

/// `open`, or a new repository when `path` has none: encrypted with a passphrase asked
/// twice when `encrypt`.
pub fn open_or_init(path: &Path, secret: &Secret, encrypt: bool) -> anyhow::Result<Repository> {
    use ironclone::repo::{DEFAULT_CHUNK_SIZE, DEFAULT_PACK_SIZE};
    let exists = Repository::exists(path).with_context(|| format!("opening {}", path.display()))?;
    if exists {
        let repo = open(path, secret)?;
        if encrypt && repo.config().encryption.is_none() {
            anyhow::bail!(
                "{}: --encrypt, but this repository exists unencrypted (encryption is chosen when a repository is created)",
                path.display()
            );
        }
        return Ok(repo);
    }
    let ctx = || format!("creating the repository {}", path.display());
    if !encrypt {
        return Repository::init(path, DEFAULT_CHUNK_SIZE, DEFAULT_PACK_SIZE).with_context(ctx);
    }
    let p = secret.get(ENV, path, "New repository passphrase", true)?;
    // The key slot's Argon2id runs beside the backup; its slot and the config are
    // written before the first pack is published (repo/keys_deferred.rs).
    Repository::init_encrypted_deferred(path, DEFAULT_CHUNK_SIZE, DEFAULT_PACK_SIZE, p.as_bytes())
        .with_context(ctx)
}

/// A repository being opened while the caller does work that needs no key: an
/// existing encrypted repository is unlocked (its Argon2id, 0.15-0.2 s) on its own
/// thread; any other is opened or created by `finish`, so a backup that fails before
/// it creates nothing.
pub enum Opening<'a> {
    Unlocking(
        &'a Path,
        std::thread::JoinHandle<anyhow::Result<Repository>>,
    ),
    Later(&'a Path, &'a Secret),
}

/// Starts `open_or_init`: the passphrase of an existing encrypted repository is read
/// here (a prompt comes before the caller's own output), its unlock starts.
pub fn start_open_or_init<'a>(path: &'a Path, secret: &'a Secret) -> anyhow::Result<Opening<'a>> {
    let ctx = || format!("opening {}", path.display());
    let encrypted = Repository::exists(path).with_context(ctx)?
        && Repository::is_encrypted(path).with_context(ctx)?;
    if !encrypted {
        return Ok(Opening::Later(path, secret));
    }
    let p = secret.get(ENV, path, "Repository passphrase", false)?;
    let at = path.to_path_buf();
    let unlock = std::thread::Builder::new()
        .name("unlock".into())
        .spawn(move || Ok(Repository::open_with_secret(&at, p.as_bytes())?))
        .with_context(ctx)?;
    Ok(Opening::Unlocking(path, unlock))
}

impl Opening<'_> {
    /// The repository `open_or_init` would have returned: a wrong passphrase is its
    /// error, and nothing has been written to the repository.
    pub fn finish(self, encrypt: bool) -> anyhow::Result<Repository> {
        match self {
            Opening::Later(path, secret) => open_or_init(path, secret, encrypt),
            Opening::Unlocking(path, h) => h.join().map_err(|_| {
                anyhow::anyhow!("unlocking {}: the thread panicked", path.display())
            })?,
        }
    }
}
