//! The sending side of `deploy`: builds the stream once, takes the clients'
//! registrations over TCP, hands the stream to udpcast's `udp-sender` (one multicast
//! transfer for all), then collects each client's report.
//!
//! When the transfer starts is udpcast's decision, with its own semantics
//! (`udp-sender(1)`): `--min-receivers N` starts as soon as N receivers are there,
//! `--max-wait S` starts after S seconds with at least one, `--min-wait S` waits at
//! least S seconds even when N are there. ironclone passes its options through
//! unchanged rather than running a second, subtly different, session logic.

use super::protocol::{self, DiskInfo, Hello, Notice, Report, Welcome, PROTOCOL};
use super::stream::{Counts, Encoder, Header};
use super::DeployError;
use crate::repo::{transfer, Repository};
use std::io::{BufReader, BufWriter};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the stream came out.
#[derive(Clone, Debug)]
pub struct StreamFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub counts: Counts,
}

/// Writes image `name`'s stream to `path` (records opened and checked by `transfer`).
pub fn build_stream(repo: &Repository, name: &str, path: &Path) -> Result<StreamFile, DeployError> {
    let io = |e: std::io::Error| DeployError::Io {
        what: format!("writing the stream {}", path.display()),
        source: e,
    };
    let f = std::fs::File::create(path).map_err(io)?;
    let header = Header {
        image: name.to_string(),
        chunk_size: repo.config().chunk_size,
    };
    let mut enc = Encoder::new(BufWriter::with_capacity(1 << 20, f), &header).map_err(io)?;
    let manifest = transfer::export_image(repo, name, |r| {
        enc.record(&r)
            .map_err(|e| crate::repo::RepoError::io(path)(e))
    })?;
    let bytes = transfer::manifest_bytes(&manifest)?;
    let (w, counts, len) = enc.finish(&bytes).map_err(io)?;
    w.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok(StreamFile {
        path: path.to_path_buf(),
        bytes: len,
        counts,
    })
}

#[derive(Clone, Debug)]
pub struct SendOptions {
    pub clients: u32,
    pub min_wait: Option<u32>,
    pub max_wait: Option<u32>,
    /// The TCP control port; udpcast uses `port + 2` and `port + 3`.
    pub port: u16,
    pub interface: Option<String>,
    /// How long to wait for reports once the stream is sent.
    pub report_timeout: Duration,
    /// udp-sender's --retries-until-drop: how soon a silent receiver is dropped.
    pub retries_until_drop: u32,
    /// udp-sender --max-bitrate (e.g. `500m`): leaves room on a shared network.
    pub max_bitrate: Option<String>,
    /// How long a registered client's machine may not answer at all (TCP keepalive,
    /// unacknowledged data) before it is listed as dropped: powered off, cable pulled.
    pub dead_after: Duration,
}

impl SendOptions {
    pub fn portbase(&self) -> Result<u16, DeployError> {
        self.port.checked_add(2).ok_or_else(|| {
            DeployError::Usage(format!(
                "--port {} leaves no room for udpcast's ports",
                self.port
            ))
        })
    }
}

/// How one client ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Ok,
    Failed(String),
    /// The client found no disk its rule lets it overwrite (none empty, a disk with
    /// data and no `ironclone.erase=any`...) and took no part: nothing was written.
    Refused(String),
    /// Registered but sent no report (late, dropped, killed).
    Missing(String),
    /// The deploy was cancelled on the sender before this client's report.
    Cancelled(String),
}

/// A registered client's outcome until its report comes.
pub const NO_REPORT_YET: &str = "registered, no report";

/// One line of the sender's table.
#[derive(Clone, Debug)]
pub struct ClientRow {
    pub addr: SocketAddr,
    pub version: String,
    pub disk: Option<DiskInfo>,
    pub outcome: Outcome,
    pub seconds: f64,
    pub bytes_received: u64,
    pub bytes_written: u64,
}

/// What `serve` saw.
#[derive(Clone, Debug)]
pub struct DeployReport {
    pub rows: Vec<ClientRow>,
    pub udp_sender_seconds: f64,
    /// The deploy was cancelled (the cancel flag was set) before every client reported.
    pub cancelled: bool,
}

impl DeployReport {
    pub fn all_ok(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.outcome == Outcome::Ok)
    }
}

