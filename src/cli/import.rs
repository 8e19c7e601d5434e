//! `ironclone import DIR IMAGE REPO --name N`: a Clonezilla/Rescuezilla image becomes
//! an ironclone image. The disk is rebuilt as a sparse scratch file (boot areas, table,
//! each partition's used blocks; every partclone checksum checked on the way) and then
//! backed up like any disk image, so dedup, used maps and restore work as for a native
//! backup. Nothing reaches the repository unless the whole image decoded cleanly.

use super::progress::Renderer;
use anyhow::Context;
use clap::Args as ClapArgs;
use ironclone::device::{open_path, Access, BlockDevice, FileDevice};
use ironclone::foreign::clonezilla::{assemble, ClonezillaImage};
use ironclone::imaging::{plan_backup, PlannedDisk};
use ironclone::repo::{self, BackupOptions, Repository, SourceInfo};
use ironclone::units::human_bytes;
use std::path::{Path, PathBuf};

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
    /// Where the sparse scratch disk goes (it takes the used bytes of the image; default
    /// `<REPO>/tmp` when the repository exists, as for restore, else the temp directory,
    /// which on a live system may be RAM).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// JSON-lines progress and a JSON result.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
}

/// Removes the scratch file however the import ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
    // Opened first: a wrong passphrase is told before minutes of unpacking.
    let repo = super::repo_open::open_or_init(&a.repo, &a.secret, false)?;
    super::import_parts::import_all(
        &a.dir.join(&a.image),
        &repo,
        &name,
        a.level,
        &scratch,
        a.json,
    )
}

/// Imports the image folder `folder` into the repository `repo` as `name`, the
/// scratch disk in `scratch_dir`.
pub fn import(
    folder: &Path,
    repo: &Repository,
    name: &str,
    level: i32,
    scratch_dir: &Path,
    json: bool,
) -> anyhow::Result<()> {
    import_img(
        &ClonezillaImage::open(folder)?,
        folder,
        repo,
        name,
        level,
        scratch_dir,
        json,
    )
}

/// Imports the (one-disk view of the) image `img` of the folder `folder`.
pub(super) fn import_img(
    img: &ClonezillaImage,
    folder: &Path,
    repo: &Repository,
    name: &str,
    level: i32,
    scratch_dir: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let scratch = Scratch(scratch_dir.join(format!(
        "ironclone-import-{}-{}.img",
        std::process::id(),
        img.name
    )));
    let t = std::time::Instant::now();
    let parts = assemble::assemble(img, &scratch.0)?;
    if !json {
        eprintln!(
            "checked and unpacked {} in {:.1} s",
            folder.display(),
            t.elapsed().as_secs_f64()
        );
        for p in &parts {
            eprintln!(
                "  {:8} {:8} {:>10} used",
                p.part,
                p.filesystem,
                human_bytes(p.used_bytes)
            );
        }
    }
    let (dev, planned) = plan_scratch(&scratch.0, folder, img)?;
    if !json {
        for w in &planned.warnings {
            eprintln!("warning: {w}");
        }
    }
    let mut opts = BackupOptions::new(name);
    opts.level = level;
    let r = Renderer::new(json);
    let m = repo::backup(repo, &dev, &planned.plan, &opts, &r)?;
    r.finish();
    let secs = t.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "event": "result", "image": m.name, "stats": m.stats, "seconds": secs,
                "partitions": parts, "findings": planned.findings,
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

/// The disk a Clonezilla image was rebuilt into (`scratch`), opened read-only, and its
/// backup plan: an import backs it up along the plan, a restore copies it along it.
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
