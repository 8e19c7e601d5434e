//! S3-compatible object storage and SFTP through `opendal`.
//!
//! Why opendal: one maintained crate (Apache) speaks both S3 (AWS, Ceph RGW, MinIO,
//! Garage, SeaweedFS; credentials from the AWS environment variables and
//! `~/.aws/credentials` with `AWS_PROFILE`) and SFTP, with ranged reads, listing and
//! conditional writes, so the repository needs one adapter instead of two.
//! `object_store` has no SFTP. Its SFTP service drives the system `ssh` (openssh
//! client): keys, `~/.ssh/config` and `known_hosts` work as for `ssh`, and a host key
//! not in `known_hosts` is refused unless the user accepts it explicitly.
//!
//! The repository code is synchronous; each backend owns a small tokio runtime
//! (`WORKERS` threads) and opendal's blocking operator runs every call on it, so
//! several threads (restore's checks, index loading) have requests in flight at once.
//!
//! Failures that may pass (5xx, timeouts, connection resets: opendal marks them
//! temporary) are retried `RETRIES` times with exponential backoff, per request: a
//! restore that loses the network retries the range it was reading, not the job.
//! The last error is returned with the object's name.
//!
//! Packs are written whole: an S3 PUT is atomic, and on SFTP an object is written
//! under `tmp/` and renamed into place. A pack is named by its hash only when
//! complete, so `writer` buffers one pack and puts it in one request. That is why a
//! backup closes packs at `REMOTE_PACK_SIZE` here and publishes `REMOTE_PUTS` at once
//! (`pack_upload`): its memory is then (puts + 1) packs whatever the repository's
//! `pack_size`, and several PUTs keep the store busy while the next pack fills.
//! Multipart upload does not help there: its key is fixed when the upload starts, and
//! S3 has no rename (a copy to the hash's name would send every byte twice).
//!
//! A manifest's name is known before its first byte, so it is streamed instead
//! (`named_writer`, remote_stream.rs): S3 multipart upload, or an SFTP temp file, in
//! parts of `REMOTE_PART_SIZE`; a backup's memory does not grow with its manifest
//! (hundreds of MiB for a 1 TB source, issue 20).

use super::remote_object::{BufferWriter, RemoteReader};
use super::s3_config::S3Config;
use super::s3_uploads::{S3Direct, UnfinishedUpload};
use super::url::Location;
use super::{ObjectInfo, ObjectReader, ObjectWriter, PackUpload, PutMode, Storage};
use opendal::blocking::Operator;
use opendal::options::{ListOptions, WriteOptions};
use opendal::{Buffer, Error, ErrorKind};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Size at which a backup closes a pack on a remote store (see the module comment).
/// 16 MiB: against 32 MiB, `bench-s3.sh` (2026-12-04, local SeaweedFS, 3 puts) gave the
/// same backup time (5.98 s against 6.22 s) and a 124 MiB peak against 141; the 4 packs
/// held at most are 64 MiB instead of 128.
pub const REMOTE_PACK_SIZE: u64 = 16 << 20;
/// Packs a backup puts at once on a remote store.
pub const REMOTE_PUTS: usize = 3;

/// Threads of the backend's runtime: requests in flight at once.
const WORKERS: usize = 4;
/// Retries of one request after a temporary failure.
const RETRIES: u32 = 5;
/// The first backoff; doubled after each retry (0.2 s ... 3.2 s, 6 s in all).
const BACKOFF: Duration = Duration::from_millis(200);
/// One request may take this long before it counts as a (retried) timeout.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings for remote stores that are not part of the location.
#[derive(Clone, Debug, Default)]
pub struct RemoteOptions {
    /// S3 endpoint (`--s3-endpoint`); else `AWS_ENDPOINT_URL`, else AWS.
    pub s3_endpoint: Option<String>,
    /// S3 region (`--s3-region`); else `AWS_REGION`/`AWS_DEFAULT_REGION`, else us-east-1.
    pub s3_region: Option<String>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    pub s3_path_style: bool,
    /// SSH private key for SFTP (else ssh's defaults and agent).
    pub sftp_key: Option<PathBuf>,
    /// Accept and remember an SFTP host key not yet in `known_hosts`.
    pub sftp_accept_new_host_key: bool,
    /// S3 access key id typed in the TUI; else the AWS environment and files.
    pub s3_access_key: Option<String>,
    /// Its secret, held in memory only (a `Password` never prints itself).
    pub s3_secret_key: Option<crate::share::Password>,
    /// SFTP login password (`--sftp-password-file`, the prompt, the TUI); reaches
    /// `ssh` through the askpass socket only (see `askpass`).
    pub sftp_password: Option<crate::share::Password>,
}

