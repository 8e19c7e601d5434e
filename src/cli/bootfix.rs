//! `ironclone bootfix ...`: the boot repairs on their own, for a disk that was
//! restored or moved by other means, and for the QEMU tests that prove each repair
//! by booting.

use super::exit;
use anyhow::{bail, Context};
use clap::{Args as ClapArgs, Subcommand};
use ironclone::bootfix::esp_fallback::{self, FallbackPlan};
use ironclone::bootfix::grub_bios;
use ironclone::device::{self, Access, BlockDevice};
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Subcommand)]
pub enum What {
    /// Show what GRUB for BIOS looks like on a disk: boot.img's kernel_sector and core.img's blocklist.
    GrubInfo {
        #[arg(long)]
        disk: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// core.img's first sector moved from LBA FROM to LBA TO (bytes already copied):
    /// patch boot.img's kernel_sector and core.img's blocklist.
    GrubRelocate {
        #[arg(long)]
        disk: PathBuf,
        #[arg(long)]
        from: u64,
        #[arg(long)]
        to: u64,
        /// Required: this writes to the disk.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Make sure the ESP starting at LBA ESP_START has \EFI\BOOT\BOOTX64.EFI, copying
    /// the loader found on it (shim, GRUB or Windows Boot Manager).
    EspFallback {
        #[arg(long)]
        disk: PathBuf,
        /// Start LBA (512-byte sectors) of the ESP.
        #[arg(long)]
        esp_start: u64,
        /// Required: this writes to the disk.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
}

/// Runs the subcommand; `Ok(code)` carries a refusal exit code.
pub fn run(args: Args) -> anyhow::Result<u8> {
    match args.what {
        What::GrubInfo { disk, json } => {
            let dev = device::open_path(&disk, Access::ReadOnly)
                .with_context(|| format!("opening {}", disk.display()))?;
            let boot = grub_bios::read_boot_img(&dev)?;
            let Some(boot) = boot else {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({"disk": disk, "grub_boot_img": false})
                    );
                } else {
                    println!("{}: no GRUB boot.img in the MBR", dev.describe());
                }
                return Ok(exit::OK);
            };
            let list = grub_bios::read_core_blocklist(&dev, boot.kernel_sector)?;
            if json {
                let entries: Vec<_> = list
                    .iter()
                    .map(|e| serde_json::json!({"start": e.start, "len": e.len, "segment": e.segment}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"disk": disk, "grub_boot_img": true,
                        "kernel_sector": boot.kernel_sector, "blocklist": entries,
                        "core_sectors": grub_bios::core_sectors(&list)})
                );
            } else {
                println!(
                    "{}: GRUB boot.img, kernel_sector {}",
                    dev.describe(),
                    boot.kernel_sector
                );
                for e in &list {
                    println!(
                        "  blocklist: LBA {} +{} sectors -> segment 0x{:X}",
                        e.start, e.len, e.segment
                    );
                }
            }
            Ok(exit::OK)
        }
        What::GrubRelocate {
            disk,
            from,
            to,
            yes,
            json,
        } => {
            if !yes {
                eprintln!(
                    "ironclone: bootfix grub-relocate writes to {}; add --yes",
                    disk.display()
                );
                return Ok(exit::REFUSED);
            }
            let dev = device::open_path(&disk, Access::ReadWrite)
                .with_context(|| format!("opening {} read-write", disk.display()))?;
            let r = grub_bios::relocate_core(&dev, from, to)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"disk": disk, "old_kernel_sector": r.old_kernel_sector,
                        "new_kernel_sector": r.new_kernel_sector,
                        "blocklist": r.blocklist.iter().map(|(o, n, l)| serde_json::json!({"old": o, "new": n, "len": l})).collect::<Vec<_>>()})
                );
            } else {
                println!(
                    "GRUB BIOS: boot.img kernel_sector {} -> {}",
                    r.old_kernel_sector, r.new_kernel_sector
                );
                for (o, n, l) in &r.blocklist {
                    println!("GRUB BIOS: core.img blocklist LBA {o} -> {n} ({l} sectors)");
                }
            }
            if r.blocklist.is_empty() {
                bail!("no blocklist entries patched");
            }
            Ok(exit::OK)
        }
        What::EspFallback {
            disk,
            esp_start,
            yes,
            json,
        } => {
            if !yes {
                eprintln!(
                    "ironclone: bootfix esp-fallback writes to {}; add --yes",
                    disk.display()
                );
                return Ok(exit::REFUSED);
            }
            let offset = esp_start
                .checked_mul(512)
                .context("ESP start LBA is too large")?;
            let out = esp_fallback::ensure_fallback(&disk, offset, None)?;
            let line = match &out.plan {
                FallbackPlan::AlreadyPresent => {
                    format!("UEFI: {} already present", esp_fallback::FALLBACK_LOADER)
                }
                FallbackPlan::Copy { copies, .. } => copies
                    .iter()
                    .map(|(s, d)| format!("UEFI: copied {s} -> {d}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                FallbackPlan::NoLoader => "UEFI: no loader".into(),
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"disk": disk, "esp_start": esp_start,
                        "already_present": out.plan == FallbackPlan::AlreadyPresent,
                        "report": line, "files_after": out.files_after})
                );
            } else {
                println!("{line}");
            }
            Ok(exit::OK)
        }
    }
}
