//! Reading a GPT: the primary header and array at LBA 1, the backup at the end,
//! each validated by its own CRCs and kept as its own `Result`. A damaged primary
//! falls back to the backup and the layout says so in `warnings`, because a
//! rescue tool that silently trusts either copy can restore the wrong table.

use super::error::{GptCopyError, GptCopyKind, GptProblem};
use super::gpt_entry::{GptEntry, GptEntryError, ATTR_LEGACY_BIOS_BOOTABLE};
use super::gpt_header::GptHeader;
use super::{DiskLayout, GptGeometry, PartType, Partition, TableError, TableKind};
use crate::device::BlockDevice;
use crate::units::Lba;

/// One validated copy of the table: the header and its used entries with their
/// 0-based index in the array.
#[derive(Clone, Debug)]
pub struct GptCopy {
    pub header: GptHeader,
    pub entries: Vec<(u32, GptEntry)>,
}

/// Both copies as read; at least one is `Ok` when `read_gpt` succeeds.
#[derive(Debug)]
pub struct GptRead {
    pub primary: Result<GptCopy, GptCopyError>,
    pub backup: Result<GptCopy, GptCopyError>,
    pub warnings: Vec<String>,
}

/// Reads the header at `lba` and its entry array.
pub fn read_copy(dev: &dyn BlockDevice, ss: u32, lba: u64) -> Result<GptCopy, GptProblem> {
    let sectors = dev.size() / u64::from(ss);
    if lba >= sectors {
        return Err(GptProblem::PastEnd { lba, sectors });
    }
    let overflow = |structure, lba| GptProblem::Overflow { structure, lba };
    let off = Lba(lba).to_bytes(ss).ok_or(overflow("header", lba))?.get();
    let sector = dev
        .read_vec(off, ss as usize)
        .map_err(|source| GptProblem::Read {
            structure: "header",
            lba,
            source,
        })?;
    let header = GptHeader::parse(&sector, lba, sectors, ss)
        .map_err(|source| GptProblem::Header { lba, source })?;
    let arr_lba = header.partition_entry_lba;
    let arr_off = Lba(arr_lba)
        .to_bytes(ss)
        .ok_or(overflow("entry array", arr_lba))?
        .get();
    // array_bytes was bounded by GptHeader::parse.
    let len =
        usize::try_from(header.array_bytes()).map_err(|_| overflow("entry array", arr_lba))?;
    let array = dev
        .read_vec(arr_off, len)
        .map_err(|source| GptProblem::Read {
            structure: "entry array",
            lba: arr_lba,
            source,
        })?;
    let computed = crc32fast::hash(&array);
    if computed != header.partition_entry_array_crc32 {
        return Err(GptProblem::ArrayCrc {
            lba: arr_lba,
            stored: header.partition_entry_array_crc32,
            computed,
        });
    }
    let es = header.sizeof_partition_entry as usize;
    let mut entries = Vec::new();
    for (i, chunk) in (0u32..).zip(array.chunks(es)) {
        let bad = |source| GptProblem::Entry {
            lba: arr_lba,
            number: i + 1,
            source,
        };
        if let Some(e) = GptEntry::parse(chunk).map_err(bad)? {
            if e.starting_lba > e.ending_lba {
                return Err(bad(GptEntryError::StartAfterEnd {
                    start: e.starting_lba,
                    end: e.ending_lba,
                }));
            }
            if e.ending_lba >= sectors {
                return Err(bad(GptEntryError::PastEnd {
                    end: e.ending_lba,
                    last_lba: sectors - 1,
                }));
            }
            entries.push((i, e));
        }
    }
    Ok(GptCopy { header, entries })
}

