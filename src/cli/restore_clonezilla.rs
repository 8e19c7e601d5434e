//! `ironclone restore DIR IMAGE TARGET` where DIR holds Clonezilla image folders (or
//! `DIR/IMAGE` is one). The image's disk is first rebuilt in a sparse scratch file
//! (boot areas, table, each partition's used blocks), which decodes every partition
//! image to its end and so checks every checksum and checksum list before the target
//! is touched. The scratch disk is then read like a source disk (its table and
//! filesystems give the planner what an ironclone image's metadata gives it) and
//! copied onto the target along the plan, with the same grow/shrink, boot repair and
//! read-back verify as any restore. Plans that rebuild a partition instead of copying
//! it (a re-created ESP or XFS, an LVM PV laid out anew) go through a temporary
//! repository, as the repository restore does those steps.

use super::restore::Args;
use ironclone::foreign::clonezilla::{self, assemble, ClonezillaImage};
use ironclone::imaging::{device_restore_unsupported, restore_disk, restore_disk_from_device};
use ironclone::repo::{self, BackupOptions, Repository};
use ironclone::units::human_bytes;
use std::path::PathBuf;

/// True when the command names a Clonezilla image rather than a repository image.
pub fn applies(a: &Args) -> bool {
    clonezilla::names_image(&a.repo, &a.name)
}

/// Removes a scratch file or the temporary repository however the restore ends.
struct Temp(PathBuf);

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = if self.0.is_dir() {
            std::fs::remove_dir_all(&self.0)
        } else {
            std::fs::remove_file(&self.0)
        };
    }
}

pub fn run(mut a: Args) -> anyhow::Result<u8> {
    let base = a.scratch.clone().unwrap_or_else(std::env::temp_dir);
    // Shrinks are staged there too (a repository restore uses the repository's tmp/;
    // the Clonezilla folder is only read).
    a.scratch = Some(base.clone());
    let folder = a.repo.join(&a.name);
    let img = ClonezillaImage::open(&folder)?.for_disk(a.disk.as_deref())?;
    clonezilla::lvm::refuse_whole_disk(&img)?;
    let scratch = Temp(base.join(format!(
        "ironclone-clonezilla-{}-{}.img",
        std::process::id(),
        img.name
    )));
    if !a.json {
        eprintln!(
            "checking and unpacking the Clonezilla image {} (all checksums checked first)",
            folder.display()
        );
    }
    let t = std::time::Instant::now();
    let parts = assemble::assemble(&img, &scratch.0)?;
    if !a.json {
        eprintln!(
            "checked and unpacked in {:.1} s: {}",
            t.elapsed().as_secs_f64(),
            parts
                .iter()
                .map(|p| format!("{} {} {}", p.part, p.filesystem, human_bytes(p.used_bytes)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (dev, planned) = super::import::plan_scratch(&scratch.0, &folder, &img)?;
    if !a.json {
        for w in &planned.warnings {
            eprintln!("warning: {w}");
        }
    }
    let manifest = planned.preview_manifest(&a.name);
    super::restore::run_planned(&a, &manifest, &|plan, target, opts, r| {
        let Some(why) = device_restore_unsupported(plan, opts.new_ids) else {
            return Ok(restore_disk_from_device(
                &dev, &manifest, plan, target, &a.target, opts, r,
            )?);
        };
        // The same plan holds for the temporary image: it has the same areas and meta.
        if !a.json {
            eprintln!("{why}: restoring through a temporary repository");
        }
        let tmp = Temp(base.join(format!("ironclone-clonezilla-{}", std::process::id())));
        let repo = Repository::open_or_init(&tmp.0)?;
        let mut bo = BackupOptions::new(&a.name);
        bo.level = 1;
        repo::backup(&repo, &dev, &planned.plan, &bo, r)?;
        Ok(restore_disk(&repo, plan, target, &a.target, opts, r)?)
    })
}
