//! What the pickers show: disks with their filesystem scan (used space, hibernated
//! NTFS, unreplayed journals), repository mounts, target checks and restore plans.

use super::*;

impl RealServices {
    pub(super) fn disks(&self) -> Result<Vec<Disk>, ServiceError> {
        let all = discover::list_disks(&self.paths)?;
        Ok(match &self.only {
            Some(only) => all.into_iter().filter(|d| only.contains(&d.path)).collect(),
            None => all,
        })
    }

    pub(super) fn disk(&self, dev: &str) -> Result<Disk, ServiceError> {
        self.disks()?
            .into_iter()
            .find(|d| d.path == Path::new(dev))
            .ok_or_else(|| {
                format!("{dev} is not connected any more (or is not a whole disk).").into()
            })
    }

    /// The cached scan of `d`, starting one in the background when there is none.
    pub(super) fn scan_of(&self, d: &Disk) -> Option<FsScan> {
        let key = (
            d.path.clone(),
            d.size_bytes,
            d.partitions
                .iter()
                .map(|p| {
                    let uuid = p.filesystem.as_ref().and_then(|f| f.uuid.clone());
                    (p.number, p.start_bytes, p.size_bytes, uuid)
                })
                .collect(),
        );
        let mut g = self.scans.lock().unwrap_or_else(|e| e.into_inner());
        match g.get(&key) {
            Some(ScanState::Done(s)) => return Some(s.clone()),
            Some(ScanState::Running) => return None,
            None => {}
        }
        g.insert(key.clone(), ScanState::Running);
        drop(g);
        let scans = Arc::clone(&self.scans);
        let disk = d.clone();
        std::thread::spawn(move || {
            let s = scan_disk(&disk);
            scans
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, ScanState::Done(s));
        });
        None
    }

    pub(super) fn view(&self, d: &Disk) -> DiskView {
        let scan = self.scan_of(d);
        let mut warnings = scan
            .as_ref()
            .map(|s| s.warnings.clone())
            .unwrap_or_default();
        if !d.holders.is_empty() || d.partitions.iter().any(|p| !p.holders.is_empty()) {
            warnings.push(
                "Part of this disk is in use by RAID, LVM or encryption (it has holders).".into(),
            );
        }
        DiskView {
            dev: d.path.display().to_string(),
            model: model_of(d),
            serial: d.serial.clone().unwrap_or_default(),
            size: d.size_bytes,
            transport: transport_name(d.transport).into(),
            mounted: d.has_mounted,
            boot_medium: d.is_boot,
            read_only: d.read_only,
            removable: d.removable,
            partitions: d
                .partitions
                .iter()
                .map(|p| PartView {
                    number: p.number,
                    fs: p
                        .filesystem
                        .as_ref()
                        .map(|f| f.kind.name().to_string())
                        .unwrap_or_default(),
                    label: p
                        .filesystem
                        .as_ref()
                        .and_then(|f| f.label.clone())
                        .unwrap_or_default(),
                    size: p.size_bytes,
                    used: scan.as_ref().and_then(|s| s.used.get(&p.number).copied()),
                    volumes: scan
                        .as_ref()
                        .and_then(|s| s.volumes.get(&p.number).cloned())
                        .unwrap_or_default(),
                    lock: lock_state(p),
                })
                .collect(),
            warnings,
        }
    }

    pub(super) fn mount(
        &self,
        part: &discover::Partition,
        kind: FsKind,
    ) -> Result<PathBuf, ServiceError> {
        let dir = self.mount_root.join(&part.name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("Could not create {}: {e}", dir.display()))?;
        let dev = part.path.display().to_string();
        let d = dir.display().to_string();
        let mut cmd = match kind {
            FsKind::Ntfs => {
                let mut c = std::process::Command::new("ntfs-3g");
                c.args([&dev, &d]);
                c
            }
            k => {
                let t = match k {
                    k if k.is_fat() => "vfat",
                    k => k.name(),
                };
                let mut c = std::process::Command::new("mount");
                c.args(["-t", t, "-o", "rw", &dev, &d]);
                c
            }
        };
        let out = cmd
            .output()
            .map_err(|e| format!("Could not run the mount tool for {dev}: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("Could not mount {dev}: {}", err.trim()).into());
        }
        self.mounts
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(dir.clone());
        Ok(dir)
    }

    /// Refuses `target` as a restore target: the boot medium, anything mounted,
    /// read-only, or the disk holding the repository.
    pub(super) fn check_target(
        &self,
        target: &Disk,
        what: &str,
        keep: &Path,
    ) -> Result<(), ServiceError> {
        if let Some(only) = &self.only {
            if !only.contains(&target.path) {
                return Err(format!(
                    "{} is not among the disks this session may use.",
                    target.path.display()
                )
                .into());
            }
        }
        discover::check_restore_target(&self.paths, target, what, keep).map_err(ServiceError::from)
    }

    /// The identity check just before the first write: kernel names move between
    /// boots and hotplugs, so the disk must still have the serial and size the user
    /// confirmed.
    pub(super) fn recheck(&self, dev: &str, serial: &str, size: u64) -> Result<Disk, ServiceError> {
        let now = self.disk(dev)?;
        let now_serial = now.serial.clone().unwrap_or_default();
        if now_serial.trim() != serial.trim() || now.size_bytes != size {
            return Err(format!(
                "{dev} is now {}, not the disk you confirmed (serial \"{serial}\", {}). Nothing was written.",
                now.describe(),
                human_bytes(size)
            ).into());
        }
        Ok(now)
    }

    pub(super) fn plan(
        &self,
        repo: &Path,
        image: &str,
        target_size: u64,
        target_sector: u32,
        options: &RestoreOptions,
    ) -> Result<DiskRestorePlan, ServiceError> {
        if super::clonezilla::is_image(repo, image) {
            return super::clonezilla::plan(repo, image, target_size, target_sector, options);
        }
        let r = super::open_repository(&self.unlocked, repo)?;
        plan_native(&r, image, target_size, target_sector, options)
    }
}

