//! `ironclone browse DIR IMAGE PART ls|cat|get` where DIR holds Clonezilla image
//! folders (Clonezilla's /home/partimag) or `DIR/IMAGE` is one. The partition image is
//! unpacked once into a cache (`foreign::clonezilla::unpack` says why and what it
//! costs), then browsed from there read-only like an ironclone image's area.

use super::browse::{act, Args};
use anyhow::Context;
use ironclone::device::{self, Access};
use ironclone::foreign::clonezilla::{self, luks::LuksInner, unpack, ClonezillaImage};
use ironclone::units::human_bytes;
use std::path::PathBuf;
use std::sync::Arc;

/// True when the command names a Clonezilla image rather than a repository image.
pub fn applies(a: &Args) -> bool {
    clonezilla::names_image(&a.repo, &a.image)
}

/// `$XDG_CACHE_HOME/ironclone/clonezilla`, else `~/.cache/...`, else the temp dir's.
fn default_cache() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("ironclone").join("clonezilla")
}

pub fn run(a: Args) -> anyhow::Result<u8> {
    let folder = a.repo.join(&a.image);
    let mut img = ClonezillaImage::open(&folder)?;
    // A logical volume (`vg-lv` or `vg/lv`) is browsed like a partition.
    let mut area = a.area.clone();
    if let Some(lv) = img.lvm.as_ref().and_then(|l| l.find(&a.area)).cloned() {
        area = lv.image.part.clone();
        img.partitions = vec![lv.image];
    }
    // A LUKS partition (`sda3`, or its mapping's name) is browsed by the filesystem
    // Clonezilla saved from inside it, decrypted.
    if let Some(v) = img.luks_volume(&a.area).cloned() {
        let inner = match &v.inner {
            LuksInner::Image(i) => i.clone(),
            LuksInner::Pv { vg } => anyhow::bail!(
                "{}: the LUKS volume {} holds the LVM PV of VG {vg}: browse its LVs by name (vg-lv)",
                v.part,
                v.mapper
            ),
        };
        img.luks_header(&v)?;
        area = inner.part.clone();
        img.partitions = vec![inner];
    }
    let cache = a.cache.clone().unwrap_or_else(default_cache);
    let u = unpack::unpacked(&img, &area, &cache)?;
    if let Some((done, took)) = &u.fresh {
        eprintln!(
            "unpacked {} ({}, {} used) into {} in {:.1} s; later browses of it read that file",
            u.part,
            done.filesystem,
            human_bytes(done.used_bytes),
            u.path.display(),
            took.as_secs_f64()
        );
    }
    let dev = device::open_path(&u.path, Access::ReadOnly)
        .with_context(|| format!("opening the unpacked {}", u.path.display()))?;
    let mut fs = ironclone::browse::open(Arc::new(dev))?;
    act(fs.as_mut(), a.action, a.json, &|| None)
}
