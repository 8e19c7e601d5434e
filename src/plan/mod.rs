//! The restore layout planner: fits an image's partitions onto a target disk of
//! another size, before anything is written.
//!
//! Replacement disks are almost never the size of the original, and today's tools
//! refuse a smaller one even when the data fits (clonezilla#1). The planner works in
//! bytes on its own small input model, so it is pure and testable, and the restore
//! converts its output into a partition table for the target's sector size. It
//! refuses, with the number of bytes missing, any layout the data cannot fit, so a
//! refusal always happens before the first write.

mod align;
mod error;
mod fit;
pub mod lvm;
mod role;

pub use error::PlanError;
pub use role::Role;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const MIB: u64 = 1 << 20;

/// How partition sizes follow the target disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LayoutMode {
    /// Data partitions scale with the disk; ESP, BIOS-boot, MSR, recovery and swap keep their size.
    #[default]
    Proportional,
    /// Same starts and sizes as the source; only when they fit.
    Keep,
}

/// An explicit size request for one partition (`--size 3=40G`, `--size 2=max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SizeRequest {
    Bytes(u64),
    Max,
}

/// Which partition-table flavour the target gets; it decides the usable area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFlavour {
    Gpt { entries_bytes: u64 },
    Mbr,
}

/// One source partition as the planner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartIn {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub role: Role,
    /// The filesystem's name for display ("ext4", "ntfs", "raw").
    pub fs: String,
    pub used_bytes: u64,
    /// The smallest size this partition's content can be shrunk to (the filesystem's
    /// minimum). Equal to `size` when the content cannot shrink (raw, unknown).
    pub min_size: u64,
    /// Whether the filesystem can be grown after restore.
    pub can_grow: bool,
    /// The smallest logical sector size the filesystem can live on: its own sector
    /// (NTFS, FAT) or block size (ext). None when it does not care.
    pub max_target_sector: Option<u32>,
    /// When the target's sectors are larger than `max_target_sector`: `Some` if the
    /// content can be re-created with the target's sector size instead (an ESP: a new
    /// FAT32, its files copied in), holding the smallest partition that new
    /// filesystem needs; `None` and the restore is refused.
    pub recreate_min: Option<u64>,
    /// An MBR logical partition (needs an EBR sector in front of it).
    pub logical: bool,
    /// Something outside the table names this partition by its start (Windows' BCD
    /// on MBR disks): the partitions in front of it keep their size when the target
    /// allows, so its start does not move.
    #[serde(default)]
    pub keep_start: bool,
}

/// What the planner is asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInput {
    pub source_size: u64,
    pub source_sector: u32,
    pub target_size: u64,
    pub target_sector: u32,
    pub table: TableFlavour,
    pub partitions: Vec<PartIn>,
    pub mode: LayoutMode,
    pub sizes: BTreeMap<u32, SizeRequest>,
}

/// What happens to a partition's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Copy,
    Grow,
    Shrink,
    /// A new filesystem made with the target's sector size, the files copied in.
    Recreate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartOut {
    pub number: u32,
    pub fs: String,
    pub role: Role,
    pub used_bytes: u64,
    pub old_start: u64,
    pub old_size: u64,
    pub new_start: u64,
    pub new_size: u64,
    pub action: Action,
}

