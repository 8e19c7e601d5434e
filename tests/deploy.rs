//! Proof of issue 22 (one-to-many restore) on the host: a LAN made by the test (a
//! bridge in its own network namespace, one namespace per machine joined by veth
//! pairs; no traffic leaves the machine), `ironclone deploy` in one namespace and
//! `ironclone deploy-client` in the others, as separate processes.
//!
//! Three clients restore onto empty image files of 0.6x, 1x and 1.5x the source;
//! each is judged with the independent checks of the restore proof (sgdisk -v,
//! e2fsck -fn, ntfsfix -n, every file's bytes). A fourth is killed mid-stream (its
//! whole process group, as a machine switched off), a fifth has a disk with data and
//! no ironclone.erase=any: both must be reported failed while the three finish. The
//! sender's veth tx counter must show the stream sent once: at most 1.2x its size.

mod common;
mod deploy_net;
mod restore_fixture;

use common::path_str;
use deploy_net::*;
use restore_fixture::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs root"]
fn deploy_to_three_clients_one_killed_one_stopped_one_refused() {
    for t in ["ip", "udp-sender", "udp-receiver"] {
        common::require_tool(t);
    }
    let s = source(true);
    let net = lan("icdp", "10.77.0", 6);
    let (sender_ns, server) = (net.sender.clone(), format!("{}.1", net.subnet));
    let sizes = [60u64, 100, 150];
    let mut targets: Vec<PathBuf> = sizes
        .iter()
        .map(|pct| {
            common::sparse(
                &s.dir,
                &format!("t{pct}.img"),
                s.size * pct / 100 / MIB * MIB,
            )
        })
        .collect();
    targets.push(common::sparse(&s.dir, "killed.img", s.size));
    // The fifth is stopped (SIGSTOP) mid-stream, so udp-sender drops it, and continued
    // once the stream has ended: its watchdog must give up and report.
    targets.push(common::sparse(&s.dir, "stopped.img", s.size));
    // The fifth has data on it (a pattern at both ends) and no erase permission.
    targets.push(s.target("data.img", s.size));
    let sender_log = s.dir.join("sender.log");
    let tx0 = tx_bytes(&sender_ns, "s0");
    let mut sender = spawn_in(
        &sender_ns,
        &[
            "deploy",
            path_str(&s.repo),
            "img",
            "--clients",
            "5",
            "--max-wait",
            "120",
            "--interface",
            "s0",
            "--work-dir",
            path_str(&s.dir),
            "--report-timeout",
            "300",
            "--retries-until-drop",
            "10",
            // Slow enough (about 4 s for this image) to kill a client in the middle.
            "--max-bitrate",
            "20m",
        ],
        &sender_log,
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
                &server,
                "--target",
                path_str(t),
                "--spool",
                path_str(&spool),
                "--interface",
                "c0",
                "--no-nvram",
                "--connect-timeout",
                "60",
                "--late-grace",
                "3",
            ],
            &log,
            &[],
        );
        clients.push((c, spool, log));
    }
    // Client 4 is killed once its spool holds part of the stream.
    let t = Instant::now();
    let killed_at = loop {
        let n = bytes_under(&clients[3].1);
        if n > 512 << 10 {
            break n;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "client 4 never started receiving\n{}",
            std::fs::read_to_string(&sender_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        signal("-STOP", clients[4].0.id() as i32),
        "could not stop client 5"
    );
    assert!(
        nix_kill(clients[3].0.id() as i32),
        "could not kill client 4"
    );
    let _ = clients[3].0.wait();
    eprintln!("client 4 killed with {killed_at} bytes spooled");
    // Client 5 goes on once the sender has sent the stream to the others.
    let t = Instant::now();
    while !std::fs::read_to_string(&sender_log)
        .unwrap_or_default()
        .contains("stream sent")
    {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "the stream never ended"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(signal("-CONT", clients[4].0.id() as i32));
    let mut oks = Vec::new();
    for (i, (c, _, log)) in clients.iter_mut().enumerate() {
        if i == 3 {
            continue;
        }
        let ok = wait(c, 600, &format!("client {i}"));
        oks.push(ok);
        eprintln!("--- client {i}:\n{}", std::fs::read_to_string(log).unwrap());
    }
    let sender_ok = wait(&mut sender, 600, "the sender");
    let tx = tx_bytes(&sender_ns, "s0") - tx0;
    let out = std::fs::read_to_string(&sender_log).unwrap();
    eprintln!("--- sender:\n{out}");
    assert!(
        !sender_ok,
        "the sender exited 0 with a killed, a stopped and a refused client"
    );
    assert_eq!(oks, [true, true, true, false, false], "client results");
    // The table: three ok, the killed, the stopped and the refused one named.
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("address "))
        .filter(|l| l.starts_with("10.77.0."))
        .collect();
    assert_eq!(rows.len(), 6, "table rows:\n{out}");
    for (i, t) in targets.iter().enumerate() {
        let row = rows
            .iter()
            .find(|r| r.contains(path_str(t)))
            .unwrap_or_else(|| panic!("no row for {}\n{out}", t.display()));
        match i {
            0..=2 => assert!(row.contains(" ok "), "client {i}: {row}"),
            3 => assert!(
                (row.contains("FAILED") || row.contains("MISSING")) && row.contains("dropped"),
                "killed client: {row}"
            ),
            4 => assert!(
                row.contains("FAILED") && row.contains("dropped: the sender ended the stream"),
                "stopped client: {row}"
            ),
            _ => assert!(
                row.contains(" REFUSED ") && row.contains("holds data"),
                "client with data: {row}"
            ),
        }
    }
    assert!(out.contains("3 of 6 client(s) ok"), "{out}");
    let stream: u64 = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("stream: ")?
                .rsplit_once(", ")?
                .1
                .strip_suffix(" bytes")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no stream size in\n{out}"));
    let packs = bytes_under(&s.repo.join("packs"));
    let ratio = tx as f64 / stream as f64;
    eprintln!(
        "MEASURE deploy: stream {stream} bytes (repository packs {packs}), sender tx {tx} bytes \
         for 5 receivers = {ratio:.3}x the stream"
    );
    assert!(
        ratio <= 1.2,
        "the stream was sent more than once: {ratio:.3}x"
    );
    for t in &targets[..3] {
        s.check(t, true, "");
    }
    // The data disk was not touched: its pattern is still there.
    let data = std::fs::read(&targets[5]).unwrap();
    assert!(
        data[..MIB as usize].iter().any(|&b| b != 0),
        "the data disk was written"
    );
    // No spool is left behind.
    for (i, (_, spool, _)) in clients.iter().enumerate() {
        if i != 3 {
            assert_eq!(bytes_under(spool), 0, "spool {i} left behind");
        }
    }
    drop(net);
}

/// An encrypted repository: the sender alone has the passphrase, the client gets a
/// plaintext stream with plain blake3 ids and restores without one.
#[test]
#[ignore = "needs root"]
fn deploy_from_an_encrypted_repository() {
    for t in ["ip", "udp-sender", "udp-receiver"] {
        common::require_tool(t);
    }
    let s = source(true);
    let crepo = s.dir.join("crepo");
    let out = Command::new(BIN)
        .args([
            "backup",
            path_str(&s.disk),
            path_str(&crepo),
            "--encrypt",
            "--name",
            "img",
        ])
        .env("IRONCLONE_PASSWORD", "deploy-secret-pass")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let net = lan("icde", "10.78.0", 1);
    let t = common::sparse(&s.dir, "t.img", s.size);
    let slog = s.dir.join("sender.log");
    let clog = s.dir.join("client.log");
    let mut sender = spawn_in(
        &net.sender,
        &[
            "deploy",
            path_str(&crepo),
            "img",
            "--clients",
            "1",
            "--interface",
            "s0",
            "--work-dir",
            path_str(&s.dir),
        ],
        &slog,
        &[("IRONCLONE_PASSWORD", "deploy-secret-pass")],
    );
    let spool = s.dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mut client = spawn_in(
        &net.clients[0],
        &[
            "deploy-client",
            "--server",
            &format!("{}.1", net.subnet),
            "--target",
            path_str(&t),
            "--spool",
            path_str(&spool),
            "--interface",
            "c0",
            "--no-nvram",
        ],
        &clog,
        &[],
    );
    let cok = wait(&mut client, 300, "the client");
    let sok = wait(&mut sender, 300, "the sender");
    let (so, co) = (
        std::fs::read_to_string(&slog).unwrap(),
        std::fs::read_to_string(&clog).unwrap(),
    );
    assert!(cok && sok, "sender:\n{so}\nclient:\n{co}");
    assert!(so.contains("the LAN stream is not"), "{so}");
    assert!(so.contains("1 of 1 client(s) ok"), "{so}");
    assert!(!so.contains("deploy-secret-pass") && !co.contains("deploy-secret-pass"));
    s.check(&t, true, &co);
    drop(net);
}
