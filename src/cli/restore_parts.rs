//! `ironclone restore DIR IMAGE --part sda1=/dev/sdb2 [--part ...] --yes`: Clonezilla
//! partition images (a saveparts image, or single partitions of a savedisk image) onto
//! existing partitions, as Clonezilla's `restoreparts` does. No table is written.
//! Every image is decoded and fitted to its partition in a scratch file first
//! (`foreign::clonezilla::parts` says how); the safety rules are the whole-disk
//! restore's, applied to the disk holding each partition: not the boot disk, nothing
//! on it mounted, not the disk holding the image folder, confirmed with --yes (or the
//! disk's serial typed), and re-identified just before the first write. An LVM PV
//! among the partitions is rebuilt from its VG's metadata and LV images and checked
//! whole before anything is written (restore_parts_lvm.rs); a LUKS partition needs its
//! key (--unlock or --key-file) and goes the savedisk LUKS route (restore_parts_luks.rs).

use super::restore::Args;
use super::restore_parts_luks::StagedLuks;
use super::restore_parts_lvm::StagedPv;
use super::target;
use anyhow::{bail, Context};
use ironclone::discover::{self, Disk, SysPaths};
use ironclone::foreign::clonezilla::parts::{self, Staged};
use ironclone::foreign::clonezilla::{self, ClonezillaImage, PartImage};
use ironclone::units::human_bytes;
use std::io::IsTerminal;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// True when the command restores partition images: `--part` given, or the folder
/// is a saveparts image (which has no disk to restore).
pub fn applies(a: &Args) -> bool {
    clonezilla::names_image(&a.repo, &a.name)
        && (!a.parts.is_empty()
            || ClonezillaImage::open(&a.repo.join(&a.name)).is_ok_and(|i| i.is_saveparts()))
}

/// Where one partition image goes.
struct PartTarget {
    path: PathBuf,
    size: u64,
    /// The disk holding the partition (None: an image file).
    disk: Option<Disk>,
    describe: String,
}

/// Removes the scratch files however the restore ends.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn resolve(path: &Path) -> anyhow::Result<PartTarget> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("--part target {}", path.display()))?;
    if !meta.file_type().is_block_device() {
        if !meta.is_file() {
            bail!(
                "--part target {} is neither a partition nor a file",
                path.display()
            );
        }
        return Ok(PartTarget {
            path: path.to_path_buf(),
            size: meta.len(),
            disk: None,
            describe: format!(
                "image file {} ({})",
                path.display(),
                human_bytes(meta.len())
            ),
        });
    }
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let disks = discover::list_disks(&SysPaths::default())?;
    if disks.iter().any(|d| d.path == canon) {
        bail!(
            "{} is a whole disk: --part takes a partition (restore a whole disk with TARGET)",
            path.display()
        );
    }
    for d in disks {
        if let Some(p) = d.partitions.iter().find(|p| p.path == canon) {
            return Ok(PartTarget {
                path: canon.clone(),
                size: p.size_bytes,
                describe: format!(
                    "partition {} ({}, {}) of {}",
                    p.number,
                    p.path.display(),
                    human_bytes(p.size_bytes),
                    d.describe()
                ),
                disk: Some(d),
            });
        }
    }
    bail!("{} is not a partition of any disk found", path.display())
}

fn check_allowed(t: &PartTarget, folder: &Path) -> anyhow::Result<()> {
    if let Some(d) = &t.disk {
        discover::check_restore_target(&SysPaths::default(), d, "the Clonezilla image", folder)
            .with_context(|| format!("refusing {}", t.describe))?;
    }
    Ok(())
}

fn recheck(t: &PartTarget) -> anyhow::Result<()> {
    if let Some(d) = &t.disk {
        target::recheck(&target::Target::Disk(Box::new(d.clone())))?;
    }
    Ok(())
}