impl PartIn {
    /// Whether this partition's filesystem is re-created on a target with `sector`-byte sectors.
    pub fn recreated(&self, sector: u32) -> bool {
        self.recreate_min.is_some() && self.max_target_sector.is_some_and(|l| sector > l)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub alignment: u64,
    pub target_size: u64,
    pub target_sector: u32,
    pub partitions: Vec<PartOut>,
}

impl Plan {
    pub fn get(&self, number: u32) -> Option<&PartOut> {
        self.partitions.iter().find(|p| p.number == number)
    }
}

/// Computes the target layout, or says why it cannot be done.
pub fn plan(input: &PlanInput) -> Result<Plan, PlanError> {
    check_sectors(input)?;
    let alignment = align::source_alignment(&input.partitions, input.target_sector);
    let area = fit::usable_area(input.target_size, input.target_sector, input.table)?;
    let recreated = recreated_inputs(input);
    // An MBR extended partition is a container: the table writer derives it from
    // the logical partitions it holds, so it is not sized here.
    let mut parts: Vec<&PartIn> = recreated
        .iter()
        .filter(|p| p.role != Role::Extended)
        .collect();
    parts.sort_by_key(|p| p.start);
    for n in input.sizes.keys() {
        if !parts.iter().any(|p| p.number == *n) {
            return Err(PlanError::NoSuchPartition { number: *n });
        }
    }
    let mut placed = match same_disk_keep(&parts, input, area, alignment) {
        Some(kept) => kept,
        None => match keep_named_starts(&parts, input, area, alignment) {
            Some(kept) => kept,
            None => {
                let sizes = match input.mode {
                    LayoutMode::Keep => parts.iter().map(|p| p.size).collect(),
                    LayoutMode::Proportional => {
                        fit::proportional_sizes(&parts, input, area, alignment)?
                    }
                };
                fit::place(&parts, &sizes, input.mode, input, area, alignment)?
            }
        },
    };
    for out in &mut placed {
        if let Some(p) = input.partitions.iter().find(|p| p.number == out.number) {
            if p.recreated(input.target_sector) {
                out.old_size = p.size;
                out.action = Action::Recreate;
            }
        }
    }
    if input.table == TableFlavour::Mbr {
        check_mbr_limits(&placed, input.target_sector)?;
    }
    Ok(Plan {
        alignment,
        target_size: input.target_size,
        target_sector: input.target_sector,
        partitions: placed,
    })
}

/// Onto a disk of the source's size and sector size, with no size asked for, the
/// source's own layout: starts, sizes and so the table are the source's byte for
/// byte, and nothing is resized. Partitioners fill disks to the last usable LBA (not a
/// MiB boundary) by default, so re-deriving the layout would shrink the last
/// partition or refuse a raw one by a few KiB of alignment (issue 16).
fn same_disk_keep(
    parts: &[&PartIn],
    input: &PlanInput,
    area: fit::Area,
    alignment: u64,
) -> Option<Vec<PartOut>> {
    let same = input.target_size == input.source_size
        && input.target_sector == input.source_sector
        && input.sizes.is_empty()
        && input.mode == LayoutMode::Proportional;
    if !same {
        return None;
    }
    let sizes: Vec<u64> = parts.iter().map(|p| p.size).collect();
    fit::place(parts, &sizes, LayoutMode::Keep, input, area, alignment).ok()
}

/// A proportional layout in which every partition in front of the last one with
/// `keep_start` keeps its size (unless `--size` names it), so the starts that Windows'
/// BCD records stay valid; the partitions from there on take the growth or the
/// shrink. None when there is nothing to keep or the target cannot hold it that way
/// (then the starts move and the restore rewrites the BCD).
fn keep_named_starts(
    parts: &[&PartIn],
    input: &PlanInput,
    area: fit::Area,
    alignment: u64,
) -> Option<Vec<PartOut>> {
    if input.mode != LayoutMode::Proportional {
        return None;
    }
    let last = parts.iter().rposition(|p| p.keep_start)?;
    let pinned: Vec<PartIn> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut q = (*p).clone();
            if i < last && !input.sizes.contains_key(&p.number) {
                q.min_size = q.size;
                q.can_grow = false;
            }
            q
        })
        .collect();
    let refs: Vec<&PartIn> = pinned.iter().collect();
    let sizes = fit::proportional_sizes(&refs, input, area, alignment).ok()?;
    fit::place(&refs, &sizes, input.mode, input, area, alignment).ok()
}

/// The partitions as the sizing sees them: one whose filesystem is re-created is
/// sized like any other of its role, from at least what the new filesystem needs
/// (a small ESP grows to FAT32's minimum), and may take any size from there.
fn recreated_inputs(input: &PlanInput) -> Vec<PartIn> {
    input
        .partitions
        .iter()
        .map(|p| match p.recreate_min {
            Some(min) if p.recreated(input.target_sector) => PartIn {
                size: p.size.max(min),
                min_size: min,
                can_grow: true,
                ..p.clone()
            },
            _ => p.clone(),
        })
        .collect()
}

fn check_sectors(input: &PlanInput) -> Result<(), PlanError> {
    for s in [input.source_sector, input.target_sector] {
        if !(512..=65536).contains(&s) || !s.is_power_of_two() {
            return Err(PlanError::BadSectorSize { sector: s });
        }
    }
    for p in &input.partitions {
        if let Some(limit) = p.max_target_sector {
            if input.target_sector > limit && !p.recreated(input.target_sector) {
                return Err(PlanError::SectorTooLarge {
                    number: p.number,
                    fs: p.fs.clone(),
                    fs_unit: limit,
                    target_sector: input.target_sector,
                });
            }
        }
    }
    Ok(())
}

fn check_mbr_limits(parts: &[PartOut], sector: u32) -> Result<(), PlanError> {
    let limit = u64::from(u32::MAX) * u64::from(sector);
    for p in parts {
        if p.new_start.saturating_add(p.new_size) > limit {
            return Err(PlanError::MbrLimit {
                number: p.number,
                limit,
            });
        }
    }
    Ok(())
}

/// Rounds a byte count the way the planner table shows it.
pub fn mib(n: u64) -> String {
    if n % MIB == 0 {
        format!("{} MiB", n / MIB)
    } else {
        crate::units::human_bytes(n)
    }
}

#[cfg(test)]
mod tests;
