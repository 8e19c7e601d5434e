//! The LAN of the deploy tests: network namespaces joined on a bridge (nothing leaves
//! the machine), `ironclone` started inside them, and the small process helpers both
//! tests/deploy.rs and tests/deploy_cancel.rs use.
// Each test file uses a different part.
#![allow(dead_code)]

use crate::common::run;
use crate::restore_fixture::BIN;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The namespaces of one test (tests run in parallel: each has its own prefix and
/// subnet), deleted on drop (also when an assertion fails).
pub struct Net {
    pub lan: String,
    pub sender: String,
    pub clients: Vec<String>,
    pub subnet: String,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.clients.iter().chain([&self.sender, &self.lan]) {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub fn ip(args: &[&str]) {
    run("ip", args);
}

/// One namespace `ns` on the bridge of `lan` with `addr`/24 on its interface `dev`.
pub fn join(lan: &str, ns: &str, dev: &str, peer: &str, addr: &str) {
    ip(&["netns", "add", ns]);
    let veth = [
        "-n", lan, "link", "add", peer, "type", "veth", "peer", "name", dev,
    ];
    ip(&[&veth[..], &["netns", ns]].concat());
    ip(&["-n", lan, "link", "set", peer, "master", "br0", "up"]);
    // With its broadcast address: udp-receiver looks for the sender there.
    let a = format!("{addr}/24");
    ip(&["-n", ns, "addr", "add", &a, "brd", "+", "dev", dev]);
    ip(&["-n", ns, "link", "set", dev, "up"]);
    ip(&["-n", ns, "link", "set", "lo", "up"]);
    // Multicast goes out on the LAN interface (there is no default route).
    ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev]);
}

pub fn lan(prefix: &str, subnet: &str, n: usize) -> Net {
    let net = Net {
        lan: format!("{prefix}-lan"),
        sender: format!("{prefix}-s"),
        clients: (1..=n).map(|i| format!("{prefix}-c{i}")).collect(),
        subnet: subnet.to_string(),
    };
    for ns in net.clients.iter().chain([&net.sender, &net.lan]) {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
    }
    let lan = net.lan.as_str();
    ip(&["netns", "add", lan]);
    let br = ["-n", lan, "link", "add", "br0", "type", "bridge"];
    ip(&[&br[..], &["mcast_snooping", "0"]].concat());
    ip(&["-n", lan, "link", "set", "br0", "up"]);
    join(lan, &net.sender, "s0", "vs", &format!("{subnet}.1"));
    for (i, c) in net.clients.iter().enumerate() {
        let addr = format!("{subnet}.{}", 11 + i);
        join(lan, c, "c0", &format!("vc{}", i + 1), &addr);
    }
    net
}

pub fn spawn_in(ns: &str, args: &[&str], log: &Path, env: &[(&str, &str)]) -> Child {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    Command::new("ip")
        .args(["netns", "exec", ns, BIN])
        .env_remove("IRONCLONE_PASSWORD")
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: killing it kills udp-receiver too, as a power-off would.
        .process_group(0)
        .spawn()
        .unwrap()
}

pub fn tx_bytes(ns: &str, dev: &str) -> u64 {
    let s = run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "cat",
            &format!("/sys/class/net/{dev}/statistics/tx_bytes"),
        ],
    );
    s.trim().parse().unwrap()
}

pub fn wait(c: &mut Child, secs: u64, what: &str) -> bool {
    let t = Instant::now();
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s.success();
        }
        if t.elapsed() > Duration::from_secs(secs) {
            let _ = nix_kill(c.id() as i32);
            panic!("{what} did not finish in {secs} s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn nix_kill(pgid: i32) -> bool {
    signal("-KILL", pgid)
}

/// Sends `sig` to the process group `pgid` (a client and its udp-receiver).
pub fn signal(sig: &str, pgid: i32) -> bool {
    Command::new("kill")
        .args([sig, "--", &format!("-{pgid}")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Bytes in files under `dir` (the spool as it fills).
pub fn bytes_under(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                bytes_under(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}
