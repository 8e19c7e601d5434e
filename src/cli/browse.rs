//! `ironclone browse <REPO> <IMAGE> <AREA> ls|cat|get`: look into a stored image and
//! copy files out of it without restoring it (partclone#86). Reads straight from the
//! repository through `repo::ImageDevice`; every chunk is checked as in a restore, so
//! a damaged repository gives an error, never wrong bytes.

use super::exit;
use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use ironclone::browse::{self, Browse, Entry, Kind};
use ironclone::repo::ImageDevice;
use ironclone::units::count;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
    /// The repository directory.
    pub repo: PathBuf,
    /// The image name (see `ironclone images`).
    pub image: String,
    /// The area holding the filesystem: a partition (`p1`, `p2`, ...) or `disk`.
    pub area: String,
    #[command(subcommand)]
    pub action: Action,
    /// JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where a Clonezilla partition image is unpacked for browsing (default:
    /// $XDG_CACHE_HOME/ironclone/clonezilla or ~/.cache/ironclone/clonezilla).
    #[arg(long, global = true)]
    pub cache: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Action {
    /// List a directory (name, type, size, mtime, a link's target), or describe one file.
    Ls {
        /// Path inside the filesystem (default: the root).
        #[arg(default_value = "/")]
        path: String,
    },
    /// Write a file's bytes to standard output.
    Cat { path: String },
    /// Copy a file or a directory tree out to DEST.
    Get {
        path: String,
        dest: PathBuf,
        /// Overwrite DEST if it exists.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    if super::browse_clonezilla::applies(&a) {
        return super::browse_clonezilla::run(a);
    }
    let repo = super::repo_open::open(&a.repo, &a.secret)?;
    let dev = Arc::new(ImageDevice::open(&repo, &a.image, &a.area)?);
    let lost: u64 = dev.unreadable().iter().map(|e| e.len).sum();
    if lost > 0 {
        eprintln!(
            "ironclone: warning: area {} has {lost} byte(s) in {} range(s) that were unreadable at backup; they read as zeros (see `ironclone images`)",
            a.area,
            dev.unreadable().len()
        );
    }
    let mut fs = browse::open(dev.clone())?;
    act(fs.as_mut(), a.action, a.json, &|| {
        Some(dev.chunks_decoded())
    })
}

/// Carries out `action` on an opened filesystem; `chunks` says what the repository
/// decoded for it so far (reported by `get --json`), when it came from a repository.
pub(super) fn act(
    fs: &mut dyn Browse,
    action: Action,
    json: bool,
    chunks: &dyn Fn() -> Option<u64>,
) -> anyhow::Result<u8> {
    match action {
        Action::Ls { path } => ls(fs, &path, json)?,
        Action::Cat { path } => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            fs.copy_to(&path, &mut out)?;
            out.flush()?;
        }
        Action::Get { path, dest, force } => {
            if !force && std::fs::symlink_metadata(&dest).is_ok() {
                eprintln!(
                    "ironclone: refused: {} exists; pass --force to overwrite",
                    dest.display()
                );
                return Ok(exit::REFUSED);
            }
            let mut n = Counts::default();
            get(fs, &path, &dest, &mut n)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "event": "result", "files": n.files,
                    "dirs": n.dirs, "symlinks": n.links, "bytes": n.bytes,
                    "skipped": n.skipped, "chunks_decoded": chunks() })
                );
            } else {
                println!(
                    "copied {}, {}, {}, {} to {}",
                    count(n.files, "file", "files"),
                    count(n.dirs, "dir", "dirs"),
                    count(n.links, "symlink", "symlinks"),
                    count(n.bytes, "byte", "bytes"),
                    dest.display(),
                );
                for s in &n.skipped {
                    println!("skipped {}: {}", s.path, s.why);
                }
            }
        }
    }
    Ok(exit::OK)
}

