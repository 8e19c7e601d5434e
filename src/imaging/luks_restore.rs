//! Restoring a LUKS partition imaged with its key (luks_backup.rs): the header area is
//! written to the target partition's start by the ordinary restore pass (same UUID and
//! key slots), then the volume is opened with the same key and the plaintext area is
//! written through `/dev/mapper/NAME`, where its filesystem grows to fill the mapping.
//! Onto a smaller partition the inner filesystem is shrunk first in a scratch file,
//! by the same code as plain partitions (restore_disk.rs `stage_shrink_as`).
//!
//! Everything that can fail without writing runs in [`prepare`], before the target's
//! first byte: a missing key, a key the image's header does not accept (tested on the
//! header restored into a scratch file), an inner filesystem that does not shrink
//! enough.

use super::meta::{partition_meta, LuksRole, PartitionMeta};
use super::plan_restore::{estimated_min, fs_kind, DiskRestorePlan, PartTarget};
use super::restore_disk::{stage_shrink_as, DiskRestoreOptions, DiskRestoreReport};
use super::staged::{copy_staged, Staged};
use super::ImagingError;
use crate::device::{open_path, Access, BlockDevice, Window};
use crate::probe::FsKind;
use crate::progress::Progress;
use crate::repo::{self, AreaManifest, Repository, RestoreOptions};
use crate::resize::{self, can_grow, can_shrink, LoopDevice};
use crate::unlock::{test_key, LuksKey, Mapping};
use crate::usedmap::{mark_tails_unzeroed, ByteExtent};
use std::path::Path;

/// Checks `key` against every LUKS header area of `image` (each restored into a scratch
/// file under `scratch` and tested, as [`prepare`] does), writing nothing else: the
/// TUI asks the passphrase right after the image is picked, before the plan. Ok for
/// an image without LUKS areas.
pub fn check_key(
    repo: &Repository,
    image: &str,
    key: &LuksKey,
    scratch: &Path,
) -> Result<(), ImagingError> {
    let m = repo.load_head(image)?;
    for a in m.areas.iter().filter(|a| a.meta.get("luks").is_some()) {
        let pm = partition_meta(&m, a)?;
        if !pm.luks.is_some_and(|l| l.role == LuksRole::Header) {
            continue;
        }
        tested_header(
            repo,
            image,
            &a.name,
            a.len,
            key,
            scratch,
            "check",
            &crate::progress::NoProgress,
        )?;
    }
    Ok(())
}

/// Header area `area` (`len` bytes) of `image` restored into a scratch file under
/// `scratch` (`tag` in its name) and tested with `key`: a wrong key fails here, before
/// anything is written to a target.
#[allow(clippy::too_many_arguments)]
fn tested_header(
    repo: &Repository,
    image: &str,
    area: &str,
    len: u64,
    key: &LuksKey,
    scratch: &Path,
    tag: &str,
    progress: &dyn Progress,
) -> Result<Staged, ImagingError> {
    let hdr = Staged::create(
        scratch,
        &format!("ironclone-luks-{tag}-{}-{area}.img", std::process::id()),
        len,
    )?;
    hdr.restore_area(repo, image, area, progress)?;
    test_key(&hdr.path, key)?;
    Ok(hdr)
}

/// The partition size a LUKS header area needs on the target, and whether it can grow:
/// the header area plus what its inner filesystem needs. A fixed-size data segment
/// keeps its size.
pub(super) fn luks_min(
    pm: &PartitionMeta,
    metas: &[(&AreaManifest, PartitionMeta)],
    size: u64,
) -> (u64, bool) {
    let Some(l) = &pm.luks else {
        return (size, false);
    };
    let inner = metas.iter().find(|(a, _)| a.name == l.plaintext_area);
    match (inner, l.data_size) {
        (Some((a, im)), None) => {
            let kind = fs_kind(im);
            // An LVM PV inside (the usual encrypted laptop) is laid out anew like a
            // PV partition: its LVs take the change (plan_lvm.rs).
            if let Some(min) = super::plan_lvm::pv_min(im) {
                return (l.data_offset.saturating_add(min).min(size), true);
            }
            let inner_min = if can_shrink(kind) {
                estimated_min(im, a.len)
            } else {
                a.len
            };
            (
                l.data_offset.saturating_add(inner_min).min(size),
                can_grow(kind),
            )
        }
        _ => (size, false),
    }
}

