//! Who may touch the repository at once. Lock objects (not `flock`) because the
//! repository lives on whatever a rescuer has (FAT32, exFAT, network shares, S3,
//! SFTP), where `flock` is missing or lies.
//!
//! - Writers (backups) each leave `locks/write-<uuid>`, holding the pid, the job, the
//!   host and the time. Backups only add objects with names nobody else can pick
//!   (packs and index files named by hashes that include a random salt, manifests by
//!   the image name, created once), so any number of them run together, from any
//!   number of machines.
//! - Prune and index repair take the one exclusive object `locks/lock` (refused while
//!   another holds it). They do not wait for backups: prune's two phases (prune.rs,
//!   prune_mark.rs) never delete what a running backup may still reference; index
//!   repair only rewrites index files with what the packs say.
//! - Readers (restore, verify) each leave `locks/read-<pid>-<n>` (`locks/read-<uuid>`
//!   on S3 and SFTP). Prune rewrites and deletes packs, which would pull the data
//!   from under a restore halfway through writing a disk, so prune refuses while a
//!   reader is alive, and a reader refuses while a prune runs. Each side writes its
//!   own object before looking for the other, so of two that start together at least
//!   one sees the other.
//!
//! A lock left by a killed process is taken over or ignored, so a crash never wedges
//! the repository. On a local directory "killed" is "its pid is gone". On S3 or SFTP
//! the holder may be another machine, so a thread rewrites the lock's time every
//! `refresh_every()` while the job runs and a lock not refreshed for `stale_after()`
//! is dead (and so is one from this host whose pid is gone).
//!
//! Bodies are `pid job host time [ms]`; a backup's adds the manifest it will stream
//! (`pid backup host time images/<name>.json`), so a prune can tell a running
//! backup's unfinished S3 upload from a killed one's (prune_uploads.rs); older
//! builds read the first four words only. Builds before concurrent backups wrote
//! `pid job` or `pid job host time`, and their backups took `locks/lock` too: such a
//! lock still keeps a prune out. The `ms` word (mark-sweep) says a prune is of this
//! protocol; a backup refuses to run beside a live prune without it, which deletes
//! at once.

use super::error::{RepoError, Result};
use super::storage::{PutMode, Storage};
use super::Repository;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A remote lock whose time is older than this is left by a dead job.
const STALE: Duration = Duration::from_secs(300);
/// Test knob: the stale timeout in seconds, so a test can see a killed backup's
/// lock go stale in seconds rather than minutes (docs/FORMAT.md, "Locks").
pub const STALE_ENV: &str = "IRONCLONE_LOCK_STALE_SECS";
/// The exclusive lock of prune and index repair.
pub(crate) const EXCLUSIVE: &str = "locks/lock";
/// Prefix of the backups' own lock objects.
pub(crate) const WRITER_PREFIX: &str = "locks/write-";
/// The body word of an exclusive lock taken by a mark-sweep prune.
const MARK_SWEEP: &str = "ms";
/// Where the manifests a backup's lock may name live.
const MANIFEST_DIR: &str = "images/";

