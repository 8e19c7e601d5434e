//! `ironclone import DIR IMAGE REPO --name N`: a Clonezilla/Rescuezilla image becomes
//! an ironclone image. The image is read as the disk it was saved from
//! (`clonezilla::device::ImageDevice`: the table from the saved boot areas, each
//! partition decoded on demand, every checksum checked on the way) and backed up like
//! any disk, so dedup, used maps and restore work as for a native backup; the decoded
//! used blocks go straight into the backup pipeline, no scratch disk. After planning,
//! the whole image is checked (`ImageDevice::check_all`: checksum lists, every partition
//! decoded on to its end, nothing written), so nothing reaches the repository unless the image decodes
//! cleanly; `--no-precheck` skips that decode, and a damaged partition image then fails
//! the backup, which writes no image but leaves the packs it wrote for `prune`.
//! The planner's reads and the check keep the decoded used blocks in memory, up to a
//! budget (`clonezilla::kept`), and the backup reads them from there: the image is
//! decompressed once; past the budget the backup decodes the rest again.

use super::progress::Renderer;
use anyhow::Context;
use clap::Args as ClapArgs;
use ironclone::device::{open_path, Access, BlockDevice, FileDevice};
use ironclone::foreign::clonezilla::{device::ImageDevice, ClonezillaImage};
use ironclone::imaging::{
    plan_backup, plan_backup_unlocked, plan_backup_without_files_unlocked, LuksBackup, PlannedDisk,
};
use ironclone::repo::{BackupOptions, Repository, SourceInfo};
use ironclone::units::human_bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(ClapArgs)]
#[command(
    after_help = "Example:\n  ironclone import /home/partimag 2026-11-30-12-img /mnt/repo --name office-pc"
)]
pub struct Args {
    /// The folder holding Clonezilla image folders (Clonezilla's /home/partimag).
    pub dir: PathBuf,
    /// The image folder's name inside DIR.
    pub image: String,
    /// The repository directory (created if needed).
    pub repo: PathBuf,
    /// Name of the new image (default: the Clonezilla image's name).
    #[arg(long)]
    pub name: Option<String>,
    /// zstd level (1 fastest .. 19 smallest).
    #[arg(long, default_value_t = 3)]
    pub level: i32,
    /// Where the sparse file holding the saved table goes (a few KiB; default
    /// `<REPO>/tmp` when the repository exists, as for restore, else the temp directory).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// Skip checking the whole image before the import (one decode instead of two; a
    /// damaged image then fails the import after some packs were stored, which
    /// `prune` removes).
    #[arg(long)]
    pub no_precheck: bool,
    /// JSON-lines progress and a JSON result.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let name = a.name.clone().unwrap_or_else(|| a.image.clone());
    let scratch = match &a.scratch {
        Some(s) => s.clone(),
        None if a.repo.join("config").is_file() => {
            let t = a.repo.join("tmp");
            std::fs::create_dir_all(&t).with_context(|| format!("creating {}", t.display()))?;
            t
        }
        None => std::env::temp_dir(),
    };
    let cancel = super::cancel::on_signals()?;
    // Opened first: a wrong passphrase is told before minutes of unpacking.
    let repo = super::repo_open::open_or_init(&a.repo, &a.secret, false)?;
    super::import_parts::import_all(
        &a.dir.join(&a.image),
        &repo,
        &ImportOptions {
            name,
            level: a.level,
            scratch_dir: scratch,
            no_precheck: a.no_precheck,
            json: a.json,
            cancel,
        },
    )
}

/// How an import runs, beside what it imports and where to.
pub(super) struct ImportOptions {
    /// The new image's name.
    pub name: String,
    /// zstd level.
    pub level: i32,
    /// Where the table's sparse file (and a saveparts import's scratch disks) go.
    pub scratch_dir: PathBuf,
    /// Skip the check of the whole image before anything is stored.
    pub no_precheck: bool,
    pub json: bool,
    /// Set by Ctrl-C or SIGTERM (`cancel::on_signals`): the import stops cleanly.
    pub cancel: Arc<AtomicBool>,
}

/// Imports the (one-disk view of the) image `img` of the folder `folder` into `repo`.
pub(super) fn import_img(
    img: &ClonezillaImage,
    folder: &Path,
    repo: &Repository,
    o: &ImportOptions,
) -> anyhow::Result<()> {
    let dev = open_image(img, &o.scratch_dir)?.cancel_with(o.cancel.clone());
    import_device(img, &dev, folder, repo, o)
}

