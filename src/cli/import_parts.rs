//! Which ironclone images `ironclone import` makes of a Clonezilla image: one for a
//! one-disk savedisk image (import.rs), one per disk for an image of several disks
//! (named `<NAME>-<disk>`: each is restored onto its own disk), and one per partition
//! for a saveparts image (named `<NAME>-<part>`). A saveparts image saved no table,
//! so there is no disk to rebuild that would hold its partitions together; each
//! partition becomes a table-less image, as `ironclone backup sda1.ext4-ptcl-img.zst`
//! makes of a single partition image, and restores onto a partition or a disk. An
//! LVM PV (no image of its own) becomes `<NAME>-<pv>`, the PV rebuilt from its VG's
//! metadata and LV images as one LVM area (`ImageDevice::open_pv`), and a LUKS
//! partition `<NAME>-<part>` its header and plaintext areas (`ImageDevice::open_luks`).
//! The repository deduplicates across them as across any images.

use super::import::{import_device, import_img, plan_scratch, ImportOptions};
use super::progress::Renderer;
use ironclone::foreign::clonezilla::device::ImageDevice;
use ironclone::foreign::clonezilla::{lvm, unpack, ClonezillaImage, PartImageKind};
use ironclone::repo::{BackupOptions, Repository};
use ironclone::units::human_bytes;
use std::path::{Path, PathBuf};

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(super) fn import_all(
    folder: &Path,
    repo: &Repository,
    o: &ImportOptions,
) -> anyhow::Result<()> {
    let img = ClonezillaImage::open(folder)?;
    lvm::refuse_whole_disk(&img)?;
    if img.is_saveparts() {
        return import_partitions(&img, repo, o);
    }
    if img.layouts.len() == 1 {
        return import_img(&img, folder, repo, o);
    }
    // Every disk's view first: a partition on no disk is refused before anything.
    let views = img
        .disks
        .iter()
        .map(|d| img.for_disk(Some(d)))
        .collect::<Result<Vec<_>, _>>()?;
    for v in &views {
        let disk = v.disks.first().map_or("disk", String::as_str);
        let n = format!("{}-{disk}", o.name);
        if !o.json {
            eprintln!("disk {disk} of {}: importing as {n}", img.name);
        }
        let one = ImportOptions {
            name: n,
            scratch_dir: o.scratch_dir.clone(),
            cancel: o.cancel.clone(),
            ..*o
        };
        import_img(v, folder, repo, &one)?;
    }
    Ok(())
}

fn import_partitions(
    img: &ClonezillaImage,
    repo: &Repository,
    o: &ImportOptions,
) -> anyhow::Result<()> {
    let (name, level, scratch_dir, json) = (o.name.as_str(), o.level, &o.scratch_dir, o.json);
    // The folder's checksum lists cover every image: checked before anything is stored.
    img.verify_checksums()?;
    // Each LVM PV (saved as its VG's metadata and one image per LV, no image of its
    // own) first, read as a disk without a table that holds only the PV
    // (`ImageDevice::open_pv`): the image `<NAME>-<pv>` holds it as an LVM area, the
    // used blocks of its LVs' filesystems, as a backup of a PV partition does.
    let pvs = img
        .lvm
        .iter()
        .flat_map(|l| l.pvs.iter())
        .filter(|p| img.parts.contains(&p.dev));
    for pv in pvs {
        let n = format!("{name}-{}", pv.dev);
        if !json {
            eprintln!("{}: LVM PV of VG {}, importing as {n}", pv.dev, pv.vg);
        }
        let table = scratch_dir.join(format!(
            "ironclone-clonezilla-{}-{}-{}.pv",
            std::process::id(),
            img.name,
            pv.dev
        ));
        let dev = ImageDevice::open_pv(img, &pv.dev, &table)?.cancel_with(o.cancel.clone());
        let one = ImportOptions {
            name: n,
            scratch_dir: o.scratch_dir.clone(),
            cancel: o.cancel.clone(),
            ..*o
        };
        import_device(img, &dev, &img.dir, repo, &one)?;
    }
    // Each LUKS partition (its header file and its opened volume's image), read as a
    // disk without a table that is the partition (`ImageDevice::open_luks`): the image
    // `<NAME>-<part>` holds its header area and its plaintext area, as a backup of a
    // LUKS partition with its key does.
    for v in &img.luks {
        let n = format!("{name}-{}", v.part);
        if !json {
            eprintln!(
                "{}: LUKS, saved opened as {}, importing as {n}",
                v.part, v.mapper
            );
        }
        let table = scratch_dir.join(format!(
            "ironclone-clonezilla-{}-{}-{}.luks",
            std::process::id(),
            img.name,
            v.part
        ));
        let dev = ImageDevice::open_luks(img, &v.part, &table)?.cancel_with(o.cancel.clone());
        let one = ImportOptions {
            name: n,
            scratch_dir: o.scratch_dir.clone(),
            cancel: o.cancel.clone(),
            ..*o
        };
        import_device(img, &dev, &img.dir, repo, &one)?;
    }
    for p in &img.partitions {
        if p.kind == PartImageKind::Swap {
            if !json {
                eprintln!("{}: swap, Clonezilla saved no data for it; skipped", p.part);
            }
            continue;
        }
        let n = format!("{name}-{}", p.part);
        let scratch = Scratch(scratch_dir.join(format!(
            "ironclone-import-{}-{}-{}.img",
            std::process::id(),
            img.name,
            p.part
        )));
        let t = std::time::Instant::now();
        let unpacked =
            unpack::unpack_standalone_until(&p.path, p.kind.clone(), &scratch.0, &o.cancel);
        let what = format!("unpacking {}", p.path.display());
        let done = super::cancel::before_store(unpacked.map_err(Into::into), &o.cancel, &what)?;
        let (dev, planned) = plan_scratch(&scratch.0, &img.dir, img)?;
        let mut opts = BackupOptions::new(&n);
        opts.level = level;
        let r = Renderer::new(json);
        let m = super::cancel::backup(repo, &dev, &planned.plan, &opts, &r, &o.cancel)?;
        let secs = t.elapsed().as_secs_f64();
        if json {
            println!(
                "{}",
                serde_json::to_string(&serde_json::json!({
                    "event": "result", "image": m.name, "stats": m.stats, "seconds": secs,
                    "partitions": [done],
                }))?
            );
        } else {
            println!(
                "image {} (partition {}, {} {} used) imported in {secs:.1} s: {} new stored as {}, {} deduplicated",
                m.name,
                p.part,
                done.filesystem,
                human_bytes(done.used_bytes),
                human_bytes(m.stats.new_bytes),
                human_bytes(m.stats.new_stored_bytes),
                human_bytes(m.stats.dedup_bytes),
            );
        }
    }
    Ok(())
}