fn ls(fs: &mut dyn Browse, path: &str, json: bool) -> anyhow::Result<()> {
    let me = fs.stat(path)?;
    let entries = if me.kind == Kind::Dir {
        fs.list(path)?
    } else {
        vec![me]
    };
    if json {
        println!(
            "{}",
            serde_json::json!({ "event": "result", "fs": fs.fs_name(), "path": path, "entries": entries })
        );
        return Ok(());
    }
    for e in &entries {
        let when = e
            .mtime_unix
            .and_then(|t| u64::try_from(t).ok())
            .map_or_else(|| "-".to_string(), super::time::utc_human);
        let link = match (&e.target, &e.skip) {
            (Some(t), None) => format!(" -> {t}"),
            (Some(t), Some(why)) => format!(" -> {t}  (get skips it: {why})"),
            (None, Some(why)) => format!("  (get skips it: {why})"),
            (None, None) => String::new(),
        };
        println!(
            "{:<7} {:>14} {}  {}{link}",
            e.kind.word(),
            e.size,
            when,
            e.name
        );
    }
    Ok(())
}

#[derive(Default)]
struct Counts {
    files: u64,
    dirs: u64,
    links: u64,
    bytes: u64,
    skipped: Vec<Skipped>,
}

/// An entry `get` leaves out, and why.
#[derive(serde::Serialize)]
struct Skipped {
    path: String,
    why: String,
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Copies `path` to `dest`; a file goes through a temporary name so that a failure
/// (a damaged chunk) leaves no half-written file behind.
fn get(fs: &mut dyn Browse, path: &str, dest: &Path, n: &mut Counts) -> anyhow::Result<()> {
    let e = fs.stat(path)?;
    get_entry(fs, e, path, dest, n)
}

/// Copies `path`, which `e` describes: a directory's entries come with their
/// listing, so they are not looked up again one by one.
fn get_entry(
    fs: &mut dyn Browse,
    e: Entry,
    path: &str,
    dest: &Path,
    n: &mut Counts,
) -> anyhow::Result<()> {
    match e.kind {
        Kind::Dir => {
            match std::fs::create_dir(dest) {
                Err(err) if !(err.kind() == std::io::ErrorKind::AlreadyExists && dest.is_dir()) => {
                    return Err(err).with_context(|| format!("creating {}", dest.display()))
                }
                _ => {}
            }
            n.dirs += 1;
            for c in fs.list(path)? {
                let (p, d) = (join(path, &c.name), dest.join(&c.name));
                get_entry(fs, c, &p, &d, n)?;
            }
        }
        Kind::File => {
            let mut tmp_name = dest.as_os_str().to_owned();
            tmp_name.push(".ironclone-part");
            let tmp = PathBuf::from(tmp_name);
            let mut f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let copied = fs.copy_to(path, &mut f);
            match copied.map_err(anyhow::Error::from).and_then(|b| {
                f.sync_all()?;
                Ok(b)
            }) {
                Ok(b) => n.bytes += b,
                Err(err) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(err);
                }
            }
            std::fs::rename(&tmp, dest)
                .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
            n.files += 1;
        }
        Kind::Symlink if e.skip.is_some() => n.skipped.push(Skipped {
            path: path.to_string(),
            why: format!(
                "link to {} ({})",
                e.target.as_deref().unwrap_or("?"),
                e.skip.unwrap_or_default()
            ),
        }),
        Kind::Symlink => {
            let target = match e.target {
                Some(t) => t,
                None => fs.read_link(path)?,
            };
            if std::fs::symlink_metadata(dest).is_ok() {
                std::fs::remove_file(dest)
                    .with_context(|| format!("replacing {}", dest.display()))?;
            }
            std::os::unix::fs::symlink(&target, dest)
                .with_context(|| format!("creating symlink {}", dest.display()))?;
            n.links += 1;
        }
        Kind::Other => n.skipped.push(Skipped {
            path: path.to_string(),
            why: e.skip.unwrap_or_else(|| "a special file".into()),
        }),
    }
    Ok(())
}
