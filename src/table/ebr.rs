//! MBR partitions, including the logical partitions of the extended container.
//!
//! Logicals live in a linked list of EBRs: in each, entry 1 is the logical partition
//! relative to that EBR, entry 2 points to the next EBR relative to the start of the
//! extended partition. A corrupt or malicious chain can loop or run forever, so the
//! walk remembers every EBR it visited, keeps each inside the container and stops at
//! `MAX_LOGICALS`.

use super::mbr::{self, MbrEntry, MbrSector};
use super::{DiskLayout, PartType, Partition, TableError, TableKind};
use crate::device::BlockDevice;
use crate::units::Lba;
use std::collections::HashSet;

/// More logical partitions than Linux will ever show (it stops well below this).
pub const MAX_LOGICALS: usize = 256;

fn out_of_range(
    dev: &dyn BlockDevice,
    what: String,
    lba: u64,
    end: u64,
    sectors: u64,
) -> TableError {
    TableError::Invalid {
        device: dev.describe(),
        what,
        lba,
        reason: format!(
            "ends at LBA {end}, past the device's last LBA {}",
            sectors.saturating_sub(1)
        ),
    }
}

fn make_partition(
    number: u32,
    start: u64,
    e: &MbrEntry,
    ss: u32,
    logical: bool,
    ebr_lba: Option<u64>,
) -> Option<Partition> {
    let sectors = u64::from(e.sectors);
    let end = start.checked_add(sectors)?.checked_sub(1)?;
    Some(Partition {
        number,
        start_lba: Lba(start),
        end_lba: Lba(end),
        size_bytes: sectors.checked_mul(u64::from(ss))?,
        ptype: PartType::Mbr(e.ptype),
        uuid: None,
        name: None,
        bootable: e.bootable(),
        attributes: 0,
        logical,
        ebr_lba: ebr_lba.map(Lba),
    })
}

/// Fills `layout` from a parsed MBR sector, walking the EBR chain if there is an
/// extended partition.
pub fn read_mbr_layout(
    dev: &dyn BlockDevice,
    ss: u32,
    m: &MbrSector,
    mut layout: DiskLayout,
) -> Result<DiskLayout, TableError> {
    let sectors = dev.size() / u64::from(ss);
    layout.kind = TableKind::Mbr;
    layout.disk_signature = Some(m.disk_signature);
    let mut extended: Option<(u64, u64)> = None;
    for (i, e) in m.entries.iter().enumerate() {
        if e.is_empty() {
            continue;
        }
        let number = i as u32 + 1;
        let start = u64::from(e.start);
        let p = make_partition(number, start, e, ss, false, None).ok_or_else(|| {
            TableError::Invalid {
                device: dev.describe(),
                what: format!("MBR entry {number}"),
                lba: 0,
                reason: format!("start {start} size {} overflows", e.sectors),
            }
        })?;
        if start == 0 {
            return Err(TableError::Invalid {
                device: dev.describe(),
                what: format!("MBR entry {number}"),
                lba: 0,
                reason: "starts at LBA 0 (over the MBR itself)".into(),
            });
        }
        if p.end_lba.get() >= sectors {
            return Err(out_of_range(
                dev,
                format!("MBR entry {number}"),
                0,
                p.end_lba.get(),
                sectors,
            ));
        }
        if mbr::is_extended(e.ptype) {
            if extended.is_some() {
                return Err(TableError::Invalid {
                    device: dev.describe(),
                    what: format!("MBR entry {number}"),
                    lba: 0,
                    reason: "a second extended partition".into(),
                });
            }
            extended = Some((start, p.end_lba.get()));
        }
        layout.partitions.push(p);
    }
    if let Some((ext_start, ext_end)) = extended {
        let logicals = read_logicals(dev, ss, ext_start, ext_end)?;
        layout.partitions.extend(logicals);
    }
    Ok(layout)
}

/// Walks the EBR chain of the extended partition `[ext_start, ext_end]`.
pub fn read_logicals(
    dev: &dyn BlockDevice,
    ss: u32,
    ext_start: u64,
    ext_end: u64,
) -> Result<Vec<Partition>, TableError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut ebr_lba = ext_start;
    let err = |lba: u64, reason: String| TableError::EbrChain {
        device: dev.describe(),
        lba,
        reason,
    };
    loop {
        if !seen.insert(ebr_lba) {
            return Err(err(
                ebr_lba,
                "the chain loops back to an EBR already read".into(),
            ));
        }
        if seen.len() > MAX_LOGICALS {
            return Err(err(ebr_lba, format!("more than {MAX_LOGICALS} EBRs")));
        }
        if ebr_lba < ext_start || ebr_lba > ext_end {
            return Err(err(
                ebr_lba,
                format!("EBR outside the extended partition {ext_start}..={ext_end}"),
            ));
        }
        let off = Lba(ebr_lba)
            .to_bytes(ss)
            .ok_or_else(|| err(ebr_lba, "offset overflows".into()))?;
        let sector = dev.read_vec(off.get(), mbr::MBR_SIZE)?;
        let e = MbrSector::parse(&sector).ok_or_else(|| err(ebr_lba, "short read".into()))?;
        if !e.has_boot_signature {
            // The first EBR of an empty extended partition may be blank.
            if ebr_lba == ext_start && out.is_empty() && sector.iter().all(|&b| b == 0) {
                return Ok(out);
            }
            return Err(err(ebr_lba, "no 0x55AA signature".into()));
        }
        let [first, next, ..] = e.entries;
        if !first.is_empty() {
            let start = ebr_lba
                .checked_add(u64::from(first.start))
                .ok_or_else(|| err(ebr_lba, "logical start overflows".into()))?;
            let number = u32::try_from(out.len() + 5).unwrap_or(u32::MAX);
            let p = make_partition(number, start, &first, ss, true, Some(ebr_lba))
                .ok_or_else(|| err(ebr_lba, format!("logical {number} size overflows")))?;
            if first.start == 0 || p.end_lba.get() > ext_end {
                return Err(err(
                    ebr_lba,
                    format!(
                        "logical {number} ({}..={}) is not inside the extended partition {ext_start}..={ext_end}",
                        p.start_lba, p.end_lba
                    ),
                ));
            }
            out.push(p);
        }
        if next.is_empty() {
            return Ok(out);
        }
        if !mbr::is_extended(next.ptype) {
            return Err(err(
                ebr_lba,
                format!(
                    "link entry has type 0x{:02x}, not an extended type",
                    next.ptype
                ),
            ));
        }
        ebr_lba = ext_start
            .checked_add(u64::from(next.start))
            .ok_or_else(|| err(ebr_lba, "next EBR offset overflows".into()))?;
    }
}
