//! `ironclone bootfix ...`: the boot repairs on their own, for a disk that was
//! restored or moved by other means, and for the QEMU tests that prove each repair
//! by booting.

use super::exit;
use anyhow::{bail, Context};
use clap::{Args as ClapArgs, Subcommand};
use ironclone::bootfix::efi_load_option::{HardDrive, LoadOption};
use ironclone::bootfix::efivars::{EfiVars, DEFAULT_EFIVARS_DIR};
use ironclone::bootfix::esp_fallback::{self, FallbackPlan};
use ironclone::bootfix::{fat_geometry, grub_bios, ntfs_geometry};
use ironclone::device::{self, Access, BlockDevice, Window};
use ironclone::ondisk::fat::{BootSector, Mode};
use std::path::PathBuf;
use uuid::Uuid;

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
    /// Set the hidden-sectors field of the NTFS or FAT filesystem in a partition to the
    /// partition's start LBA (primary and backup boot sector).
    HiddenSectors {
        #[arg(long)]
        disk: PathBuf,
        /// Start LBA and length in sectors (512 bytes) of the partition.
        #[arg(long)]
        part_start: u64,
        #[arg(long)]
        part_sectors: u64,
        /// Required: this writes to the disk.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the Boot#### entries and BootOrder of an efivarfs directory.
    EfiList {
        #[arg(long, default_value = DEFAULT_EFIVARS_DIR)]
        efivars_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Add a Boot#### entry HD(N,GPT,GUID,START,SIZE)/File(LOADER) (or, with
    /// --mbr-signature, HD(N,MBR,SIGNATURE,START,SIZE)), first in BootOrder; with
    /// --keep-guids, also remove entries whose GPT partition is not in that list.
    EfiEntry {
        #[arg(long, default_value = DEFAULT_EFIVARS_DIR)]
        efivars_dir: PathBuf,
        #[arg(long, default_value = "ironclone")]
        label: String,
        #[arg(long)]
        part_number: u32,
        /// Start LBA and size in sectors of the ESP.
        #[arg(long)]
        part_start: u64,
        #[arg(long)]
        part_size: u64,
        /// The ESP's unique partition GUID (GPT disks).
        #[arg(long, required_unless_present = "mbr_signature")]
        part_guid: Option<Uuid>,
        /// The disk signature (hex u32 at MBR offset 0x1B8, e.g. 0x1c0ec1a5) of an MBR
        /// disk whose ESP (type 0xEF) is partition PART_NUMBER.
        #[arg(long, conflicts_with_all = ["part_guid", "keep_guids"], value_parser = parse_mbr_signature)]
        mbr_signature: Option<u32>,
        #[arg(long, default_value = "\\EFI\\BOOT\\BOOTX64.EFI")]
        loader: String,
        /// Partition GUIDs that exist on the disks now (comma-separated); entries
        /// pointing at any other GPT partition are removed.
        #[arg(long, value_delimiter = ',')]
        keep_guids: Option<Vec<Uuid>>,
        /// Required: this writes firmware variables.
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
        What::HiddenSectors {
            disk,
            part_start,
            part_sectors,
            yes,
            json,
        } => {
            if !yes {
                eprintln!(
                    "ironclone: bootfix hidden-sectors writes to {}; add --yes",
                    disk.display()
                );
                return Ok(exit::REFUSED);
            }
            let dev = device::open_path(&disk, Access::ReadWrite)
                .with_context(|| format!("opening {} read-write", disk.display()))?;
            let (off, len) = part_start
                .checked_mul(512)
                .zip(part_sectors.checked_mul(512))
                .context("partition start/size too large")?;
            let part = Window::new(&dev, off, len)?;
            let head = part.read_vec(0, 512)?;
            let (fs, old, new, backup) = if ntfs_geometry::parse_ntfs_boot(&head).is_ok() {
                let f = ntfs_geometry::fix_ntfs_geometry(&part, part_start, None)?;
                (
                    "ntfs",
                    f.old.hidden_sectors,
                    f.new.hidden_sectors,
                    format!("backup at byte {}", f.backup_offset),
                )
            } else if BootSector::parse(&head, Mode::Trust).is_ok() {
                let f = fat_geometry::fix_fat_hidden_sectors(&part, part_start)?;
                let b = match f.backup_patched_at_sector {
                    Some(s) => format!("backup at sector {s}"),
                    None => "no backup boot sector".into(),
                };
                ("fat", f.old_hidden_sectors, f.new_hidden_sectors, b)
            } else {
                bail!(
                    "{}: no NTFS or FAT boot sector at LBA {part_start}",
                    dev.describe()
                );
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({"disk": disk, "part_start": part_start, "fs": fs,
                        "old_hidden_sectors": old, "new_hidden_sectors": new, "backup": backup})
                );
            } else {
                println!("{fs}: hidden sectors {old} -> {new} (primary, {backup})");
            }
            Ok(exit::OK)
        }
        What::EfiList { efivars_dir, json } => {
            let vars = EfiVars::new(&efivars_dir);
            let order = vars.boot_order()?;
            let entries = vars.boot_entries()?;
            if json {
                let list: Vec<_> = entries
                    .iter()
                    .map(|e| match &e.option {
                        Ok(o) => serde_json::json!({"number": e.number, "entry": o.to_string(),
                            "partition_guid": o.hard_drive().and_then(|h| h.partition_guid()),
                            "mbr_signature": o.hard_drive().and_then(|h| h.mbr_signature()).map(|v| format!("0x{v:08x}")),
                            "file": o.file()}),
                        Err(why) => serde_json::json!({"number": e.number, "error": why.to_string()}),
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"boot_order": order, "entries": list})
                );
            } else {
                let order_s: Vec<String> = order.iter().map(|n| format!("{n:04X}")).collect();
                println!("BootOrder: {}", order_s.join(","));
                for e in &entries {
                    match &e.option {
                        Ok(o) => println!("Boot{:04X}{o}", e.number),
                        Err(why) => println!("Boot{:04X}  (undecodable: {why})", e.number),
                    }
                }
            }
            Ok(exit::OK)
        }
        What::EfiEntry {
            efivars_dir,
            label,
            part_number,
            part_start,
            part_size,
            part_guid,
            mbr_signature,
            loader,
            keep_guids,
            yes,
            json,
        } => {
            if !yes {
                eprintln!(
                    "ironclone: bootfix efi-entry writes firmware variables in {}; add --yes",
                    efivars_dir.display()
                );
                return Ok(exit::REFUSED);
            }
            let vars = EfiVars::new(&efivars_dir);
            let mut removed = Vec::new();
            let hd = match (part_guid, mbr_signature) {
                (Some(g), _) => HardDrive::gpt(part_number, part_start, part_size, g),
                (None, Some(sig)) => HardDrive::mbr(part_number, part_start, part_size, sig),
                (None, None) => bail!("efi-entry needs --part-guid or --mbr-signature"),
            };
            if let (Some(keep), Some(g)) = (keep_guids, part_guid) {
                let mut keep = keep;
                keep.push(g);
                removed = vars.remove_stale(&keep)?;
            }
            let opt = LoadOption::new_hd_file(&label, hd, &loader);
            let n = vars.add_first(&opt)?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"added": n, "entry": opt.to_string(),
                        "removed": removed.iter().map(|(n, o)| serde_json::json!({"number": n, "entry": o.to_string()})).collect::<Vec<_>>(),
                        "boot_order": vars.boot_order()?})
                );
            } else {
                for (r, o) in &removed {
                    println!("UEFI: removed stale Boot{r:04X}{o}");
                }
                println!("UEFI: wrote Boot{n:04X}{opt}, first in BootOrder");
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

/// `--mbr-signature`: hex with or without 0x, as sfdisk prints the label-id. clap
/// names the option and the value given in front of the parse error.
fn parse_mbr_signature(s: &str) -> Result<u32, std::num::ParseIntError> {
    let h = s.trim_start_matches("0x").trim_start_matches("0X");
    u32::from_str_radix(h, 16)
}