static GLOBAL: OnceLock<RemoteOptions> = OnceLock::new();

/// Options for one location (the TUI's credentials screen), by location text. Kept in
/// memory rather than in environment variables: another process could read those.
static BY_LOCATION: Mutex<Vec<(String, RemoteOptions)>> = Mutex::new(Vec::new());

impl RemoteOptions {
    /// Sets the options every repository opened afterwards uses (the command line's).
    pub fn set_global(o: RemoteOptions) {
        let _ = GLOBAL.set(o);
    }
    pub fn current() -> RemoteOptions {
        GLOBAL.get().cloned().unwrap_or_default()
    }

    /// Sets the options for every later open of `location` (`s3://...`, `sftp://...`),
    /// replacing what was set for it before.
    pub fn set_for(location: &str, o: RemoteOptions) {
        let mut m = BY_LOCATION.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|(l, _)| l != location);
        m.push((location.to_string(), o));
    }

    /// The options set for `location`, else the global ones.
    pub fn for_location(location: &std::path::Path) -> RemoteOptions {
        let m = BY_LOCATION.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .find(|(l, _)| std::path::Path::new(l) == location)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(Self::current)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// An opendal error as an io::Error of the matching kind.
pub(super) fn to_io(e: Error, attempts: u32) -> io::Error {
    let kind = match e.kind() {
        ErrorKind::NotFound => io::ErrorKind::NotFound,
        ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
        ErrorKind::AlreadyExists | ErrorKind::ConditionNotMatch => io::ErrorKind::AlreadyExists,
        ErrorKind::ConfigInvalid => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    };
    // opendal's own text repeats its context (uri, headers) at every level; the
    // caller names the object, so the kind, the message and the root cause do.
    let mut root: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&e);
    while let Some(next) = root.and_then(|r| r.source()) {
        root = Some(next);
    }
    let mut what = match (e.kind(), e.message().trim()) {
        (ErrorKind::PermissionDenied, "") => {
            "access denied (a wrong access key or secret, or no right to this bucket)".to_string()
        }
        (k, "") => k.to_string(),
        (k, m) => format!("{k}: {m}"),
    };
    if let Some(r) = root.map(|r| r.to_string()) {
        // Some root causes are opendal errors again, whose text is this one's.
        if !what.contains(r.trim()) {
            what.push_str(&format!(": {r}"));
        }
    }
    if let Some(line) = what
        .lines()
        .find(|l| l.contains("has changed and you have requested strict checking"))
    {
        // ssh's banner is a screenful of @ signs; its one line naming the host is kept.
        what = format!(
            "{}: the server's host key has CHANGED since it was trusted, so the connection was refused (someone may be in between; if the server was reinstalled, check its new key and remove the old one with ssh-keygen -R)",
            line.trim().trim_end_matches('.')
        );
    } else if what.contains("Host key verification failed") {
        what = format!(
            "{}: the server's host key is not trusted (check it and add it to known_hosts, or pass --sftp-accept-new-host-key)",
            what.trim_end()
        );
    }
    if what.contains("Permission denied (") {
        what = format!(
            "{}: the server refused the login (a wrong password, or a key it does not accept)",
            what.trim_end()
        );
    }
    if attempts > 1 {
        what.push_str(&format!(" (gave up after {attempts} attempts)"));
    }
    let temporary = e.is_temporary() || e.kind() == ErrorKind::RateLimited;
    io::Error::new(kind, super::StoreFailure { what, temporary })
}