/// Where a deploy is, for a live view (the TUI's deploy screen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SenderPhase {
    /// udp-sender runs and waits for its receivers (`--clients`, the waits).
    Waiting,
    /// udp-sender said the transfer started.
    Sending,
    /// The stream is sent; the clients restore and report.
    Reports,
}

/// A live view of the sender: the phase and every registered client so far.
#[derive(Clone, Debug)]
pub struct SenderStatus {
    pub phase: SenderPhase,
    pub rows: Vec<ClientRow>,
}

struct Shared {
    phase: SenderPhase,
    rows: Vec<ClientRow>,
    /// Connections still waiting for their report.
    open: usize,
    sent: bool,
    /// The registered clients' connections, to tell them the stream has ended.
    conns: Vec<TcpStream>,
    /// Every session's connection, cut when the sender stops waiting (cancel, the
    /// report deadline), so no session thread outlives the deploy.
    all: Vec<TcpStream>,
    /// Set when the sender stops waiting: what a client without a report is then.
    ending: Option<Outcome>,
    cancelled: bool,
}

impl Shared {
    /// Ends every session still waiting for its report; they record `ending`.
    fn cut(&mut self, ending: Outcome) {
        self.ending = Some(ending);
        for c in self.all.drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// What a client without a report is when the deploy is cancelled.
pub const CANCELLED_NO_REPORT: &str =
    "cancelled on the sender before this client reported (nothing is written to a disk before the whole stream is in)";

/// Serves `stream` to the clients: registrations, one `udp-sender` run, reports.
/// `log` gets one line per event (a client registered, the transfer ended...).
/// Setting `cancel` stops the deploy cleanly: udp-sender is stopped (SIGTERM, then
/// SIGKILL), the registered clients are told (they stop receiving and report), and the
/// report lists every client without a report as cancelled.
pub fn serve(
    stream: &StreamFile,
    image: &str,
    opts: &SendOptions,
    cancel: &AtomicBool,
    log: &(dyn Fn(String) + Sync),
) -> Result<DeployReport, DeployError> {
    serve_watched(stream, image, opts, cancel, log, &|_| {})
}

/// `serve`, and `watch` gets the whole status each time it changes (a client joined or
/// reported, the transfer started or ended).
pub fn serve_watched(
    stream: &StreamFile,
    image: &str,
    opts: &SendOptions,
    cancel: &AtomicBool,
    log: &(dyn Fn(String) + Sync),
    watch: &(dyn Fn(&SenderStatus) + Sync),
) -> Result<DeployReport, DeployError> {
    let portbase = opts.portbase()?;
    let listener = TcpListener::bind(("0.0.0.0", opts.port)).map_err(|e| DeployError::Io {
        what: format!("listening on TCP port {}", opts.port),
        source: e,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| DeployError::Io {
            what: "listener".into(),
            source: e,
        })?;
    let shared = Arc::new(Mutex::new(Shared {
        phase: SenderPhase::Waiting,
        rows: Vec::new(),
        open: 0,
        sent: false,
        conns: Vec::new(),
        all: Vec::new(),
        ending: None,
        cancelled: false,
    }));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let welcome = Welcome {
        protocol: PROTOCOL,
        image: image.to_string(),
        stream_bytes: stream.bytes,
        portbase,
        refused: None,
    };
    let emit = {
        let shared = shared.clone();
        move || {
            let st = {
                let g = lock(&shared);
                SenderStatus {
                    phase: g.phase,
                    rows: g.rows.clone(),
                }
            };
            watch(&st);
        }
    };
    let emit = &emit;
    emit();
    std::thread::scope(|s| -> Result<f64, DeployError> {
        let accept = {
            let shared = shared.clone();
            let stop = stop.clone();
            let listener = &listener;
            let welcome = &welcome;
            let timeout = opts.report_timeout;
            let dead_after = opts.dead_after;
            s.spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, addr)) => {
                            let shared = shared.clone();
                            let w = welcome.clone();
                            s.spawn(move || {
                                let times = (timeout, dead_after);
                                client_session(conn, addr, w, &shared, times, log, emit)
                            });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => log(format!("accepting a client: {e}")),
                    }
                }
            })
        };
        let t = Instant::now();
        let started = || {
            lock(&shared).phase = SenderPhase::Sending;
            emit();
        };
        let sent = super::udpcast::run_udp_sender(stream, opts, portbase, cancel, log, &started);
        let udp_secs = t.elapsed().as_secs_f64();
        let cancelled = cancel.load(Ordering::SeqCst);
        {
            let mut g = lock(&shared);
            g.sent = true;
            g.cancelled = cancelled;
            g.phase = SenderPhase::Reports;
            let notice = Notice {
                stream_sent: !cancelled,
                cancelled,
            };
            for mut c in g.conns.drain(..) {
                // A client already gone is found out by its session.
                let _ = protocol::send(&mut c, &notice);
            }
        }
        let end = |ending: Outcome| {
            lock(&shared).cut(ending);
            stop.store(true, Ordering::Relaxed);
        };
        if cancelled {
            log("cancelled: udp-sender stopped; the clients are told to stop receiving".into());
            emit();
            // They stop their udp-receiver and report within moments (their report says
            // why); a client that does not is cut off.
            wait_reports(&shared, Instant::now() + Duration::from_secs(5), None);
            end(Outcome::Cancelled(CANCELLED_NO_REPORT.into()));
            let _ = accept.join();
            return Ok(udp_secs);
        }
        if let Err(e) = sent {
            end(Outcome::Missing("dropped: udp-sender failed".into()));
            let _ = accept.join();
            return Err(e);
        }
        emit();
        log(format!(
            "stream sent in {udp_secs:.1} s; waiting for the clients' reports"
        ));
        // New registrations are still answered (refused, as late) until the reports are in.
        let deadline = Instant::now() + opts.report_timeout;
        if wait_reports(&shared, deadline, Some(cancel)) {
            lock(&shared).cancelled = true;
            log("cancelled: no longer waiting for the clients' reports (they go on on their own)".into());
            end(Outcome::Cancelled(
                "cancelled on the sender while this client restored: it goes on on its own; its console shows how it ended".into(),
            ));
        } else {
            end(Outcome::Missing("late: no report within --report-timeout".into()));
        }
        let _ = accept.join();
        Ok(udp_secs)
    })
    .map(|udp_secs| {
        // Every session thread has ended (the scope waited for them): the rows are final.
        let g = lock(&shared);
        DeployReport {
            rows: g.rows.clone(),
            udp_sender_seconds: udp_secs,
            cancelled: g.cancelled,
        }
    })
}

