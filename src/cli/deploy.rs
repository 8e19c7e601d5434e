//! `ironclone deploy REPO NAME --clients N` (the sender) and `ironclone deploy-client
//! --server ADDR` (what each network-booted machine runs): one image restored onto
//! many machines from one multicast stream (docs/DEPLOY.md).

use anyhow::Context;
use clap::Args as ClapArgs;
use ironclone::deploy::client::{self, ClientOptions};
use ironclone::deploy::sender::{self, SendOptions};
use ironclone::deploy::target::{cmdline_erase_any, TargetRule};
use ironclone::deploy::{self, report};
use ironclone::netboot::serve::{DhcpChoice, ServeOptions};
use ironclone::tui::client_screen::ClientScreen;
use ironclone::units::human_bytes;
use std::path::PathBuf;
use std::time::Duration;

/// The TCP control port; udpcast's data ports are this + 2 and + 3.
const DEFAULT_PORT: u16 = 9200;

#[derive(ClapArgs)]
#[command(
    after_help = "Examples:\n  ironclone deploy /mnt/repo lab-pc --clients 20 --max-wait 600\n  \
ironclone serve-boot --interface eth1 --mode unattended \\\n    \
--append 'ironclone.run=deploy-client+--server+192.168.1.5'\n\n\
The transfer starts as udp-sender(1) decides: when --clients receivers are there (but not before \
--min-wait seconds), or after --max-wait seconds with at least one. The LAN stream is NOT encrypted, \
even from an encrypted repository (the passphrase stays on the sender)."
)]
pub struct Args {
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
    /// The repository (a directory, s3:// or sftp://).
    pub repo: PathBuf,
    /// The image to deploy.
    pub name: String,
    /// Start when this many clients are there (udp-sender --min-receivers).
    #[arg(long)]
    pub clients: u32,
    /// Wait at least this many seconds even when all clients are there.
    #[arg(long, value_name = "S")]
    pub min_wait: Option<u32>,
    /// Start after this many seconds with at least one client.
    #[arg(long, value_name = "S")]
    pub max_wait: Option<u32>,
    /// TCP control port (udpcast uses PORT+2 and PORT+3).
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Network interface for the multicast stream.
    #[arg(long)]
    pub interface: Option<String>,
    /// Seconds to wait for the clients' reports once the stream is sent.
    #[arg(long, default_value_t = 3600)]
    pub report_timeout: u64,
    /// Where the stream file is built (it is the image's stored size; default: the
    /// system's temporary directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// udp-sender --retries-until-drop: how soon a receiver that stopped answering is
    /// dropped so the others go on.
    #[arg(long, default_value_t = 30)]
    pub retries_until_drop: u32,
    /// Write the stream to FILE and stop (its size, fuzz seeds); nothing is sent.
    #[arg(long, value_name = "FILE")]
    pub write_stream: Option<PathBuf>,
    /// Cap the stream's rate (udp-sender --max-bitrate, e.g. 500m) on a shared network.
    #[arg(long)]
    pub max_bitrate: Option<String>,
    /// Seconds a registered client's machine may not answer at all (TCP keepalive)
    /// before it is listed as dropped (powered off, cable pulled).
    #[arg(long, value_name = "S", default_value_t = 90)]
    pub dead_after: u64,
    /// Also serve network boot on this interface (as `serve-boot --mode run`) with the
    /// client command on the kernel line; stopped when the deploy ends.
    #[arg(long, value_name = "IF")]
    pub serve_boot: Option<String>,
    /// With --serve-boot: the boot root (default: the medium this live system booted from).
    #[arg(long, value_name = "DIR", requires = "serve_boot")]
    pub boot_root: Option<PathBuf>,
    /// With --serve-boot: be the only DHCP server and hand out START,END.
    #[arg(long, value_name = "START,END", requires = "serve_boot")]
    pub boot_range: Option<String>,
    /// With --serve-boot: the clients' --target rule (auto, largest or a path).
    #[arg(
        long,
        value_name = "RULE",
        default_value = "auto",
        requires = "serve_boot"
    )]
    pub client_target: TargetRule,
    /// With --serve-boot: more kernel arguments for the clients (e.g. ironclone.erase=any).
    #[arg(
        long,
        value_name = "WORDS",
        default_value = "",
        requires = "serve_boot"
    )]
    pub boot_append: String,
    /// With --serve-boot: where the TFTP root and dnsmasq's files are made.
    #[arg(
        long,
        default_value = "/run/ironclone/serve-boot",
        requires = "serve_boot"
    )]
    pub boot_run_dir: PathBuf,
    /// With --serve-boot: the console the clients draw their screen on (a serial port
    /// such as /dev/ttyS1 for a lab watched over IPMI serial-over-LAN).
    #[arg(
        long,
        value_name = "TTY",
        default_value = deploy::CLIENT_SCREEN,
        requires = "serve_boot"
    )]
    pub client_screen: String,
}