/// Runs `f`, retrying temporary failures with exponential backoff.
pub(super) fn retry<T>(f: impl FnMut() -> opendal::Result<T>) -> io::Result<T> {
    retry_when(f, |e| {
        e.is_temporary() || e.kind() == ErrorKind::RateLimited
    })
    .map_err(|(e, attempts)| to_io(e, attempts))
}

/// Runs `f`, retrying the failures `temporary` accepts with exponential backoff; the
/// last error comes with the number of attempts.
pub(super) fn retry_when<T, E>(
    mut f: impl FnMut() -> Result<T, E>,
    temporary: impl Fn(&E) -> bool,
) -> Result<T, (E, u32)> {
    let mut delay = BACKOFF;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if attempt <= RETRIES && temporary(&e) => {
                std::thread::sleep(delay);
                delay = delay.saturating_mul(2);
            }
            Err(e) => return Err((e, attempt)),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    S3,
    Sftp,
}

pub struct RemoteStorage {
    // Both dropped before the runtime they run on.
    op: Operator,
    /// The same operator, async: the streamed writer needs `Writer::abort`, which the
    /// blocking one lacks.
    aop: opendal::Operator,
    /// The S3 requests sent without opendal (s3_uploads.rs, s3_ranges.rs); `None` on SFTP.
    uploads: Option<Arc<S3Direct>>,
    /// Shared with the S3 readers, whose requests run on it.
    rt: Arc<tokio::runtime::Runtime>,
    /// `s3://bucket/prefix` or `sftp://host/path`, for messages.
    base: String,
    kind: Kind,
}

impl RemoteStorage {
    pub fn open(loc: &Location, opts: &RemoteOptions) -> io::Result<RemoteStorage> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKERS)
            .thread_name("ironclone-storage")
            .enable_all()
            .build()?;
        let mut uploads = None;
        let (op, base, kind) = match loc {
            Location::S3 { bucket, prefix } => {
                let cfg = S3Config::resolve(bucket, prefix, opts);
                let op = opendal::Operator::new(cfg.opendal()).map_err(|e| to_io(e, 1))?;
                let base = match prefix.is_empty() {
                    true => format!("s3://{bucket}"),
                    false => format!("s3://{bucket}/{prefix}"),
                };
                uploads = Some(Arc::new(S3Direct::new(&cfg)?));
                (op.layer(timeouts()).finish(), base, Kind::S3)
            }
            Location::Sftp {
                user,
                host,
                port,
                path,
            } => {
                let endpoint = match port {
                    Some(p) => format!("ssh://{host}:{p}"),
                    None => format!("ssh://{host}"),
                };
                let mut b = opendal::services::Sftp::default()
                    .endpoint(&endpoint)
                    .root(path)
                    .known_hosts_strategy(match opts.sftp_accept_new_host_key {
                        true => "Add",
                        false => "Strict",
                    });
                if let Some(u) = user {
                    b = b.user(u);
                }
                if let Some(k) = &opts.sftp_key {
                    b = b.key(&k.to_string_lossy());
                }
                if let Some(pw) = &opts.sftp_password {
                    let t = super::askpass::target(user.as_deref(), host, *port);
                    super::askpass::register(&t, pw)?;
                }
                let op = opendal::Operator::new(b).map_err(|e| to_io(e, 1))?;
                let who = user.as_ref().map_or(String::new(), |u| format!("{u}@"));
                let at = port.map_or(String::new(), |p| format!(":{p}"));
                let sep = if path.starts_with('/') { "" } else { "/" };
                let base = format!("sftp://{who}{host}{at}{sep}{path}");
                (op.layer(timeouts()).finish(), base, Kind::Sftp)
            }
            Location::Local(p) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: a local path is not a remote store", p.display()),
                ))
            }
        };
        let aop = op.clone();
        let op = {
            let _in = rt.enter();
            Operator::new(op).map_err(|e| to_io(e, 1))?
        };
        Ok(RemoteStorage {
            op,
            aop,
            uploads,
            rt: Arc::new(rt),
            base,
            kind,
        })
    }
}

