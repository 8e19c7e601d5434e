//! Clonezilla (and Rescuezilla) image folders, as `ocs-sr savedisk`/`saveparts` writes
//! them: `parts` (always), `disk` (savedisk), per disk the sfdisk dump `<d>-pt.sf` and
//! the boot areas (`<d>-mbr`, `<d>-hidden-data-after-mbr`, `<d>-gpt-1st`,
//! `<d>-gpt-2nd`), `dev-fs.list`, the `clonezilla-img` log, and one image file (or
//! split set) per partition. A folder is recognised by its `parts` file, as Rescuezilla
//! does: older Clonezilla releases wrote neither `clonezilla-img` nor `dev-fs.list`.
//! Nothing is written to the folder.

pub mod assemble;
pub mod checksums;
pub mod device;
mod error;
pub mod kept;
pub mod lists;
pub mod luks;
pub mod lvm;
pub mod lvm_place;
mod multidisk;
mod partimg;
pub mod parts;
pub mod parts_luks;
pub mod parts_pv;
pub mod restore;
mod sfdisk;
pub mod stream;
pub mod unpack;
pub mod verify;

pub use error::ClonezillaError;
pub use lists::DevFs;
pub use partimg::{PartImage, PartImageKind};
pub use sfdisk::{Label, SfdiskEntry, SfdiskTable};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Files Clonezilla's metadata lives in are small; anything larger is not one of them.
const MAX_TEXT: u64 = 4 << 20;
/// Bounds the entries read from one folder.
const MAX_ENTRIES: usize = 100_000;

/// One disk of a savedisk image: its table and the saved boot areas.
#[derive(Clone, Debug)]
pub struct DiskLayout {
    pub disk: String,
    pub table: SfdiskTable,
    /// `<d>-mbr`: the first 512 bytes.
    pub mbr: Option<PathBuf>,
    /// `<d>-hidden-data-after-mbr`: sectors 1.. up to the first partition (boot loaders).
    pub hidden_after_mbr: Option<PathBuf>,
    /// `<d>-gpt-1st`: protective MBR, GPT header and entries (34 sectors).
    pub gpt_1st: Option<PathBuf>,
    /// `<d>-gpt-2nd`: the backup entries and header (33 sectors).
    pub gpt_2nd: Option<PathBuf>,
    /// Disk size in sectors from `<d>-pt.parted`, when saved.
    pub parted_sectors: Option<u64>,
}

impl DiskLayout {
    /// Size of the source disk in bytes: parted's count, else what the table implies
    /// (GPT: the backup header one sector after the backup entries; MBR: the last
    /// partition's end).
    pub fn disk_bytes(&self) -> Option<u64> {
        let ss = u64::from(self.table.sector_size);
        let sectors = match (self.parted_sectors, self.table.label, self.table.last_lba) {
            (Some(s), _, _) => s,
            (None, Label::Gpt, Some(last)) => last.checked_add(34)?,
            _ => self
                .table
                .entries
                .iter()
                .filter_map(|e| e.start.checked_add(e.size))
                .max()?,
        };
        sectors.checked_mul(ss)
    }
}

#[derive(Clone, Debug)]
pub struct ClonezillaImage {
    pub dir: PathBuf,
    pub name: String,
    /// Disks of a savedisk image; empty for saveparts.
    pub disks: Vec<String>,
    pub parts: Vec<String>,
    pub created: Option<String>,
    pub layouts: Vec<DiskLayout>,
    pub dev_fs: Vec<DevFs>,
    pub partitions: Vec<PartImage>,
    /// `MD5SUMS`, `SHA1SUMS`, `B2SUMS` when the folder has them (parsed, not yet checked).
    pub checksums: Vec<checksums::ChecksumList>,
    /// Bytes of all files in the folder.
    pub stored_bytes: u64,
    /// The volume groups and logical volumes saved, when the image has LVM.
    pub lvm: Option<lvm::LvmInfo>,
    /// The LUKS partitions saved opened (`luks-dev.list`): in `parts`, not in
    /// `partitions` (their ciphertext has no image; luks.rs).
    pub luks: Vec<luks::LuksVolume>,
    /// In a one-disk view of an image of several disks (`for_disk`): the partitions
    /// of the other saved disks (a VG may lie on PVs of two disks, lvm_place.rs).
    pub elsewhere: Vec<String>,
}

