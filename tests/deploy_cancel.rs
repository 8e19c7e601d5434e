//! Proof of issue 22's cancel on the host: `ironclone deploy --serve-boot` stopped
//! mid-stream leaves no child process behind and tells its clients (the LAN of
//! tests/deploy_net).

mod common;
mod deploy_net;
mod restore_fixture;

use common::path_str;
use deploy_net::*;
use restore_fixture::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The processes whose parent is `pid`, with their names (/proc/PID/stat).
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "PID (COMM) STATE PPID ...": COMM may hold blanks, so split at its ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if ppid == Some(&pid.to_string()) {
            let child = stat[..open].trim().parse().unwrap_or(0);
            out.push((child, stat[open + 1..close].to_string()));
        }
    }
    out
}

/// Processes whose command line mentions `dir` (this test's files).
fn processes_using(dir: &Path) -> Vec<String> {
    let needle = path_str(dir);
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Cancelling `ironclone deploy --serve-boot` mid-stream (SIGTERM: the flag the TUI's
/// confirmed cancel sets): when it exits, no udp-sender, dnsmasq or busybox httpd of it
/// is left; the receiving clients were told, stopped, report cancelled and wrote nothing;
/// the table lists them as CANCELLED and the exit is non-zero.
#[test]
#[ignore = "needs root"]
fn cancelling_a_deploy_mid_stream_leaves_no_child_behind() {
    for t in [
        "ip",
        "udp-sender",
        "udp-receiver",
        "dnsmasq",
        "busybox",
        "grub-mkimage",
    ] {
        common::require_tool(t);
    }
    let s = source(true);
    let net = lan("icdc", "10.79.0", 2);
    // A boot root laid out as serve-boot needs it; no client boots from it here.
    let root = s.dir.join("bootroot");
    std::fs::create_dir_all(root.join("boot/grub")).unwrap();
    for f in ["boot/vmlinuz", "boot/initrd.img", "boot/grub/grub.cfg"] {
        std::fs::write(root.join(f), b"not booted in this test\n").unwrap();
    }
    let run_dir = s.dir.join("bootrun");
    let targets: Vec<PathBuf> = (0..2)
        .map(|i| common::sparse(&s.dir, &format!("t{i}.img"), s.size))
        .collect();
    let slog = s.dir.join("sender.log");
    let mut sender = spawn_in(
        &net.sender,
        &[
            "deploy",
            path_str(&s.repo),
            "img",
            "--clients",
            "2",
            "--max-wait",
            "120",
            "--work-dir",
            path_str(&s.dir),
            "--serve-boot",
            "s0",
            "--boot-root",
            path_str(&root),
            "--boot-run-dir",
            path_str(&run_dir),
            "--boot-range",
            "10.79.0.100,10.79.0.150",
            // Slow (a minute for this image): the cancel comes in the middle.
            "--max-bitrate",
            "2m",
        ],
        &slog,
        &[],
    );
    let mut clients = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        let spool = s.dir.join(format!("spool{i}"));
        std::fs::create_dir_all(&spool).unwrap();
        let log = s.dir.join(format!("client{i}.log"));
        let c = spawn_in(
            &net.clients[i],
            &[
                "deploy-client",
                "--server",
                "10.79.0.1",
                "--target",
                path_str(t),
                "--spool",
                path_str(&spool),
                "--interface",
                "c0",
                "--no-nvram",
                "--connect-timeout",
                "60",
            ],
            &log,
            &[],
        );
        clients.push((c, spool, log));
    }
    let t = Instant::now();
    while bytes_under(&clients[0].1) < 256 << 10 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "client 0 never started receiving\n{}",
            std::fs::read_to_string(&slog).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // What the sender runs now: the scan must see them, or "none left" proves nothing.
    let before = children(sender.id());
    for name in ["udp-sender", "dnsmasq", "busybox"] {
        assert!(
            before.iter().any(|(_, n)| n == name),
            "no {name} among the sender's children: {before:?}"
        );
    }
    eprintln!("the sender's children mid-stream: {before:?}");
    // SIGTERM to the sender alone (not its process group, where the children are).
    let term = Command::new("kill")
        .args(["-TERM", &sender.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let t = Instant::now();
    let sender_ok = wait(&mut sender, 60, "the cancelled sender");
    eprintln!(
        "the sender ended {:.1} s after SIGTERM",
        t.elapsed().as_secs_f64()
    );
    let out = std::fs::read_to_string(&slog).unwrap();
    eprintln!("--- sender:\n{out}");
    assert!(!sender_ok, "a cancelled deploy exited 0");
    for (pid, name) in &before {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "the sender's {name} (pid {pid}) outlived it"
        );
    }
    for (i, (c, spool, log)) in clients.iter_mut().enumerate() {
        let ok = wait(c, 60, &format!("client {i}"));
        let text = std::fs::read_to_string(&*log).unwrap();
        eprintln!("--- client {i}:\n{text}");
        assert!(!ok, "client {i} exited 0 from a cancelled deploy");
        assert!(
            text.contains("cancelled: the deploy was cancelled on the sender"),
            "client {i}: {text}"
        );
        assert_eq!(bytes_under(spool), 0, "spool {i} left behind");
    }
    let left = processes_using(&s.dir);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    assert!(
        !run_dir.join("tftp").exists(),
        "the TFTP root was left behind"
    );
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("address "))
        .filter(|l| l.starts_with("10.79.0."))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    for (r, t) in rows.iter().zip(&targets) {
        assert!(r.contains(" CANCELLED "), "{r}");
        let data = std::fs::read(t).unwrap();
        assert!(data.iter().all(|&b| b == 0), "{} was written", t.display());
    }
    assert!(
        out.contains("deploy CANCELLED: 0 of 2 client(s) ok"),
        "{out}"
    );
    assert!(out.contains("serve-boot: stopped"), "{out}");
    drop(net);
}
