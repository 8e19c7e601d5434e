//! `ironclone images DIR` on a folder of Clonezilla/Rescuezilla images (Clonezilla's
//! /home/partimag) or on one image folder: the same listing as for a repository, each
//! row marked "clonezilla". The folders are only read.

use ironclone::foreign::clonezilla::{self, ClonezillaImage, PartImageKind};
use ironclone::units::human_bytes;
use std::path::{Path, PathBuf};

/// True when `dir` is a Clonezilla image folder or holds some.
pub fn applies(dir: &Path) -> bool {
    clonezilla::is_image_dir(dir)
        || std::fs::read_dir(dir)
            .is_ok_and(|mut it| it.any(|e| e.is_ok_and(|e| clonezilla::is_image_dir(&e.path()))))
}

fn json(img: &ClonezillaImage) -> serde_json::Value {
    let parts: Vec<serde_json::Value> = img
        .partitions
        .iter()
        .map(|p| {
            let (kind, fs) = match &p.kind {
                PartImageKind::Partclone { fs } => ("partclone", Some(fs.as_str())),
                PartImageKind::Ntfsclone => ("ntfsclone", Some("ntfs")),
                PartImageKind::Dd => ("dd", None),
                PartImageKind::Swap => ("swap", Some("swap")),
            };
            serde_json::json!({ "part": p.part, "kind": kind, "fs": fs, "file": p.path })
        })
        .collect();
    let luks: Vec<serde_json::Value> = img
        .luks
        .iter()
        .map(|v| {
            let h = img.luks_header(v);
            serde_json::json!({
                "part": v.part, "uuid": v.uuid, "mapper": v.mapper, "header": v.header,
                "inner": v.inner_kind(),
                "version": h.as_ref().ok().map(|h| h.version),
                "error": h.as_ref().err().map(|e| e.to_string()),
            })
        })
        .collect();
    serde_json::json!({
        "name": img.name,
        "luks": luks,
        "format": "clonezilla",
        "created": img.created,
        "disks": img.disks,
        "saveparts": img.is_saveparts(),
        "disk_layouts": img.layouts.iter().map(|l| serde_json::json!({
            "disk": l.disk,
            "disk_bytes": l.disk_bytes(),
            "parts": img.partitions.iter().filter(|p| img.disk_of(&p.part).is_some_and(|d| d.disk == l.disk)).map(|p| p.part.as_str()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "lvs": img.lvm.as_ref().map(|l| l.lvs.iter().map(|v| serde_json::json!({"vg": v.vg, "lv": v.lv, "image": v.image.path})).collect::<Vec<_>>()),
        "disk_bytes": img.disk_bytes(),
        "stored_bytes": img.stored_bytes,
        "partitions": parts,
    })
}

pub fn run(dir: &Path, as_json: bool) -> anyhow::Result<()> {
    let list: Vec<(PathBuf, Result<ClonezillaImage, _>)> = if clonezilla::is_image_dir(dir) {
        vec![(dir.to_path_buf(), ClonezillaImage::open(dir))]
    } else {
        clonezilla::list(dir)?
    };
    if as_json {
        let v: Vec<serde_json::Value> = list
            .iter()
            .map(|(p, r)| match r {
                Ok(img) => json(img),
                Err(e) => {
                    serde_json::json!({ "path": p, "format": "clonezilla", "error": e.to_string() })
                }
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "images": v }))?
        );
        return Ok(());
    }
    for (_, r) in list {
        match r {
            Ok(img) => print_rows(&img),
            Err(e) => println!("DAMAGED: {e}"),
        }
    }
    Ok(())
}

/// One row per saved disk (a restore or import takes one at a time, `--disk` names
/// it), one row for a saveparts image; LVs on a line of their own.
fn print_rows(img: &ClonezillaImage) {
    let row = |what: String, kind: &str| {
        println!(
            "{:<24} {:>10}  created {}  {}  {}",
            img.name,
            human_bytes(img.stored_bytes),
            img.created.as_deref().unwrap_or("unknown"),
            what,
            kind
        );
    };
    let n = img.layouts.len();
    if img.is_saveparts() {
        row(
            format!("partitions {}", img.parts.join(",")),
            "clonezilla (partitions)",
        );
    }
    for (i, l) in img.layouts.iter().enumerate() {
        let size = l
            .disk_bytes()
            .map(|b| format!(" ({})", human_bytes(b)))
            .unwrap_or_default();
        let of = if n > 1 {
            format!(", disk {} of {n} (--disk {})", i + 1, l.disk)
        } else {
            String::new()
        };
        row(format!("disk {}{size}{of}", l.disk), "clonezilla");
    }
    if let Some(lvm) = &img.lvm {
        let lvs: Vec<String> = lvm
            .lvs
            .iter()
            .map(|l| format!("{}/{} ({})", l.vg, l.lv, l.image.part))
            .collect();
        println!("{:<24} lvm: {}", "", lvs.join(", "));
    }
    for v in &img.luks {
        let what = match img.luks_header(v) {
            Ok(h) => format!("LUKS{}, {} inside", h.version, v.inner_kind()),
            Err(e) => format!("LUKS, refused: {e}"),
        };
        println!("{:<24} clonezilla: {} ({what})", "", v.part);
    }
}