fn read_text(path: &Path) -> Result<String, ClonezillaError> {
    let io = |source| ClonezillaError::Io {
        file: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_TEXT {
        return Err(ClonezillaError::Bad {
            file: path.to_path_buf(),
            why: format!("{len} bytes: too large for a Clonezilla metadata file"),
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// True when `dir` looks like a Clonezilla image folder.
pub fn is_image_dir(dir: &Path) -> bool {
    dir.join("parts").is_file()
}

/// True when a command's `<REPO> <IMAGE>` name the Clonezilla image folder
/// `root/image` rather than an image of an ironclone repository at `root`.
pub fn names_image(root: &Path, image: &str) -> bool {
    !root.join("config").exists() && is_image_dir(&root.join(image))
}

impl ClonezillaImage {
    pub fn open(dir: &Path) -> Result<Self, ClonezillaError> {
        let io = |source| ClonezillaError::Io {
            file: dir.to_path_buf(),
            source,
        };
        let mut names = BTreeSet::new();
        let mut stored_bytes = 0u64;
        for entry in std::fs::read_dir(dir).map_err(io)?.take(MAX_ENTRIES) {
            let entry = entry.map_err(io)?;
            if let Ok(m) = entry.metadata() {
                if m.is_file() {
                    stored_bytes = stored_bytes.saturating_add(m.len());
                }
            }
            if let Some(n) = entry.file_name().to_str() {
                names.insert(n.to_string());
            }
        }
        let has = |n: &str| names.contains(n);
        let parts_file = dir.join("parts");
        if !has("parts") {
            return Err(ClonezillaError::Missing {
                file: parts_file,
                why: "every Clonezilla image lists its partitions there",
            });
        }
        let parts = lists::names(&parts_file, &read_text(&parts_file)?)?;
        let disks = if has("disk") {
            let p = dir.join("disk");
            lists::names(&p, &read_text(&p)?)?
        } else {
            Vec::new()
        };
        let created = if has("clonezilla-img") {
            lists::created(&read_text(&dir.join("clonezilla-img"))?)
        } else {
            None
        };
        let dev_fs = if has("dev-fs.list") {
            let p = dir.join("dev-fs.list");
            lists::dev_fs(&p, &read_text(&p)?)?
        } else {
            Vec::new()
        };
        let mut layouts = Vec::new();
        for d in &disks {
            layouts.push(Self::layout(dir, &names, d)?);
        }
        let lvm = lvm::read(dir, &names, &read_text)?;
        let luks = luks::read(dir, &names, &read_text, lvm.as_ref())?;
        // A physical volume has no image of its own (its LVs have), nor has a LUKS
        // partition (its header file and inner image stand for it).
        let partitions = parts
            .iter()
            .filter(|p| !lvm.as_ref().is_some_and(|l| l.is_pv(p)))
            .filter(|p| !luks.iter().any(|v| &v.part == *p))
            .map(|p| partimg::find(dir, &names, p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sums = Vec::new();
        for (file, algo) in checksums::LISTS {
            if has(file) {
                let p = dir.join(file);
                sums.push(checksums::ChecksumList::parse(&p, algo, &read_text(&p)?)?);
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            disks,
            parts,
            created,
            layouts,
            dev_fs,
            partitions,
            checksums: sums,
            stored_bytes,
            lvm,
            luks,
            elsewhere: Vec::new(),
        })
    }

    fn layout(
        dir: &Path,
        names: &BTreeSet<String>,
        d: &str,
    ) -> Result<DiskLayout, ClonezillaError> {
        let opt = |suffix: &str| {
            let n = format!("{d}-{suffix}");
            names.contains(&n).then(|| dir.join(n))
        };
        let sf = dir.join(format!("{d}-pt.sf"));
        if !names.contains(&format!("{d}-pt.sf")) {
            return Err(ClonezillaError::Missing {
                file: sf,
                why: "the partition table (sfdisk dump) of a saved disk",
            });
        }
        let table = SfdiskTable::parse(&sf, &read_text(&sf)?)?;
        let l = DiskLayout {
            disk: d.to_string(),
            mbr: opt("mbr"),
            hidden_after_mbr: opt("hidden-data-after-mbr"),
            gpt_1st: opt("gpt-1st"),
            gpt_2nd: opt("gpt-2nd"),
            parted_sectors: match opt("pt.parted") {
                Some(p) => lists::parted_sectors(&read_text(&p)?),
                None => None,
            },
            table,
        };
        let need = |f: &Option<PathBuf>, suffix: &str, why| match f {
            Some(_) => Ok(()),
            None => Err(ClonezillaError::Missing {
                file: dir.join(format!("{d}-{suffix}")),
                why,
            }),
        };
        match l.table.label {
            Label::Gpt => {
                need(&l.gpt_1st, "gpt-1st", "the saved GPT head of a GPT disk")?;
                need(&l.gpt_2nd, "gpt-2nd", "the saved backup GPT of a GPT disk")?;
            }
            Label::Dos => need(&l.mbr, "mbr", "the saved MBR of an MBR disk")?,
        }
        Ok(l)
    }

    /// Checks every file the folder's checksum lists name (none: nothing to do).
    pub fn verify_checksums(&self) -> Result<(), ClonezillaError> {
        for l in &self.checksums {
            l.verify(&self.dir)?;
        }
        Ok(())
    }

    /// Total source size: the disks' sizes, else the partitions' from the tables.
    pub fn disk_bytes(&self) -> Option<u64> {
        self.layouts
            .iter()
            .try_fold(0u64, |acc, l| acc.checked_add(l.disk_bytes()?))
    }
}

/// Every Clonezilla image folder directly under `root`, each opened or with the error
/// that refused it, in name order.
pub fn list(
    root: &Path,
) -> std::io::Result<Vec<(PathBuf, Result<ClonezillaImage, ClonezillaError>)>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)?
        .take(MAX_ENTRIES)
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && is_image_dir(p))
        .collect();
    dirs.sort();
    Ok(dirs
        .into_iter()
        .map(|d| {
            let r = ClonezillaImage::open(&d);
            (d, r)
        })
        .collect())
}
