//! The receiving side of `deploy`: registers with the sender, receives the multicast
//! stream with udpcast's `udp-receiver` into a spool repository (RAM on the live
//! system), then runs the normal restore path on its own disk (its own plan for its
//! size, shrink or grow, boot repair, read-back verify) and reports back.
//!
//! The spool is a whole repository rather than a direct write to the disk because the
//! restore needs the manifest (last in the stream) to plan, and needs to read chunks
//! in its own order (shrinks are staged first); so nothing is written to the disk
//! before the whole stream has arrived and checked out.

use super::protocol::{self, Hello, Report, Welcome, PROTOCOL};
use super::stream::{Decoder, Item};
use super::target::{self, Chosen, TargetRule};
use super::DeployError;
use crate::device::{open_path, Access, BlockDevice};
use crate::imaging::{plan_restore, restore_disk, DiskRestoreOptions, RestorePlanOptions};
use crate::plan::LayoutMode;
use crate::progress::Progress;
use crate::repo::transfer::{self, SpoolWriter};
use crate::repo::Repository;
use std::io::{BufReader, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// HOST:PORT of the sender.
    pub server: String,
    pub target: TargetRule,
    /// A disk with data may be overwritten (`ironclone.erase=any`).
    pub erase_any: bool,
    /// Where the spool repository is made (a tmpfs on the live system).
    pub spool_dir: PathBuf,
    pub interface: Option<String>,
    /// How long to keep trying to reach the sender (it may start after the clients).
    pub connect_timeout: Duration,
    pub new_ids: bool,
    pub verify: bool,
    pub nvram: bool,
    /// Seconds a client may still be receiving after the sender says the stream has
    /// ended; then it was dropped (or joined late) and stops.
    pub late_grace: Duration,
}

/// What the client did, as reported.
#[derive(Clone, Debug)]
pub struct ClientResult {
    pub target: Option<Chosen>,
    pub report: Report,
}

/// Where a client is, for its console's "waiting for the server" screen.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientState {
    /// Trying to reach the sender.
    Connecting,
    /// Registered; the disk chosen (or why none was), waiting for the transfer.
    Waiting {
        image: String,
        stream_bytes: u64,
        disk: Result<protocol::DiskInfo, String>,
    },
    /// Stream bytes decoded so far.
    Receiving { bytes: u64 },
    /// The restore runs (its own progress goes through `Progress`).
    Restoring,
    /// Reported to the sender.
    Done { ok: bool, message: String },
}

/// Registers, receives, restores and reports; the report is sent whatever happens
/// (unless the sender cannot be reached at all).
pub fn run(
    opts: &ClientOptions,
    progress: &dyn Progress,
    log: &dyn Fn(String),
) -> Result<ClientResult, DeployError> {
    run_watched(opts, progress, log, &|_| {})
}

/// `run`, telling `watch` each state it reaches (and the received bytes as they come).
pub fn run_watched(
    opts: &ClientOptions,
    progress: &dyn Progress,
    log: &dyn Fn(String),
    watch: &dyn Fn(ClientState),
) -> Result<ClientResult, DeployError> {
    let t = Instant::now();
    watch(ClientState::Connecting);
    let conn = connect(&opts.server, opts.connect_timeout)?;
    let mut w = conn.try_clone().map_err(|e| proto_io("connection", e))?;
    let mut r = BufReader::new(conn);
    let chosen = target::choose(&opts.target, opts.erase_any);
    let hello = Hello {
        protocol: PROTOCOL,
        version: env!("CARGO_PKG_VERSION").to_string(),
        disk: chosen.as_ref().ok().map(|c| c.info.clone()),
        refused: chosen.as_ref().err().map(|e| e.to_string()),
    };
    protocol::send(&mut w, &hello).map_err(|e| proto_io("registering", e))?;
    let welcome: Welcome = protocol::recv(&mut r)
        .map_err(|e| proto_io("waiting for the sender", e))?
        .ok_or_else(|| DeployError::Protocol("the sender closed the connection".into()))?;
    if let Ok(c) = &chosen {
        log(format!(
            "registered with {}: image {}, {} bytes to receive, target {}{}",
            opts.server,
            welcome.image,
            welcome.stream_bytes,
            c.info.describe(),
            if c.info.erased_data {
                " (holds data; erased as ironclone.erase=any allows)"
            } else {
                ""
            }
        ));
    }
    watch(ClientState::Waiting {
        image: welcome.image.clone(),
        stream_bytes: welcome.stream_bytes,
        disk: match &chosen {
            Ok(c) => Ok(c.info.clone()),
            Err(e) => Err(e.to_string()),
        },
    });
    let outcome = match (&chosen, &welcome.refused) {
        (Err(e), _) => Err(e.to_string()),
        (_, Some(why)) => Err(format!("the sender refused: {why}")),
        (Ok(c), None) => {
            let ended = watch_for_end(r);
            receive_and_restore(opts, &welcome, c, &ended, progress, log, watch)
                .map_err(|e| e.to_string())
        }
    };
    let report = match outcome {
        Ok((received, written, message)) => Report {
            ok: true,
            seconds: t.elapsed().as_secs_f64(),
            bytes_received: received,
            bytes_written: written,
            message,
        },
        Err(message) => Report {
            ok: false,
            seconds: t.elapsed().as_secs_f64(),
            bytes_received: 0,
            bytes_written: 0,
            message,
        },
    };
    protocol::send(&mut w, &report).map_err(|e| proto_io("reporting", e))?;
    watch(ClientState::Done {
        ok: report.ok,
        message: report.message.clone(),
    });
    Ok(ClientResult {
        target: chosen.ok(),
        report,
    })
}

