//! Backing up a LUKS partition with its key. Without a key the partition is imaged raw
//! (encrypted). With one, the partition becomes two areas: its header area (bytes
//! before the data segment: both header copies and the key slots, copied as they are)
//! and the plaintext of the data segment as an area of its own, read through a
//! read-only `cryptsetup open` and mapped by the used blocks of the filesystem (or LVM
//! PV) inside. A wrong key fails here, while planning: before anything is stored.
//!
//! The repository engine reads every area from one device, so the plaintext devices
//! are placed after the source's end ([`Stacked`]); a plaintext area's `offset` is its
//! place there, not on the source disk (docs/FORMAT.md).

use super::meta::{LuksMeta, LuksRole, PartitionMeta};
use super::plan_backup::PartitionFinding;
use super::ImagingError;
use crate::device::{open_path, Access, BlockDevice, Stacked};
use crate::ondisk::luks::{read_header, LuksHeader};
use crate::probe::{probe, FsInfo, FsKind};
use crate::repo::{AreaKind, PlannedArea};
use crate::resize::LoopDevice;
use crate::table::Partition;
use crate::unlock::{test_key, LuksKey, Mapping};
use crate::usedmap::{file_runs, map_filesystem, ByteExtent, UsedMap};
use std::path::{Path, PathBuf};

/// Suffix of a plaintext area's name: "p3" and "p3-plaintext".
pub const PLAINTEXT_SUFFIX: &str = "-plaintext";

/// One opened volume. Field order is drop order: the plaintext descriptor is closed
/// before the mapping, the mapping before its loop device. A volume the running
/// system has open (a scheduled run) has neither: it is not ours to close.
struct Opened {
    plain: Box<dyn BlockDevice>,
    mapping: Option<Mapping>,
    _loop: Option<LoopDevice>,
    offset: u64,
}

/// A LUKS volume the running system has open, for a backup without the key: the byte
/// offset of its partition on the source, the mapping's name, and the device read as
/// its plaintext (the mapping, or a consistent view of it: `schedule::enc_disk`).
pub struct OpenVolume {
    pub partition_offset: u64,
    pub name: String,
    pub plain: Box<dyn BlockDevice>,
}

/// The key, or the volumes already open, and the volumes opened for one backup.
pub struct LuksBackup {
    key: Option<LuksKey>,
    /// Open volumes not planned yet (without a key).
    open: Vec<OpenVolume>,
    source: PathBuf,
    opened: Vec<Opened>,
    /// Where the next plaintext area goes (past the source's end, see `Stacked`).
    next: u64,
}

/// A LUKS partition's two areas and their lines for the report.
pub(super) struct LuksAreas {
    pub areas: Vec<PlannedArea>,
    pub findings: Vec<PartitionFinding>,
    pub warnings: Vec<String>,
    /// The notice that the image holds this volume's plaintext (also in `warnings`).
    pub plaintext: String,
}

const ALIGN: u64 = 1 << 20;

impl LuksBackup {
    /// `source` is the path the source was opened from (loop devices are made over it).
    pub fn new(key: LuksKey, source: &Path, source_size: u64) -> Self {
        LuksBackup {
            key: Some(key),
            open: Vec::new(),
            source: source.to_path_buf(),
            opened: Vec::new(),
            next: source_size.next_multiple_of(ALIGN),
        }
    }

    /// Without a key: the LUKS partitions in `open` are read through their open
    /// mappings; any other LUKS partition is imaged raw (encrypted), as without `--unlock`.
    pub fn with_open_volumes(open: Vec<OpenVolume>, source_size: u64) -> Self {
        LuksBackup {
            key: None,
            open,
            source: PathBuf::new(),
            opened: Vec::new(),
            next: source_size.next_multiple_of(ALIGN),
        }
    }

    /// True when the LUKS partition at byte `offset` of the source is read decrypted.
    pub(super) fn handles(&self, offset: u64) -> bool {
        self.key.is_some() || self.open.iter().any(|v| v.partition_offset == offset)
    }