/// One LUKS partition to restore.
struct Item {
    number: u32,
    inner: PartTarget,
    version: u16,
    /// The target partition.
    offset: u64,
    len: u64,
    /// The inner filesystem shrunk, or the inner PV laid out anew, in a scratch file.
    staged: Option<Staged>,
    /// What laying out the inner PV did, LV by LV.
    lvm_lines: Vec<String>,
}

pub(super) struct LuksRestore<'k> {
    key: Option<&'k LuksKey>,
    items: Vec<Item>,
    /// Each header area restored into a scratch file (area name, file): the key was
    /// tested on it, and restore_disk copies its bytes in as it does a staged shrink
    /// (the area is the whole old partition, which a smaller target cannot take).
    pub headers: Vec<(String, Staged)>,
}

/// Checks the key and stages shrinking inner filesystems, before anything is written.
pub(super) fn prepare<'k>(
    repo: &Repository,
    plan: &DiskRestorePlan,
    key: Option<&'k LuksKey>,
    opts: &DiskRestoreOptions,
    progress: &dyn Progress,
) -> Result<LuksRestore<'k>, ImagingError> {
    let scratch = opts.scratch_dir.as_path();
    let mut items = Vec::new();
    let headers: Vec<&PartTarget> = plan
        .parts
        .iter()
        .filter(|p| {
            p.meta
                .luks
                .as_ref()
                .is_some_and(|l| l.role == LuksRole::Header)
        })
        .collect();
    let mut staged_headers = Vec::new();
    if headers.is_empty() {
        return Ok(LuksRestore {
            key,
            items,
            headers: staged_headers,
        });
    }
    let m = repo.load_head(&plan.image)?;
    for p in headers {
        let Some(l) = &p.meta.luks else { continue };
        let number = p.meta.partition.as_ref().map_or(0, |q| q.number);
        let Some(key) = key else {
            return Err(ImagingError::Other(format!(
                "{}: the image holds the plaintext of an encrypted LUKS{} volume; \
                 restoring it needs the same key (--unlock, --key-file or $IRONCLONE_LUKS_PASSPHRASE). \
                 Nothing was written",
                place(number),
                l.version
            )));
        };
        let mut hdr = tested_header(
            repo,
            &plan.image,
            &p.area,
            p.old_size,
            key,
            scratch,
            "restore",
            progress,
        )?;
        hdr.extents = vec![ByteExtent {
            offset: 0,
            len: l.data_offset,
        }];
        staged_headers.push((p.area.clone(), hdr));
        let a = m
            .areas
            .iter()
            .find(|a| a.name == l.plaintext_area)
            .ok_or_else(|| ImagingError::Meta {
                image: m.name.clone(),
                area: p.area.clone(),
                what: format!("its plaintext area {} is missing", l.plaintext_area),
            })?;
        let im = partition_meta(&m, a)?;
        let new_inner = match l.data_size {
            Some(n) => n,
            None => p.new_size.checked_sub(l.data_offset).ok_or_else(|| {
                ImagingError::Other(format!(
                    "{}: {} bytes cannot hold its {}-byte LUKS header",
                    place(number),
                    p.new_size,
                    l.data_offset
                ))
            })?,
        };
        let inner = PartTarget {
            area: a.name.clone(),
            kind: fs_kind(&im),
            meta: im,
            old_offset: a.offset,
            old_size: a.len,
            new_offset: 0,
            new_size: new_inner,
            recreate: false,
        };
        let mut lvm_lines = Vec::new();
        let staged = if super::plan_lvm::relaid(&inner, opts.new_ids) {
            let (s, lines) = super::restore_lvm::stage_lvm(repo, plan, &inner, opts, progress)?;
            // stage_lvm names the PV by its partition, which the plaintext area has not.
            let own = format!("{} (inside LUKS):", place(number));
            lvm_lines = lines
                .into_iter()
                .map(|l| l.replacen("partition 0:", &own, 1))
                .collect();
            Some(s)
        } else if inner.new_size < inner.old_size {
            Some(stage_shrink_as(
                repo,
                plan,
                &inner,
                number,
                &format!("{} (inside LUKS)", inner.kind),
                scratch,
                progress,
            )?)
        } else {
            None
        };
        items.push(Item {
            number,
            inner,
            version: l.version,
            offset: p.new_offset,
            len: p.new_size,
            staged,
            lvm_lines,
        });
    }
    Ok(LuksRestore {
        key,
        items,
        headers: staged_headers,
    })
}

