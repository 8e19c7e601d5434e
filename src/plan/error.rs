//! Planner refusals. Each says what does not fit and by how much, because the person
//! reading it has to decide whether to find a bigger disk or drop a partition.

use crate::units::human_bytes;
use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(
        "the image needs at least {} on the target but only {} is usable: {} ({missing} bytes) missing",
        human_bytes(*needed), human_bytes(*available), human_bytes(*missing)
    )]
    TooSmall {
        needed: u64,
        available: u64,
        missing: u64,
    },
    #[error("partition {number}: requested size {} is below its filesystem's minimum {}", human_bytes(*requested), human_bytes(*minimum))]
    BelowMinimum {
        number: u32,
        requested: u64,
        minimum: u64,
    },
    #[error("partition {number}: {fs} cannot grow, so its size cannot be raised to {}", human_bytes(*requested))]
    CannotGrow {
        number: u32,
        fs: String,
        requested: u64,
    },
    #[error("--layout keep: partition {number} ends at byte {end}, past the target's usable end {usable_end}")]
    KeepDoesNotFit {
        number: u32,
        end: u64,
        usable_end: u64,
    },
    #[error(
        "--layout keep: partition {number} needs to end at byte {end} (its filesystem is re-created \
         with the target's sectors and grows to their minimum) but partition {next} starts at byte \
         {next_start}; use the proportional layout"
    )]
    KeepOverlap {
        number: u32,
        end: u64,
        next: u32,
        next_start: u64,
    },
    #[error("--size names partition {number}, which the image does not have")]
    NoSuchPartition { number: u32 },
    #[error("more than one partition asks for the rest of the disk (max)")]
    TwoMax,
    #[error("sector size {sector} is not supported")]
    BadSectorSize { sector: u32 },
    #[error(
        "partition {number}: {fs} uses {fs_unit}-byte units and cannot live on a disk with {target_sector}-byte sectors"
    )]
    SectorTooLarge {
        number: u32,
        fs: String,
        fs_unit: u32,
        target_sector: u32,
    },
    #[error("partition {number} would end past the MBR limit of {} on this disk; use GPT", human_bytes(*limit))]
    MbrLimit { number: u32, limit: u64 },
    #[error("--layout keep: partition {number} starts at byte {start}, not a multiple of the target's {sector}-byte sectors")]
    Unaligned {
        number: u32,
        start: u64,
        sector: u32,
    },
    #[error("the target disk ({target} bytes) is too small for a partition table")]
    NoRoom { target: u64 },
}