/// After how long without a refresh a remote lock is dead.
pub(crate) fn stale_after() -> Duration {
    std::env::var(STALE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(STALE, Duration::from_secs)
}

/// How often a remote lock's time is rewritten while its job runs: several times
/// within the stale timeout, so a missed refresh or two does not kill it.
fn refresh_every() -> Duration {
    (stale_after() / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// The job that holds the writer lock; readers only mind `Prune`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Backup,
    Prune,
    RepairIndex,
}

impl Job {
    fn word(self) -> &'static str {
        match self {
            Job::Backup => "backup",
            Job::Prune => "prune",
            Job::RepairIndex => "repair-index",
        }
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hostname() -> String {
    crate::hostname::hostname().unwrap_or_else(|| "unknown".into())
}

/// A lock object's body: `pid job host time` (older builds wrote `pid job`, which
/// still parses: without host and time, only the pid can say it is alive).
fn body(job: &str) -> String {
    format!("{} {job} {} {}\n", std::process::id(), hostname(), now())
}

/// A backup's lock body: `pid backup host time images/<name>.json`, naming the
/// manifest it will stream, so a prune knows whose unfinished upload that is.
fn writer_body(manifest: &str) -> String {
    format!(
        "{} {} {} {} {manifest}\n",
        std::process::id(),
        Job::Backup.word(),
        hostname(),
        now()
    )
}

/// The body of a mark-sweep prune's (or index repair's) exclusive lock.
fn exclusive_body(job: &str) -> String {
    format!(
        "{} {job} {} {} {MARK_SWEEP}\n",
        std::process::id(),
        hostname(),
        now()
    )
}

fn pid_alive(pid: &str) -> bool {
    pid.bytes().all(|b| b.is_ascii_digit()) && std::path::Path::new("/proc").join(pid).exists()
}

/// Who holds a lock object.
struct Holder {
    pid: String,
    job: String,
    mark_sweep: bool,
    /// The manifest a backup streams (`images/<name>.json`), if its lock names it.
    manifest: Option<String>,
}

/// The holder of a lock object, if it is alive.
fn live_holder(store: &dyn Storage, name: &str) -> Option<Holder> {
    holder(store, name).ok().flatten()
}

/// The holder of a lock object if it is alive, `None` if it is dead or the object
/// gone; an error when the object could not be read.
fn holder(store: &dyn Storage, name: &str) -> std::io::Result<Option<Holder>> {
    let body = match store.get(name, 4096) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let body = String::from_utf8_lossy(&body);
    let mut words = body.split_whitespace();
    let Some(pid) = words.next().map(str::to_string) else {
        return Ok(None);
    };
    let job = words.next().unwrap_or("").to_string();
    let host = words.next();
    let time = words.next().and_then(|t| t.parse::<u64>().ok());
    let fifth = words.next();
    let mark_sweep = fifth == Some(MARK_SWEEP);
    let manifest = fifth
        .filter(|w| w.starts_with(MANIFEST_DIR))
        .map(str::to_string);
    let alive = if store.is_local() || host == Some(hostname().as_str()) {
        pid_alive(&pid)
    } else {
        time.is_some_and(|t| now().saturating_sub(t) < stale_after().as_secs())
    };
    Ok(alive.then_some(Holder {
        pid,
        job,
        mark_sweep,
        manifest,
    }))
}

/// Whether the writer lock `name` is held by a live backup (the object exists and
/// its holder is alive).
pub(crate) fn writer_alive(store: &dyn Storage, name: &str) -> bool {
    live_holder(store, name).is_some()
}

/// The writer locks (`locks/write-*`) whose holders are alive, sorted. With
/// `remove_dead`, the objects of dead ones are deleted (prune does, under the
/// exclusive lock: a dead backup's lock only delays sweeps).
pub(crate) fn live_writers(store: &dyn Storage, remove_dead: bool) -> Result<Vec<String>> {
    let all = store
        .list("locks/")
        .map_err(RepoError::io(store.location("locks")))?;
    let mut live = Vec::new();
    for (name, _) in all {
        if !name.starts_with(WRITER_PREFIX) {
            continue;
        }
        if writer_alive(store, &name) {
            live.push(name);
        } else if remove_dead {
            let _ = store.delete(&name);
        }
    }
    live.sort();
    Ok(live)
}

/// The manifests the live backups may be streaming, each named by its writer lock
/// (prune_uploads.rs). `None` when a live writer's lock names none (an older build's
/// backup) or cannot be read: that backup could be writing any manifest. The
/// objects of dead writers are deleted, as `live_writers` does for prune: a backup
/// taken for dead then finds its lock gone and fails before completing anything.
pub(crate) fn live_writer_manifests(store: &dyn Storage) -> Result<Option<HashSet<String>>> {
    let all = store
        .list("locks/")
        .map_err(RepoError::io(store.location("locks")))?;
    let mut names = HashSet::new();
    let mut all_named = true;
    for (name, _) in all {
        if !name.starts_with(WRITER_PREFIX) {
            continue;
        }
        match holder(store, &name) {
            Ok(Some(h)) => match h.manifest {
                Some(m) => {
                    names.insert(m);
                }
                None => all_named = false,
            },
            Ok(None) => {
                let _ = store.delete(&name);
            }
            Err(_) => all_named = false,
        }
    }
    Ok(all_named.then_some(names))
}

/// Rewrites a remote lock's time until dropped.
struct Refresher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Unix time of the last successful rewrite.
    last_ok: Arc<AtomicU64>,
    /// The object was found gone: a prune took the holder for dead (stale). It is
    /// not written back, and the holder must not finish as if nothing happened.
    lost: Arc<AtomicBool>,
}

impl Refresher {
    fn start(
        store: &Arc<dyn Storage>,
        name: &str,
        body: fn(&str) -> String,
        arg: &str,
    ) -> Option<Refresher> {
        if store.is_local() {
            return None;
        }
        let (stop, rx) = mpsc::channel::<()>();
        let (store, name, arg) = (store.clone(), name.to_string(), arg.to_string());
        let every = refresh_every();
        let last_ok = Arc::new(AtomicU64::new(now()));
        let lost = Arc::new(AtomicBool::new(false));
        let (ok2, lost2) = (last_ok.clone(), lost.clone());
        let thread = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                if let Ok(None) = store.stat(&name) {
                    lost2.store(true, Ordering::SeqCst);
                    return;
                }
                // A failed refresh is retried at the next tick; the lock only goes
                // stale after several were missed.
                if store
                    .put(&name, body(&arg).as_bytes(), PutMode::Replace)
                    .is_ok()
                {
                    ok2.store(now(), Ordering::SeqCst);
                }
            }
        });
        Some(Refresher {
            stop: Some(stop),
            thread: Some(thread),
            last_ok,
            lost,
        })
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A lock object, removed when dropped.
struct Held {
    store: Arc<dyn Storage>,
    name: String,
    refresh: Option<Refresher>,
}

impl Drop for Held {
    fn drop(&mut self) {
        // The refresher stops first, so it cannot write the object back.
        drop(self.refresh.take());
        let _ = self.store.delete(&self.name);
    }
}

pub struct Lock {
    _held: Held,
}

impl Lock {
    /// A backup's own writer lock, or the exclusive lock of prune and index repair.
    pub fn acquire(repo: &Repository, job: Job) -> Result<Lock> {
        match job {
            Job::Backup => Self::writer(repo, None),
            Job::Prune | Job::RepairIndex => Self::exclusive(repo, job),
        }
    }

    /// Fails unless this lock is surely still seen as alive: its object exists and
    /// (remote) was refreshed within half the stale timeout. A backup checks this
    /// right before writing its manifest: a prune that took it for dead may have
    /// swept packs it reuses, and an image referencing them must not appear.
    pub(crate) fn check_held(&self) -> Result<()> {
        let h = &self._held;
        let path = h.store.location(&h.name);
        let lost = |why: String| RepoError::LockLost {
            path: path.clone(),
            why,
        };
        if let Some(r) = &h.refresh {
            if r.lost.load(Ordering::SeqCst) {
                return Err(lost("its object was removed as stale".into()));
            }
            let age = now().saturating_sub(r.last_ok.load(Ordering::SeqCst));
            let stale = stale_after().as_secs();
            if age.saturating_mul(2) >= stale {
                return Err(lost(format!(
                    "not refreshed for {age} s; stale after {stale} s"
                )));
            }
        }
        match h.store.stat(&h.name) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(lost("its object is gone".into())),
            Err(e) => Err(RepoError::io(&path)(e)),
        }
    }

    /// The lock object's name (a writer's is listed in prune's marks).
    #[cfg(test)]
    pub(crate) fn name(&self) -> &str {
        &self._held.name
    }

    /// A backup's writer lock naming the manifest it will write (`images/<name>.json`).
    pub fn backup(repo: &Repository, manifest: &str) -> Result<Lock> {
        Self::writer(repo, Some(manifest))
    }

    fn writer(repo: &Repository, manifest: Option<&str>) -> Result<Lock> {
        let store = repo.store_arc();
        // A uuid: writers on many machines (and pids reused) never share a name.
        let name = format!("{WRITER_PREFIX}{}", uuid::Uuid::new_v4());
        let (make, arg): (fn(&str) -> String, &str) = match manifest {
            Some(m) => (writer_body, m),
            None => (body, Job::Backup.word()),
        };
        store
            .put(&name, make(arg).as_bytes(), PutMode::IfAbsent)
            .map_err(RepoError::io(store.location(&name)))?;
        let lock = Lock {
            _held: Held {
                refresh: Refresher::start(&store, &name, make, arg),
                store: store.clone(),
                name,
            },
        };
        // Our object is written before we look, so a prune listing writers after
        // this point sees us (prune_mark.rs); an older build's prune, which deletes
        // at once, is refused (dropping `lock` removes our object again).
        if let Some(h) = live_holder(store.as_ref(), EXCLUSIVE) {
            if h.job == Job::Prune.word() && !h.mark_sweep {
                return Err(RepoError::InUse {
                    path: store.location(EXCLUSIVE),
                    pid: h.pid,
                    job: h.job,
                });
            }
        }
        Ok(lock)
    }

    fn exclusive(repo: &Repository, job: Job) -> Result<Lock> {
        let store = repo.store_arc();
        let name = EXCLUSIVE;
        let path = store.location(name);
        for _ in 0..2 {
            match store.put(
                name,
                exclusive_body(job.word()).as_bytes(),
                PutMode::IfAbsent,
            ) {
                Ok(()) => {
                    let lock = Lock {
                        _held: Held {
                            refresh: Refresher::start(&store, name, exclusive_body, job.word()),
                            store: store.clone(),
                            name: name.to_string(),
                        },
                    };
                    if job == Job::Prune {
                        // Dropping `lock` on refusal removes the object again.
                        refuse_if_read(store.as_ref())?;
                    }
                    return Ok(lock);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if let Some(h) = live_holder(store.as_ref(), name) {
                        return Err(RepoError::Locked { path, pid: h.pid });
                    }
                    let _ = store.delete(name);
                }
                Err(e) => return Err(RepoError::io(&path)(e)),
            }
        }
        Err(RepoError::Locked {
            path,
            pid: "?".into(),
        })
    }
}