/// What the sender said about the stream's end, set by a thread that reads the rest of
/// the control connection.
#[derive(Clone, Copy, Debug, Default)]
struct End {
    /// When the stream ended (or the sender went away).
    at: Option<Instant>,
    /// The sender cancelled the deploy: stop receiving now, no grace.
    cancelled: bool,
}

type Ended = std::sync::Arc<std::sync::Mutex<End>>;

fn watch_for_end(mut r: BufReader<TcpStream>) -> Ended {
    let ended: Ended = Default::default();
    let e = ended.clone();
    std::thread::spawn(move || {
        // The notice, or the connection closing (the sender is gone: nothing more will
        // come either), starts the grace period; a cancel ends it at once.
        let cancelled = loop {
            match protocol::recv::<protocol::Notice>(&mut r) {
                Ok(Some(n)) if n.cancelled => break true,
                Ok(Some(n)) if !n.stream_sent => continue,
                _ => break false,
            }
        };
        *e.lock().unwrap_or_else(|p| p.into_inner()) = End {
            at: Some(Instant::now()),
            cancelled,
        };
    });
    ended
}

fn proto_io(what: &str, e: std::io::Error) -> DeployError {
    DeployError::Io {
        what: format!("deploy control connection: {what}"),
        source: e,
    }
}

