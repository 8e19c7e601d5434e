//! `ironclone serve-boot`: this machine becomes the network boot server for the live
//! system. It prepares the TFTP root (src/netboot), starts dnsmasq in the foreground
//! with the configuration for it, and stops it (and removes the run directory) on
//! Ctrl-C or SIGTERM. Without `--root`, the boot medium this live system started from
//! is mounted read-only and served.

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, ValueEnum};
use ironclone::netboot::serve::{prepare, DhcpChoice, Prepared, ServeOptions};
use ironclone::netboot::{BootMode, DhcpMode};
use std::path::PathBuf;
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

impl Args {
    pub fn serve_options(&self) -> ServeOptions {
        ServeOptions {
            interface: self.interface.clone(),
            root: self.root.clone(),
            dhcp: self
                .range
                .clone()
                .map_or(DhcpChoice::Proxy, DhcpChoice::Range),
            mode: self.mode,
            menu_timeout: self.menu_timeout,
            append: self.append.clone(),
            run_dir: self.run_dir.clone(),
        }
    }
}

/// Prepares the boot root and prints what will be served (and the DHCP boot files).
pub fn prepare_and_tell(o: &ServeOptions) -> anyhow::Result<Prepared> {
    let p = prepare(o)?;
    let what = match &p.mode {
        DhcpMode::Proxy => format!("proxy DHCP for {}/{}", p.net.network(), p.net.prefix),
        DhcpMode::Range { start, end } => format!("DHCP {start}-{end}"),
    };
    let mode_name = o.mode.to_possible_value().map(|v| v.get_name().to_string());
    println!(
        "serve-boot: {} on {} ({}/{}), {what}, clients start in mode {}",
        p.root.display(),
        o.interface,
        p.net.addr,
        p.net.prefix,
        mode_name.unwrap_or_default()
    );
    println!("bios: {}", p.files.bios);
    println!("uefi: {}", p.files.uefi);
    Ok(p)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let p = prepare_and_tell(&a.serve_options())?;
    if a.dry_run {
        print!("{}", p.conf_text);
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let mut server = p.start(false)?;
    println!("serve-boot: serving (Ctrl-C stops)");
    loop {
        if let Some(s) = server.ended() {
            if s.success() {
                bail!("dnsmasq stopped on its own");
            }
            bail!("dnsmasq stopped: {s} (its messages are above)");
        }
        if stop.load(Ordering::Relaxed) {
            drop(server);
            println!("serve-boot: stopped");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
