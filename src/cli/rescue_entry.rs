//! `ironclone rescue install|remove|status`: the boot entry into the live system that
//! scheduled runs use for disks with a plain partition mounted read-write
//! (src/schedule/rescue_entry; docs/SCHEDULE.md, "The rescue entry").

use clap::{Args as ClapArgs, Subcommand};
use ironclone::bootfix::efivars::DEFAULT_EFIVARS_DIR;
use ironclone::schedule::rescue_entry::{
    self as entry, Firmware, Install, RescueEntry, Source, Target,
};
use ironclone::schedule::Roots;
use std::path::PathBuf;

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Subcommand)]
pub enum Action {
    /// Put the live system's kernel and initramfs on the ESP (or /boot) with a boot
    /// entry "ironclone rescue" that backs up unattended and reboots.
    Install(InstallArgs),
    /// Remove the boot entry and the files.
    Remove(CommonArgs),
    /// Show the installed entry and whether the firmware still has it.
    Status(StatusArgs),
}

#[derive(ClapArgs)]
#[command(
    after_help = "Examples:\n  ironclone rescue install --esp /boot/efi --yes            (from the live stick)\n  ironclone rescue install --esp /boot/efi --iso ironclone.iso --yes\n  ironclone rescue install --boot /boot --kernel vmlinuz --initramfs initrd.img --yes"
)]
pub struct InstallArgs {
    /// The mounted EFI system partition (UEFI machines).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "boot",
        required_unless_present = "boot"
    )]
    pub esp: Option<PathBuf>,
    /// The installed system's /boot (BIOS machines with GRUB).
    #[arg(long, value_name = "DIR")]
    pub boot: Option<PathBuf>,
    /// The live kernel; with --initramfs. Default: from --iso, or the live medium.
    #[arg(long, requires = "initramfs", conflicts_with = "iso")]
    pub kernel: Option<PathBuf>,
    #[arg(long, requires = "kernel")]
    pub initramfs: Option<PathBuf>,
    /// An ironclone ISO to take boot/vmlinuz and boot/initrd.img from.
    #[arg(long)]
    pub iso: Option<PathBuf>,
    /// The installed root's filesystem UUID (default: the filesystem mounted at the root).
    #[arg(long)]
    pub root_uuid: Option<String>,
    /// More kernel arguments for the rescue system (e.g. console=ttyS0,115200).
    #[arg(long = "append", value_name = "ARG")]
    pub append: Vec<String>,
    /// The ESP as DISK:N when it is not the mounted partition's disk (disk images).
    #[arg(long, value_name = "DISK:N")]
    pub esp_partition: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Required: this writes to the ESP or /boot and to the firmware's variables.
    #[arg(long)]
    pub yes: bool,
}

#[derive(ClapArgs)]
pub struct CommonArgs {
    /// The installed system's root (default /): the record and GRUB script go under it.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// efivarfs, or a directory laid out like it.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_EFIVARS_DIR)]
    pub efivars: PathBuf,
}

#[derive(ClapArgs)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    match a.action {
        Action::Install(i) => install(i),
        Action::Remove(c) => {
            let roots = Roots::new(c.root.as_deref());
            match entry::remove(&roots, &c.efivars)? {
                Some(r) => println!("removed the rescue entry and {}", r.dir.display()),
                None => println!("no rescue entry installed"),
            }
            Ok(super::exit::OK)
        }
        Action::Status(s) => status(s),
    }
}