/// Writes `data` as `name` whole, replacing what is there unless `if_absent` (a
/// failed PUT publishes nothing, so a retry cannot leave half an object).
pub(super) fn write_whole(
    op: &Operator,
    kind: Kind,
    name: &str,
    data: Buffer,
    if_absent: bool,
) -> io::Result<()> {
    let opts = || WriteOptions {
        if_none_match: if_absent.then(|| "*".to_string()),
        ..Default::default()
    };
    match kind {
        // A Buffer clone shares the bytes: a retry does not copy a 128 MiB pack.
        Kind::S3 => retry(|| op.write_options(name, data.clone(), opts()).map(drop)),
        Kind::Sftp => {
            let tmp = sftp_temp_name();
            retry(|| op.write(&tmp, data.clone()).map(drop))?;
            sftp_publish(op, &tmp, name, if_absent)
        }
    }
}

/// A new name under `tmp/` for an SFTP object being written.
pub(super) fn sftp_temp_name() -> String {
    format!("tmp/{}.tmp", uuid::Uuid::new_v4())
}

/// Renames the whole SFTP object `tmp` to `name`; `tmp` is deleted if that fails.
pub(super) fn sftp_publish(
    op: &Operator,
    tmp: &str,
    name: &str,
    if_absent: bool,
) -> io::Result<()> {
    let dir = parent_dir(name);
    if !dir.is_empty() {
        retry(|| op.create_dir(&dir))?;
    }
    // sftp-server's plain rename refuses an existing target; replacing then
    // takes a delete first (a reader between the two sees no object, never
    // a torn one).
    let renamed = retry(|| op.rename(tmp, name));
    let renamed = match renamed {
        Err(_) if !if_absent && retry(|| op.stat(name)).is_ok() => {
            retry(|| op.delete(name))?;
            retry(|| op.rename(tmp, name))
        }
        other => other,
    };
    if renamed.is_err() {
        let _ = op.delete(tmp);
    }
    renamed
}

/// `a/b/c` → `a/b/`; the top directory for a top-level name.
fn parent_dir(name: &str) -> String {
    name.rsplit_once('/')
        .map_or(String::new(), |(d, _)| format!("{d}/"))
}

fn timeouts() -> opendal::layers::TimeoutLayer {
    opendal::layers::TimeoutLayer::new()
        .with_timeout(REQUEST_TIMEOUT)
        .with_io_timeout(IO_TIMEOUT)
}