/// Reads both copies and decides which to use.
pub fn read_gpt(dev: &dyn BlockDevice, ss: u32) -> Result<GptRead, TableError> {
    let sectors = dev.size() / u64::from(ss);
    if sectors < 3 {
        return Err(TableError::TooSmallDevice {
            device: dev.describe(),
            size: dev.size(),
        });
    }
    let last = sectors - 1;
    let copy_err = |copy| {
        move |problem| GptCopyError {
            device: dev.describe(),
            copy,
            problem,
        }
    };
    let primary = read_copy(dev, ss, 1).map_err(copy_err(GptCopyKind::Primary));
    let mut warnings = Vec::new();
    let backup = match &primary {
        Ok(p) if p.header.alternate_lba != last => {
            warnings.push(format!(
                "backup GPT header is at LBA {} per the primary, not at the last LBA {last} (disk resized?)",
                p.header.alternate_lba
            ));
            read_copy(dev, ss, p.header.alternate_lba).or_else(|at_alternate| {
                read_copy(dev, ss, last).map_err(|at_last| GptProblem::NeitherPlace {
                    at_alternate: Box::new(at_alternate),
                    at_last: Box::new(at_last),
                })
            })
        }
        _ => read_copy(dev, ss, last),
    }
    .map_err(copy_err(GptCopyKind::Backup));
    let (primary, backup) = match (primary, backup) {
        (Err(p), Err(b)) => {
            return Err(TableError::NoValidGpt {
                device: dev.describe(),
                primary: Box::new(p),
                backup: Box::new(b),
            })
        }
        pair => pair,
    };
    match (&primary, &backup) {
        (Ok(_), Err(b)) => warnings.push(format!("backup GPT is damaged: {}", b.problem)),
        (Err(p), Ok(b)) => warnings.push(format!(
            "primary GPT at LBA 1 is damaged ({}); using the backup at LBA {}",
            p.problem, b.header.my_lba
        )),
        (Ok(p), Ok(b)) => {
            if p.entries != b.entries || p.header.disk_guid != b.header.disk_guid {
                warnings.push("primary and backup GPT differ; using the primary".into());
            }
        }
        (Err(_), Err(_)) => {} // returned above
    }
    Ok(GptRead {
        primary,
        backup,
        warnings,
    })
}

impl GptRead {
    /// The copy in use: the primary when valid, else the backup.
    pub fn chosen(&self) -> Option<(&GptCopy, bool)> {
        match (&self.primary, &self.backup) {
            (Ok(p), _) => Some((p, false)),
            (Err(_), Ok(b)) => Some((b, true)),
            _ => None,
        }
    }

    pub fn into_layout(self, dev: &dyn BlockDevice, ss: u32) -> DiskLayout {
        let mut l = DiskLayout::none(ss, dev.size());
        l.warnings = self.warnings.clone();
        let Some((copy, from_backup)) = self.chosen() else {
            return l;
        };
        let h = &copy.header;
        l.kind = TableKind::Gpt;
        l.disk_guid = Some(h.disk_guid);
        l.gpt = Some(GptGeometry {
            first_usable_lba: Lba(h.first_usable_lba),
            last_usable_lba: Lba(h.last_usable_lba),
            num_entries: h.num_partition_entries,
            entry_size: h.sizeof_partition_entry,
            entries_lba: Lba(h.partition_entry_lba),
            alternate_lba: Lba(h.alternate_lba),
            from_backup,
        });
        for (i, e) in &copy.entries {
            if e.starting_lba < h.first_usable_lba || e.ending_lba > h.last_usable_lba {
                l.warnings.push(format!(
                    "partition {} ({}..={}) is outside the usable range {}..={}",
                    i + 1,
                    e.starting_lba,
                    e.ending_lba,
                    h.first_usable_lba,
                    h.last_usable_lba
                ));
            }
            let sectors = e.ending_lba - e.starting_lba + 1; // checked by read_copy
            l.partitions.push(Partition {
                number: i + 1,
                start_lba: Lba(e.starting_lba),
                end_lba: Lba(e.ending_lba),
                size_bytes: sectors.saturating_mul(u64::from(ss)),
                ptype: PartType::Gpt(e.partition_type_guid),
                uuid: Some(e.unique_partition_guid),
                name: Some(e.name.clone()),
                bootable: e.attributes & ATTR_LEGACY_BIOS_BOOTABLE != 0,
                attributes: e.attributes,
                logical: false,
                ebr_lba: None,
            });
        }
        l
    }
}
