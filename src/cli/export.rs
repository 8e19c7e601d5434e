//! `ironclone export <REPO> <NAME> <OUT>`: an image as a virtual machine disk (qcow2,
//! VHDX, VHD, VMDK, VDI or raw), fitted to `--size` by the restore planner and repaired
//! so it boots in a VM without the old machine's NVRAM (UEFI fallback loader).
//!
//! The disk is restored into a sparse raw file, written as the container by
//! `qemu-img convert` under `OUT.partial`, and renamed only after the restore's
//! read-back verify, `qemu-img compare` and `qemu-img check` passed, so an interrupted
//! export never leaves a file that looks finished. Free space needed: about twice the
//! image's used bytes (the raw file is sparse).

use super::progress::Renderer;
use super::restore::{parse_bytes, print_plan, Layout};
use super::target::Target;
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::imaging::{
    plan_repairs, plan_restore, restore_disk, DiskRestoreOptions, RestorePlanOptions,
};
use ironclone::plan::LayoutMode;
use ironclone::repo::{Manifest, Repository};
use ironclone::units::human_bytes;
use ironclone::vdisk::{self, VmFormat};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

#[derive(ClapArgs)]
#[command(
    after_help = "Examples:\n  ironclone export /mnt/repo office-pc office-pc.qcow2\n  \
ironclone export ./repo laptop laptop.vhdx --size 64G"
)]
pub struct Args {
    /// The repository directory.
    pub repo: PathBuf,
    /// The image to export.
    pub name: String,
    /// The VM disk to create; its extension picks the format (.qcow2, .vhdx, .vhd,
    /// .vmdk, .vdi; .img or .raw for a sparse raw file).
    pub out: PathBuf,
    /// The virtual disk's size (bytes or K/M/G/T; default: the source disk's size).
    #[arg(long)]
    pub size: Option<String>,
    #[arg(long, value_enum, default_value = "proportional")]
    pub layout: Layout,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// Do not read back and compare what was written.
    #[arg(long)]
    pub no_verify: bool,
}

/// `OUT.partial`, beside OUT.
fn partial_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_os_string();
    s.push(".partial");
    PathBuf::from(s)
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let format = VmFormat::for_extension(&a.out)?;
    if a.out.exists() && !a.force {
        bail!(
            "{} exists; remove it or add --force to replace it",
            a.out.display()
        );
    }
    let repo =
        Repository::open(&a.repo).with_context(|| format!("opening {}", a.repo.display()))?;
    // The head only (as `restore` plans): the chunk lists go to a scratch file once
    // and stay there for the restore below, never held in memory.
    let manifest = repo.load_head(&a.name)?;
    let size = match &a.size {
        Some(s) => parse_bytes(s).with_context(|| format!("--size {s}"))?,
        None => manifest.source.size,
    };
    // Whole MiB: qemu rounds VHD sizes to its CHS geometry and some hypervisors refuse
    // disks that are not a multiple of 1 MiB.
    let size = size
        .div_ceil(1 << 20)
        .checked_mul(1 << 20)
        .context("--size is too large")?;
    let partial = partial_path(&a.out);
    let scratch = partial.with_extension("scratch");
    let result = export(&a, &repo, &manifest, format, size, &partial, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    match result {
        Ok(()) => {
            std::fs::rename(&partial, &a.out).with_context(|| {
                format!("renaming {} to {}", partial.display(), a.out.display())
            })?;
            // Allocated bytes, not the length: a raw export is a sparse file.
            let on_disk = std::fs::metadata(&a.out)
                .map(|m| m.blocks().saturating_mul(512))
                .unwrap_or(0);
            println!(
                "exported {} to {} ({}, {} virtual, {} allocated)",
                a.name,
                a.out.display(),
                format.map_or("raw", VmFormat::label),
                human_bytes(size),
                human_bytes(on_disk)
            );
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Restores image `a.name` (`manifest`: its head) into `partial`, a VM disk of `size`.
fn export(
    a: &Args,
    repo: &Repository,
    manifest: &Manifest,
    format: Option<VmFormat>,
    size: u64,
    partial: &Path,
    scratch: &Path,
) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(partial);
    std::fs::create_dir_all(scratch).with_context(|| format!("creating {}", scratch.display()))?;
    // The restore writes a sparse raw disk (the partial file itself for a raw export);
    // qemu-img then writes the container. Writing the container through qemu's FUSE
    // export instead sometimes read back other bytes than were written (the kernel's
    // cache of the FUSE file against O_DIRECT writes), so the disk is made where a
    // restore is known to be exact and converted by the reference tool.
    let raw = match format {
        Some(_) => scratch.join("disk.raw"),
        None => partial.to_path_buf(),
    };
    std::fs::File::create(&raw)
        .and_then(|f| f.set_len(size))
        .with_context(|| format!("creating {}", raw.display()))?;
    let dev =
        open_path(&raw, Access::ReadWrite).with_context(|| format!("opening {}", raw.display()))?;
    let mode = LayoutMode::from(a.layout);
    let plan = plan_restore(
        manifest,
        dev.size(),
        dev.logical_sector_size(),
        &RestorePlanOptions {
            mode,
            sizes: BTreeMap::new(),
        },
    )?;
    let opts = DiskRestoreOptions {
        new_ids: false,
        verify_after: !a.no_verify,
        repair: true,
        // The VM starts with empty NVRAM: the fallback loader is what it boots, and this
        // machine's own NVRAM must not be touched by an export.
        nvram: false,
        fallback: true,
        scratch_dir: scratch.to_path_buf(),
        target_is_zeroed: true,
        luks_key: None,
    };
    let repairs = plan_repairs(&plan, opts.repair_options().as_ref());
    print_plan(&plan, &Target::File(a.out.clone()), &repairs);
    let r = Renderer::new(false);
    let rep = restore_disk(repo, &plan, &dev, &raw, &opts, &r)?;
    r.finish();
    for s in &rep.steps {
        println!("  {s}");
    }
    drop(dev);
    if let Some(f) = format {
        vdisk::convert(&raw, partial, f)?;
        println!("  written as {} by qemu-img, compared equal", f.label());
        if vdisk::check(partial, f)? {
            println!("  qemu-img check: no errors");
        } else {
            println!("  qemu-img has no checker for {}; not checked", f.label());
        }
    }
    Ok(())
}
