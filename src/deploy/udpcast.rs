//! The sender's `udp-sender` run: the stream file to every receiver in one multicast
//! transfer, its lines shown as they come, and stopped cleanly when the deploy is
//! cancelled (a cancelled deploy must leave no udp-sender behind: it would go on
//! holding the ports and, once its receivers came, flooding the LAN).

use super::sender::{SendOptions, StreamFile};
use super::DeployError;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long udp-sender has to end on SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// Runs udp-sender on the stream file; its exit status is checked and its stderr
/// shown when it fails. `started` is called when udp-sender says the transfer starts.
/// Setting `cancel` stops it (SIGTERM, then SIGKILL after `TERM_GRACE`); it is waited
/// for either way, so it never outlives this call.
pub(super) fn run_udp_sender(
    stream: &StreamFile,
    opts: &SendOptions,
    portbase: u16,
    cancel: &AtomicBool,
    log: &(dyn Fn(String) + Sync),
    started: &(dyn Fn() + Sync),
) -> Result<(), DeployError> {
    let mut cmd = Command::new("udp-sender");
    cmd.arg("--file")
        .arg(&stream.path)
        .args(["--portbase", &portbase.to_string()])
        .args(["--min-receivers", &opts.clients.to_string()])
        .args(["--retries-until-drop", &opts.retries_until_drop.to_string()])
        .args(["--nokbd", "--no-progress"]);
    if let Some(s) = opts.min_wait {
        cmd.args(["--min-wait", &s.to_string()]);
    }
    if let Some(s) = opts.max_wait {
        cmd.args(["--max-wait", &s.to_string()]);
    }
    if let Some(i) = &opts.interface {
        cmd.args(["--interface", i]);
    }
    if let Some(b) = &opts.max_bitrate {
        cmd.args(["--max-bitrate", b]);
    }
    log(format!(
        "udp-sender: waiting for {} receiver(s) on port {portbase}",
        opts.clients
    ));
    let tool = |what: String| DeployError::Tool {
        tool: "udp-sender".into(),
        what,
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| tool(format!("cannot start it (is udpcast installed?): {e}")))?;
    let stderr = child.stderr.take();
    std::thread::scope(|s| {
        // Its lines are shown as they come (who connected, when the transfer starts) and
        // kept for the error; read on their own thread so this one can watch `cancel`.
        let reader = s.spawn(move || {
            let mut err = String::new();
            if let Some(e) = stderr {
                for l in BufReader::new(e).lines().map_while(|l| l.ok()) {
                    if !l.trim().is_empty() {
                        log(format!("udp-sender: {l}"));
                    }
                    // udp-sender's own words when its receivers are in and data goes out.
                    if l.starts_with("Starting transfer") {
                        started();
                    }
                    err.push_str(&l);
                    err.push('\n');
                }
            }
            err
        });
        let mut termed: Option<Instant> = None;
        // This thread owns the child and reaps it: a signal can never reach a
        // recycled process id.
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Ok(st),
                Ok(None) => {}
                Err(e) => break Err(tool(e.to_string())),
            }
            if cancel.load(Ordering::SeqCst) {
                match termed {
                    None => {
                        log("udp-sender: stopping it (the deploy is cancelled)".into());
                        if let Ok(pid) = i32::try_from(child.id()) {
                            let pid = nix::unistd::Pid::from_raw(pid);
                            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                        }
                        termed = Some(Instant::now());
                    }
                    Some(t) if t.elapsed() > TERM_GRACE => {
                        let _ = child.kill();
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let err = reader.join().unwrap_or_default();
        let status = status?;
        if !status.success() {
            return Err(tool(format!("{status}: {}", err.trim())));
        }
        Ok(())
    })
}
