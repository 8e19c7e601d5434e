//! The real "Deploy to many machines": the same library calls as `ironclone deploy`
//! (`deploy::sender::build_stream` and `serve_watched`), and, when asked, the same
//! boot server as `serve-boot --mode run` with the client command on the kernel line.
//! Their news is turned into the live screen's data.

use super::{open_repository, Unlocked};
use crate::deploy::report;
use crate::deploy::sender::{self, ClientRow, Outcome, SendOptions, SenderPhase, SenderStatus};
use crate::deploy::target::TargetRule;
use crate::netboot::serve::{prepare, DhcpChoice, ServeOptions};
use crate::netboot::{interface_ipv4, BootMode};
use crate::tui::deploy_model::{
    DeployEvent, DeployLive, DeployRequest, DeployResult, IfaceView, LiveClient, LivePhase,
    ResultRow, TargetChoice,
};
use crate::tui::services::ServiceError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The control port `ironclone deploy` uses by default.
const PORT: u16 = 9200;

type Events = Arc<dyn Fn(DeployEvent) + Send + Sync>;

/// Every interface but loopback, with its IPv4 address when it has one.
pub fn interfaces() -> Vec<IfaceView> {
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return Vec::new();
    };
    let mut out: Vec<IfaceView> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .map(|name| IfaceView {
            addr: interface_ipv4(&name)
                .ok()
                .map(|n| format!("{}/{}", n.addr, n.prefix)),
            name,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

pub fn start(unlocked: Unlocked, req: DeployRequest, cancel: Arc<AtomicBool>, events: Events) {
    std::thread::spawn(move || {
        let end = run(&unlocked, &req, &cancel, &events);
        events(DeployEvent::Done(end));
    });
}

fn run(
    unlocked: &Unlocked,
    req: &DeployRequest,
    cancel: &AtomicBool,
    events: &Events,
) -> Result<DeployResult, ServiceError> {
    let repo = open_repository(unlocked, &req.repo)?;
    let path = std::env::temp_dir().join(format!("ironclone-deploy-{}.stream", std::process::id()));
    let _cleanup = RemoveOnDrop(path.clone());
    let stream = sender::build_stream(&repo, &req.image, &path)
        .map_err(|e| ServiceError::Plain(format!("building the stream of {}: {e}", req.image)))?;
    if cancel.load(Ordering::SeqCst) {
        return Err(ServiceError::Cancelled(
            "The deploy was cancelled before any client was served.".into(),
        ));
    }
    let boot_text = req.serve_boot.as_ref().map(|i| {
        format!(
            "network boot on {} ({})",
            i.name,
            i.addr.as_deref().unwrap_or_default()
        )
    });
    // Kept until the deploy ends: dropping it stops dnsmasq.
    let _boot = match &req.serve_boot {
        None => None,
        Some(i) => Some(start_boot(&i.name, &req.target)?),
    };
    let iface = req.serve_boot.as_ref().map(|i| i.name.clone());
    let opts = SendOptions {
        clients: req.clients,
        min_wait: req.min_wait,
        max_wait: req.max_wait,
        port: PORT,
        interface: iface.clone(),
        report_timeout: Duration::from_secs(3600),
        retries_until_drop: 30,
        max_bitrate: None,
        dead_after: Duration::from_secs(90),
    };
    let tx_start = iface.as_deref().and_then(tx_bytes);
    let live = Mutex::new(DeployLive {
        phase: LivePhase::Waiting,
        stream_bytes: stream.bytes,
        bytes_sent: None,
        clients: Vec::new(),
        boot: boot_text,
        last_line: String::new(),
    });
    let tell = |change: &dyn Fn(&mut DeployLive)| {
        let copy = {
            let mut l = live.lock().unwrap_or_else(|p| p.into_inner());
            change(&mut l);
            if cancel.load(Ordering::SeqCst) {
                l.phase = LivePhase::Cancelling;
            }
            l.bytes_sent = tx_start
                .zip(iface.as_deref().and_then(tx_bytes))
                .map(|(a, b)| b.saturating_sub(a));
            l.clone()
        };
        events(DeployEvent::Live(copy));
    };
    let log = |line: String| tell(&|l: &mut DeployLive| l.last_line = line.clone());
    let watch = |st: &SenderStatus| {
        tell(&|l: &mut DeployLive| {
            l.phase = match st.phase {
                SenderPhase::Waiting => LivePhase::Waiting,
                SenderPhase::Sending => LivePhase::Sending,
                SenderPhase::Reports => LivePhase::Reports,
            };
            l.clients = st.rows.iter().map(|r| live_client(r, st.phase)).collect();
        })
    };
    let rep = sender::serve_watched(&stream, &req.image, &opts, cancel, &log, &watch)
        .map_err(|e| ServiceError::Plain(e.to_string()))?;
    let hint = report::finish_hint(&req.repo.display().to_string(), &req.image);
    let count = report::table_lines(&rep, stream.bytes, &hint)
        .pop()
        .unwrap_or_default();
    Ok(DeployResult {
        rows: rep
            .rows
            .iter()
            .map(|r| {
                let (disk, size) = report::disk_text(r);
                let (result, message) = report::result_text(&r.outcome, &hint);
                ResultRow {
                    addr: r.addr.to_string(),
                    disk,
                    size,
                    result: result.into(),
                    seconds: r.seconds,
                    written: r.bytes_written,
                    message,
                }
            })
            .collect(),
        count,
        all_ok: rep.all_ok(),
        cancelled: rep.cancelled,
    })
}

/// A registered client with no report yet is wherever the deploy is.
fn live_client(r: &ClientRow, phase: SenderPhase) -> LiveClient {
    let (disk, size) = report::disk_text(r);
    let state = match &r.outcome {
        Outcome::Ok => "ok",
        Outcome::Failed(_) => "FAILED",
        Outcome::Refused(_) => "REFUSED",
        Outcome::Cancelled(_) => "CANCELLED",
        Outcome::Missing(m) if m == sender::NO_REPORT_YET => match phase {
            SenderPhase::Waiting => "joined",
            SenderPhase::Sending => "receiving",
            SenderPhase::Reports => "restoring",
        },
        Outcome::Missing(_) => "MISSING",
    };
    LiveClient {
        addr: r.addr.to_string(),
        disk,
        size,
        state: state.into(),
    }
}

/// `serve-boot --mode run` on `iface` with the client command, from the medium this
/// live system booted from; dnsmasq's messages are kept off the screen.
fn start_boot(
    iface: &str,
    target: &TargetChoice,
) -> Result<crate::netboot::serve::BootServer, ServiceError> {
    let net = interface_ipv4(iface).map_err(|e| ServiceError::Plain(e.to_string()))?;
    let rule = match target {
        TargetChoice::Auto => TargetRule::Auto,
        TargetChoice::Largest => TargetRule::Largest,
        TargetChoice::Device(d) => TargetRule::Path(PathBuf::from(d)),
    };
    let o = ServeOptions {
        interface: iface.to_string(),
        root: None,
        dhcp: DhcpChoice::Proxy,
        mode: BootMode::Run,
        menu_timeout: 3,
        append: crate::deploy::client_command(
            &net.addr.to_string(),
            PORT,
            &rule,
            crate::deploy::CLIENT_SCREEN,
        ),
        run_dir: PathBuf::from("/run/ironclone/serve-boot"),
    };
    let boot_err = |e: crate::netboot::NetbootError| {
        ServiceError::Plain(format!("serving network boot on {iface}: {e}"))
    };
    prepare(&o).map_err(boot_err)?.start(true).map_err(boot_err)
}

/// What the interface has sent (its kernel counter), to show the stream going out.
fn tx_bytes(iface: &str) -> Option<u64> {
    let p = format!("/sys/class/net/{iface}/statistics/tx_bytes");
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
