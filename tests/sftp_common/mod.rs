//! Debian's OpenSSH server for the SFTP tests, started on a loopback port with a test
//! host key and user key (stopped by Drop, also when a test panics), known_hosts
//! written by the test, and a system user with a password for password logins
//! (removed by Drop; root's password is never touched). The client is the system
//! `ssh`; a wrapper first on PATH points it at the test's known_hosts, since ssh reads
//! the user's from the password database, not from $HOME. Needs root (sshd, useradd).
#![allow(dead_code)]

use crate::storage_common::{free_port, Children};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct Server {
    pub dir: PathBuf,
    pub port: u16,
    sshd: Children,
}

pub fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        keygen(&dir.join("host_key"));
        keygen(&dir.join("user_key"));
        std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = free_port();
        let d = dir.display();
        // Passwords are on for the test user; root logs in by key only.
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\n\
                 PasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n\
                 Subsystem sftp internal-sftp\n"
            ),
        )
        .unwrap();
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let wrapper = bin.join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -o UserKnownHostsFile={d}/known_hosts -o GlobalKnownHostsFile=/dev/null \"$@\"\n"
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut s = Server {
            dir: dir.to_path_buf(),
            port,
            sshd: Children(Vec::new()),
        };
        s.spawn_sshd();
        s
    }

    fn spawn_sshd(&mut self) {
        let sshd = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.dir.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join("sshd.log"))
                    .unwrap(),
            )
            .spawn()
            .expect("sshd (apt-get install openssh-server; make setup)");
        self.sshd.0.push(sshd);
        let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < end, "sshd did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The same server on the same port with a new host key (a reinstalled server, or
    /// someone in between).
    pub fn restart_with_new_host_key(&mut self) {
        for c in &mut self.sshd.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.sshd.0.clear();
        for f in ["host_key", "host_key.pub"] {
            std::fs::remove_file(self.dir.join(f)).unwrap();
        }
        keygen(&self.dir.join("host_key"));
        self.spawn_sshd();
    }

    /// Kills the server's per-connection processes (the listener's children), as a
    /// dropped network link would end every session; returns how many. New logins
    /// still work.
    pub fn drop_connections(&self) -> usize {
        let listeners: Vec<u32> = self.sshd.0.iter().map(|c| c.id()).collect();
        let mut killed = 0;
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid.is_some_and(|p| listeners.contains(&p))
                && Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .is_ok_and(|s| s.success())
            {
                killed += 1;
            }
        }
        killed
    }

    pub fn trust_host_key(&self) {
        let key = std::fs::read_to_string(self.dir.join("host_key.pub")).unwrap();
        let line = format!("[127.0.0.1]:{} {key}", self.port);
        std::fs::write(self.dir.join("known_hosts"), line).unwrap();
    }

    /// `sftp://USER@127.0.0.1:PORT/ABS` for a path under the test directory.
    pub fn url_as(&self, user: &str, rel: &str) -> String {
        format!(
            "sftp://{user}@127.0.0.1:{}{}/{rel}",
            self.port,
            self.dir.display()
        )
    }

    pub fn url(&self, repo: &str) -> String {
        self.url_as("root", repo)
    }

    /// The test's ssh wrapper directory first on `PATH`.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// `ironclone ARGS` with the test's known_hosts and no key option.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ironclone"));
        c.args(args)
            .env("PATH", self.path_env())
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        c
    }

    /// `ironclone ARGS` as root with the test's user key.
    pub fn ironclone(&self, args: &[&str]) -> Output {
        self.command(args)
            .arg("--sftp-key")
            .arg(self.dir.join("user_key"))
            .output()
            .expect("run ironclone")
    }

    /// `ssh-keygen -lf` of the server's host key: "SHA256:... (ED25519)".
    pub fn host_fingerprint(&self) -> String {
        let o = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(self.dir.join("host_key.pub"))
            .output()
            .expect("ssh-keygen -lf");
        assert!(o.status.success());
        let l = String::from_utf8_lossy(&o.stdout).into_owned();
        let fp = l.split_whitespace().nth(1).unwrap_or_default().to_string();
        let kind = l.rsplit(' ').next().unwrap_or_default().trim().to_string();
        format!("{fp} {kind}")
    }
}

/// A system user with a password, for password logins; removed on Drop.
pub struct TestUser {
    pub name: String,
    pub home: PathBuf,
}

impl TestUser {
    /// A new user whose home (the repositories' parent) is `dir/NAME`; `dir` is made
    /// traversable for it.
    pub fn create(dir: &Path, password: &str) -> TestUser {
        // Short: the TUI's location field takes 64 characters.
        let name = format!("ics{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
        let home = dir.join(&name);
        std::fs::create_dir_all(&home).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        let st = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/bin/sh",
                "--home-dir",
            ])
            .arg(&home)
            .arg(&name)
            .status()
            .expect("useradd");
        assert!(st.success(), "useradd {name}");
        let user = TestUser { name, home };
        // The password on stdin: never in an argv.
        let mut c = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd");
        c.stdin
            .take()
            .unwrap()
            .write_all(format!("{}:{password}\n", user.name).as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success(), "chpasswd");
        let st = Command::new("chown")
            .arg(format!("{}:", user.name))
            .arg(&user.home)
            .status()
            .unwrap();
        assert!(st.success());
        user
    }
}

/// ssh control masters daemonize (`ssh -M -f`): a backup a test kills leaves its
/// masters (and their sessions) running; they are this server's clients by their
/// known_hosts path.
impl Drop for Server {
    fn drop(&mut self) {
        let mine = format!("UserKnownHostsFile={}/known_hosts", self.dir.display());
        for pid in pids_with(&mine) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// The pids of processes whose command line holds `needle` (a port, a path).
pub fn pids_with(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Whether `secret` is in the process's argv or environment.
pub fn process_holds(pid: u32, secret: &str) -> bool {
    ["cmdline", "environ"].iter().any(|f| {
        std::fs::read(format!("/proc/{pid}/{f}"))
            .is_ok_and(|b| String::from_utf8_lossy(&b).contains(secret))
    })
}