fn connect(server: &str, timeout: Duration) -> Result<TcpStream, DeployError> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect(server) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= deadline => {
                return Err(DeployError::Io {
                    what: format!("connecting to the deploy sender {server}"),
                    source: e,
                })
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Returns (bytes received, bytes written, summary).
fn receive_and_restore(
    opts: &ClientOptions,
    welcome: &Welcome,
    chosen: &Chosen,
    ended: &Ended,
    progress: &dyn Progress,
    log: &dyn Fn(String),
    watch: &dyn Fn(ClientState),
) -> Result<(u64, u64, String), DeployError> {
    check_room(&opts.spool_dir, welcome.stream_bytes)?;
    let spool = Spool::create(&opts.spool_dir)?;
    let repo_dir = spool.path().join("repo");
    let (repo, received) = receive(opts, welcome, &repo_dir, ended, watch)?;
    watch(ClientState::Restoring);
    log(format!(
        "received {received} bytes; restoring onto {}",
        chosen.info.describe()
    ));
    // The head only: the restore reads the chunk lists from a scratch file (the
    // staging room is counted from there: the head's lists are empty).
    let spilled = repo.load_spilled(&welcome.image)?;
    let manifest = &spilled.head;
    let dev = open_path(&chosen.path, Access::ReadWrite)?;
    let plan = plan_restore(
        manifest,
        dev.size(),
        dev.logical_sector_size(),
        &RestorePlanOptions {
            mode: LayoutMode::Proportional,
            sizes: Default::default(),
        },
    )?;
    // Shrinks, re-created filesystems and re-laid LVM PVs are staged in the spool's
    // scratch directory (RAM on the live system) before the disk is touched: their room
    // is checked now that the plan is known, and still before the first write.
    let staging = staging_bytes(&plan.parts, |area| spilled.area_bytes(area))?;
    if staging > 0 {
        check_room(spool.path(), staging).map_err(|e| match e {
            DeployError::NoRoom(m) => DeployError::NoRoom(format!(
                "staging this machine's shrunk or re-created partitions: {m}"
            )),
            other => other,
        })?;
    }
    let zeroed = std::fs::metadata(&chosen.path).is_ok_and(|m| {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        !m.file_type().is_block_device() && m.blocks() == 0
    });
    let ropts = DiskRestoreOptions {
        new_ids: opts.new_ids,
        verify_after: opts.verify,
        repair: true,
        nvram: opts.nvram,
        fallback: true,
        scratch_dir: spool.path().join("scratch"),
        target_is_zeroed: zeroed,
        luks_key: None,
    };
    let rep = restore_disk(&repo, &plan, &dev, &chosen.path, &ropts, progress)?;
    drop(dev);
    let summary = format!(
        "restored {} onto {}: {} bytes written, {} verified{}",
        rep.image,
        chosen.info.describe(),
        rep.bytes_written,
        rep.bytes_verified,
        if chosen.info.erased_data {
            "; the disk held data (ironclone.erase=any)"
        } else {
            ""
        }
    );
    Ok((received, rep.bytes_written, summary))
}

/// Bytes the restore stages off the disk for the plan's `parts`: each shrunk (or
/// re-laid LVM) area's data, and twice a re-created filesystem's (its new image and the
/// files copied out for it); `data` gives an area's bytes by its name.
pub fn staging_bytes<E>(
    parts: &[crate::imaging::PartTarget],
    data: impl Fn(&str) -> Result<u64, E>,
) -> Result<u64, E> {
    let mut n = 0u64;
    for p in parts {
        let staged = if p.recreate {
            data(&p.area)?.saturating_mul(2)
        } else if p.new_size != p.old_size && !p.grows() {
            data(&p.area)?
        } else {
            0
        };
        n = n.saturating_add(staged);
    }
    Ok(n)
}

/// Room for the spool: free space where it goes and, on a tmpfs, available RAM.
fn check_room(dir: &Path, need: u64) -> Result<(), DeployError> {
    // The packs hold the stream's bytes, plus index files and the spool's own slack.
    let need = need.saturating_add(need / 20).saturating_add(16 << 20);
    let room = crate::meminfo::room_in(dir).map_err(|e| DeployError::Io {
        what: format!("free space of {}", dir.display()),
        source: e.into(),
    })?;
    let (avail, in_ram) = (room.bytes, room.in_ram);
    if avail < need {
        return Err(DeployError::NoRoom(format!(
            "the stream needs {need} bytes of spool in {}, only {avail} are available{} \
             (restore this machine with `ironclone restore` from a share instead)",
            dir.display(),
            if in_ram { " (RAM: MemAvailable)" } else { "" }
        )));
    }
    Ok(())
}

/// Runs udp-receiver and decodes its output into a spool repository at `dir`.
fn receive(
    opts: &ClientOptions,
    welcome: &Welcome,
    dir: &Path,
    ended: &Ended,
    watch: &dyn Fn(ClientState),
) -> Result<(Repository, u64), DeployError> {
    let mut cmd = Command::new("udp-receiver");
    cmd.args(["--portbase", &welcome.portbase.to_string()])
        .args(["--nokbd", "--no-progress"]);
    if let Some(i) = &opts.interface {
        cmd.args(["--interface", i]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DeployError::Tool {
            tool: "udp-receiver".into(),
            what: format!("cannot start it (is udpcast installed?): {e}"),
        })?;
    let stderr = child.stderr.take();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    // The watchdog: udp-receiver still running `late_grace` after the sender's end means
    // this client was dropped from the multicast session (or joined after it started),
    // and udp-receiver would wait forever.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchdog = {
        let (done, dropped, ended) = (done.clone(), dropped.clone(), ended.clone());
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let grace = opts.late_grace;
        std::thread::spawn(move || {
            use std::sync::atomic::Ordering::SeqCst;
            while !done.load(SeqCst) {
                let end = *ended.lock().unwrap_or_else(|p| p.into_inner());
                if end.at.is_some_and(|t| end.cancelled || t.elapsed() > grace) {
                    dropped.store(true, SeqCst);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let decoded = match child.stdout.take() {
        Some(out) => {
            let mut out = BufReader::with_capacity(1 << 20, out);
            let d = decode(&mut out, welcome, dir, watch);
            if d.is_ok() {
                // Anything after the trailer is not ours; drained so udp-receiver can exit.
                let _ = std::io::copy(&mut out, &mut std::io::sink());
            }
            d
        }
        None => Err(DeployError::Protocol("udp-receiver has no output".into())),
    };
    let status = finish_child(&mut child, decoded.is_err());
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = watchdog.join();
    let cancelled = ended.lock().unwrap_or_else(|p| p.into_inner()).cancelled;
    if cancelled && decoded.is_err() {
        return Err(DeployError::Protocol(
            "cancelled: the deploy was cancelled on the sender; nothing was written to this disk"
                .into(),
        ));
    }
    if dropped.load(std::sync::atomic::Ordering::SeqCst) && decoded.is_err() {
        return Err(DeployError::Protocol(format!(
            "dropped: the sender ended the stream and this client was still missing data {} s later \
             (it joined late, or the sender dropped it for not answering)",
            opts.late_grace.as_secs()
        )));
    }
    let err = err_thread.join().unwrap_or_default();
    let tool_failed = |what: String| DeployError::Tool {
        tool: "udp-receiver".into(),
        what: format!("{what}: {}", err.trim()),
    };
    match (decoded, status) {
        (Ok(v), Ok(s)) if s.success() => Ok(v),
        (Ok(_), Ok(s)) => Err(tool_failed(s.to_string())),
        (Ok(_), Err(e)) => Err(tool_failed(e.to_string())),
        (Err(e), _) => Err(e),
    }
}

/// Waits for udp-receiver; when decoding failed it is stopped first.
fn finish_child(child: &mut Child, kill: bool) -> std::io::Result<std::process::ExitStatus> {
    if kill {
        let _ = child.kill();
    }
    child.wait()
}

fn decode(
    r: impl Read,
    welcome: &Welcome,
    dir: &Path,
    watch: &dyn Fn(ClientState),
) -> Result<(Repository, u64), DeployError> {
    let (mut d, header) = Decoder::new(r)?;
    // A screen redraw per record would cost more than the record; every 4 MiB is plenty.
    // The header came: the transfer has started.
    let mut told = d.position();
    watch(ClientState::Receiving { bytes: told });
    if header.image != welcome.image {
        return Err(DeployError::Protocol(format!(
            "the stream carries image {:?}, the sender announced {:?}",
            header.image, welcome.image
        )));
    }
    let mut spool = SpoolWriter::create(dir, header.chunk_size)?;
    loop {
        let at = d.position();
        if at.saturating_sub(told) >= 4 << 20 {
            told = at;
            watch(ClientState::Receiving { bytes: at });
        }
        match d.next_item()? {
            Item::Record(rec) => spool
                .add(rec)
                .map_err(|e| DeployError::Spool { at, source: e })?,
            Item::Manifest(m) => {
                let json = transfer::manifest_json(&header.image, m)?;
                let at = d.position();
                let repo = spool
                    .finish(&header.image, &json)
                    .map_err(|e| DeployError::Spool { at, source: e })?;
                // Whatever udp-receiver still has is drained by its exit.
                return Ok((repo, d.position()));
            }
        }
    }
}

/// The spool directory, removed with everything in it when dropped (the RAM it holds
/// is the live system's).
struct Spool(PathBuf);

impl Spool {
    fn create(parent: &Path) -> Result<Spool, DeployError> {
        let dir = parent.join(format!("ironclone-deploy-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| DeployError::Io {
            what: format!("creating the spool {}", dir.display()),
            source: e,
        })?;
        Ok(Spool(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::staging_bytes;
    use crate::imaging::meta::PartitionMeta;
    use crate::imaging::PartTarget;
    use crate::probe::FsKind;
    use crate::usedmap::UsedMap;

    fn part(area: &str, kind: FsKind, old_size: u64, new_size: u64, recreate: bool) -> PartTarget {
        PartTarget {
            area: area.into(),
            meta: PartitionMeta::new(None, None, UsedMap::raw(old_size, 512, "")),
            kind,
            old_offset: 1 << 20,
            old_size,
            new_offset: 1 << 20,
            new_size,
            recreate,
        }
    }

    /// A shrunk area's data is staged once, a re-created one's twice; a kept or grown
    /// one is written in place, and a size change a filesystem cannot grow into is
    /// counted as a shrink (room asked for rather than run out of).
    #[test]
    fn staging_counts_shrunk_and_recreated_areas_only() {
        let data = |area: &str| -> Result<u64, ()> {
            Ok(match area {
                "p1" => 100,
                "p2" => 20,
                "p3" => 3,
                "p4" => 4000,
                "p5" => 50_000,
                _ => return Err(()),
            })
        };
        let parts = [
            part("p1", FsKind::Ext4, 8 << 20, 4 << 20, false),
            part("p2", FsKind::Fat32, 8 << 20, 8 << 20, true),
            part("p3", FsKind::Unknown, 8 << 20, 16 << 20, false),
            part("p4", FsKind::Ext4, 8 << 20, 16 << 20, false),
            part("p5", FsKind::Ext4, 8 << 20, 8 << 20, false),
        ];
        assert_eq!(staging_bytes(&parts, data), Ok(100 + 2 * 20 + 3));
        assert_eq!(staging_bytes(&parts[3..], data), Ok(0));
        let missing = [part("gone", FsKind::Ext4, 8 << 20, 4 << 20, false)];
        assert_eq!(staging_bytes(&missing, data), Err(()));
    }
}
