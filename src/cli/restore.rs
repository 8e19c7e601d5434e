//! `ironclone restore <REPO> <NAME> <TARGET>`: restores an image onto a disk or an
//! image file of any size, shows the layout plan first, and repairs booting.

use super::progress::Renderer;
use super::target::{self, Target};
use anyhow::{bail, Context};
use clap::{Args as ClapArgs, ValueEnum};
use ironclone::device::{open_path, Access, BlockDevice};
use ironclone::imaging::{
    plan_repairs, plan_restore, restore_disk, DiskRestoreOptions, DiskRestorePlan,
    DiskRestoreReport, RepairPlan, RestorePlanOptions,
};
use ironclone::plan::{mib, LayoutMode, SizeRequest};
use ironclone::repo::Manifest;
use ironclone::units::human_bytes;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
pub enum Layout {
    /// Data partitions scale with the disk; ESP, BIOS-boot, MSR, recovery and swap keep their size.
    Proportional,
    /// Same starts and sizes as the source (only if they fit).
    Keep,
}

impl From<Layout> for LayoutMode {
    fn from(l: Layout) -> LayoutMode {
        match l {
            Layout::Proportional => LayoutMode::Proportional,
            Layout::Keep => LayoutMode::Keep,
        }
    }
}

#[derive(ClapArgs)]
#[command(
    after_help = "Examples:\n  ironclone restore /mnt/repo office-pc /dev/sdb --dry-run\n  \
ironclone restore /mnt/repo office-pc /dev/sdb --yes\n  \
ironclone restore ./repo office-pc new.img --size 3=40G --yes"
)]
pub struct Args {
    #[command(flatten)]
    pub secret: super::repo_open::Secret,
    /// The repository directory, or a folder of Clonezilla images.
    pub repo: PathBuf,
    /// The image to restore (a Clonezilla image folder's name in a Clonezilla folder).
    pub name: String,
    /// The disk or disk-image file to write (everything on it is replaced); left out
    /// with --part.
    #[arg(default_value = "", hide_default_value = true, value_parser = any_path)]
    pub target: PathBuf,
    /// Of a Clonezilla image of several disks: the disk to restore (as the image names it, e.g. sdb).
    #[arg(long)]
    pub disk: Option<String>,
    /// Restore a Clonezilla partition image onto an existing partition: PART=DEVICE
    /// (e.g. sda1=/dev/sdb2). Repeatable; no partition table is written.
    #[arg(long = "part", value_name = "PART=DEVICE")]
    pub parts: Vec<String>,
    /// Confirm that TARGET may be overwritten.
    #[arg(long)]
    pub yes: bool,
    /// Show the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, value_enum, default_value = "proportional")]
    pub layout: Layout,
    /// A partition's size: N=SIZE (bytes, or with K/M/G/T) or N=max. Repeatable.
    #[arg(long = "size", value_name = "N=SIZE")]
    pub sizes: Vec<String>,
    /// Fresh disk/partition GUIDs and MBR signature, and new LVM PV and VG UUIDs (a
    /// clone beside its original).
    #[arg(long)]
    pub new_ids: bool,
    /// Do not read back and compare what was written.
    #[arg(long)]
    pub no_verify: bool,
    /// Do not repair booting.
    #[arg(long)]
    pub no_repair: bool,
    /// Do not write an NVRAM boot entry (UEFI).
    #[arg(long)]
    pub no_nvram: bool,
    /// Leave the ESP's fallback loader \EFI\BOOT\BOOTX64.EFI untouched (multi-boot ESPs,
    /// firmware with good NVRAM entries); the other repairs still run.
    #[arg(long)]
    pub no_fallback: bool,
    /// Where shrinking filesystems are staged (sparse files) and the image's chunk
    /// list is kept while it is restored (default: the repository's folder on a local
    /// disk, else $IRONCLONE_SCRATCH or $TMPDIR).
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// The image holds the plaintext of LUKS volumes: open them with this key (from
    /// --key-file, $IRONCLONE_LUKS_PASSPHRASE or a prompt) to write it back.
    #[arg(long)]
    pub unlock: bool,
    /// The LUKS key file, used whole as cryptsetup's --key-file does (implies --unlock).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// A Clonezilla image: skip checking the whole image before writing (one pass; a
    /// damaged image then stops the restore with the target partly written).
    #[arg(long)]
    pub no_precheck: bool,
    /// Logical sector size of an image-file target (default 512).
    #[arg(long)]
    pub sector_size: Option<u32>,
    #[arg(long)]
    pub json: bool,
}

