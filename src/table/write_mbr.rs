//! Writing an MBR with primary partitions and the EBR chain of logical partitions.
//! EBR positions read from the source are reused so a restore puts them back where
//! they were; new ones go right before their logical partition.

use super::mbr::{self, MbrEntry, MBR_SIZE};
use super::write::{check_fit, current_mbr, layout_err, write_lba, EMPTY};
use super::write_gpt::wipe_gpt_header;
use super::{DiskLayout, PartType, Partition, TableError};
use crate::device::BlockDevice;
use crate::units::Lba;

pub(super) fn write_mbr(
    dev: &dyn BlockDevice,
    ss: u32,
    l: &mut DiskLayout,
) -> Result<(), TableError> {
    let sectors = dev.size() / u64::from(ss);
    if sectors < 2 {
        return Err(TableError::TooSmallDevice {
            device: dev.describe(),
            size: dev.size(),
        });
    }
    let limit = sectors.min(1 << 32) - 1;
    check_fit(dev, ss, &l.partitions, 1, limit)?;
    let to_u32 = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| layout_err(dev, format!("{what} {v} does not fit an MBR")))
    };
    let mut entries = [EMPTY; 4];
    let mut bases = [0u64; 4];
    let mut extended: Option<&Partition> = None;
    for p in l.partitions.iter().filter(|p| !p.logical) {
        let PartType::Mbr(t) = p.ptype else {
            return Err(layout_err(
                dev,
                format!("partition {} has a GPT type in an MBR layout", p.number),
            ));
        };
        let slot = p.number.checked_sub(1).filter(|&s| s < 4).ok_or_else(|| {
            layout_err(
                dev,
                format!("primary partition number {} outside 1..=4", p.number),
            )
        })? as usize;
        if !entries[slot].is_empty() {
            return Err(layout_err(
                dev,
                format!("two partitions numbered {}", p.number),
            ));
        }
        entries[slot] = MbrEntry {
            status: if p.bootable { 0x80 } else { 0 },
            ptype: t,
            start: to_u32(p.start_lba.get(), "start")?,
            sectors: to_u32(p.sectors(), "size")?,
        };
        bases[slot] = p.start_lba.get();
        if mbr::is_extended(t) {
            if extended.is_some() {
                return Err(layout_err(dev, "more than one extended partition".into()));
            }
            extended = Some(p);
        }
    }
    let mut logicals: Vec<&Partition> = l.partitions.iter().filter(|p| p.logical).collect();
    logicals.sort_by_key(|p| p.number);
    if !logicals.is_empty() && extended.is_none() {
        return Err(layout_err(
            dev,
            "logical partitions without an extended partition".into(),
        ));
    }

    // Logical numbers come from their place in the EBR chain, so a gap or a
    // different order could not be written faithfully.
    for (i, p) in logicals.iter().enumerate() {
        if p.number as usize != i + 5 || p.ptype.is_mbr_extended() {
            return Err(layout_err(
                dev,
                format!(
                    "logical partition {} must be numbered {} and not be an extended type",
                    p.number,
                    i + 5
                ),
            ));
        }
    }

    let mut m = current_mbr(dev);
    if let Some(sig) = l.disk_signature {
        mbr::write_signature(&mut m, sig);
    }
    mbr::write_entries(&mut m, &entries, &bases);

    // Plan the EBRs before writing anything.
    let mut ebr_of: Vec<(u32, u64)> = Vec::new();
    let mut ebrs: Vec<(u64, Vec<u8>)> = Vec::new();
    if let Some(ext) = extended {
        let (es, ee) = (ext.start_lba.get(), ext.end_lba.get());
        let mut positions = Vec::with_capacity(logicals.len());
        let mut prev_end = es;
        for (i, p) in logicals.iter().enumerate() {
            // The first EBR must sit at the container's start; later ones anywhere
            // between the previous logical and their own partition.
            let ebr = if i == 0 {
                es
            } else {
                p.ebr_lba
                    .map_or(p.start_lba.get().saturating_sub(1), |x| x.get())
            };
            let ok = (i == 0 || ebr > prev_end) && ebr < p.start_lba.get() && p.end_lba.get() <= ee;
            if !ok {
                return Err(layout_err(
                    dev,
                    format!(
                        "logical {} ({}..={}) with its EBR at LBA {ebr} does not fit after LBA {prev_end} inside the extended partition {es}..={ee}",
                        p.number, p.start_lba, p.end_lba
                    ),
                ));
            }
            positions.push(ebr);
            ebr_of.push((p.number, ebr));
            prev_end = p.end_lba.get();
        }
        if logicals.is_empty() {
            let mut s = vec![0u8; MBR_SIZE];
            mbr::write_entries(&mut s, &[EMPTY; 4], &[0; 4]);
            ebrs.push((es, s));
        }
        for (i, p) in logicals.iter().enumerate() {
            let ebr = positions[i];
            let PartType::Mbr(t) = p.ptype else {
                return Err(layout_err(
                    dev,
                    format!("logical {} has a GPT type", p.number),
                ));
            };
            let first = MbrEntry {
                status: if p.bootable { 0x80 } else { 0 },
                ptype: t,
                start: to_u32(p.start_lba.get() - ebr, "logical offset")?,
                sectors: to_u32(p.sectors(), "logical size")?,
            };
            let (next, next_base) = match (logicals.get(i + 1), positions.get(i + 1)) {
                (Some(n), Some(&nebr)) => (
                    MbrEntry {
                        status: 0,
                        ptype: 0x05,
                        start: to_u32(nebr - es, "EBR offset")?,
                        sectors: to_u32(n.end_lba.get() - nebr + 1, "EBR span")?,
                    },
                    nebr,
                ),
                _ => (EMPTY, 0),
            };
            // Keep whatever boot code an existing EBR sector holds.
            let off = Lba(ebr).to_bytes(ss).map(|o| o.get()).unwrap_or(0);
            let mut s = dev
                .read_vec(off, MBR_SIZE)
                .unwrap_or_else(|_| vec![0; MBR_SIZE]);
            mbr::write_signature(&mut s, 0);
            mbr::write_entries(
                &mut s,
                &[first, next, EMPTY, EMPTY],
                &[p.start_lba.get(), next_base, 0, 0],
            );
            ebrs.push((ebr, s));
        }
    }
    dev.write_at(0, &m)?;
    for (lba, s) in &ebrs {
        write_lba(dev, ss, *lba, s)?;
    }
    // Remove any GPT headers so the disk is unambiguously MBR.
    wipe_gpt_header(dev, ss, 1)?;
    wipe_gpt_header(dev, ss, sectors - 1)?;
    let placed: Vec<(u32, u64)> = ebr_of.clone();
    for p in &mut l.partitions {
        if let Some((_, e)) = placed.iter().find(|(n, _)| p.logical && *n == p.number) {
            p.ebr_lba = Some(Lba(*e));
        }
    }
    l.gpt = None;
    l.disk_guid = None;
    Ok(())
}
