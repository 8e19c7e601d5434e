//! `ironclone inspect`: what partition table a disk or image carries, and what each
//! partition holds. Opens the source read-only; never writes.

use anyhow::Context;
use clap::Args;
use ironclone::device::{open_path, Access, BlockDevice, Window};
use ironclone::probe::FsKind;
use ironclone::table::{read_layout, DiskLayout, Partition};
use ironclone::units::human_bytes;
use ironclone::usedmap::map_filesystem;
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// A block device (/dev/sdX) or a disk image file.
    pub device: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Logical sector size of an image file (block devices report their own).
    #[arg(long, value_name = "N")]
    pub sector_size: Option<u32>,
}

/// The filesystem on `dev`: what the superblock probe recognised, and what its
/// used-block map says (a map that could not be made is reported as `raw` with the
/// reason, the way a backup would image it).
fn describe_filesystem(dev: &dyn BlockDevice) -> Option<Value> {
    let info = ironclone::probe::probe(dev);
    let kind = info.as_ref().map_or(FsKind::Unknown, |i| i.kind);
    let map = map_filesystem(dev, kind);
    Some(json!({
        "kind": kind.name(),
        "label": info.as_ref().and_then(|i| i.label.clone()),
        "uuid": info.as_ref().and_then(|i| i.uuid.clone()),
        "block_size": map.block_size,
        "total_bytes": map.total_bytes,
        "used_bytes": map.used_bytes,
        "copy_bytes": map.copy_bytes(),
        "raw": map.raw,
        "raw_reason": map.raw_reason,
        "primary_lost": map.primary_lost,
        "warnings": map.warnings,
        "lvm": map.lvm,
    }))
}

fn partition_json(dev: &dyn BlockDevice, layout: &DiskLayout, p: &Partition) -> Value {
    let fs = p
        .byte_range(layout.sector_size)
        .filter(|_| !p.ptype.is_mbr_extended())
        .and_then(|(off, len)| Window::new(dev, off, len).ok())
        .and_then(|w| describe_filesystem(&w));
    json!({
        "number": p.number,
        "start_lba": p.start_lba.get(),
        "end_lba": p.end_lba.get(),
        "size_bytes": p.size_bytes,
        "type": p.ptype.code(),
        "type_name": p.ptype.name(),
        "uuid": p.uuid.map(|u| u.to_string()),
        "name": p.name,
        "bootable": p.bootable,
        "attributes": p.attributes,
        "logical": p.logical,
        "filesystem": fs,
    })
}

pub fn to_json(path: &str, dev: &dyn BlockDevice, layout: &DiskLayout) -> Value {
    let parts: Vec<Value> = layout
        .partitions
        .iter()
        .map(|p| partition_json(dev, layout, p))
        .collect();
    let mut v = json!({
        "path": path,
        "size_bytes": dev.size(),
        "sector_size": layout.sector_size,
        "table": {
            "kind": layout.kind.name(),
            "disk_guid": layout.disk_guid.map(|u| u.to_string()),
            "disk_signature": layout.disk_signature.map(|s| format!("0x{s:08x}")),
            "hybrid_mbr": layout.hybrid_mbr,
            "gpt": layout.gpt,
        },
        "partitions": parts,
        "warnings": layout.warnings,
    });
    if layout.partitions.is_empty() {
        v["filesystem"] = describe_filesystem(dev).unwrap_or(Value::Null);
    }
    v
}

fn print_human(path: &str, dev: &dyn BlockDevice, layout: &DiskLayout) {
    println!(
        "{path}: {} ({} bytes), {}-byte sectors, table: {}",
        human_bytes(dev.size()),
        dev.size(),
        layout.sector_size,
        layout.kind.name()
    );
    if let Some(g) = layout.disk_guid {
        println!("disk GUID: {g}");
    }
    if let Some(s) = layout.disk_signature {
        println!("disk signature: 0x{s:08x}");
    }
    if layout.hybrid_mbr {
        println!("hybrid MBR: yes");
    }
    for w in &layout.warnings {
        println!("warning: {w}");
    }
    if layout.partitions.is_empty() {
        println!("no partitions");
        if let Some(fs) = describe_filesystem(dev) {
            print_fs("", &fs);
        }
        return;
    }
    println!(
        "{:>3} {:>12} {:>12} {:>10}  {:<38} {:<4} name / uuid",
        "#", "start", "end", "size", "type", "boot"
    );
    for p in &layout.partitions {
        let ty = match p.ptype.name() {
            Some(n) => format!("{} ({n})", p.ptype.code()),
            None => p.ptype.code(),
        };
        let mut extra = p.name.clone().unwrap_or_default();
        if let Some(u) = p.uuid {
            extra = format!("{extra} {u}");
        }
        if p.logical {
            extra = format!("logical {extra}");
        }
        println!(
            "{:>3} {:>12} {:>12} {:>10}  {:<38} {:<4} {}",
            p.number,
            p.start_lba.get(),
            p.end_lba.get(),
            human_bytes(p.size_bytes),
            ty,
            if p.bootable { "*" } else { "" },
            extra.trim()
        );
        let fs = p
            .byte_range(layout.sector_size)
            .filter(|_| !p.ptype.is_mbr_extended())
            .and_then(|(off, len)| Window::new(dev, off, len).ok())
            .and_then(|w| describe_filesystem(&w));
        if let Some(fs) = fs {
            print_fs("      ", &fs);
        }
    }
}