/// A path, the empty one included (clap's own path parser refuses it): an empty
/// TARGET means "none given", which only `--part` allows.
fn any_path(s: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(s))
}

pub fn parse_size(s: &str) -> anyhow::Result<(u32, SizeRequest)> {
    let (n, v) = s
        .split_once('=')
        .with_context(|| format!("--size {s}: expected N=SIZE"))?;
    let n: u32 = n
        .trim()
        .parse()
        .with_context(|| format!("--size {s}: bad partition number"))?;
    let v = v.trim();
    if v.eq_ignore_ascii_case("max") {
        return Ok((n, SizeRequest::Max));
    }
    let bytes = parse_bytes(v).with_context(|| format!("--size {s}: bad size"))?;
    Ok((n, SizeRequest::Bytes(bytes)))
}

/// A size in bytes, or with a K/M/G/T suffix (binary units), fractions allowed.
pub fn parse_bytes(v: &str) -> anyhow::Result<u64> {
    let v = v.trim();
    let (digits, mult) = match v.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&v[..v.len() - 1], 1u64 << 10),
        Some('M') => (&v[..v.len() - 1], 1 << 20),
        Some('G') => (&v[..v.len() - 1], 1 << 30),
        Some('T') => (&v[..v.len() - 1], 1 << 40),
        _ => (v, 1),
    };
    let num: f64 = digits
        .parse()
        .with_context(|| format!("{v:?} is not a size"))?;
    if !(num.is_finite() && num > 0.0) {
        bail!("{v:?} is not a size");
    }
    Ok((num * mult as f64) as u64)
}

pub(super) fn print_plan(p: &DiskRestorePlan, t: &Target, repairs: &RepairPlan) {
    println!("restore {} onto {}", p.image, t.describe());
    println!(
        "target: {} with {}-byte sectors, alignment {}",
        human_bytes(p.target_size),
        p.target_sector,
        mib(p.plan.alignment)
    );
    println!(
        "{:>4}  {:<10} {:>10} {:>12} {:>12} {:>12} {:>12}  action",
        "part", "fs", "used", "old start", "old size", "new start", "new size"
    );
    for r in &p.plan.partitions {
        println!(
            "{:>4}  {:<10} {:>10} {:>12} {:>12} {:>12} {:>12}  {:?}",
            r.number,
            r.fs,
            human_bytes(r.used_bytes),
            mib(r.old_start),
            mib(r.old_size),
            mib(r.new_start),
            mib(r.new_size),
            r.action
        );
    }
    for l in p.notes().iter().chain(&repairs.lines) {
        println!("{l}");
    }
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    if super::restore_parts::applies(&a) {
        return super::restore_parts::run(a);
    }
    if a.target.as_os_str().is_empty() {
        bail!("give the TARGET disk or image file to restore onto");
    }
    if super::restore_clonezilla::applies(&a) {
        return super::restore_clonezilla::run(a);
    }
    let repo = super::repo_open::open(&a.repo, &a.secret)?;
    if let Some(dir) = &a.scratch {
        repo.set_scratch_dir(dir);
    }
    // Without its chunk lists: the restore reads those from a scratch file (a 1 TB
    // image's are 200 MB in memory).
    let manifest = repo.load_head(&a.name)?;
    run_planned(&a, &manifest, &|plan, dev, opts, r| {
        Ok(restore_disk(&repo, plan, dev, &a.target, opts, r)?)
    })
}

/// Writes the plan's image: what `run_planned` calls once the target is confirmed.
pub(super) type Exec<'a> = &'a dyn Fn(
    &DiskRestorePlan,
    &dyn BlockDevice,
    &DiskRestoreOptions,
    &Renderer,
) -> anyhow::Result<DiskRestoreReport>;

