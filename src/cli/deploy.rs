//! `ironclone deploy REPO NAME --clients N` (the sender) and `ironclone deploy-client
//! --server ADDR` (what each network-booted machine runs): one image restored onto
//! many machines from one multicast stream (docs/DEPLOY.md).

use anyhow::Context;
use clap::Args as ClapArgs;
use ironclone::deploy::client::{self, ClientOptions};
use ironclone::deploy::sender::{self, Outcome, SendOptions};
use ironclone::deploy::target::{cmdline_erase_any, TargetRule};
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
        interface: a.interface.clone(),
        report_timeout: Duration::from_secs(a.report_timeout),
        retries_until_drop: a.retries_until_drop,
        max_bitrate: a.max_bitrate.clone(),
        dead_after: Duration::from_secs(a.dead_after),
    };
    let log = |l: String| println!("{l}");
    let rep = sender::serve(&stream, &a.name, &opts, &log)?;
    println!();
    println!(
        "{:<22} {:<40} {:>10} {:<8} {:>8} {:>10}  message",
        "address", "disk", "size", "result", "time", "written"
    );
    for r in &rep.rows {
        let (disk, size) = r.disk.as_ref().map_or(("-".to_string(), 0), |d| {
            (
                format!(
                    "{}{}",
                    d.describe(),
                    if d.erased_data { " (erased data)" } else { "" }
                ),
                d.size,
            )
        });
        let (result, msg) = match &r.outcome {
            Outcome::Ok => ("ok", String::new()),
            Outcome::Failed(m) => ("FAILED", m.clone()),
            Outcome::Missing(m) => (
                "MISSING",
                format!(
                    "{m}; late/dropped: finish it with `ironclone restore {} {} DISK`",
                    a.repo.display(),
                    a.name
                ),
            ),
        };
        println!(
            "{:<22} {:<40} {:>10} {:<8} {:>7.1}s {:>10}  {msg}",
            r.addr.to_string(),
            disk,
            human_bytes(size),
            result,
            r.seconds,
            human_bytes(r.bytes_written),
        );
    }
    let ok = rep.rows.iter().filter(|r| r.outcome == Outcome::Ok).count();
    println!(
        "{ok} of {} client(s) ok; stream {} bytes sent once in {:.1} s",
        rep.rows.len(),
        stream.bytes,
        rep.udp_sender_seconds
    );
    Ok(if rep.all_ok() {
        super::exit::OK
    } else {
        super::exit::FAILURE
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
    let res = client::run(&opts, &ironclone::progress::NoProgress, &log)?;
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
