//! The demo's deploy: three made-up classroom machines join, receive one stream, and
//! two report ok while the third drops out, so every deploy screen has something real
//! to show.

use crate::tui::deploy_model::{
    DeployEvent, DeployLive, DeployRequest, DeployResult, IfaceView, LiveClient, LivePhase,
    ResultRow,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub fn interfaces() -> Vec<IfaceView> {
    vec![
        IfaceView {
            name: "enp3s0".into(),
            addr: Some("192.168.10.5/24".into()),
        },
        IfaceView {
            name: "wlp2s0".into(),
            addr: None,
        },
    ]
}

const STREAM: u64 = 19_412_883_456;

fn client(n: u8, model: &str, serial: &str, size: u64, state: &str) -> LiveClient {
    LiveClient {
        addr: format!("192.168.10.{}:4{n}112", 20 + n),
        disk: format!("/dev/sda {model} {serial}"),
        size,
        state: state.into(),
    }
}

/// The live states a demo deploy goes through, then its table.
pub fn script(req: &DeployRequest) -> (Vec<DeployLive>, DeployResult) {
    let boot = req.serve_boot.as_ref().map(|i| {
        format!(
            "network boot on {} ({})",
            i.name,
            i.addr.as_deref().unwrap_or_default()
        )
    });
    let live = |phase, sent, clients: Vec<LiveClient>, line: &str| DeployLive {
        phase,
        stream_bytes: STREAM,
        bytes_sent: sent,
        clients,
        boot: boot.clone(),
        last_line: line.into(),
    };
    let a = |s| client(1, "WDC_WD5000AAKX", "WD-WX31A", 500_107_862_016, s);
    let b = |s| client(2, "Samsung_SSD_870", "S6PNNX0R4", 1_000_204_886_016, s);
    let c = |s| client(3, "ST1000DM010", "Z9A1QK2", 1_000_204_886_016, s);
    let steps = vec![
        live(LivePhase::Waiting, None, vec![], "udp-sender: waiting for 3 receiver(s) on port 9202"),
        live(
            LivePhase::Waiting,
            None,
            vec![a("joined"), b("joined")],
            "192.168.10.22:42112: registered (/dev/sda Samsung_SSD_870 S6PNNX0R4, ironclone 0.1.0)",
        ),
        live(
            LivePhase::Sending,
            Some(7_813_500_000),
            vec![a("receiving"), b("receiving"), c("receiving")],
            "udp-sender: Starting transfer: file[/tmp/ironclone-deploy.stream] participants[3]",
        ),
        live(
            LivePhase::Reports,
            Some(20_104_221_847),
            vec![a("ok"), b("restoring"), c("MISSING")],
            "192.168.10.23:43112: dropped: its machine stopped answering for 90 s (powered off or off the network)",
        ),
    ];
    let row = |c: LiveClient, result: &str, secs: f64, written: u64, message: &str| ResultRow {
        addr: c.addr,
        disk: c.disk,
        size: c.size,
        result: result.into(),
        seconds: secs,
        written,
        message: message.into(),
    };
    let hint = crate::deploy::report::finish_hint(&req.repo.display().to_string(), &req.image);
    let result = DeployResult {
        rows: vec![
            row(a(""), "ok", 612.4, 41_203_482_624, ""),
            row(b(""), "ok", 598.0, 41_203_482_624, ""),
            row(
                c(""),
                "MISSING",
                0.0,
                0,
                &format!("dropped: its machine stopped answering for 90 s (powered off or off the network); {hint}"),
            ),
        ],
        count: format!("2 of 3 client(s) ok; stream {STREAM} bytes sent once in 431.0 s"),
        all_ok: false,
        cancelled: false,
    };
    (steps, result)
}

/// The table of a demo deploy cancelled while its clients received: every one
/// CANCELLED, with the unicast-finish hint.
pub fn cancelled(req: &DeployRequest, last: &DeployLive) -> DeployResult {
    let hint = crate::deploy::report::finish_hint(&req.repo.display().to_string(), &req.image);
    let rows: Vec<ResultRow> = last
        .clients
        .iter()
        .map(|c| ResultRow {
            addr: c.addr.clone(),
            disk: c.disk.clone(),
            size: c.size,
            result: "CANCELLED".into(),
            seconds: 0.0,
            written: 0,
            message: format!("{}; {hint}", crate::deploy::sender::CANCELLED_NO_REPORT),
        })
        .collect();
    DeployResult {
        count: format!(
            "deploy CANCELLED: 0 of {} client(s) ok; stream {STREAM} bytes (cancelled) in 12.0 s",
            rows.len()
        ),
        rows,
        all_ok: false,
        cancelled: true,
    }
}

/// Plays the script: at once when `delay` is zero (tests read the events one by one),
/// on a thread with pauses in the demo. Once `cancel` is set the rest is skipped and
/// the cancelled table ends it (in tests the whole script is queued before a key can
/// cancel: they hand the app the cancelled table themselves).
pub fn play(
    req: &DeployRequest,
    cancel: Arc<AtomicBool>,
    events: Arc<dyn Fn(DeployEvent) + Send + Sync>,
    delay: Duration,
) {
    let (steps, result) = script(req);
    let req = req.clone();
    let run = move || {
        let mut last = None;
        for s in steps {
            if cancel.load(Ordering::SeqCst) {
                break;
            }
            events(DeployEvent::Live(s.clone()));
            last = Some(s);
            std::thread::sleep(delay);
        }
        match last {
            Some(l) if cancel.load(Ordering::SeqCst) => {
                events(DeployEvent::Done(Ok(cancelled(&req, &l))))
            }
            _ => events(DeployEvent::Done(Ok(result))),
        }
    };
    if delay.is_zero() {
        run();
    } else {
        std::thread::spawn(run);
    }
}