/// Plans the restore of `manifest` onto the target, shows the plan, asks for
/// confirmation, then has `exec` write it (a repository or another source).
pub(super) fn run_planned(a: &Args, manifest: &Manifest, exec: Exec) -> anyhow::Result<u8> {
    let tgt = target::resolve(&a.target)?;
    let mut sizes = BTreeMap::new();
    for s in &a.sizes {
        let (n, r) = parse_size(s)?;
        sizes.insert(n, r);
    }
    let mode = LayoutMode::from(a.layout);
    let access = if a.dry_run {
        Access::ReadOnly
    } else {
        Access::ReadWrite
    };
    let mut dev = open_path(&a.target, access)
        .with_context(|| format!("opening the target {}", a.target.display()))?;
    if let Some(ss) = a.sector_size {
        dev = dev.with_sector_size(ss);
    }
    let plan = plan_restore(
        manifest,
        dev.size(),
        dev.logical_sector_size(),
        &RestorePlanOptions { mode, sizes },
    )?;
    // Into a partition goes only an image without a table (one filesystem or a LUKS
    // partition saved alone): a table would describe a disk that is not there.
    let part_start = match &tgt {
        Target::Partition { part, .. } => {
            if let Some(l) = &plan.target_layout {
                anyhow::bail!(
                    "{} is a partition, and the image {} holds a partition table ({}, {} \
                     partitions): restore it onto a whole disk (only an image without a \
                     table, a filesystem or a LUKS partition saved alone, goes onto a \
                     partition); nothing was written",
                    a.target.display(),
                    manifest.name,
                    l.kind.name(),
                    l.partitions.len()
                );
            }
            Some(part.start_bytes)
        }
        _ => None,
    };
    let zeroed = match &tgt {
        Target::File(p) => std::fs::metadata(p)
            .map(|m| m.blocks() == 0)
            .unwrap_or(false),
        Target::Disk(_) | Target::Partition { .. } => false,
    };
    let opts = DiskRestoreOptions {
        new_ids: a.new_ids,
        verify_after: !a.no_verify,
        repair: !a.no_repair,
        // A partition holds no NVRAM entry's disk nor a fallback loader's ESP of its own.
        nvram: !a.no_nvram && part_start.is_none(),
        fallback: !a.no_fallback && part_start.is_none(),
        scratch_dir: a.scratch.clone().unwrap_or_else(|| {
            // A remote repository has no local tmp/ to lend.
            match ironclone::repo::storage::parse_location(&a.repo) {
                Ok(ironclone::repo::storage::Location::Local(_)) => a.repo.join("tmp"),
                _ => std::env::temp_dir(),
            }
        }),
        target_is_zeroed: zeroed,
        luks_key: ironclone::unlock::resolve_key(a.unlock, a.key_file.as_deref())?
            .map(std::sync::Arc::new),
    };
    let repairs = plan_repairs(&plan, opts.repair_options().as_ref());
    if a.json {
        println!(
            "{}",
            serde_json::to_string(
                &serde_json::json!({"event": "plan", "plan": plan.plan, "notes": plan.notes(), "repair": repairs})
            )?
        );
    } else {
        print_plan(&plan, &tgt, &repairs);
    }
    if a.dry_run {
        return Ok(super::exit::OK);
    }
    if let Err(why) = target::check_allowed(&tgt, &a.repo) {
        eprintln!("ironclone: {why}");
        return Ok(super::exit::REFUSED);
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "ironclone: restore overwrites {}; add --yes to confirm",
                tgt.describe()
            );
            return Ok(super::exit::REFUSED);
        }
        let word = tgt.confirm_word();
        let typed: String = dialoguer::Input::new()
            .with_prompt(format!(
                "Everything on {} will be replaced. Type {word} to continue",
                tgt.describe()
            ))
            .allow_empty(true)
            .interact_text()?;
        if typed.trim() != word {
            eprintln!("ironclone: not confirmed; nothing was written");
            return Ok(super::exit::REFUSED);
        }
    }
    if let Err(why) = target::recheck(&tgt) {
        eprintln!("ironclone: {why}");
        return Ok(super::exit::REFUSED);
    }
    let r = Renderer::new(a.json);
    let t = std::time::Instant::now();
    let mut rep = exec(&plan, &dev, &opts, &r)?;
    if let (Some(start), true) = (part_start, opts.repair) {
        // The filesystem's record of where its partition starts (NTFS/FAT hidden
        // sectors, exFAT's offset): the new partition's, not the saved one's.
        rep.steps.extend(ironclone::imaging::repair_partition_start(
            &plan, &dev, start,
        )?);
    }
    r.finish();
    let secs = t.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            serde_json::to_string(
                &serde_json::json!({"event": "result", "report": rep, "seconds": secs})
            )?
        );
    } else {
        for s in &rep.steps {
            println!("  {s}");
        }
        println!(
            "restored {} in {:.1} s: {} written, {} verified",
            rep.image,
            secs,
            human_bytes(rep.bytes_written),
            human_bytes(rep.bytes_verified)
        );
    }
    Ok(super::exit::OK)
}