/// The plan of restoring ironclone image `image` of `r`. The restore job plans with the
/// repository it then restores from: the manifest is read (into its scratch file) once.
pub(super) fn plan_native(
    r: &Repository,
    image: &str,
    target_size: u64,
    target_sector: u32,
    options: &RestoreOptions,
) -> Result<DiskRestorePlan, ServiceError> {
    let m = r.load_head(image)?;
    plan_restore(&m, target_size, target_sector, &plan_options(options)).map_err(ServiceError::from)
}

pub(super) fn plan_options(o: &RestoreOptions) -> RestorePlanOptions {
    let mut sizes = BTreeMap::new();
    for (n, s) in &o.sizes {
        sizes.insert(
            *n,
            match s {
                SizeChoice::Bytes(b) => SizeRequest::Bytes(*b),
                SizeChoice::Max => SizeRequest::Max,
            },
        );
    }
    RestorePlanOptions {
        mode: match o.mode {
            LayoutMode::Proportional => plan::LayoutMode::Proportional,
            LayoutMode::Keep => plan::LayoutMode::Keep,
        },
        sizes,
    }
}

/// `plan_view` of a plan without a table written into partition `number` (`size`
/// bytes): its rows numbered as that partition, `note` first.
pub(super) fn partition_plan_view(
    p: &DiskRestorePlan,
    number: u32,
    size: u64,
    note: String,
) -> PlanView {
    let mut view = plan_view(p);
    view.table = "no".into();
    view.target_size = size;
    for r in &mut view.rows {
        r.number = number;
    }
    view.notes.insert(0, note);
    view
}

