//! A running boot server: the TFTP root prepared, dnsmasq started with its
//! configuration, busybox httpd serving the same root, and everything stopped and
//! removed when it is dropped. One piece so that `serve-boot`, `deploy --serve-boot`
//! and the TUI's deploy screen start and stop the same thing.
//!
//! Why HTTP for the kernel and initramfs: GRUB's TFTP client sends one 1 KiB block at a
//! time and waits for each (no window), so a 36 MiB initramfs is ~37 000 round trips
//! per client; with several clients loading at once on a busy server, one late answer
//! ends GRUB's transfer with "timeout reading" and the client waits for a key. Over
//! HTTP the transfer is TCP's, which retransmits and paces itself. TFTP stays for what
//! the firmware itself loads (the GRUB image) and GRUB's small modules and menu.
//! busybox httpd because the live system already carries it (busybox-static's applets)
//! and it does nothing but serve files. GRUB 2.06's `(http,SERVER)` has no port, so it
//! listens on port 80 of the serving address only.

use super::{
    dnsmasq_config, interface_ipv4, prepare_root, site_cfg, BootFiles, BootMode, BootSource,
    DhcpMode, Ipv4Net, NetbootError,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

/// What to serve and how.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub interface: String,
    /// The boot root; None serves the medium this live system booted from.
    pub root: Option<PathBuf>,
    pub dhcp: DhcpChoice,
    pub mode: BootMode,
    pub menu_timeout: u32,
    /// Extra kernel arguments for the clients.
    pub append: String,
    /// Where the TFTP root and dnsmasq's files are made (emptied first).
    pub run_dir: PathBuf,
}

/// Proxy DHCP beside the site's server, or `START,END` as the only DHCP server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhcpChoice {
    Proxy,
    Range(String),
}

/// Everything prepared, nothing started yet (`--dry-run` stops here).
pub struct Prepared {
    pub net: Ipv4Net,
    pub mode: DhcpMode,
    pub files: BootFiles,
    pub root: PathBuf,
    pub conf_text: String,
    conf: PathBuf,
    tftp: PathBuf,
    medium: Option<Medium>,
}

/// dnsmasq serving; stopped (SIGTERM) and its TFTP root removed on drop.
pub struct BootServer {
    child: Child,
    /// busybox httpd, serving the kernel and initramfs.
    http: Child,
    tftp: PathBuf,
    _medium: Option<Medium>,
}

/// Builds the TFTP root and dnsmasq's configuration for `o`.
pub fn prepare(o: &ServeOptions) -> Result<Prepared, NetbootError> {
    let net = interface_ipv4(&o.interface)?;
    let mode = match &o.dhcp {
        DhcpChoice::Proxy => DhcpMode::Proxy,
        DhcpChoice::Range(r) => parse_range(r, &net)?,
    };
    let site = site_cfg(o.mode, o.menu_timeout, &o.append)? + &http_root(net.addr);
    let medium = match &o.root {
        Some(_) => None,
        None => Some(Medium::mount(&o.run_dir)?),
    };
    let root = match (&o.root, &medium) {
        (Some(r), _) => r.clone(),
        (None, Some(m)) => m.dir.clone(),
        (None, None) => unreachable_root(&o.run_dir)?,
    };
    let tftp = o.run_dir.join("tftp");
    let src = BootSource {
        root: root.clone(),
        grub_lib: PathBuf::from("/usr/lib/grub"),
    };
    let files = prepare_root(&src, &tftp, net.addr, &site)?;
    let conf_text = dnsmasq_config(
        &o.interface,
        &net,
        &mode,
        &tftp,
        &files,
        &o.run_dir.join("dnsmasq.leases"),
    );
    let conf = o.run_dir.join("dnsmasq.conf");
    std::fs::write(&conf, &conf_text).map_err(NetbootError::io(&conf))?;
    Ok(Prepared {
        net,
        mode,
        files,
        root,
        conf_text,
        conf,
        tftp,
        medium,
    })
}

fn unreachable_root(run_dir: &Path) -> Result<PathBuf, NetbootError> {
    Err(NetbootError::Root {
        root: run_dir.to_path_buf(),
        what: "no boot root".into(),
    })
}

