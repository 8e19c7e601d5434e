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
    serde_json::json!({
        "name": img.name,
        "format": "clonezilla",
        "created": img.created,
        "disks": img.disks,
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
            Ok(img) => {
                let disk = match (img.disks.is_empty(), img.disk_bytes()) {
                    (true, _) => format!("partitions {}", img.parts.join(",")),
                    (false, Some(b)) => {
                        format!("disk {} ({})", img.disks.join(","), human_bytes(b))
                    }
                    (false, None) => format!("disk {}", img.disks.join(",")),
                };
                println!(
                    "{:<24} {:>10}  created {}  {}  clonezilla",
                    img.name,
                    human_bytes(img.stored_bytes),
                    img.created.as_deref().unwrap_or("unknown"),
                    disk
                );
            }
            Err(e) => println!("DAMAGED: {e}"),
        }
    }
    Ok(())
}
