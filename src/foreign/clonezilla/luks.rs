//! The LUKS part of a Clonezilla 3.x image. For each LUKS partition the user opened
//! while saving, Clonezilla writes `luks-dev.list` (`# <Block device> <UUID> <Device
//! mapped name>`, then `/dev/sda3 <luks uuid> <mapper>` lines), the partition's header
//! as `cryptsetup luksHeaderBackup` wrote it (`<part>-luksHeader.bin`: everything
//! before the data segment, both headers and the key slots), and the DECRYPTED volume
//! saved like a partition named after its mapping (`<mapper>.<fs>-ptcl-img.*`,
//! `swappt-<mapper>.info`, or an LVM PV `/dev/mapper/<mapper>` in `lvm_vg_dev.list`).
//! The partition itself has no image: its ciphertext was never saved.
//!
//! ironclone reads such a partition as its native "imaged with its key" layout
//! (imaging/luks_backup.rs): the header area from the header file, the plaintext from
//! the inner image (device_luks.rs), placed by the saved table (savedisk) or, in a
//! saveparts image, read alone as a table-less disk (`ImageDevice::open_luks`,
//! parts_luks.rs).

use super::error::ClonezillaError;
use super::lvm::LvmInfo;
use super::partimg::{self, PartImage};
use crate::device::{Access, BlockDevice, DeviceError};
use crate::ondisk::luks::{read_header, LuksHeader};
use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const LIST: &str = "luks-dev.list";

/// Bounds the list: one line a LUKS partition.
const MAX_LINES: usize = 1024;

/// One `luks-dev.list` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LuksLine {
    /// Without `/dev/`, as in `parts` (`sda3`).
    pub part: String,
    pub uuid: String,
    /// The mapping's name when saved (`ocs_luks_XXX`, or the OS's crypttab name).
    pub mapper: String,
}

/// What the opened volume held when it was saved.
#[derive(Clone, Debug)]
pub enum LuksInner {
    /// A filesystem image (or swap's `swappt-<mapper>.info`), named after the mapping.
    Image(PartImage),
    /// An LVM physical volume of this VG (placed by device_luks.rs `luks_pv`).
    Pv { vg: String },
}

#[derive(Clone, Debug)]
pub struct LuksVolume {
    pub part: String,
    pub uuid: String,
    pub mapper: String,
    /// `<part>-luksHeader.bin`.
    pub header: PathBuf,
    pub inner: LuksInner,
}

impl LuksVolume {
    /// What the volume holds, for listings: "ext4", "swap", "LVM PV of vg0".
    pub fn inner_kind(&self) -> String {
        match &self.inner {
            LuksInner::Image(p) => match &p.kind {
                partimg::PartImageKind::Partclone { fs } => fs.clone(),
                partimg::PartImageKind::Ntfsclone => "ntfs".into(),
                partimg::PartImageKind::Dd => "dd".into(),
                partimg::PartImageKind::Swap => "swap".into(),
            },
            LuksInner::Pv { vg } => format!("LVM PV of {vg}"),
        }
    }
}

impl super::ClonezillaImage {
    /// The LUKS volume `area` names: its partition (`sda3`) or its mapping's name.
    pub fn luks_volume(&self, area: &str) -> Option<&LuksVolume> {
        self.luks
            .iter()
            .find(|v| v.part == area || v.mapper == area)
    }

    /// `v`'s header checked against its partition's size in the saved table (a
    /// saveparts image has none: then against the header alone), for listings.
    pub fn luks_header(&self, v: &LuksVolume) -> Result<LuksHeader, ClonezillaError> {
        let node = format!("/dev/{}", v.part);
        let len = self.disk_of(&v.part).and_then(|l| {
            let e = l.table.entries.iter().find(|e| e.node == node)?;
            e.size.checked_mul(u64::from(l.table.sector_size))
        });
        check_header(v, len.unwrap_or(u64::MAX >> 1)).map(|(h, _)| h)
    }
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// Parses `luks-dev.list`.
pub fn parse_list(file: &Path, text: &str) -> Result<Vec<LuksLine>, ClonezillaError> {
    let bad = |i: usize, why, line: &str| ClonezillaError::BadLine {
        file: file.to_path_buf(),
        line: i + 1,
        why,
        text: line.to_string(),
    };
    let mut out: Vec<LuksLine> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let w: Vec<&str> = t.split_whitespace().collect();
        let [dev, uuid, mapper] = w.as_slice() else {
            return Err(bad(
                i,
                "expected `/dev/<partition> <UUID> <mapped name>`",
                line,
            ));
        };
        let Some(part) = dev.strip_prefix("/dev/").filter(|p| name_ok(p)) else {
            return Err(bad(i, "not a partition's device path", line));
        };
        let uuid_ok = !uuid.is_empty()
            && uuid.len() <= 64
            && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        if !uuid_ok {
            return Err(bad(i, "not a LUKS UUID", line));
        }
        if !name_ok(mapper) {
            return Err(bad(i, "not a device-mapper name", line));
        }
        if out.iter().any(|l| l.part == part || l.mapper == *mapper) {
            return Err(bad(i, "a partition or mapped name listed twice", line));
        }
        if out.len() >= MAX_LINES {
            return Err(ClonezillaError::Bad {
                file: file.to_path_buf(),
                why: format!("more than {MAX_LINES} lines"),
            });
        }
        out.push(LuksLine {
            part: part.to_string(),
            uuid: uuid.to_ascii_lowercase(),
            mapper: mapper.to_string(),
        });
    }
    Ok(out)
}