fn install(a: InstallArgs) -> anyhow::Result<u8> {
    let roots = Roots::new(a.common.root.as_deref());
    let target = match (&a.esp, &a.boot) {
        (Some(esp), _) => {
            let esp_part = match &a.esp_partition {
                None => None,
                Some(t) => {
                    let (d, n) = t
                        .rsplit_once(':')
                        .and_then(|(d, n)| Some((PathBuf::from(d), n.parse::<u32>().ok()?)))
                        .ok_or_else(|| anyhow::anyhow!("--esp-partition wants DISK:N, got {t}"))?;
                    Some((d, n))
                }
            };
            Target::Uefi {
                esp: esp.clone(),
                efivars: a.common.efivars.clone(),
                esp_part,
            }
        }
        (None, Some(boot)) => Target::Bios { boot: boot.clone() },
        (None, None) => anyhow::bail!("give --esp DIR (UEFI) or --boot DIR (BIOS)"),
    };
    if let Target::Uefi { efivars, .. } = &target {
        if !efivars.is_dir() {
            anyhow::bail!(
                "{} does not exist: this system did not boot with UEFI (use --boot /boot for GRUB on BIOS)",
                efivars.display()
            );
        }
    }
    let what = match &target {
        Target::Uefi { esp, efivars, .. } => format!(
            "{}/{} and a boot entry \"{}\" in the firmware's variables ({})",
            esp.display(),
            entry::ESP_DIR,
            entry::LABEL,
            efivars.display()
        ),
        Target::Bios { boot } => format!(
            "{}/{} and {}",
            boot.display(),
            entry::BOOT_DIR,
            roots.root().join(entry::grub::SNIPPET).display()
        ),
    };
    if !a.yes {
        eprintln!("ironclone: rescue install writes {what}; add --yes");
        return Ok(super::exit::REFUSED);
    }
    let source = match (a.kernel, a.initramfs, a.iso) {
        (Some(kernel), Some(initramfs), _) => Source::Files { kernel, initramfs },
        (_, _, Some(iso)) => Source::Iso(iso),
        _ => Source::LiveMedium,
    };
    let rec = entry::install(
        &roots,
        &Install {
            source,
            target,
            root_uuid: a.root_uuid,
            append: a.append,
        },
    )?;
    println!("rescue entry installed: {}", rec.dir.display());
    match rec.boot_number {
        Some(n) => println!(
            "UEFI: Boot{n:04X} \"{}\" (not in BootOrder: scheduled runs reach it with BootNext)",
            entry::LABEL
        ),
        None if roots.is_alternate() => println!(
            "GRUB: {} written; run update-grub in that system",
            roots.root().join(entry::grub::SNIPPET).display()
        ),
        None => println!("GRUB: menu entry \"{}\" added", entry::LABEL),
    }
    println!("installed root: UUID={}", rec.root_uuid);
    if let Some(b) = &rec.boot_uuid {
        println!(
            "the root is on device-mapper (LUKS or LVM): the rescue run reads a copy of the schedule in {} (filesystem UUID={b})",
            rec.dir.display()
        );
    }
    println!("kernel command line: {}", rec.cmdline);
    Ok(super::exit::OK)
}

fn status(s: StatusArgs) -> anyhow::Result<u8> {
    let roots = Roots::new(s.common.root.as_deref());
    let Some(rec) = RescueEntry::load(&roots)? else {
        if s.json {
            println!("{}", serde_json::json!({ "installed": false }));
        } else {
            println!("rescue entry: not installed");
        }
        return Ok(super::exit::FAILURE);
    };
    let h = entry::health(&roots, &rec, &s.common.efivars)?;
    let ok = h.files_present
        && match rec.firmware {
            Firmware::Uefi => h.nvram_entry.is_some(),
            Firmware::Bios => h.grub_snippet_present,
        };
    if s.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "installed": true,
                "ok": ok,
                "entry": rec,
                "files_present": h.files_present,
                "nvram_entry": h.nvram_entry,
                "boot_next_pending": h.boot_next_pending,
                "grub_snippet_present": h.grub_snippet_present,
            }))?
        );
    } else {
        println!(
            "rescue entry: {} ({})",
            if ok { "installed" } else { "BROKEN" },
            match rec.firmware {
                Firmware::Uefi => "UEFI",
                Firmware::Bios => "BIOS/GRUB",
            }
        );
        println!(
            "  files: {} ({})",
            rec.dir.display(),
            if h.files_present {
                "present"
            } else {
                "MISSING"
            }
        );
        match rec.firmware {
            Firmware::Uefi => match h.nvram_entry {
                Some(n) => println!(
                    "  firmware: Boot{n:04X}{}",
                    if h.boot_next_pending {
                        ", BootNext set: the next boot runs the backup"
                    } else {
                        ""
                    }
                ),
                None => println!("  firmware: entry MISSING (run rescue install again)"),
            },
            Firmware::Bios => println!(
                "  GRUB script: {}",
                if h.grub_snippet_present {
                    "present"
                } else {
                    "MISSING"
                }
            ),
        }
        println!("  installed root: UUID={}", rec.root_uuid);
        if let Some(b) = &rec.boot_uuid {
            println!(
                "  schedule copy: {} (boot partition UUID={b})",
                rec.dir.display()
            );
        }
        println!("  kernel command line: {}", rec.cmdline);
    }
    Ok(if ok {
        super::exit::OK
    } else {
        super::exit::FAILURE
    })
}
