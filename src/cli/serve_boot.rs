//! `ironclone serve-boot`: this machine becomes the network boot server for the live
//! system. It prepares the TFTP root (src/netboot), starts dnsmasq in the foreground
//! with the configuration for it, and stops it (and removes the run directory) on
//! Ctrl-C or SIGTERM. Without `--root`, the boot medium this live system started from
//! is mounted read-only and served.

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, ValueEnum};
use ironclone::netboot::{
    dnsmasq_config, interface_ipv4, prepare_root, site_cfg, BootMode, BootSource, DhcpMode,
};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(ClapArgs)]
pub struct Args {
    /// The network interface the clients are on (it needs an IPv4 address).
    #[arg(long)]
    pub interface: String,
    /// The boot root to serve (`make netboot`'s build/netboot, or any directory with
    /// boot/vmlinuz, boot/initrd.img and boot/grub/grub.cfg). Default: the medium this
    /// live system booted from.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Be the network's only DHCP server and hand out START,END (an isolated lab).
    /// Default: proxy DHCP beside the site's own server.
    #[arg(long, value_name = "START,END")]
    pub range: Option<String>,
    /// How clients start.
    #[arg(long, value_enum, default_value_t = BootMode::Tui)]
    pub mode: BootMode,
    /// Seconds the clients' boot menu waits.
    #[arg(long, default_value_t = 3)]
    pub menu_timeout: u32,
    /// More kernel arguments for the clients (plain words).
    #[arg(long, default_value = "")]
    pub append: String,
    /// Where the TFTP root and dnsmasq's files are made (emptied first).
    #[arg(long, default_value = "/run/ironclone/serve-boot")]
    pub run_dir: PathBuf,
    /// Prepare everything and print dnsmasq's configuration, but serve nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let net = interface_ipv4(&a.interface)?;
    let mode = match &a.range {
        None => DhcpMode::Proxy,
        Some(r) => parse_range(r, &net)?,
    };
    let site = site_cfg(a.mode, a.menu_timeout, &a.append)?;
    let medium = match &a.root {
        Some(_) => None,
        None => Some(Medium::mount(&a.run_dir)?),
    };
    let root = a
        .root
        .clone()
        .or_else(|| medium.as_ref().map(|m| m.dir.clone()))
        .context("no boot root")?;
    let tftp = a.run_dir.join("tftp");
    let src = BootSource {
        root,
        grub_lib: PathBuf::from("/usr/lib/grub"),
    };
    let files = prepare_root(&src, &tftp, net.addr, &site)?;
    let conf_text = dnsmasq_config(
        &a.interface,
        &net,
        &mode,
        &tftp,
        &files,
        &a.run_dir.join("dnsmasq.leases"),
    );
    let conf = a.run_dir.join("dnsmasq.conf");
    std::fs::write(&conf, &conf_text).with_context(|| format!("writing {}", conf.display()))?;
    let what = match &mode {
        DhcpMode::Proxy => format!("proxy DHCP for {}/{}", net.network(), net.prefix),
        DhcpMode::Range { start, end } => format!("DHCP {start}-{end}"),
    };
    let mode_name = a.mode.to_possible_value().map(|v| v.get_name().to_string());
    println!(
        "serve-boot: {} on {} ({}/{}), {what}, clients start in mode {}",
        src.root.display(),
        a.interface,
        net.addr,
        net.prefix,
        mode_name.unwrap_or_default()
    );
    println!("bios: {}", files.bios);
    println!("uefi: {}", files.uefi);
    if a.dry_run {
        print!("{conf_text}");
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let mut child = Command::new("dnsmasq")
        .arg("--keep-in-foreground")
        .arg(format!("--conf-file={}", conf.display()))
        .arg("--log-facility=-")
        .spawn()
        .context("starting dnsmasq (is it installed?)")?;
    // dnsmasq checks its configuration and the TFTP root before it serves: a failure
    // there ends it within moments, and must not be reported as serving.
    std::thread::sleep(Duration::from_millis(700));
    if let Some(s) = child.try_wait()? {
        let _ = std::fs::remove_dir_all(&tftp);
        bail!("dnsmasq did not start: {s} (its messages are above)");
    }
    println!("serve-boot: serving (Ctrl-C stops)");
    let status = wait_or_stop(&mut child, &stop)?;
    let _ = std::fs::remove_dir_all(&tftp);
    drop(medium);
    match status {
        Some(s) if !s.success() => bail!("dnsmasq stopped: {s} (its messages are above)"),
        Some(_) => bail!("dnsmasq stopped on its own"),
        None => {
            println!("serve-boot: stopped");
            Ok(())
        }
    }
}

/// dnsmasq's exit status if it ended by itself, None when we stopped it.
fn wait_or_stop(
    child: &mut Child,
    stop: &AtomicBool,
) -> anyhow::Result<Option<std::process::ExitStatus>> {
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Some(s));
        }
        if stop.load(Ordering::Relaxed) {
            // SIGTERM is dnsmasq's clean stop; kill() would be SIGKILL.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn parse_range(r: &str, net: &ironclone::netboot::Ipv4Net) -> anyhow::Result<DhcpMode> {
    let err = |what: &str| ironclone::netboot::NetbootError::Range {
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
        ))
        .into());
    }
    if (u32::from(start)..=u32::from(end)).contains(&u32::from(net.addr)) {
        return Err(err("holds this server's own address").into());
    }
    Ok(DhcpMode::Range { start, end })
}

/// The live system's boot medium, mounted read-only for as long as it is served.
struct Medium {
    dir: PathBuf,
}

impl Medium {
    fn mount(run_dir: &Path) -> anyhow::Result<Self> {
        let dev = std::fs::read_to_string("/run/ironclone/boot-device").context(
            "no --root given and no boot medium known (/run/ironclone/boot-device): give --root",
        )?;
        let dev = dev.trim();
        let dir = run_dir.join("medium");
        std::fs::create_dir_all(&dir).with_context(|| format!("making {}", dir.display()))?;
        let out = Command::new("mount")
            .args(["-t", "iso9660", "-o", "ro", dev])
            .arg(&dir)
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "mounting the boot medium {dev}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Medium { dir })
    }
}

impl Drop for Medium {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}
