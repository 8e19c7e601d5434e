//! Partition tables: the disk layout model that images store in their manifests,
//! and checked readers and writers for MBR (with the EBR chain of logical
//! partitions) and GPT (primary and backup, CRC-validated).
//!
//! The parsers are our own instead of the `gpt` and `mbrman` crates. Both read any
//! `Read + Seek` device, and `gpt` keeps both headers as separate results; what rules
//! them out for a rescue tool is elsewhere (read in gpt 4.1.0 and mbrman 0.6.1):
//! - gpt `file_read_partitions` asserts SizeOfPartitionEntry == 128, so a header with
//!   a valid CRC and another entry size (the UEFI spec allows 128 x 2^n) panics, and
//!   it reads and then allocates NumberOfPartitionEntries x 128 bytes bounded only by
//!   the device's end (up to 512 GiB from one crafted header);
//! - gpt reads one entry array, the valid primary header's: when that array fails its
//!   CRC the whole open fails instead of falling back to the backup's array;
//! - gpt checks the header CRC over a fixed 92 bytes (not HeaderSize), never checks
//!   MyLBA, PartitionEntryLBA or the usable range against the device, looks for the
//!   backup only at the last LBA (not at the primary's AlternateLBA, where it is on a
//!   disk that was copied onto a larger one), and knows only 512 and 4096-byte sectors;
//! - mbrman adds EBR offsets as unchecked u32 (an overflow panic with overflow checks
//!   on, as in our fuzz builds; a wrong LBA without) and refuses a chain whose next
//!   EBR lies below the current one, where we only refuse a real loop.
//!
//! Our readers bound every size before allocating, keep both GPT copies with their
//! arrays as typed results (`GptRead`), and write onto a device of another size with
//! the backup moved to the real end.

pub mod ebr;
mod error;
pub mod gpt;
pub mod gpt_entry;
pub mod gpt_header;
pub mod guid;
pub mod mbr;
pub mod types;
pub mod write;
mod write_gpt;
mod write_mbr;

pub use error::{GptCopyError, GptCopyKind, GptProblem, TableError};
pub use types::gpt_type_name;
pub use write::{relocate_gpt_backup, write_layout, WriteOptions};

use crate::device::BlockDevice;
use crate::units::Lba;
use mbr::{MbrEntry, MbrSector};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Which kind of table a disk carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    Gpt,
    Mbr,
    None,
}

impl TableKind {
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Gpt => "gpt",
            TableKind::Mbr => "mbr",
            TableKind::None => "none",
        }
    }
}

/// The GPT geometry a layout was read with, reused when it is written again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GptGeometry {
    pub first_usable_lba: Lba,
    pub last_usable_lba: Lba,
    pub num_entries: u32,
    pub entry_size: u32,
    /// PartitionEntryLBA of the header that was used.
    pub entries_lba: Lba,
    /// Where the header that was used said the other copy lives.
    pub alternate_lba: Lba,
    /// True when the table was read from the backup because the primary was damaged.
    pub from_backup: bool,
}

/// A partition type: a GPT type GUID or an MBR type byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartType {
    Gpt(Uuid),
    Mbr(u8),
}

impl PartType {
    /// The form tools print: the GPT type GUID in upper case, or "0x83".
    pub fn code(&self) -> String {
        match self {
            PartType::Gpt(u) => u.hyphenated().to_string().to_uppercase(),
            PartType::Mbr(b) => format!("0x{b:02x}"),
        }
    }

    /// A human name for common types, if known.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            PartType::Gpt(u) => types::gpt_type_name(u),
            PartType::Mbr(b) => types::mbr_type_name(*b),
        }
    }

    pub fn is_mbr_extended(&self) -> bool {
        matches!(self, PartType::Mbr(t) if mbr::is_extended(*t))
    }
}

/// One partition. LBAs are in the device's logical sector size; `end_lba` is inclusive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// 1-based: the GPT entry index + 1, the MBR slot + 1, or 5+ for MBR logicals.
    pub number: u32,
    pub start_lba: Lba,
    pub end_lba: Lba,
    pub size_bytes: u64,
    pub ptype: PartType,
    /// The GPT unique partition GUID.
    pub uuid: Option<Uuid>,
    /// The GPT partition name.
    pub name: Option<String>,
    /// MBR active flag (0x80), or the GPT legacy-BIOS-bootable attribute (bit 2).
    pub bootable: bool,
    /// GPT attribute bits (0 on MBR).
    pub attributes: u64,
    /// An MBR logical partition inside the extended container.
    pub logical: bool,
    /// For MBR logicals: where its EBR sits, kept so a rewrite puts it back there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebr_lba: Option<Lba>,
}

