//! Alignment: 1 MiB, unless the source used a smaller grid on purpose (old DOS
//! layouts on 63-sector tracks), in which case the source's grid is kept so the
//! layout looks like what the system was installed with.

use super::{PartIn, MIB};

/// The alignment for the target, in bytes: always a multiple of the target sector.
pub fn source_alignment(parts: &[PartIn], target_sector: u32) -> u64 {
    let ts = u64::from(target_sector);
    if parts.iter().all(|p| p.start % MIB == 0) {
        return MIB.max(ts);
    }
    // The source used another grid: use the largest power of two that divides every
    // start, but never less than the target's sector.
    let mut a = MIB;
    while a > ts && parts.iter().any(|p| p.start % a != 0) {
        a /= 2;
    }
    a.max(ts)
}

pub fn up(n: u64, a: u64) -> Option<u64> {
    n.checked_add(a - 1).map(|v| v / a * a)
}

pub fn down(n: u64, a: u64) -> u64 {
    n / a * a
}