fn print_fs(indent: &str, fs: &Value) {
    let used = fs["used_bytes"].as_u64().unwrap_or(0);
    let total = fs["total_bytes"].as_u64().unwrap_or(0);
    let mut line = format!(
        "{indent}{} {}used {} of {}",
        fs["kind"].as_str().unwrap_or("?"),
        fs["label"]
            .as_str()
            .map(|l| format!("\"{l}\" "))
            .unwrap_or_default(),
        human_bytes(used),
        human_bytes(total)
    );
    if fs["raw"].as_bool() == Some(true) {
        match fs["raw_reason"].as_str() {
            Some(r) if r.contains("imaged raw") => line.push_str(&format!(", {r}")),
            r => line.push_str(&format!(", imaged raw: {}", r.unwrap_or("not understood"))),
        }
    }
    println!("{line}");
    if let Some(vg) = fs["lvm"].as_object() {
        print_lvm(indent, vg);
    }
    for w in fs["warnings"].as_array().into_iter().flatten() {
        println!("{indent}  warning: {}", w.as_str().unwrap_or(""));
    }
}

/// A PV's volume group and a line per LV: what it holds and what a backup copies.
fn print_lvm(indent: &str, vg: &serde_json::Map<String, Value>) {
    let s = |v: &Value| v.as_str().unwrap_or("?").to_string();
    println!(
        "{indent}  VG {} ({} of {} PVs, {} extents)",
        s(&vg["vg_name"]),
        s(&vg["pv_key"]),
        vg["pv_count"].as_u64().unwrap_or(0),
        human_bytes(vg["extent_bytes"].as_u64().unwrap_or(0))
    );
    for lv in vg["lvs"].as_array().into_iter().flatten() {
        let what = match (lv["fs"].as_str(), lv["label"].as_str()) {
            (Some(fs), Some(l)) => format!("{fs} \"{l}\""),
            (Some(fs), None) => fs.to_string(),
            (None, _) => "no filesystem".to_string(),
        };
        let mut line = format!(
            "{indent}    LV {}{}: {what}, {}, copies {}",
            s(&lv["name"]),
            if lv["visible"].as_bool() == Some(false) {
                " (hidden)"
            } else {
                ""
            },
            human_bytes(lv["size"].as_u64().unwrap_or(0)),
            human_bytes(lv["copied"].as_u64().unwrap_or(0)),
        );
        if let Some(why) = lv["whole"].as_str() {
            line.push_str(&format!(" (whole: {why})"));
        }
        println!("{line}");
    }
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let mut dev = open_path(&args.device, Access::ReadOnly)
        .with_context(|| format!("opening {}", args.device.display()))?;
    if let Some(n) = args.sector_size {
        if !(512..=65536).contains(&n) || !n.is_power_of_two() {
            anyhow::bail!("--sector-size {n}: must be a power of two in 512..=65536");
        }
        if dev.is_block_device() && dev.logical_sector_size() != n {
            anyhow::bail!(
                "--sector-size {n}: {} is a block device with {}-byte sectors",
                args.device.display(),
                dev.logical_sector_size()
            );
        }
        dev = dev.with_sector_size(n);
    }
    let layout = read_layout(&dev)
        .with_context(|| format!("reading the partition table of {}", args.device.display()))?;
    let path = args.device.display().to_string();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&to_json(&path, &dev, &layout))?
        );
    } else {
        print_human(&path, &dev, &layout);
    }
    Ok(())
}