/// Imports what `dev` reads of `img` (its disk, or one PV or LUKS partition of a
/// saveparts image) into `repo`: planned, checked whole, then backed up.
pub(super) fn import_device(
    img: &ClonezillaImage,
    dev: &ImageDevice,
    folder: &Path,
    repo: &Repository,
    o: &ImportOptions,
) -> anyhow::Result<()> {
    let (name, level, json) = (o.name.as_str(), o.level, o.json);
    let t = std::time::Instant::now();
    // A LUKS partition's plaintext is read from its inner image (device_luks.rs).
    let mut luks = dev.luks_backup();
    let checked = plan_image(dev, folder, img, true, luks.as_mut()).and_then(|planned| {
        if o.no_precheck {
            // The lists cover the boot areas and list files, which nothing else checks.
            img.verify_checksums()?;
        } else {
            // Goes on from where the planner's reads left each decoder.
            dev.check_all(img)?;
        }
        Ok(planned)
    });
    let what = format!("checking {}", folder.display());
    let mut planned = super::cancel::before_store(checked, &o.cancel, &what)?;
    // A VG that also lies on another disk of the image is whole once both are imported.
    let notes = ironclone::foreign::clonezilla::lvm_place::elsewhere_notes(img);
    planned.warnings.extend(notes);
    if !json {
        eprintln!(
            "checked and planned {} in {:.1} s",
            folder.display(),
            t.elapsed().as_secs_f64()
        );
        for w in &planned.warnings {
            eprintln!("warning: {w}");
        }
        if luks.is_some() {
            eprintln!(
                "warning: Clonezilla saved these LUKS volumes decrypted and the repository now \
                 holds their plaintext too: keep it on an encrypted repository (made by \
                 `backup --encrypt`), as the Clonezilla folder itself should be"
            );
        }
    }
    let mut opts = BackupOptions::new(name);
    opts.level = level;
    let r = Renderer::new(json);
    dev.end_planning();
    let (kept, whole) = dev.kept();
    // The plaintext areas lie past the disk's end (luks_backup.rs `Stacked`).
    let stacked = luks.as_ref().map(|l| l.stacked(dev)).transpose()?;
    let src: &dyn BlockDevice = match &stacked {
        Some(s) => s,
        None => dev,
    };
    let m = super::cancel::backup(repo, src, &planned.plan, &opts, &r, &o.cancel)?;
    dev.release_kept();
    if !json {
        eprintln!(
            "{} of decoded blocks were kept in memory by the {} ({}); a partition decode started over {} time(s)",
            human_bytes(kept),
            if o.no_precheck { "planning" } else { "check" },
            match (whole, o.no_precheck) {
                (true, _) => "the backup decoded nothing again",
                // Nothing decoded the images to their ends before the backup.
                (false, true) => "the backup decoded what planning had not read",
                (false, false) => "the memory budget ran out: the backup decoded the rest again",
            },
            dev.restarts()
        );
    }
    let secs = t.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "event": "result", "image": m.name, "stats": m.stats, "seconds": secs,
                "findings": planned.findings,
            }))?
        );
    } else {
        let s = &m.stats;
        println!(
            "image {} imported in {:.1} s: {} new stored as {}, {} deduplicated, {} zeros skipped",
            m.name,
            secs,
            human_bytes(s.new_bytes),
            human_bytes(s.new_stored_bytes),
            human_bytes(s.dedup_bytes),
            human_bytes(s.zero_bytes)
        );
    }
    Ok(())
}

/// `img`'s disk as a read-only device, its table's small sparse file in `scratch_dir`.
pub(super) fn open_image(img: &ClonezillaImage, scratch_dir: &Path) -> anyhow::Result<ImageDevice> {
    let table = scratch_dir.join(format!(
        "ironclone-clonezilla-{}-{}.table",
        std::process::id(),
        img.name
    ));
    Ok(ImageDevice::open(img, &table)?)
}

/// The backup plan of `img`'s disk read through `dev`: an import backs it up along the
/// plan (`files`: with the files' runs, which steer dedup), a restore copies it along it.
pub(super) fn plan_image(
    dev: &ImageDevice,
    folder: &Path,
    img: &ClonezillaImage,
    files: bool,
    luks: Option<&mut LuksBackup>,
) -> anyhow::Result<PlannedDisk> {
    let source = SourceInfo {
        path: folder.display().to_string(),
        model: Some(format!("clonezilla {}", img.name)),
        serial: None,
        size: dev.size(),
        sector_size: dev.logical_sector_size(),
    };
    let planned = if files {
        plan_backup_unlocked(dev, source, luks)
    } else {
        plan_backup_without_files_unlocked(dev, source, luks)
    };
    planned.context("reading the image's layout")
}

/// The backup plan of a disk rebuilt in the sparse file `scratch` (saveparts imports,
/// whose partitions are unpacked one by one).
pub(super) fn plan_scratch(
    scratch: &Path,
    folder: &Path,
    img: &ClonezillaImage,
) -> anyhow::Result<(FileDevice, PlannedDisk)> {
    let dev = open_path(scratch, Access::ReadOnly)
        .with_context(|| format!("opening the scratch disk {}", scratch.display()))?;
    let source = SourceInfo {
        path: folder.display().to_string(),
        model: Some(format!("clonezilla {}", img.name)),
        serial: None,
        size: dev.size(),
        sector_size: dev.logical_sector_size(),
    };
    let planned = plan_backup(&dev, source).context("reading the rebuilt disk's layout")?;
    Ok((dev, planned))
}