impl Storage for RemoteStorage {
    fn location(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("{}/{name}", self.base))
    }

    fn create(&self) -> io::Result<()> {
        if self.kind == Kind::Sftp {
            for d in ["packs/", "index/", "images/", "tmp/", "locks/"] {
                retry(|| self.op.create_dir(d))?;
            }
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let entries = retry(|| {
            self.op.list_options(
                prefix,
                ListOptions {
                    recursive: true,
                    ..Default::default()
                },
            )
        });
        let entries = match entries {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(entries
            .into_iter()
            .filter(|e| !e.metadata().is_dir() && !e.path().ends_with('/'))
            .map(|e| (e.path().to_string(), e.metadata().content_length()))
            .collect())
    }

    fn stat(&self, name: &str) -> io::Result<Option<ObjectInfo>> {
        match retry(|| self.op.stat(name)) {
            Ok(m) => Ok(Some(ObjectInfo {
                len: m.content_length(),
                modified: m.last_modified().map(std::time::SystemTime::from),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn get(&self, name: &str, max: u64) -> io::Result<Vec<u8>> {
        let len = self
            .stat(name)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such object"))?
            .len;
        if len > max {
            return Err(super::too_big(len, max));
        }
        let data = retry(|| self.op.read(name))?.to_vec();
        if data.len() as u64 > max {
            return Err(super::too_big(data.len() as u64, max));
        }
        Ok(data)
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn ObjectReader>> {
        // The check up front lets a restore name every missing pack before it writes.
        if self.stat(name)?.is_none() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such object"));
        }
        Ok(Arc::new(RemoteReader {
            op: self.op.clone(),
            name: name.to_string(),
            s3: self.uploads.clone().map(|c| (c, self.rt.clone())),
        }))
    }

    fn put(&self, name: &str, data: &[u8], mode: PutMode) -> io::Result<()> {
        let if_absent = mode == PutMode::IfAbsent;
        if if_absent && self.stat(name)?.is_some() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        // Conditional PUT closes the race where the store has it; elsewhere the
        // check above is all there is (lock objects, see lock.rs).
        let conditional = if_absent && self.op.info().full_capability().write_with_if_none_match;
        let data = Buffer::from(data.to_vec());
        write_whole(&self.op, self.kind, name, data, conditional)
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        match retry(|| self.op.delete(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn writer(&self) -> io::Result<Box<dyn ObjectWriter>> {
        // Reserved once (untouched pages cost no memory): growing by doubling copied
        // the pack several times and briefly held two copies of it.
        let reserve = self
            .pack_upload()
            .max_pack
            .unwrap_or(REMOTE_PACK_SIZE)
            .saturating_add(RESERVE_SLACK);
        Ok(Box::new(BufferWriter {
            op: self.op.clone(),
            kind: self.kind,
            data: Vec::with_capacity(usize::try_from(reserve).unwrap_or(0)),
        }))
    }

    fn named_writer(&self, name: &str) -> io::Result<Box<dyn ObjectWriter>> {
        let w = super::remote_stream::StreamWriter::start(
            &self.aop,
            &self.op,
            self.rt.handle().clone(),
            self.kind,
            name,
        )?;
        Ok(Box::new(w))
    }

    fn clear_partial(&self) -> io::Result<usize> {
        let mut n = 0;
        for (name, _) in self.list("tmp/")? {
            self.delete(&name)?;
            n += 1;
        }
        Ok(n)
    }

    fn unfinished_uploads(&self) -> io::Result<Option<Vec<UnfinishedUpload>>> {
        self.uploads.as_ref().map(|c| c.list(&self.rt)).transpose()
    }

    fn upload_bytes(&self, u: &UnfinishedUpload) -> io::Result<u64> {
        match &self.uploads {
            Some(c) => c.bytes(&self.rt, u),
            None => Ok(0),
        }
    }

    fn abort_upload(&self, u: &UnfinishedUpload) -> io::Result<()> {
        match &self.uploads {
            Some(c) => c.abort(&self.rt, u),
            None => Ok(()),
        }
    }

    fn is_local(&self) -> bool {
        false
    }

    fn pack_upload(&self) -> PackUpload {
        // Measurement knobs (docs/BENCH.md): IRONCLONE_REMOTE_PACK_MIB, IRONCLONE_REMOTE_PUTS.
        let knob = |name: &str| {
            env(name)
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|&v| v > 0)
        };
        PackUpload {
            max_pack: Some(
                knob("IRONCLONE_REMOTE_PACK_MIB")
                    .map_or(REMOTE_PACK_SIZE, |m| m.saturating_mul(1 << 20)),
            ),
            parallel: knob("IRONCLONE_REMOTE_PUTS")
                .map_or(REMOTE_PUTS, |n| usize::try_from(n).unwrap_or(REMOTE_PUTS)),
        }
    }
}

/// Room past `max_pack` for the record that crosses it (a frame's stored bytes are
/// at most twice the 16 MiB chunk limit).
const RESERVE_SLACK: u64 = 33 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_cause_is_named_once_and_temporary_is_kept() {
        let same = Error::new(ErrorKind::Unexpected, "read/flush task failed")
            .set_source(io::Error::other("read/flush task failed"))
            .set_temporary();
        let e = to_io(same, 1);
        assert_eq!(e.to_string(), "Unexpected: read/flush task failed");
        assert!(super::super::is_temporary(&e));
        let other = Error::new(ErrorKind::NotFound, "stat").set_source(io::Error::other("no key"));
        let e = to_io(other, 3);
        assert_eq!(
            e.to_string(),
            "NotFound: stat: no key (gave up after 3 attempts)"
        );
        assert!(!super::super::is_temporary(&e));
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