#[derive(ClapArgs)]
#[command(
    after_help = "Examples:\n  ironclone deploy-client --server 192.168.1.5\n  \
ironclone deploy-client --server 192.168.1.5:9200 --target /dev/nvme0n1\n\n\
--target auto takes the only EMPTY disk (all zeros in its first and last MiB), never the boot medium \
or a mounted disk; a disk with data is refused unless the kernel command line has ironclone.erase=any."
)]
pub struct ClientArgs {
    /// The sender, HOST or HOST:PORT.
    #[arg(long)]
    pub server: String,
    /// auto (the only empty disk), largest (the largest empty disk) or a path.
    #[arg(long, default_value = "auto")]
    pub target: TargetRule,
    /// Allow a disk with data, as ironclone.erase=any on the kernel command line does
    /// (for tests and manual runs).
    #[arg(long)]
    pub erase_any: bool,
    /// Where the received image is spooled (default /tmp: RAM on the live system).
    #[arg(long, default_value = "/tmp")]
    pub spool: PathBuf,
    /// Network interface to receive on.
    #[arg(long)]
    pub interface: Option<String>,
    /// Seconds to keep trying to reach the sender.
    #[arg(long, default_value_t = 300)]
    pub connect_timeout: u64,
    /// Fresh disk/partition GUIDs and MBR signature on this machine's disk.
    #[arg(long)]
    pub new_ids: bool,
    #[arg(long)]
    pub no_verify: bool,
    #[arg(long)]
    pub no_nvram: bool,
    /// Seconds this client may still be receiving after the sender's stream ended
    /// before it counts itself dropped.
    #[arg(long, default_value_t = 30)]
    pub late_grace: u64,
    /// Show the "waiting for the server" screen on this console (e.g. /dev/tty1); the
    /// log lines still go to standard output.
    #[arg(long, value_name = "TTY")]
    pub screen: Option<PathBuf>,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    if a.clients == 0 {
        eprintln!("ironclone: --clients must be at least 1");
        return Ok(super::exit::USAGE);
    }
    let repo = super::repo_open::open(&a.repo, &a.secret)?;
    if let Some(p) = &a.write_stream {
        let s = sender::build_stream(&repo, &a.name, p)
            .with_context(|| format!("building the stream of image {}", a.name))?;
        println!(
            "stream: {} records, {} bytes in {}",
            s.counts.records,
            s.bytes,
            p.display()
        );
        return Ok(super::exit::OK);
    }
    let work = a.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let path = work.join(format!("ironclone-deploy-{}.stream", std::process::id()));
    let _cleanup = RemoveOnDrop(path.clone());
    println!("building the stream of {} ...", a.name);
    let stream = sender::build_stream(&repo, &a.name, &path)
        .with_context(|| format!("building the stream of image {}", a.name))?;
    println!(
        "stream: {} records, {} stored ({} of disk data), {} bytes",
        stream.counts.records,
        human_bytes(stream.counts.stored_bytes),
        human_bytes(stream.counts.raw_bytes),
        stream.bytes
    );
    if repo.config().encryption.is_some() {
        println!("note: the repository is encrypted; the LAN stream is not");
    }
    let opts = SendOptions {
        clients: a.clients,
        min_wait: a.min_wait,
        max_wait: a.max_wait,
        port: a.port,
        interface: a.interface.clone().or_else(|| a.serve_boot.clone()),
        report_timeout: Duration::from_secs(a.report_timeout),
        retries_until_drop: a.retries_until_drop,
        max_bitrate: a.max_bitrate.clone(),
        dead_after: Duration::from_secs(a.dead_after),
    };
    // Ctrl-C or SIGTERM cancels cleanly: udp-sender and the boot server are stopped,
    // the clients told, the table printed. A second one ends the process at once.
    let cancel = super::cancel::on_signals()?;
    let boot = match &a.serve_boot {
        None => None,
        Some(iface) => {
            let o = boot_options(&a, iface)?;
            let p = super::serve_boot::prepare_and_tell(&o)?;
            let server = p.start(false)?;
            println!("serve-boot: serving; stopped when the deploy ends");
            if cmdline_erase_any(&o.append) {
                println!(
                    "serve-boot: the clients' kernel line has ironclone.erase=any: the site accepts erasing a disk that holds data"
                );
            }
            Some(server)
        }
    };
    let log = |l: String| println!("{l}");
    let rep = sender::serve(&stream, &a.name, &opts, &cancel, &log);
    if boot.is_some() {
        drop(boot);
        println!("serve-boot: stopped");
    }
    let rep = rep?;
    let hint = report::finish_hint(&a.repo.display().to_string(), &a.name);
    println!();
    for l in report::table_lines(&rep, stream.bytes, &hint) {
        println!("{l}");
    }
    Ok(if rep.all_ok() {
        super::exit::OK
    } else {
        super::exit::FAILURE
    })
}