impl Partition {
    pub fn sectors(&self) -> u64 {
        self.end_lba
            .get()
            .saturating_sub(self.start_lba.get())
            .saturating_add(1)
    }

    /// The partition's bytes on the device: `(offset, len)`, `None` on overflow.
    pub fn byte_range(&self, sector_size: u32) -> Option<(u64, u64)> {
        let off = self.start_lba.to_bytes(sector_size)?.get();
        let len = self.sectors().checked_mul(u64::from(sector_size))?;
        off.checked_add(len)?;
        Some((off, len))
    }
}

/// A whole disk's partitioning, as read from a device or stored in an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskLayout {
    pub kind: TableKind,
    pub sector_size: u32,
    pub disk_size: u64,
    pub disk_guid: Option<Uuid>,
    /// The MBR disk signature at 0x1B8 (also kept on GPT disks, from the protective MBR).
    pub disk_signature: Option<u32>,
    pub gpt: Option<GptGeometry>,
    pub partitions: Vec<Partition>,
    /// A GPT disk whose MBR also lists real partitions besides the 0xEE entry.
    pub hybrid_mbr: bool,
    /// The raw MBR entries of a hybrid MBR, written back as they were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hybrid_entries: Vec<MbrEntry>,
    /// Problems that did not stop the read (backup used, backup misplaced, ...).
    pub warnings: Vec<String>,
}

