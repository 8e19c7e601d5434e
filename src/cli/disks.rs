//! `ironclone disks [--json]`: every disk, its partitions and filesystems, and which
//! disks are off limits (boot medium, mounted, read-only), as a table or as JSON.

use anyhow::Context;
use clap::Args;
use ironclone::discover::{self, check_target_allowed, Disk, SysPaths};
use ironclone::units::human_bytes;

#[derive(Args, Debug)]
pub struct DisksArgs {
    /// Print a JSON array of disks (partitions nested) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DisksArgs) -> anyhow::Result<()> {
    let disks = discover::list_disks(&SysPaths::default()).context("listing disks")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&disks)?);
        return Ok(());
    }
    if disks.is_empty() {
        println!("no disks found");
        return Ok(());
    }
    println!(
        "{:<12} {:<28} {:<22} {:>10} {:<8} FLAGS",
        "DEVICE", "MODEL", "SERIAL", "SIZE", "BUS"
    );
    for d in &disks {
        print_disk(d);
    }
    Ok(())
}

fn flags(d: &Disk) -> String {
    let mut f = Vec::new();
    if d.is_boot {
        f.push("boot".to_string());
    }
    if d.has_mounted {
        f.push("mounted".to_string());
    }
    if d.read_only {
        f.push("ro".to_string());
    }
    if d.removable {
        f.push("removable".to_string());
    }
    // The kernel calls every loop device rotational; only real disks say "hdd".
    if d.rotational && d.transport != ironclone::discover::Transport::Loop {
        f.push("hdd".to_string());
    }
    if d.logical_sector_size != 512 {
        f.push(format!("{}n", d.logical_sector_size));
    }
    if check_target_allowed(d).is_err() {
        f.push("not-a-target".to_string());
    }
    f.join(",")
}

fn fs_text(fs: Option<&ironclone::probe::FsInfo>) -> String {
    match fs {
        None => "-".to_string(),
        Some(fs) => {
            let mut s = fs.kind.to_string();
            if let Some(l) = &fs.label {
                s.push_str(&format!(" \"{l}\""));
            }
            if let Some(u) = &fs.uuid {
                s.push_str(&format!(" {u}"));
            }
            s
        }
    }
}

fn print_disk(d: &Disk) {
    let model = d.model.clone().or_else(|| {
        d.backing_file
            .as_ref()
            .map(|f| format!("loop:{}", f.display()))
    });
    println!(
        "{:<12} {:<28} {:<22} {:>10} {:<8} {}",
        d.path.display(),
        model.as_deref().unwrap_or("-"),
        d.serial.as_deref().unwrap_or("-"),
        human_bytes(d.size_bytes),
        d.transport.name(),
        flags(d)
    );
    if let Some(e) = &d.probe_error {
        println!("  (filesystems not probed: {e})");
    }
    if d.partitions.is_empty() && d.filesystem.is_some() {
        println!("  (whole disk)  {}", fs_text(d.filesystem.as_ref()));
    }
    for p in &d.partitions {
        let mounts: Vec<String> = p
            .mountpoints
            .iter()
            .map(|m| m.display().to_string())
            .collect();
        println!(
            "  {:<14} #{:<3} start {:>12} {:>10}  {}{}",
            p.path.display(),
            p.number,
            p.start_bytes,
            human_bytes(p.size_bytes),
            fs_text(p.filesystem.as_ref()),
            if mounts.is_empty() {
                String::new()
            } else {
                format!("  on {}", mounts.join(", "))
            }
        );
    }
}