/// Waits until every open session has its report or `deadline`; true when `cancel`
/// was set meanwhile.
fn wait_reports(shared: &Mutex<Shared>, deadline: Instant, cancel: Option<&AtomicBool>) -> bool {
    while lock(shared).open > 0 && Instant::now() < deadline {
        if cancel.is_some_and(|c| c.load(Ordering::SeqCst)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One client's registration and report; its row is added at registration, as
/// `Missing`, and replaced by its report.
fn client_session(
    conn: TcpStream,
    addr: SocketAddr,
    mut welcome: Welcome,
    shared: &Mutex<Shared>,
    (timeout, dead_after): (Duration, Duration),
    log: &(dyn Fn(String) + Sync),
    emit: &(dyn Fn() + Sync),
) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    if let Err(e) = watch_liveness(&conn, dead_after) {
        // Then only --report-timeout ends the wait for a machine that vanished.
        log(format!("{addr}: cannot set TCP keepalive: {e}"));
    }
    let Ok(w) = conn.try_clone() else { return };
    let mut w = w;
    let mut r = BufReader::new(conn);
    let hello: Hello = match protocol::recv(&mut r) {
        Ok(Some(h)) => h,
        Ok(None) => return,
        Err(e) => {
            log(format!("{addr}: not a deploy client: {e}"));
            return;
        }
    };
    let idx = {
        let mut g = lock(shared);
        if g.cancelled {
            welcome.refused = Some("the deploy was cancelled on the sender".into());
        } else if g.sent {
            welcome.refused = Some("joined late: the stream was already sent".into());
        } else if hello.protocol != PROTOCOL {
            welcome.refused = Some(format!(
                "protocol {} (client {}), the sender speaks {PROTOCOL}",
                hello.protocol, hello.version
            ));
        }
        // The client's own refusal (its disk rule) comes first: it would take no part
        // whatever the sender said.
        let outcome = match (&hello.refused, &welcome.refused) {
            (Some(w), _) => Outcome::Refused(w.clone()),
            (None, Some(w)) => Outcome::Failed(w.clone()),
            (None, None) => Outcome::Missing(NO_REPORT_YET.into()),
        };
        if g.ending.is_none() {
            if let Ok(c) = w.try_clone() {
                g.all.push(c);
            }
        }
        g.rows.push(ClientRow {
            addr,
            version: hello.version.clone(),
            disk: hello.disk.clone(),
            outcome,
            seconds: 0.0,
            bytes_received: 0,
            bytes_written: 0,
        });
        g.open += 1;
        g.rows.len() - 1
    };
    emit();
    log(format!(
        "{addr}: registered ({}, ironclone {}){}",
        hello
            .disk
            .as_ref()
            .map_or("no disk".into(), DiskInfo::describe),
        hello.version,
        hello
            .refused
            .as_ref()
            .map_or(String::new(), |w| format!(": refused: {w}"))
    ));
    let outcome = (|| -> Result<Report, String> {
        {
            // Under the lock: the stream cannot end between the welcome and the listing.
            let mut g = lock(shared);
            protocol::send(&mut w, &welcome).map_err(|e| format!("dropped: {e}"))?;
            if welcome.refused.is_none() {
                if let Ok(c) = w.try_clone() {
                    g.conns.push(c);
                }
            }
        }
        let _ = r.get_ref().set_read_timeout(Some(timeout));
        match protocol::recv::<Report>(&mut r) {
            Ok(Some(rep)) => Ok(rep),
            Ok(None) => Err("dropped: the connection closed before its report".into()),
            // SO_RCVTIMEO ran out: the machine answers, its report did not come.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                Err("late: no report within --report-timeout".into())
            }
            // Keepalive or TCP_USER_TIMEOUT: the machine itself is gone.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(format!(
                "dropped: its machine stopped answering for {} s (powered off or off the network)",
                dead_after.as_secs()
            )),
            Err(e) => Err(format!("dropped: {e}")),
        }
    })();
    let mut g = lock(shared);
    let (cancelled, ending) = (g.cancelled, g.ending.clone());
    if let Some(row) = g.rows.get_mut(idx) {
        match outcome {
            Ok(rep) => {
                row.outcome = if rep.ok {
                    Outcome::Ok
                } else if matches!(row.outcome, Outcome::Refused(_)) {
                    Outcome::Refused(rep.message.clone())
                } else if cancelled {
                    Outcome::Cancelled(rep.message.clone())
                } else {
                    Outcome::Failed(rep.message.clone())
                };
                row.seconds = rep.seconds;
                row.bytes_received = rep.bytes_received;
                row.bytes_written = rep.bytes_written;
                log(format!(
                    "{addr}: {} ({:.1} s): {}",
                    // The table's word: a refused or cancelled client is not "FAILED".
                    super::report::result_text(&row.outcome, "").0,
                    rep.seconds,
                    rep.message
                ));
            }
            Err(why) => {
                if matches!(row.outcome, Outcome::Missing(_)) {
                    // Cut off by the sender itself (cancel, deadline): that is the reason.
                    row.outcome = ending.unwrap_or(Outcome::Missing(why.clone()));
                }
                log(format!("{addr}: {why}"));
            }
        }
    }
    g.open = g.open.saturating_sub(1);
    drop(g);
    emit();
}

/// A client machine that vanishes (powered off, cable pulled) closes nothing: without
/// this its session would wait the whole --report-timeout, and data sent to it (the
/// end-of-stream notice) would be retransmitted for the kernel's ~15 minutes. Keepalive
/// probes after a third of `dead_after` idle, and TCP_USER_TIMEOUT for unacknowledged
/// data, end the read with ETIMEDOUT after about `dead_after`. A client busy restoring
/// still answers (its kernel does), so a slow client is never cut.
fn watch_liveness(conn: &TcpStream, dead_after: Duration) -> nix::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    const PROBES: u32 = 4;
    let secs = u32::try_from(dead_after.as_secs())
        .unwrap_or(u32::MAX)
        .max(PROBES);
    let idle = (secs / 3).max(1);
    let interval = (secs.saturating_sub(idle) / PROBES).max(1);
    setsockopt(conn, sockopt::KeepAlive, &true)?;
    setsockopt(conn, sockopt::TcpKeepIdle, &idle)?;
    setsockopt(conn, sockopt::TcpKeepInterval, &interval)?;
    setsockopt(conn, sockopt::TcpKeepCount, &PROBES)?;
    setsockopt(conn, sockopt::TcpUserTimeout, &secs.saturating_mul(1000))
}
