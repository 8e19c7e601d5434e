//! Sizing and placing partitions in the target's usable area.
//!
//! Sizes are decided first (water-filling: every scaling partition gets its share
//! of the space left by the fixed ones, but never less than its filesystem's
//! minimum and never more than it can grow), then partitions are placed in source
//! order. The first partition keeps its start, so the post-MBR gap that may hold
//! GRUB's core.img keeps its size, and later starts stay where they were whenever
//! the partitions before them kept their size (Windows' BCD on MBR disks records
//! partition offsets).

use super::align::{down, up};
use super::{
    Action, LayoutMode, PartIn, PartOut, PlanError, PlanInput, Role, SizeRequest, TableFlavour,
};

/// `[start, end)` in bytes where partitions may live.
#[derive(Clone, Copy, Debug)]
pub struct Area {
    pub start: u64,
    pub end: u64,
}

pub fn usable_area(size: u64, sector: u32, table: TableFlavour) -> Result<Area, PlanError> {
    let ss = u64::from(sector);
    let sectors = size / ss;
    let (first, last_excl) = match table {
        TableFlavour::Mbr => (1, sectors),
        TableFlavour::Gpt { entries_bytes } => {
            let array = entries_bytes.div_ceil(ss);
            (2 + array, sectors.saturating_sub(1 + array))
        }
    };
    if last_excl <= first {
        return Err(PlanError::NoRoom { target: size });
    }
    Ok(Area {
        start: first * ss,
        end: last_excl * ss,
    })
}

/// The gap kept in front of a partition: room for its EBR when it is a logical one.
fn gap_before(p: &PartIn, alignment: u64) -> u64 {
    if p.logical {
        alignment
    } else {
        0
    }
}

fn first_start(parts: &[&PartIn], area: Area, alignment: u64) -> Option<u64> {
    let aligned = up(area.start, alignment)?;
    Some(match parts.first() {
        Some(p) => aligned.max(p.start).max(area.start),
        None => aligned,
    })
}

/// Sizes (in `parts` order) for proportional mode with explicit requests applied.
pub fn proportional_sizes(
    parts: &[&PartIn],
    input: &PlanInput,
    area: Area,
    alignment: u64,
) -> Result<Vec<u64>, PlanError> {
    let ts = u64::from(input.target_sector);
    let overflow = PlanError::NoRoom {
        target: input.target_size,
    };
    let start = first_start(parts, area, alignment).ok_or(overflow.clone())?;
    let mut sizes: Vec<Option<u64>> = vec![None; parts.len()];
    let mut used = start - area.start;
    let maxes = input
        .sizes
        .values()
        .filter(|r| **r == SizeRequest::Max)
        .count();
    if maxes > 1 {
        return Err(PlanError::TwoMax);
    }
    let mut needed_min = used;
    for (i, p) in parts.iter().enumerate() {
        let gap = gap_before(p, alignment);
        used += gap;
        needed_min += gap;
        let min = min_size(p, i + 1 == parts.len(), alignment).ok_or(overflow.clone())?;
        let fixed = match input.sizes.get(&p.number) {
            Some(SizeRequest::Bytes(b)) => {
                let b = up(*b, ts).ok_or(overflow.clone())?;
                if b < p.min_size {
                    return Err(PlanError::BelowMinimum {
                        number: p.number,
                        requested: b,
                        minimum: p.min_size,
                    });
                }
                if b > p.size && !p.can_grow {
                    return Err(PlanError::CannotGrow {
                        number: p.number,
                        fs: p.fs.clone(),
                        requested: b,
                    });
                }
                Some(b)
            }
            Some(SizeRequest::Max) => None,
            // With one partition asking for the rest, the other data partitions keep their size.
            None if maxes == 1 || !p.role.scales() => Some(up(p.size, ts).ok_or(overflow.clone())?),
            None => None,
        };
        if let Some(f) = fixed {
            let f = if p.role.scales() {
                f.max(p.min_size)
            } else {
                f
            };
            sizes[i] = Some(f);
            let room = room_taken(f, i + 1 == parts.len(), alignment).ok_or(overflow.clone())?;
            used += room;
            needed_min += room;
        } else {
            needed_min += min;
        }
    }
    let available = area.end - area.start;
    if needed_min > available {
        return Err(PlanError::TooSmall {
            needed: needed_min,
            available,
            missing: needed_min - available,
        });
    }
    let budget = available - used;
    if !grow_in_place(parts, &mut sizes, budget, alignment) {
        water_fill(parts, &mut sizes, budget, alignment);
    }
    Ok(sizes.into_iter().map(|s| s.unwrap_or(0)).collect())
}

/// The room a partition of `size` bytes takes from the usable area: up to the next
/// aligned start, except for the last one, which nothing follows. Rounding the last
/// one too would refuse a raw partition that fills the disk to its last usable LBA
/// on a target that holds it exactly.
fn room_taken(size: u64, last: bool, alignment: u64) -> Option<u64> {
    if last {
        Some(size)
    } else {
        up(size, alignment)
    }
}

/// The least a scaling partition may get: its filesystem's minimum, aligned unless
/// it is the last partition, and never nothing.
fn min_size(p: &PartIn, last: bool, alignment: u64) -> Option<u64> {
    let m = room_taken(p.min_size, last, alignment)?;
    Some(if m == 0 { alignment } else { m })
}