/// The planner's answer as the plan screen shows it.
pub(super) fn plan_view(p: &DiskRestorePlan) -> PlanView {
    let label_of = |n: u32| {
        p.parts
            .iter()
            .find(|t| t.meta.partition.as_ref().map(|q| q.number) == Some(n))
            .and_then(|t| t.meta.filesystem.as_ref())
            .and_then(|f| f.label.clone())
            .unwrap_or_default()
    };
    PlanView {
        table: p
            .target_layout
            .as_ref()
            .map_or("none (one filesystem)".into(), |l| {
                l.kind.name().to_string()
            }),
        target_size: p.target_size,
        rows: p
            .plan
            .partitions
            .iter()
            .map(|r| PlanRow {
                number: r.number,
                fs: r.fs.clone(),
                label: label_of(r.number),
                old_start: r.old_start,
                old_size: r.old_size,
                new_start: r.new_start,
                new_size: r.new_size,
                used: r.used_bytes,
                action: match r.action {
                    plan::Action::Copy => PlanAction::Copy,
                    plan::Action::Grow => PlanAction::Grow,
                    plan::Action::Shrink => PlanAction::Shrink,
                    plan::Action::Recreate => PlanAction::Recreate,
                },
            })
            .collect(),
        notes: std::iter::once(format!(
            "Aligned to {}. Disk and partition IDs are kept.",
            plan::mib(p.plan.alignment)
        ))
        .chain(p.notes())
        .collect(),
    }
}

pub(super) fn model_of(d: &Disk) -> String {
    d.model.clone().unwrap_or_else(|| match &d.backing_file {
        Some(f) => format!("loop on {}", f.display()),
        None => "unknown model".into(),
    })
}

pub(super) fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Nvme => "NVMe",
        Transport::Sata => "SATA",
        Transport::Usb => "USB",
        Transport::Virtio => "virtio",
        Transport::Scsi => "SCSI",
        Transport::Loop => "loop",
        Transport::Mmc => "MMC",
        Transport::Unknown => "",
    }
}

/// Filesystems ironclone can mount to hold a repository.
pub(super) fn repo_fs(kind: FsKind) -> bool {
    kind.is_ext() || kind.is_fat() || matches!(kind, FsKind::Exfat | FsKind::Ntfs)
}

/// Maps every partition's filesystem (read-only) for used bytes and warnings.
pub(super) fn scan_disk(d: &Disk) -> FsScan {
    let mut s = FsScan::default();
    let Ok(dev) = open_path(&d.path, Access::ReadOnly) else {
        return s;
    };
    let whole = d
        .partitions
        .is_empty()
        .then_some((0, d.size_bytes, &d.filesystem));
    let parts = d
        .partitions
        .iter()
        .map(|p| (p.number, (p.start_bytes, p.size_bytes, &p.filesystem)));
    for (number, (start, len, fs)) in parts.chain(whole.map(|w| (0, w))) {
        let Some(kind) = fs.as_ref().map(|f| f.kind) else {
            continue;
        };
        if matches!(kind, FsKind::Swap | FsKind::Unknown) {
            continue;
        }
        let Ok(win) = Window::new(&dev, start, len) else {
            continue;
        };
        let map = map_filesystem(&win, kind);
        if !map.raw {
            s.used.insert(number, map.used_bytes);
        }
        if let Some(vg) = &map.lvm {
            let lvs = vg.lvs.iter().filter(|l| l.visible).map(|l| VolumeView {
                name: format!("{}/{}", vg.vg_name, l.name),
                fs: l.fs.clone().unwrap_or_default(),
                size: l.size,
                used: l.copied,
            });
            s.volumes.insert(number, lvs.collect());
        }
        let place = if number == 0 {
            "the whole disk".to_string()
        } else {
            format!("partition {number}")
        };
        s.warnings.extend(
            map.warnings
                .iter()
                .map(|w| format!("{kind} on {place}: {w}")),
        );
    }
    s
}

/// A LUKS partition is open when the kernel lists a holder for it (its dm-crypt
/// mapping); the picker says which, since a backup of an open volume's disk is refused.
fn lock_state(p: &discover::Partition) -> Option<String> {
    let luks = p
        .filesystem
        .as_ref()
        .is_some_and(|f| f.kind == FsKind::Luks);
    luks.then(|| {
        if p.holders.is_empty() {
            "locked".to_string()
        } else {
            format!("open as {}", p.holders.join(", "))
        }
    })
}
