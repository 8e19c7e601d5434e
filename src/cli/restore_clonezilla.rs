//! `ironclone restore DIR IMAGE TARGET` where DIR holds Clonezilla image folders (or
//! `DIR/IMAGE` is one). The image is read as the disk it was saved from
//! (`clonezilla::device::ImageDevice`: the table from the saved boot areas, the
//! filesystems' metadata decoded on demand for the planner), then checked whole
//! (`ImageDevice::check_all`: the checksum lists, and every partition image decoded on
//! to its end, every checksum checked) before the target is touched (`--no-precheck`
//! skips the check: one streaming pass, and a damaged image then stops a restore that
//! has written part of the target). It is then copied onto the target along the plan:
//! each kept or grown partition is
//! decoded once more straight onto its place, a shrunk one into a staging file that is
//! shrunk there first, with the same grow, boot repair and read-back verify (against
//! the blake3 of what was written) as any restore. Plans that rebuild a partition
//! instead of copying it (a re-created ESP or XFS, an LVM PV laid out anew) go through
//! a temporary repository, as the repository restore does those steps.

use super::restore::Args;
use ironclone::foreign::clonezilla::{self, ClonezillaImage};
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
    let t = std::time::Instant::now();
    let dev = super::import::open_image(&img, &base)?;
    // The planner's reads decode the start of each image; the check decodes the rest.
    let planned = super::import::plan_image(&dev, &folder, &img, false)?;
    if a.no_precheck {
        if !a.json {
            eprintln!(
                "--no-precheck: the Clonezilla image {} is checked while it is written",
                folder.display()
            );
        }
    } else {
        if !a.json {
            eprintln!(
                "checking the Clonezilla image {} (every checksum, before the target is touched)",
                folder.display()
            );
        }
        let parts = dev.check_all(&img)?;
        if !a.json {
            eprintln!(
                "planned and checked in {:.1} s: {}",
                t.elapsed().as_secs_f64(),
                parts
                    .iter()
                    .map(|p| format!("{} {} {}", p.part, p.filesystem, human_bytes(p.used_bytes)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if !a.json {
        for w in &planned.warnings {
            eprintln!("warning: {w}");
        }
    }
    let manifest = planned.preview_manifest(&a.name);
    let done = super::restore::run_planned(&a, &manifest, &|plan, target, opts, r| {
        let Some(why) = device_restore_unsupported(plan, opts.new_ids) else {
            let done = restore_disk_from_device(&dev, &manifest, plan, target, &a.target, opts, r);
            return done.map_err(|e| partly_written(&a, e));
        };
        // The same plan holds for the temporary image: it has the same areas and meta.
        if !a.json {
            eprintln!("{why}: restoring through a temporary repository");
        }
        let tmp = Temp(base.join(format!("ironclone-clonezilla-{}", std::process::id())));
        let repo = Repository::open_or_init(&tmp.0)?;
        let mut bo = BackupOptions::new(&a.name);
        bo.level = 1;
        // Nothing is on the target yet: a damaged image fails here.
        repo::backup(&repo, &dev, &planned.plan, &bo, r)?;
        Ok(restore_disk(&repo, plan, target, &a.target, opts, r)?)
    });
    if !a.json && done.is_ok() {
        eprintln!(
            "a partition decode started over {} time(s) (the planner's metadata reads, then the copy)",
            dev.restarts()
        );
    }
    done
}

/// A restore error, told as having left the target partly written when the image was
/// not checked first (a damaged image is then found on the way; the error names the
/// image file and the partition).
fn partly_written(a: &Args, e: ironclone::imaging::ImagingError) -> anyhow::Error {
    if a.no_precheck {
        anyhow::anyhow!(e).context(format!(
            "the restore stopped and {} is partly written (--no-precheck: the image was not checked first)",
            a.target.display()
        ))
    } else {
        e.into()
    }
}