/// `serve-boot --mode run` with the client command (this server's address and port,
/// the target rule, the screen on the client's console) on the kernel line.
fn boot_options(a: &Args, iface: &str) -> anyhow::Result<ServeOptions> {
    if !a.client_screen.starts_with("/dev/") || a.client_screen.contains(char::is_whitespace) {
        anyhow::bail!(
            "--client-screen {:?}: give a console device, e.g. /dev/tty1 or /dev/ttyS1",
            a.client_screen
        );
    }
    let net = ironclone::netboot::interface_ipv4(iface)?;
    let run = deploy::client_command(
        &net.addr.to_string(),
        a.port,
        &a.client_target,
        &a.client_screen,
    );
    Ok(ServeOptions {
        interface: iface.to_string(),
        root: a.boot_root.clone(),
        dhcp: a
            .boot_range
            .clone()
            .map_or(DhcpChoice::Proxy, DhcpChoice::Range),
        mode: ironclone::netboot::BootMode::Run,
        menu_timeout: 3,
        append: format!("{run} {}", a.boot_append).trim().to_string(),
        run_dir: a.boot_run_dir.clone(),
    })
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub fn run_client(a: ClientArgs) -> anyhow::Result<u8> {
    let server = if a.server.contains(':') {
        a.server.clone()
    } else {
        format!("{}:{DEFAULT_PORT}", a.server)
    };
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let erase_any = a.erase_any || cmdline_erase_any(&cmdline);
    let opts = ClientOptions {
        server,
        target: a.target.clone(),
        erase_any,
        spool_dir: a.spool.clone(),
        interface: a.interface.clone(),
        connect_timeout: Duration::from_secs(a.connect_timeout),
        new_ids: a.new_ids,
        verify: !a.no_verify,
        nvram: !a.no_nvram,
        late_grace: Duration::from_secs(a.late_grace),
    };
    let log = |l: String| println!("{l}");
    // A console that cannot be opened costs only the picture, never the deploy.
    let screen = a.screen.as_ref().and_then(|tty| {
        ClientScreen::open(tty, &opts.server)
            .map_err(|e| println!("deploy: no screen on {}: {e}", tty.display()))
            .ok()
    });
    let res = match &screen {
        Some(s) => client::run_watched(&opts, s, &log, &|st| s.state(st))?,
        None => client::run(&opts, &ironclone::progress::NoProgress, &log)?,
    };
    drop(screen);
    if res.report.ok {
        println!("deploy: ok: {}", res.report.message);
        Ok(super::exit::OK)
    } else {
        eprintln!("ironclone: deploy failed: {}", res.report.message);
        Ok(
            if res.report.message.starts_with("no target") && res.target.is_none() {
                super::exit::REFUSED
            } else {
                super::exit::FAILURE
            },
        )
    }
}
