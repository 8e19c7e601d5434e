//! Command-line front end: parses arguments with clap and dispatches to one file per
//! subcommand. Each subcommand is a thin layer over the library.

pub mod backup;
mod backup_partimage;
pub mod bootfix;
mod browse;
mod browse_clonezilla;
mod cancel;
mod deploy;
pub mod disks;
mod export;
mod images;
mod images_clonezilla;
mod import;
mod import_parts;
pub mod inspect;
mod key;
mod progress;
mod prune;
mod repair_index;
mod repo_open;
mod rescue_entry;
mod restore;
mod restore_clonezilla;
mod restore_parts;
mod restore_parts_luks;
mod restore_parts_lvm;
mod schedule;
mod serve_boot;
mod share;
mod storage;
mod target;
use ironclone::timefmt as time;
mod verify;
mod verify_clonezilla;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    /// The job failed (I/O, corrupt input, a tool that failed).
    pub const FAILURE: u8 = 1;
    /// The command line was wrong.
    pub const USAGE: u8 = 2;
    /// The operation was refused for safety (no --yes, mounted target, boot disk...).
    pub const REFUSED: u8 = 3;
}

#[derive(Parser)]
#[command(
    name = "ironclone",
    version,
    about = "Bare-metal rescue and restore: image disks by used blocks, restore onto any size, repair boot",
    long_about = None,
    after_help = "Run with no arguments on a terminal for the interactive TUI."
)]
pub struct Cli {
    /// Start the TUI on a built-in fake machine (demo and manual testing; writes nothing).
    #[arg(long, hide = true)]
    pub demo_data: bool,
    #[command(flatten)]
    pub storage: storage::StorageArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Back up a disk, partition or disk-image file into a repository (used blocks only).
    Backup(backup::Args),
    /// Restore an image onto a disk or image file of any size, and repair booting.
    Restore(restore::Args),
    /// Boot repairs on their own (GRUB BIOS relocation, ...).
    Bootfix(bootfix::Args),
    /// List disks, partitions, filesystems and which disks are off limits.
    Disks(disks::DisksArgs),
    /// Show a disk's or image's partition table and what each partition holds.
    Inspect(inspect::InspectArgs),
    /// List the images in a repository.
    Images(images::Args),
    /// Turn a Clonezilla/Rescuezilla image into an image in a repository.
    Import(import::Args),
    /// Write an image out as a VM disk (qcow2, VHDX, VMDK, VDI, raw) that boots in a VM.
    Export(export::Args),
    /// Check every chunk, reference and root hash of a repository or one image.
    Verify(verify::Args),
    /// Remove chunks that no image uses.
    Prune(prune::Args),
    /// Add, list or remove the passphrases (key slots) of an encrypted repository.
    Key(key::Args),
    /// Rebuild a lost or damaged index from the packs (verify says when).
    RepairIndex(repair_index::Args),
    /// List directories and copy files out of an image without restoring it.
    Browse(browse::Args),
    /// Mount or unmount an SMB share or NFSv4 export (Windows share, NAS) for a repository.
    Share(share::Args),
    /// Serve the live system to machines booting from the network (proxy DHCP + TFTP).
    ServeBoot(serve_boot::Args),
    /// Scheduled backups by a systemd timer: init, run, status.
    Schedule(schedule::Args),
    /// Restore one image onto many machines at once (multicast; the sender side).
    Deploy(deploy::Args),
    /// Receive a deploy and restore it onto this machine's empty disk (the client side).
    DeployClient(deploy::ClientArgs),
    /// The boot entry into the live system for scheduled backups: install, remove, status.
    Rescue(rescue_entry::Args),
}

/// No subcommand: the interactive TUI on the real machine, or on the built-in fake
/// machine with `--demo-data` (or IRONCLONE_DEMO_DATA=1).
fn tui(demo: bool) -> ExitCode {
    use std::io::IsTerminal;
    let demo = demo || std::env::var_os("IRONCLONE_DEMO_DATA").is_some_and(|v| v == "1");
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        eprintln!("ironclone: the TUI needs a terminal; see --help for the CLI");
        return ExitCode::from(exit::USAGE);
    }
    let services: std::sync::Arc<dyn ironclone::tui::Services> = if demo {
        // The demo's pace; tests set IRONCLONE_DEMO_STEP_MS low to run fast.
        let step_ms = std::env::var("IRONCLONE_DEMO_STEP_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60);
        std::sync::Arc::new(ironclone::tui::demo::FakeServices::new(
            std::time::Duration::from_millis(step_ms),
        ))
    } else {
        std::sync::Arc::new(ironclone::tui::real::RealServices::from_env())
    };
    match ironclone::tui::run(services) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("ironclone: terminal error: {e}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

pub fn main() -> ExitCode {
    // Run as ssh's wrapper or askpass helper (SFTP password login), not as ironclone.
    if let Some(code) = ironclone::repo::storage::askpass::dispatch() {
        return code;
    }
    let cli = Cli::parse();
    let code = match storage::setup(&cli) {
        Ok(opts) => {
            ironclone::repo::storage::RemoteOptions::set_global(opts);
            run(cli)
        }
        Err(e) => {
            eprintln!("ironclone: error: {e:#}");
            ExitCode::from(exit::USAGE)
        }
    };
    ironclone::repo::storage::askpass::uninstall();
    code
}

fn run(cli: Cli) -> ExitCode {
    let result: anyhow::Result<()> = match cli.command {
        Some(Command::Bootfix(args)) => match bootfix::run(args) {
            Ok(code) if code != exit::OK => return ExitCode::from(code),
            other => other.map(|_| ()),
        },
        Some(Command::Backup(a)) => backup::run(a),
        Some(Command::Restore(a)) => match restore::run(a) {
            Ok(code) if code != exit::OK => return ExitCode::from(code),
            other => other.map(|_| ()),
        },
        Some(Command::Disks(args)) => disks::run(args),
        Some(Command::Inspect(a)) => inspect::run(a),
        Some(Command::Images(a)) => images::run(a),
        Some(Command::Import(a)) => import::run(a),
        Some(Command::Export(a)) => export::run(a),
        Some(Command::Verify(a)) => verify::run(a),
        Some(Command::Prune(a)) => prune::run(a),
        Some(Command::Key(a)) => key::run(a),
        Some(Command::RepairIndex(a)) => repair_index::run(a),
        Some(Command::Browse(a)) => match browse::run(a) {
            Ok(code) if code != exit::OK => return ExitCode::from(code),
            other => other.map(|_| ()),
        },
        Some(Command::Share(a)) => share::run(a),
        Some(Command::ServeBoot(a)) => serve_boot::run(a),
        Some(Command::Schedule(a)) => match schedule::run(a) {
            Ok(code) if code != exit::OK => return ExitCode::from(code),
            other => other.map(|_| ()),
        },
        Some(Command::Deploy(a)) => match deploy::run(a) {
            Ok(code) if code != exit::OK => return ExitCode::from(code),
            other => other.map(|_| ()),
        },
        Some(Command::DeployClient(a)) => match deploy::run_client(a) {
            Ok(code) if code != exit::OK => return ExitCode::from(code),
            other => other.map(|_| ()),
        },
        Some(Command::Rescue(a)) => match rescue_entry::run(a) {
            Ok(code) if code != exit::OK => return ExitCode::from(code),
            other => other.map(|_| ()),
        },
        None => return tui(cli.demo_data),
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("ironclone: error: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