    /// Opens the LUKS partition `name` (`offset`, `len` on the source; `win` is its
    /// window) and plans its header and plaintext areas.
    pub(super) fn plan_partition(
        &mut self,
        win: &dyn BlockDevice,
        part: Option<Partition>,
        info: Option<FsInfo>,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<LuksAreas, ImagingError> {
        let h = read_header(win)?;
        let data_len = h.data_len(len).ok_or_else(|| {
            ImagingError::Other(format!("{name}: LUKS data offset past the partition's end"))
        })?;
        let (plain, mapping, lo, how): (Box<dyn BlockDevice>, _, _, String) = match &self.key {
            Some(key) => {
                let lo = LoopDevice::attach_read_only(&self.source, offset, len)?;
                test_key(lo.path(), key)?;
                let mapping = Mapping::open(lo.path(), key, true)?;
                let plain = open_path(&mapping.path(), Access::ReadOnly)?;
                (
                    Box::new(plain),
                    Some(mapping),
                    Some(lo),
                    "opened with the key given".into(),
                )
            }
            None => {
                let i = self
                    .open
                    .iter()
                    .position(|v| v.partition_offset == offset)
                    .ok_or_else(|| {
                        ImagingError::Other(format!(
                            "{name}: no open mapping of this LUKS partition"
                        ))
                    })?;
                let v = self.open.remove(i);
                (
                    v.plain,
                    None,
                    None,
                    format!("read through its open mapping {}", v.name),
                )
            }
        };
        if plain.size() != data_len {
            return Err(ImagingError::Other(format!(
                "{name}: the opened LUKS volume has {} bytes, its header says {data_len}",
                plain.size()
            )));
        }
        let pinfo = probe(plain.as_ref());
        let pkind = pinfo.as_ref().map_or(FsKind::Unknown, |i| i.kind);
        let map = map_filesystem(plain.as_ref(), pkind);
        let files = file_runs(plain.as_ref(), pkind, &map);
        let at = self.next;
        self.next = at
            .checked_add(data_len)
            .map(|e| e.next_multiple_of(ALIGN))
            .ok_or_else(|| ImagingError::Other("plaintext areas overflow".into()))?;
        let plain_name = format!("{name}{PLAINTEXT_SUFFIX}");
        let luks = |role| luks_meta(&h, role, name, &plain_name);
        let header_map = header_map(len, h.data_offset);
        let vname = format!("LUKS{}", h.version);
        let number = part.as_ref().map(|p| p.number);
        let findings = vec![
            PartitionFinding {
                area: name.into(),
                number,
                offset,
                size: len,
                filesystem: format!("{vname} header (encrypted)"),
                label: h.label.clone(),
                used_bytes: h.data_offset,
                copy_bytes: h.data_offset,
                raw: false,
                warnings: vec![],
            },
            PartitionFinding {
                area: plain_name.clone(),
                number,
                offset: at,
                size: data_len,
                filesystem: format!(
                    "{} (PLAINTEXT of {vname})",
                    if map.raw {
                        format!("raw, {}", map.raw_reason.as_deref().unwrap_or("?"))
                    } else {
                        pkind.to_string()
                    }
                ),
                label: pinfo.as_ref().and_then(|i| i.label.clone()),
                used_bytes: map.used_bytes,
                copy_bytes: map.copy_bytes(),
                raw: map.raw,
                warnings: map.warnings.clone(),
            },
        ];
        let who = number.map_or(name.to_string(), |n| format!("partition {n}"));
        let plaintext = format!(
            "{who}: the image holds the PLAINTEXT of the encrypted {vname} volume ({how}); whoever reads the repository reads the data"
        );
        let mut warnings = vec![plaintext.clone()];
        warnings.extend(
            map.warnings
                .iter()
                .chain(&files.warnings)
                .map(|w| format!("{who} (plaintext): {w}")),
        );
        let mut hmeta = PartitionMeta::new(part, info, header_map.clone());
        hmeta.luks = Some(luks(LuksRole::Header));
        let extents = map.extents.clone();
        let mut pmeta = PartitionMeta::new(None, pinfo, map);
        pmeta.luks = Some(luks(LuksRole::Plaintext));
        let areas = vec![
            PlannedArea {
                name: name.into(),
                kind: AreaKind::Partition,
                offset,
                len,
                extents: header_map.extents,
                meta: to_value(&hmeta)?,
                file_runs: Vec::new(),
            },
            PlannedArea {
                name: plain_name,
                kind: AreaKind::Partition,
                offset: at,
                len: data_len,
                extents,
                meta: to_value(&pmeta)?,
                file_runs: files.runs,
            },
        ];
        self.opened.push(Opened {
            plain,
            mapping,
            _loop: lo,
            offset: at,
        });
        Ok(LuksAreas {
            areas,
            findings,
            warnings,
            plaintext,
        })
    }

    /// The source with every opened volume's plaintext at its planned offset.
    pub fn stacked<'a>(&'a self, base: &'a dyn BlockDevice) -> Result<Stacked<'a>, ImagingError> {
        let mut s = Stacked::new(base);
        for o in &self.opened {
            let at = s.push(o.plain.as_ref())?;
            if at != o.offset {
                return Err(ImagingError::Other(format!(
                    "plaintext area planned at byte {}, stacked at {at}",
                    o.offset
                )));
            }
        }
        Ok(s)
    }

    /// True when a LUKS partition was opened.
    pub fn any_opened(&self) -> bool {
        !self.opened.is_empty()
    }

    /// Closes every mapping, reporting the first failure (dropping closes them too,
    /// silently).
    pub fn close(mut self) -> Result<(), ImagingError> {
        let mut first = None;
        for o in self.opened.drain(..) {
            let Opened {
                plain,
                mapping,
                _loop,
                ..
            } = o;
            // The mapping is busy while a descriptor on it is open.
            drop(plain);
            if let Some(Err(e)) = mapping.map(Mapping::close) {
                first.get_or_insert(e);
            }
            drop(_loop);
        }
        first.map_or(Ok(()), |e| Err(e.into()))
    }
}

/// The header area: everything before the data segment, copied whole.
fn header_map(len: u64, data_offset: u64) -> UsedMap {
    let mut m = UsedMap::raw(len, 512, "");
    m.raw = false;
    m.raw_reason = None;
    m.used_bytes = data_offset;
    m.extents = vec![ByteExtent {
        offset: 0,
        len: data_offset,
    }];
    m
}

fn luks_meta(h: &LuksHeader, role: LuksRole, header: &str, plaintext: &str) -> LuksMeta {
    LuksMeta {
        role,
        header_area: header.into(),
        plaintext_area: plaintext.into(),
        version: h.version,
        uuid: h.uuid.clone(),
        data_offset: h.data_offset,
        data_size: h.data_size,
        sector_size: h.sector_size,
        cipher: h.cipher.clone(),
    }
}

fn to_value(m: &PartitionMeta) -> Result<serde_json::Value, ImagingError> {
    serde_json::to_value(m).map_err(|e| ImagingError::Other(format!("metadata: {e}")))
}