impl DiskLayout {
    /// A layout with no table (a blank disk or a filesystem on the whole device).
    pub fn none(sector_size: u32, disk_size: u64) -> Self {
        DiskLayout {
            kind: TableKind::None,
            sector_size,
            disk_size,
            disk_guid: None,
            disk_signature: None,
            gpt: None,
            partitions: Vec::new(),
            hybrid_mbr: false,
            hybrid_entries: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn disk_sectors(&self) -> u64 {
        self.disk_size / u64::from(self.sector_size.max(1))
    }

    /// Pairs of partition numbers whose sectors overlap. Extended containers are left
    /// out: their logicals sit inside them by design.
    pub fn overlaps(&self) -> Vec<(u32, u32)> {
        let mut parts: Vec<&Partition> = self
            .partitions
            .iter()
            .filter(|p| !p.ptype.is_mbr_extended())
            .collect();
        parts.sort_by_key(|p| p.start_lba);
        let mut out = Vec::new();
        for (i, a) in parts.iter().enumerate() {
            for b in parts.iter().skip(i + 1) {
                if b.start_lba > a.end_lba {
                    break;
                }
                out.push((a.number, b.number));
            }
        }
        out
    }

    /// The highest LBA any partition uses, if there are partitions.
    pub fn last_used_lba(&self) -> Option<Lba> {
        self.partitions.iter().map(|p| p.end_lba).max()
    }
}

/// Checks the device's logical sector size is one a partition table can use.
pub(crate) fn check_sector_size(dev: &dyn BlockDevice) -> Result<u32, TableError> {
    let ss = dev.logical_sector_size();
    if !(512..=65536).contains(&ss) || !ss.is_power_of_two() {
        return Err(TableError::SectorSize {
            device: dev.describe(),
            sector_size: ss,
        });
    }
    Ok(ss)
}

/// Reads the partition table of `dev`: GPT (protective or hybrid MBR), MBR with its
/// logical partitions, or none. Never writes.
pub fn read_layout(dev: &dyn BlockDevice) -> Result<DiskLayout, TableError> {
    let ss = check_sector_size(dev)?;
    let size = dev.size();
    let mut layout = DiskLayout::none(ss, size);
    if size < mbr::MBR_SIZE as u64 {
        layout
            .warnings
            .push(format!("device is only {size} bytes: no partition table"));
        return Ok(layout);
    }
    let sector0 = dev.read_vec(0, mbr::MBR_SIZE)?;
    let mbr = MbrSector::parse(&sector0).ok_or_else(|| TableError::Invalid {
        device: dev.describe(),
        what: "MBR".into(),
        lba: 0,
        reason: "short read".into(),
    })?;
    let has_pmbr = mbr.has_boot_signature
        && mbr
            .entries
            .iter()
            .any(|e| e.ptype == mbr::TYPE_GPT_PROTECTIVE);

    if has_pmbr || !mbr.has_boot_signature {
        // A GPT without a valid MBR is still a GPT (the MBR may have been zeroed);
        // look for one before calling the disk blank.
        match gpt::read_gpt(dev, ss) {
            Ok(g) => {
                let mut l = g.into_layout(dev, ss);
                if mbr.has_boot_signature {
                    l.disk_signature = Some(mbr.disk_signature);
                    let others: Vec<MbrEntry> = mbr.entries.to_vec();
                    if others
                        .iter()
                        .any(|e| !e.is_empty() && e.ptype != mbr::TYPE_GPT_PROTECTIVE)
                    {
                        l.hybrid_mbr = true;
                        l.hybrid_entries = others;
                        l.warnings
                            .push("hybrid MBR: the MBR also lists partitions besides 0xEE".into());
                    }
                } else {
                    l.warnings
                        .push("GPT found but LBA 0 has no protective MBR (no 0x55AA)".into());
                }
                warn_overlaps(&mut l);
                return Ok(l);
            }
            Err(e) if has_pmbr => return Err(e),
            Err(e) => {
                let no_gpt_at_all = match &e {
                    TableError::NoValidGpt {
                        primary, backup, ..
                    } => primary.problem.is_no_signature() && backup.problem.is_no_signature(),
                    TableError::TooSmallDevice { .. } => true,
                    _ => false,
                };
                if !no_gpt_at_all {
                    layout
                        .warnings
                        .push(format!("no MBR, and the GPT is unreadable: {e}"));
                }
                return Ok(layout);
            }
        }
    }

    if MbrSector::looks_like_boot_sector(&sector0) {
        layout
            .warnings
            .push("LBA 0 is a filesystem boot sector, not an MBR".into());
        return Ok(layout);
    }
    if mbr.entries.iter().all(|e| e.is_empty()) {
        // An MBR with no partitions: keep the signature, it is still a table.
        layout.kind = TableKind::Mbr;
        layout.disk_signature = Some(mbr.disk_signature);
        return Ok(layout);
    }
    let mut l = ebr::read_mbr_layout(dev, ss, &mbr, layout)?;
    warn_overlaps(&mut l);
    Ok(l)
}

fn warn_overlaps(l: &mut DiskLayout) {
    for (a, b) in l.overlaps() {
        l.warnings.push(format!("partitions {a} and {b} overlap"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(number: u32, start: u64, end: u64, ptype: PartType) -> Partition {
        Partition {
            number,
            start_lba: Lba(start),
            end_lba: Lba(end),
            size_bytes: (end - start + 1) * 512,
            ptype,
            uuid: Some(Uuid::new_v4()),
            name: Some("n".into()),
            bootable: false,
            attributes: 1 << 60,
            logical: false,
            ebr_lba: None,
        }
    }

    #[test]
    fn layout_serde_round_trip() {
        let mut l = DiskLayout::none(512, 1 << 30);
        l.kind = TableKind::Gpt;
        l.disk_guid = Some(Uuid::new_v4());
        l.partitions
            .push(part(1, 2048, 4095, PartType::Gpt(types::ESP)));
        l.partitions.push(part(5, 4096, 9000, PartType::Mbr(0x83)));
        let j = serde_json::to_string(&l).unwrap();
        let back: DiskLayout = serde_json::from_str(&j).unwrap();
        assert_eq!(back, l);
    }

    #[test]
    fn overlaps_ignore_extended_containers() {
        let mut l = DiskLayout::none(512, 1 << 30);
        l.partitions.push(part(1, 2048, 4095, PartType::Mbr(0x83)));
        l.partitions.push(part(2, 4096, 90000, PartType::Mbr(0x05)));
        l.partitions.push(part(5, 6000, 7000, PartType::Mbr(0x83)));
        assert!(l.overlaps().is_empty());
        l.partitions.push(part(3, 4000, 5000, PartType::Mbr(0x83)));
        assert_eq!(l.overlaps(), vec![(1, 3)]);
    }

    #[test]
    fn byte_range_checks_overflow() {
        let p = part(1, 2048, 4095, PartType::Mbr(0x83));
        assert_eq!(p.byte_range(512), Some((2048 * 512, 2048 * 512)));
        let huge = part(1, u64::MAX / 2, u64::MAX / 2 + 10, PartType::Mbr(0x83));
        assert_eq!(huge.byte_range(4096), None);
    }
}