impl Prepared {
    /// Starts dnsmasq in the foreground of a child process. Its messages go to this
    /// process's stderr (`quiet`: nowhere, for the TUI, whose screen they would break).
    pub fn start(self, quiet: bool) -> Result<BootServer, NetbootError> {
        let mut cmd = Command::new("dnsmasq");
        cmd.arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", self.conf.display()))
            .arg("--log-facility=-");
        if quiet {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        let mut child = cmd.spawn().map_err(|e| NetbootError::Io {
            path: PathBuf::from("dnsmasq (is it installed?)"),
            source: e,
        })?;
        // dnsmasq checks its configuration and the TFTP root before it serves: a failure
        // there ends it within moments, and must not be reported as serving.
        std::thread::sleep(Duration::from_millis(700));
        if let Ok(Some(s)) = child.try_wait() {
            let _ = std::fs::remove_dir_all(&self.tftp);
            return Err(NetbootError::Root {
                root: self.root,
                what: format!("dnsmasq did not start: {s} (its messages are above)"),
            });
        }
        let http = match start_httpd(self.net.addr, &self.tftp, quiet) {
            Ok(h) => h,
            Err(e) => {
                stop(&mut child);
                let _ = std::fs::remove_dir_all(&self.tftp);
                return Err(e);
            }
        };
        Ok(BootServer {
            child,
            http,
            tftp: self.tftp,
            _medium: self.medium,
        })
    }
}

impl BootServer {
    /// dnsmasq's or httpd's exit status if one has ended by itself.
    pub fn ended(&mut self) -> Option<ExitStatus> {
        let dns = self.child.try_wait().ok().flatten();
        dns.or_else(|| self.http.try_wait().ok().flatten())
    }
}

/// site.cfg's last lines: the menu entries' kernel and initramfs come over HTTP from
/// this server (`$root`), while `$prefix` (modules, menu) stays on TFTP.
fn http_root(addr: std::net::Ipv4Addr) -> String {
    format!(
        "# The kernel and initramfs over HTTP: TCP survives many clients at once, GRUB's TFTP does not.\n\
         insmod http\nset root=(http,{addr})\n"
    )
}

/// `busybox httpd` in the foreground on ADDR:80, serving `dir` (read only: httpd has
/// no upload without CGI, and none is configured).
fn start_httpd(addr: std::net::Ipv4Addr, dir: &Path, quiet: bool) -> Result<Child, NetbootError> {
    let mut cmd = Command::new("busybox");
    cmd.args(["httpd", "-f", "-p", &format!("{addr}:80"), "-h"])
        .arg(dir);
    if quiet {
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
    }
    let mut child = cmd.spawn().map_err(|e| NetbootError::Io {
        path: PathBuf::from("busybox httpd (is busybox installed?)"),
        source: e,
    })?;
    // A port already taken ends it at once.
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(s)) = child.try_wait() {
        return Err(NetbootError::Root {
            root: dir.to_path_buf(),
            what: format!("busybox httpd did not start on {addr}:80: {s} (is port 80 taken?)"),
        });
    }
    Ok(child)
}

/// SIGTERM, then wait: both servers stop cleanly on it.
fn stop(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        if let Ok(pid) = i32::try_from(child.id()) {
            let pid = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let _ = child.wait();
    }
}

impl Drop for BootServer {
    fn drop(&mut self) {
        // SIGTERM is dnsmasq's clean stop; kill() would be SIGKILL.
        stop(&mut self.child);
        stop(&mut self.http);
        let _ = std::fs::remove_dir_all(&self.tftp);
    }
}

/// `START,END` inside the interface's network, not holding the server's own address.
pub fn parse_range(r: &str, net: &Ipv4Net) -> Result<DhcpMode, NetbootError> {
    use std::net::Ipv4Addr;
    let err = |what: &str| NetbootError::Range {
        range: r.to_string(),
        what: what.to_string(),
    };
    let (a, b) = r.split_once(',').ok_or_else(|| err("give START,END"))?;
    let start: Ipv4Addr = a
        .trim()
        .parse()
        .map_err(|_| err("START is not an IPv4 address"))?;
    let end: Ipv4Addr = b
        .trim()
        .parse()
        .map_err(|_| err("END is not an IPv4 address"))?;
    if !net.contains(start) || !net.contains(end) || u32::from(start) > u32::from(end) {
        return Err(err(&format!(
            "must be an ascending range inside {}/{}",
            net.network(),
            net.prefix
        )));
    }
    if (u32::from(start)..=u32::from(end)).contains(&u32::from(net.addr)) {
        return Err(err("holds this server's own address"));
    }
    Ok(DhcpMode::Range { start, end })
}

/// The live system's boot medium, mounted read-only for as long as it is served.
struct Medium {
    dir: PathBuf,
}

impl Medium {
    fn mount(run_dir: &Path) -> Result<Self, NetbootError> {
        let known = Path::new("/run/ironclone/boot-device");
        let dev = std::fs::read_to_string(known).map_err(|_| NetbootError::Root {
            root: known.to_path_buf(),
            what: "no --root given and no boot medium known: give --root".into(),
        })?;
        let dev = dev.trim();
        let dir = run_dir.join("medium");
        std::fs::create_dir_all(&dir).map_err(NetbootError::io(&dir))?;
        crate::resize::run_tool(
            "mount",
            &["-t", "iso9660", "-o", "ro", dev, path_str(&dir)?],
            None,
            &[0],
        )?;
        Ok(Medium { dir })
    }
}

fn path_str(p: &Path) -> Result<&str, NetbootError> {
    p.to_str().ok_or_else(|| NetbootError::Root {
        root: p.to_path_buf(),
        what: "the path is not UTF-8".into(),
    })
}

impl Drop for Medium {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}