/// How messages name the LUKS volume numbered `number`: its partition, or the disk for
/// a LUKS volume without a partition table (number 0: no partition is numbered 0).
fn place(number: u32) -> String {
    if number == 0 {
        "the disk (LUKS without a partition table)".into()
    } else {
        format!("partition {number}")
    }
}

impl LuksRestore<'_> {
    /// Opens each restored header with the key and writes the plaintext through the
    /// mapping (with `verify`, reads it back through the mapping), then grows its
    /// filesystem; the bytes and the steps go into `report`. Runs after the table and
    /// the header areas are on the target.
    pub(super) fn finish(
        self,
        repo: &Repository,
        plan: &DiskRestorePlan,
        target_path: &Path,
        verify: bool,
        progress: &dyn Progress,
        report: &mut DiskRestoreReport,
    ) -> Result<(), ImagingError> {
        let Some(key) = self.key else {
            return Ok(());
        };
        for it in self.items {
            let lo = LoopDevice::attach(target_path, it.offset, it.len)?;
            let mapping = Mapping::open(lo.path(), key, false)?;
            let dev = open_path(&mapping.path(), Access::ReadWrite)?;
            let p = &it.inner;
            if dev.size() < p.new_size {
                return Err(ImagingError::Other(format!(
                    "{}: the opened LUKS volume has {} bytes, {} planned",
                    place(it.number),
                    dev.size(),
                    p.new_size
                )));
            }
            // Read back through the mapping, as the plaintext was written: what reaches the
            // disk is ciphertext no chunk hash covers.
            let how = if let Some(s) = &it.staged {
                let c = copy_staged(s, &dev, p, verify, progress)?;
                report.bytes_written += c.written;
                report.bytes_verified += c.verified;
                if p.kind == FsKind::Lvm2 {
                    format!("laid out anew in {} bytes (was {})", p.new_size, p.old_size)
                } else {
                    format!("shrunk from {} to {} bytes", p.old_size, p.new_size)
                }
            } else {
                let area = p.area.clone();
                let place = move |a: &AreaManifest| (a.name == area).then_some(0);
                let opts = RestoreOptions {
                    verify_after: verify,
                    target_is_zeroed: false,
                    deep_precheck: false,
                    ..Default::default()
                };
                let r = repo::restore(repo, &plan.image, &dev, &place, &opts, progress)?;
                report.bytes_written += r.bytes_written;
                report.bytes_verified += r.bytes_verified;
                "restored".to_string()
            };
            if p.kind.is_ext() && !p.meta.map.raw {
                let win = Window::new(&dev, 0, p.new_size.min(p.old_size))?;
                mark_tails_unzeroed(&win).map_err(|source| ImagingError::ExtTails {
                    part: format!("{} (inside LUKS)", place(it.number)),
                    source: Box::new(source),
                })?;
            }
            dev.flush()?;
            drop(dev);
            let grown = p.new_size > p.old_size && can_grow(p.kind);
            if grown {
                resize::resize(p.kind, &mapping.path(), p.new_size)?;
            }
            report.steps.push(format!(
                "{}: LUKS{} header restored (same UUID and key slots); its {} {} through {}{}",
                place(it.number),
                it.version,
                p.kind,
                how,
                mapping.path().display(),
                if grown {
                    format!(", grown from {} to {} bytes", p.old_size, p.new_size)
                } else {
                    String::new()
                }
            ));
            report.steps.extend(it.lvm_lines);
            mapping.close()?;
            drop(lo);
        }
        Ok(())
    }
}

/// True for a kind the rest of restore_disk must leave alone (no shrink staging, no
/// grow): a LUKS header area, whose filesystem is inside.
pub(super) fn is_luks_header(p: &PartTarget) -> bool {
    p.meta.luks.is_some() || p.kind == FsKind::Luks
}