/// Reads `luks-dev.list` of the folder `dir` (file names `names`) and finds each listed
/// partition's header file and inner image; empty when the folder has no list.
pub fn read(
    dir: &Path,
    names: &BTreeSet<String>,
    read_text: &dyn Fn(&Path) -> Result<String, ClonezillaError>,
    lvm: Option<&LvmInfo>,
) -> Result<Vec<LuksVolume>, ClonezillaError> {
    if !names.contains(LIST) {
        return Ok(Vec::new());
    }
    let p = dir.join(LIST);
    let mut out = Vec::new();
    for l in parse_list(&p, &read_text(&p)?)? {
        let hname = format!("{}-luksHeader.bin", l.part);
        if !names.contains(&hname) {
            return Err(ClonezillaError::Missing {
                file: dir.join(hname),
                why: "the LUKS header (cryptsetup luksHeaderBackup) of a partition luks-dev.list names",
            });
        }
        let pv = format!("mapper/{}", l.mapper);
        let inner = match lvm.and_then(|v| v.pvs.iter().find(|p| p.dev == pv)) {
            Some(p) => LuksInner::Pv { vg: p.vg.clone() },
            None => LuksInner::Image(partimg::find(dir, names, &l.mapper)?),
        };
        out.push(LuksVolume {
            part: l.part,
            uuid: l.uuid,
            mapper: l.mapper,
            header: dir.join(hname),
            inner,
        });
    }
    Ok(out)
}

/// A LUKS partition as far as Clonezilla saved it: the header file's bytes from the
/// partition's start, on a device of the partition's size. The bytes from `limit` on
/// (the ciphertext, once the header is checked) were never saved: reading them is an
/// error, never zeros, so a plan that would copy them fails instead of writing zeros
/// where encrypted data belongs. The planner reads only the header (a LUKS probe
/// stops there, and the header area's used map is `0..data_offset`).
#[derive(Debug)]
pub struct HeaderFile {
    file: File,
    path: PathBuf,
    size: u64,
    limit: u64,
}

impl HeaderFile {
    pub fn open(path: &Path, size: u64) -> Result<Self, ClonezillaError> {
        let io = |source| ClonezillaError::Io {
            file: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Ok(HeaderFile {
            file,
            path: path.to_path_buf(),
            size,
            limit: len.min(size),
        })
    }

    /// Bytes the file holds.
    pub fn file_len(&self) -> u64 {
        self.limit
    }
}

impl BlockDevice for HeaderFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.check_range(offset, buf.len() as u64)?;
        let end = offset.saturating_add(buf.len() as u64);
        if end > self.limit {
            return Err(DeviceError::Query {
                device: self.path.display().to_string(),
                what: format!(
                    "bytes {offset}..{end} of the LUKS partition lie past its saved header \
                     ({} bytes): Clonezilla saved the decrypted volume, not its ciphertext",
                    self.limit
                ),
            });
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| DeviceError::Io {
                device: self.path.display().to_string(),
                offset,
                len: buf.len() as u64,
                source,
            })
    }

    fn write_at(&self, offset: u64, _buf: &[u8]) -> Result<(), DeviceError> {
        Err(DeviceError::ReadOnly {
            device: self.path.display().to_string(),
            offset,
        })
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn logical_sector_size(&self) -> u32 {
        512
    }

    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }

    fn access(&self) -> Access {
        Access::ReadOnly
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Opens and checks `vol`'s header file for a partition of `part_len` bytes: a LUKS1 or
/// LUKS2 header that ironclone decodes, as long as its data offset (not cut short),
/// with the UUID `luks-dev.list` gives. The device returned reads the header area
/// only.
pub fn check_header(
    vol: &LuksVolume,
    part_len: u64,
) -> Result<(LuksHeader, HeaderFile), ClonezillaError> {
    let bad = |why: String| ClonezillaError::Bad {
        file: vol.header.clone(),
        why,
    };
    let mut dev = HeaderFile::open(&vol.header, part_len)?;
    let h = read_header(&dev).map_err(|e| {
        bad(format!(
            "not a LUKS header of partition {} as `cryptsetup luksHeaderBackup` writes it: {e}",
            vol.part
        ))
    })?;
    if !matches!(h.version, 1 | 2) {
        return Err(bad(format!("LUKS version {}", h.version)));
    }
    if dev.file_len() < h.data_offset {
        return Err(bad(format!(
            "{} bytes, shorter than the {}-byte header area (keys and both headers) its \
             data offset needs: the file is cut short",
            dev.file_len(),
            h.data_offset
        )));
    }
    if !h.uuid.eq_ignore_ascii_case(&vol.uuid) {
        return Err(bad(format!(
            "its UUID {} differs from {} that {LIST} gives for {}: not this partition's header",
            h.uuid, vol.uuid, vol.part
        )));
    }
    dev.limit = h.data_offset;
    Ok((h, dev))
}

#[cfg(test)]
#[path = "luks_tests.rs"]
mod tests;