/// Growth (the budget holds every unsized partition at its source size): each keeps
/// its source size and the growable ones share what is left over in proportion to
/// their source size. Sharing the whole budget instead (as `water_fill` does) rounds
/// every share down to the alignment, which turns a partition of an unaligned size
/// into a shrink on a disk barely larger than the source's: alignment must never
/// cost the user a resize by itself. Returns false, changing nothing, when the budget
/// cannot hold the source sizes (a shrink).
fn grow_in_place(
    parts: &[&PartIn],
    sizes: &mut [Option<u64>],
    budget: u64,
    alignment: u64,
) -> bool {
    let open: Vec<usize> = (0..parts.len()).filter(|i| sizes[*i].is_none()).collect();
    let mut base = 0u64;
    for &i in &open {
        let Some(room) = room_taken(parts[i].size, i + 1 == parts.len(), alignment) else {
            return false;
        };
        base = base.saturating_add(room);
    }
    if open.is_empty() || base > budget {
        return false;
    }
    let extra = u128::from(budget - base);
    let weight: u128 = open
        .iter()
        .filter(|i| parts[**i].can_grow)
        .map(|i| u128::from(parts[*i].size.max(1)))
        .sum();
    for &i in &open {
        let p = parts[i];
        let more = if p.can_grow && weight > 0 {
            let s = extra * u128::from(p.size.max(1)) / weight;
            down(u64::try_from(s).unwrap_or(u64::MAX), alignment)
        } else {
            0
        };
        sizes[i] = Some(p.size.saturating_add(more));
    }
    true
}

/// Shares `budget` among the unsized partitions in proportion to their source size,
/// pinning those whose share falls below their minimum or above what they can grow to.
fn water_fill(parts: &[&PartIn], sizes: &mut [Option<u64>], mut budget: u64, alignment: u64) {
    loop {
        let open: Vec<usize> = (0..parts.len()).filter(|i| sizes[*i].is_none()).collect();
        if open.is_empty() {
            return;
        }
        let weight: u128 = open.iter().map(|i| u128::from(parts[*i].size.max(1))).sum();
        let round_budget = u128::from(budget);
        let share = |i: usize| -> u64 {
            let s = round_budget * u128::from(parts[i].size.max(1)) / weight;
            down(u64::try_from(s).unwrap_or(u64::MAX), alignment)
        };
        let mut pinned = false;
        let mut spent = 0u64;
        for &i in &open {
            let p = parts[i];
            let min = min_size(p, i + 1 == parts.len(), alignment).unwrap_or(u64::MAX);
            let s = share(i);
            let pin = if s < min {
                Some(min)
            } else if !p.can_grow && s > p.size {
                Some(p.size)
            } else {
                None
            };
            if let Some(v) = pin {
                sizes[i] = Some(v);
                spent = spent.saturating_add(up(v, alignment).unwrap_or(u64::MAX));
                pinned = true;
            }
        }
        budget = budget.saturating_sub(spent);
        if !pinned {
            for &i in &open {
                sizes[i] = Some(share(i));
            }
            return;
        }
    }
}

/// Whether the last partition may take the area's tail: a growable data partition
/// whose size was not given in bytes.
fn takes_the_end(p: &PartIn, input: &PlanInput) -> bool {
    p.role.scales()
        && p.can_grow
        && !matches!(input.sizes.get(&p.number), Some(SizeRequest::Bytes(_)))
}

/// Places partitions in source order and decides each one's action.
pub fn place(
    parts: &[&PartIn],
    sizes: &[u64],
    mode: LayoutMode,
    input: &PlanInput,
    area: Area,
    alignment: u64,
) -> Result<Vec<PartOut>, PlanError> {
    let ts = u64::from(input.target_sector);
    let overflow = PlanError::NoRoom {
        target: input.target_size,
    };
    let mut out = Vec::with_capacity(parts.len());
    let mut cursor = first_start(parts, area, alignment).ok_or(overflow.clone())?;
    let mut previous: Option<&PartIn> = None;
    for (i, (p, &size)) in parts.iter().zip(sizes).enumerate() {
        let start = if mode == LayoutMode::Keep {
            if p.start % ts != 0 {
                return Err(PlanError::Unaligned {
                    number: p.number,
                    start: p.start,
                    sector: input.target_sector,
                });
            }
            // Source partitions do not overlap; one that had to grow (a small ESP
            // re-created as FAT32) can run into the next.
            if let Some(prev) = previous.filter(|_| p.start < cursor) {
                return Err(PlanError::KeepOverlap {
                    number: prev.number,
                    end: cursor,
                    next: p.number,
                    next_start: p.start,
                });
            }
            p.start
        } else {
            up(cursor + gap_before(p, alignment), alignment).ok_or(overflow.clone())?
        };
        let mut size = size;
        if mode == LayoutMode::Proportional && i + 1 == parts.len() && takes_the_end(p, input) {
            // What alignment left over at the end goes to the last partition, so a
            // disk filled to its last usable LBA stays filled (and a same-size or
            // larger target never shrinks it).
            size = size.max(area.end.saturating_sub(start));
        }
        let end = start.checked_add(size).ok_or(overflow.clone())?;
        if end > area.end || start < area.start {
            return Err(match mode {
                LayoutMode::Keep => PlanError::KeepDoesNotFit {
                    number: p.number,
                    end,
                    usable_end: area.end,
                },
                LayoutMode::Proportional => PlanError::TooSmall {
                    needed: end - area.start,
                    available: area.end - area.start,
                    missing: end.saturating_sub(area.end),
                },
            });
        }
        cursor = end;
        previous = Some(p);
        let action = match size.cmp(&p.size) {
            std::cmp::Ordering::Greater if p.role != Role::Extended => Action::Grow,
            std::cmp::Ordering::Less => Action::Shrink,
            _ => Action::Copy,
        };
        out.push(PartOut {
            number: p.number,
            fs: p.fs.clone(),
            role: p.role,
            used_bytes: p.used_bytes,
            old_start: p.start,
            old_size: p.size,
            new_start: start,
            new_size: size,
            action,
        });
    }
    Ok(out)
}