/// What a `--part` restores: a partition's image, an LVM PV rebuilt from its VG's
/// metadata and its LVs' images (restore_parts_lvm.rs), or a LUKS partition from its
/// header and its opened volume's image (restore_parts_luks.rs).
enum Source<'a> {
    Image(&'a PartImage),
    Pv(&'a str),
    Luks(&'a str),
}

impl Source<'_> {
    fn part(&self) -> &str {
        match self {
            Source::Image(p) => &p.part,
            Source::Pv(p) | Source::Luks(p) => p,
        }
    }
}

/// The image's partitions the `--part` options name, each with its target.
fn mapping<'a>(
    a: &Args,
    img: &'a ClonezillaImage,
) -> anyhow::Result<Vec<(Source<'a>, PartTarget)>> {
    if a.parts.is_empty() {
        bail!(
            "{} is a saveparts image (partitions {}, no disk): name where each goes with \
             --part PART=DEVICE, e.g. --part {}=/dev/sdb1",
            img.dir.display(),
            img.parts.join(", "),
            img.parts.first().map_or("sda1", String::as_str)
        );
    }
    if !a.sizes.is_empty() || a.new_ids || a.sector_size.is_some() {
        bail!("--size, --new-ids and --sector-size are for whole-disk restores, not --part");
    }
    if !a.target.as_os_str().is_empty() {
        bail!(
            "--part restores onto partitions: leave out TARGET ({})",
            a.target.display()
        );
    }
    let pvs: Vec<&str> = img
        .lvm
        .iter()
        .flat_map(|l| l.pvs.iter())
        .filter(|p| img.parts.contains(&p.dev))
        .map(|p| p.dev.as_str())
        .collect();
    let have = || {
        img.partitions
            .iter()
            .map(|p| p.part.as_str())
            .chain(pvs.iter().copied())
            .chain(img.luks.iter().map(|v| v.part.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out: Vec<(Source, PartTarget)> = Vec::new();
    for spec in &a.parts {
        let (src, dst) = spec
            .split_once('=')
            .with_context(|| format!("--part {spec}: expected PART=DEVICE"))?;
        let src = src.trim();
        let image = img.partitions.iter().find(|p| p.part == src);
        let pv = pvs.iter().find(|p| **p == src);
        let luks = img.luks_volume(src).map(|v| Source::Luks(&v.part));
        let p = image
            .map(Source::Image)
            .or(pv.map(|p| Source::Pv(p)))
            .or(luks)
            .with_context(|| {
                format!(
                    "--part {spec}: no partition {src} in {} (it has {}); nothing was written",
                    img.dir.display(),
                    have()
                )
            })?;
        let t = resolve(Path::new(dst.trim()))?;
        if out
            .iter()
            .any(|(q, u)| q.part() == p.part() || u.path == t.path)
        {
            bail!("--part {spec}: {src} or {dst} is named twice");
        }
        out.push((p, t));
    }
    if (a.unlock || a.key_file.is_some()) && !out.iter().any(|(p, _)| matches!(p, Source::Luks(_)))
    {
        bail!("--unlock and --key-file are for LUKS partitions; no --part names one");
    }
    Ok(out)
}

fn confirm(a: &Args, targets: &[&PartTarget]) -> anyhow::Result<bool> {
    if a.yes {
        return Ok(true);
    }
    let what: Vec<&str> = targets.iter().map(|t| t.describe.as_str()).collect();
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "ironclone: restore overwrites {}; add --yes to confirm",
            what.join(", ")
        );
        return Ok(false);
    }
    let word = targets
        .iter()
        .find_map(|t| t.disk.as_ref().and_then(|d| d.serial.clone()))
        .unwrap_or_else(|| "yes".into());
    let typed: String = dialoguer::Input::new()
        .with_prompt(format!(
            "Everything on {} will be replaced. Type {word} to continue",
            what.join(", ")
        ))
        .allow_empty(true)
        .interact_text()?;
    Ok(typed.trim() == word)
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let folder = a.repo.join(&a.name);
    let img = ClonezillaImage::open(&folder)?;
    let map = mapping(&a, &img)?;
    for (_, t) in &map {
        if let Err(e) = check_allowed(t, &folder) {
            eprintln!("ironclone: {e:#}");
            return Ok(super::exit::REFUSED);
        }
    }
    // The folder's checksum lists cover the images too: checked before anything.
    img.verify_checksums()?;
    let base = a.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let mut scratch = Scratch(Vec::new());
    let mut staged: Vec<(Staged, &PartTarget)> = Vec::new();
    let mut pvs: Vec<(StagedPv, &PartTarget)> = Vec::new();
    let mut lukses: Vec<(StagedLuks, &PartTarget)> = Vec::new();
    // The key (a prompt, when asked for) once, before anything is decoded.
    let key = ironclone::unlock::resolve_key(a.unlock, a.key_file.as_deref())?.map(Arc::new);
    for (p, t) in &map {
        let p = match p {
            Source::Image(p) => p,
            Source::Luks(part) => {
                if !a.json {
                    eprintln!("checking and planning {part} (LUKS: its header and its opened volume's image)");
                }
                let s = super::restore_parts_luks::stage(
                    &folder,
                    part,
                    &t.path,
                    t.size,
                    a.layout.into(),
                    key.as_deref(),
                    &base,
                )?;
                lukses.push((s, t));
                continue;
            }
            Source::Pv(part) => {
                if !a.json {
                    eprintln!(
                        "checking and planning {part} (an LVM PV: its VG's metadata and LV images)"
                    );
                }
                pvs.push((
                    super::restore_parts_lvm::stage(
                        &folder,
                        part,
                        &t.path,
                        t.size,
                        a.layout.into(),
                        &base,
                    )?,
                    t,
                ));
                continue;
            }
        };
        let file = base.join(format!(
            "ironclone-clonezilla-{}-{}-{}.img",
            std::process::id(),
            img.name,
            p.part
        ));
        scratch.0.push(file.clone());
        if !a.json {
            eprintln!("checking and unpacking {} ({})", p.part, p.path.display());
        }
        staged.push((parts::stage(p, &file, &t.path, t.size)?, t));
    }
    if a.json {
        let mut plan: Vec<_> = staged
            .iter()
            .map(
                |(s, t)| serde_json::json!({"staged": s, "target": t.path, "target_bytes": t.size}),
            )
            .collect();
        plan.extend(pvs.iter().map(|(s, t)| {
            serde_json::json!({"lvm_pv": {"part": s.part, "pv_bytes": s.pv_bytes,
                "new_pv_bytes": s.pv.new_bytes(),
                "used_bytes": s.used_bytes, "lvs": s.lvs}, "target": t.path,
                "target_bytes": t.size})
        }));
        plan.extend(lukses.iter().map(|(s, t)| {
            serde_json::json!({"luks": {"part": s.luks.part, "saved_bytes": s.luks.saved_bytes,
                "new_bytes": s.luks.new_bytes(), "used_bytes": s.used_bytes,
                "images": s.images}, "target": t.path, "target_bytes": t.size})
        }));
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({"event": "plan", "parts": plan}))?
        );
    } else {
        println!(
            "restore partitions of {} (no partition table is written)",
            img.dir.display()
        );
        for (s, t) in &staged {
            println!(
                "  {:<8} {:<6} {:>10} used, filesystem {} -> {} ({:?}) onto {}",
                s.part,
                s.filesystem,
                human_bytes(s.used_bytes),
                human_bytes(s.image_bytes),
                human_bytes(s.fs_bytes),
                s.fit,
                t.describe
            );
        }
        for (s, t) in &pvs {
            if s.pv.new_bytes() != s.pv_bytes {
                println!(
                    "  {:<8} LVM PV {:>10} used, PV {} laid out anew at {} onto {}; LVs: {}",
                    s.part,
                    human_bytes(s.used_bytes),
                    human_bytes(s.pv_bytes),
                    human_bytes(s.pv.new_bytes()),
                    t.describe,
                    s.lvs.join(", ")
                );
                for n in s.pv.relayout_notes() {
                    println!("    {n}");
                }
                continue;
            }
            println!(
                "  {:<8} LVM PV {:>10} used, PV {} at its saved size{} onto {}; LVs: {}",
                s.part,
                human_bytes(s.used_bytes),
                human_bytes(s.pv_bytes),
                match t.size > s.pv_bytes {
                    true => format!(
                        " ({} after it left as it was, outside the PV)",
                        human_bytes(t.size - s.pv_bytes)
                    ),
                    false => String::new(),
                },
                t.describe,
                s.lvs.join(", ")
            );
        }
        for (s, t) in &lukses {
            println!(
                "  {:<8} LUKS   {:>10} used, partition {} as saved, {} onto {}: header written \
                 back, plaintext through the volume opened with the key; {}",
                s.luks.part,
                human_bytes(s.used_bytes),
                human_bytes(s.luks.saved_bytes),
                human_bytes(s.luks.new_bytes()),
                t.describe,
                s.images.join(", ")
            );
        }
    }
    if a.dry_run {
        return Ok(super::exit::OK);
    }
    let targets: Vec<&PartTarget> = staged
        .iter()
        .map(|(_, t)| *t)
        .chain(pvs.iter().map(|(_, t)| *t))
        .chain(lukses.iter().map(|(_, t)| *t))
        .collect();
    if !confirm(&a, &targets)? {
        eprintln!("ironclone: not confirmed; nothing was written");
        return Ok(super::exit::REFUSED);
    }
    for t in &targets {
        if let Err(e) = recheck(t) {
            eprintln!("ironclone: {e}");
            return Ok(super::exit::REFUSED);
        }
    }
    let t0 = std::time::Instant::now();
    let mut total = 0u64;
    for (s, t) in &staged {
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .open(&t.path)
            .with_context(|| format!("opening {}", t.path.display()))?;
        let n = parts::write(s, &f, &t.path)?;
        total += n;
        if !a.json {
            println!(
                "  {} -> {}: {} written and verified",
                s.part,
                t.path.display(),
                human_bytes(n)
            );
        }
    }
    for (s, t) in &pvs {
        let n = super::restore_parts_lvm::write(s, &t.path, &base)?;
        total += n;
        if !a.json {
            println!(
                "  {} -> {}: LVM PV, {} written and verified",
                s.part,
                t.path.display(),
                human_bytes(n)
            );
        }
    }
    for (s, t) in &lukses {
        // stage() refused a LUKS partition without a key.
        let k = key.clone().context("no LUKS key")?;
        let (n, steps) = super::restore_parts_luks::write(s, &t.path, &base, k)?;
        total += n;
        if !a.json {
            println!(
                "  {} -> {}: LUKS, {} written and verified",
                s.luks.part,
                t.path.display(),
                human_bytes(n)
            );
            for l in steps {
                println!("    {l}");
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        println!(
            "{}",
            serde_json::to_string(
                &serde_json::json!({"event": "result", "bytes_written": total, "seconds": secs})
            )?
        );
    } else {
        println!(
            "restored {} partition(s) in {secs:.1} s: {} written",
            staged.len() + pvs.len() + lukses.len(),
            human_bytes(total)
        );
    }
    Ok(super::exit::OK)
}