/// Refuses when a live reader holds the repository; removes readers' objects left by
/// dead processes.
fn refuse_if_read(store: &dyn Storage) -> Result<()> {
    let all = store
        .list("locks/")
        .map_err(RepoError::io(store.location("locks")))?;
    for (name, _) in all {
        if !name.starts_with("locks/read-") {
            continue;
        }
        match live_holder(store, &name) {
            Some(h) => {
                return Err(RepoError::InUse {
                    path: store.location(&name),
                    pid: h.pid,
                    job: h.job,
                })
            }
            None => {
                let _ = store.delete(&name);
            }
        }
    }
    Ok(())
}

/// A reader's mark (restore, verify): keeps prune away while it lives. `None` on a
/// repository nobody can write (a write-protected stick, a read-only share): there
/// is no prune to fear there, and reading it must still work.
pub struct ReadLock {
    _held: Option<Held>,
}

fn unwritable(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(nix::libc::EROFS | nix::libc::EACCES | nix::libc::EPERM)
    )
}

impl ReadLock {
    pub fn acquire(repo: &Repository, job: &str) -> Result<ReadLock> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let store = repo.store_arc();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        // Remote readers may be on many machines: a uuid keeps their names apart.
        let name = match store.is_local() {
            true => format!("locks/read-{}-{n}", std::process::id()),
            false => format!("locks/read-{}", uuid::Uuid::new_v4()),
        };
        let path: PathBuf = store.location(&name);
        let me = match store.put(&name, body(job).as_bytes(), PutMode::IfAbsent) {
            Ok(()) => ReadLock {
                _held: Some(Held {
                    refresh: Refresher::start(&store, &name, body, job),
                    store: store.clone(),
                    name,
                }),
            },
            Err(e) if unwritable(&e) => ReadLock { _held: None },
            Err(e) => return Err(RepoError::io(&path)(e)),
        };
        if let Some(h) = live_holder(store.as_ref(), EXCLUSIVE) {
            if h.job == Job::Prune.word() {
                return Err(RepoError::InUse {
                    path: store.location(EXCLUSIVE),
                    pid: h.pid,
                    job: h.job,
                });
            }
        }
        Ok(me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_and_readers_exclude_each_other_and_backup_goes_with_readers() {
        let dir = tempfile::tempdir().unwrap();
        let repo = &Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
        let r = ReadLock::acquire(repo, "restore").unwrap();
        let e = Lock::acquire(repo, Job::Prune).err().unwrap();
        assert!(
            matches!(&e, RepoError::InUse { job, .. } if job == "restore"),
            "{e}"
        );
        assert!(
            !dir.path().join("locks/lock").exists(),
            "a refused prune leaves no lock"
        );
        let b = Lock::acquire(repo, Job::Backup).unwrap();
        let r2 = ReadLock::acquire(repo, "verify").unwrap();
        drop((b, r, r2));
        let p = Lock::acquire(repo, Job::Prune).unwrap();
        let e = ReadLock::acquire(repo, "restore").err().unwrap();
        assert!(
            matches!(&e, RepoError::InUse { job, .. } if job == "prune"),
            "{e}"
        );
        drop(p);
        assert!(ReadLock::acquire(repo, "restore").is_ok());
        // Only this test's files were ever in the directory, and all are gone.
        assert_eq!(
            std::fs::read_dir(dir.path().join("locks")).unwrap().count(),
            0
        );
    }

    #[test]
    fn backups_name_their_manifest_and_an_unnamed_live_writer_claims_all() {
        let dir = tempfile::tempdir().unwrap();
        let repo = &Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
        let a = Lock::backup(repo, "images/a.json").unwrap();
        let b = Lock::backup(repo, "images/b.json").unwrap();
        // A dead backup's lock (pid 0) naming c: not counted, and deleted.
        let dead = dir.path().join("locks/write-dead");
        std::fs::write(&dead, format!("0 backup {} 1 images/c.json\n", hostname())).unwrap();
        let want: HashSet<String> = ["images/a.json", "images/b.json"].map(String::from).into();
        assert_eq!(live_writer_manifests(repo.store()).unwrap(), Some(want));
        assert!(!dead.exists());
        // A live backup of an older build names no manifest: it may write any.
        let old = Lock::acquire(repo, Job::Backup).unwrap();
        assert_eq!(live_writer_manifests(repo.store()).unwrap(), None);
        drop((a, b, old));
        assert_eq!(
            live_writer_manifests(repo.store()).unwrap(),
            Some(HashSet::new())
        );
    }

    #[test]
    fn locks_of_dead_processes_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join("locks");
        std::fs::create_dir_all(&locks).unwrap();
        // Pid 0 is never a process that /proc lists.
        std::fs::write(locks.join("read-0-0"), "0 restore\n").unwrap();
        std::fs::write(locks.join("lock"), "0 prune\n").unwrap();
        let repo = Repository::init(dir.path(), 1 << 20, 1 << 24).unwrap();
        assert!(ReadLock::acquire(&repo, "verify").is_ok());
        let p = Lock::acquire(&repo, Job::Prune).unwrap();
        assert!(!locks.join("read-0-0").exists());
        drop(p);
    }
}
