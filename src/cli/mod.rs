//! Command-line front end: parses arguments with clap and dispatches to one file per
//! subcommand. Each subcommand is a thin layer over the library.

pub mod bootfix;
pub mod disks;
pub mod inspect;
mod images;
mod progress;
mod prune;
mod verify;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes, documented in the README.
#[allow(dead_code)] // REFUSED is for the writing subcommands (restore, clone).
pub mod exit {
    pub const OK: u8 = 0;
    /// The job failed (I/O, corrupt input, a tool that failed).
    pub const FAILURE: u8 = 1;
    /// The command line was wrong.
    pub const USAGE: u8 = 2;
    /// The operation was refused for safety (no --yes, mounted target, boot disk...).
    #[allow(dead_code)] // until the first destructive subcommand lands
    #[allow(dead_code)] // used once backup/restore refuse (lead glue)
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
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Boot repairs on their own (GRUB BIOS relocation, ...).
    Bootfix(bootfix::Args),
    /// List disks, partitions, filesystems and which disks are off limits.
    Disks(disks::DisksArgs),
    /// Show a disk's or image's partition table and what each partition holds.
    Inspect(inspect::InspectArgs),
    /// List the images in a repository.
    Images(images::Args),
    /// Check every chunk, reference and root hash of a repository or one image.
    Verify(verify::Args),
    /// Remove chunks that no image uses.
    Prune(prune::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: anyhow::Result<()> = match cli.command {
        None => {
            eprintln!("ironclone: the TUI is not built yet; see --help for the CLI");
            return ExitCode::from(exit::USAGE);
        }
        Some(Command::Bootfix(args)) => match bootfix::run(args) {
            Ok(code) if code != exit::OK => return ExitCode::from(code),
            other => other.map(|_| ()),
        },
        Some(Command::Disks(args)) => disks::run(args),
        Some(Command::Inspect(a)) => inspect::run(a),
        Some(Command::Images(a)) => images::run(a),
        Some(Command::Verify(a)) => verify::run(a),
        Some(Command::Prune(a)) => prune::run(a),
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("ironclone: error: {e:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}
