//! Writing a whole layout onto a device of any size, and moving a GPT backup to a
//! grown device's real end.
//!
//! A restore lands on a disk that is rarely the original's size, so the GPT is not
//! copied but rebuilt: LastUsableLBA, AlternateLBA and the backup position follow
//! the target's real sector count, both CRCs are recomputed, and the protective MBR
//! is sized to match. Identifiers (disk GUID, partition GUIDs, MBR signature) are
//! kept by default because fstab, GRUB and Windows BCD refer to them.

use super::gpt_entry::{GptEntry, ATTR_LEGACY_BIOS_BOOTABLE};
use super::gpt_header::{GptHeader, REVISION_1_0};
use super::mbr::{self, MbrEntry, MBR_SIZE};
use super::{check_sector_size, DiskLayout, PartType, Partition, TableError, TableKind};
use crate::device::BlockDevice;
use crate::units::Lba;
use uuid::Uuid;

#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// New disk GUID, partition GUIDs and MBR signature (for a clone that will sit
    /// in the same machine as its original).
    pub fresh_ids: bool,
}

const EMPTY: MbrEntry = MbrEntry {
    status: 0,
    ptype: 0,
    start: 0,
    sectors: 0,
};

fn layout_err(dev: &dyn BlockDevice, reason: String) -> TableError {
    TableError::Layout {
        device: dev.describe(),
        reason,
    }
}

fn write_lba(dev: &dyn BlockDevice, ss: u32, lba: u64, data: &[u8]) -> Result<(), TableError> {
    let off = Lba(lba)
        .to_bytes(ss)
        .ok_or_else(|| layout_err(dev, format!("LBA {lba} overflows")))?;
    dev.write_at(off.get(), data)?;
    Ok(())
}

/// Checks every partition ends by `limit` (inclusive) and starts at or after `first`.
fn check_fit(
    dev: &dyn BlockDevice,
    ss: u32,
    parts: &[Partition],
    first: u64,
    limit: u64,
) -> Result<(), TableError> {
    let sectors = dev.size() / u64::from(ss);
    let probe = DiskLayout {
        partitions: parts.to_vec(),
        ..DiskLayout::none(ss, dev.size())
    };
    if let Some((a, b)) = probe.overlaps().first() {
        return Err(layout_err(dev, format!("partitions {a} and {b} overlap")));
    }
    for p in parts {
        if p.start_lba > p.end_lba {
            return Err(layout_err(
                dev,
                format!("partition {} starts after it ends", p.number),
            ));
        }
        if p.start_lba.get() < first {
            return Err(layout_err(
                dev,
                format!(
                    "partition {} starts at LBA {}, before the first usable LBA {first}",
                    p.number, p.start_lba
                ),
            ));
        }
        if p.end_lba.get() > limit {
            let short = (p.end_lba.get() - limit).saturating_mul(u64::from(ss));
            return Err(TableError::DoesNotFit {
                device: dev.describe(),
                number: p.number,
                end_lba: p.end_lba.get(),
                limit,
                sectors,
                short_bytes: short,
            });
        }
    }
    Ok(())
}

/// Reads the first 512 bytes of LBA 0 so the boot code and signature survive.
fn current_mbr(dev: &dyn BlockDevice) -> Vec<u8> {
    dev.read_vec(0, MBR_SIZE)
        .unwrap_or_else(|_| vec![0; MBR_SIZE])
}

fn random_signature() -> u32 {
    let b = Uuid::new_v4().into_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) | 1
}

/// Writes `layout` as the device's partition table, replacing whatever was there
/// (boot code in LBA 0 is kept). Returns the layout as written, with the geometry
/// recomputed for this device and any fresh identifiers.
pub fn write_layout(
    dev: &dyn BlockDevice,
    layout: &DiskLayout,
    opts: &WriteOptions,
) -> Result<DiskLayout, TableError> {
    let ss = check_sector_size(dev)?;
    if layout.sector_size != ss {
        return Err(layout_err(
            dev,
            format!(
                "layout uses {}-byte sectors, device has {ss}-byte sectors",
                layout.sector_size
            ),
        ));
    }
    let mut out = layout.clone();
    out.disk_size = dev.size();
    out.warnings.clear();
    if opts.fresh_ids {
        out.disk_guid = out.disk_guid.map(|_| Uuid::new_v4());
        out.disk_signature = out.disk_signature.map(|_| random_signature());
        for p in &mut out.partitions {
            p.uuid = p.uuid.map(|_| Uuid::new_v4());
        }
    }
    match layout.kind {
        TableKind::Gpt => write_gpt(dev, ss, &mut out)?,
        TableKind::Mbr => write_mbr(dev, ss, &mut out)?,
        TableKind::None => {
            return Err(layout_err(
                dev,
                "layout has no partition table to write".into(),
            ))
        }
    }
    dev.flush()?;
    Ok(out)
}

fn write_gpt(dev: &dyn BlockDevice, ss: u32, l: &mut DiskLayout) -> Result<(), TableError> {
    let sectors = dev.size() / u64::from(ss);
    let geo = l.gpt.clone();
    let entry_size = geo.as_ref().map_or(128, |g| g.entry_size);
    // The UEFI spec wants at least 16 KiB of entry array.
    let min_entries = 16384 / entry_size.max(1);
    let num_entries = geo.as_ref().map_or(128, |g| g.num_entries).max(min_entries);
    if !(128..=super::gpt_header::MAX_ENTRY_SIZE).contains(&entry_size) || entry_size % 128 != 0 {
        return Err(layout_err(
            dev,
            format!("GPT entry size {entry_size} is invalid"),
        ));
    }
    if num_entries > super::gpt_header::MAX_ENTRIES {
        return Err(layout_err(
            dev,
            format!("{num_entries} GPT entries is too many"),
        ));
    }
    let array_bytes = u64::from(num_entries) * u64::from(entry_size);
    if array_bytes > super::gpt_header::MAX_ARRAY_BYTES {
        return Err(layout_err(
            dev,
            format!("GPT entry array of {array_bytes} bytes is too large"),
        ));
    }
    let array_sectors = array_bytes.div_ceil(u64::from(ss));
    // LBA 0 MBR, LBA 1 header, array, then at least one usable sector, then the
    // backup array and header.
    let min_sectors = 2 * array_sectors + 4;
    if sectors < min_sectors {
        return Err(TableError::TooSmallDevice {
            device: dev.describe(),
            size: dev.size(),
        });
    }
    let last = sectors - 1;
    let backup_array = last - array_sectors;
    let last_usable = backup_array - 1;
    let min_first = 2 + array_sectors;
    let first_usable = geo
        .as_ref()
        .map_or(min_first, |g| g.first_usable_lba.get())
        .max(min_first);
    check_fit(dev, ss, &l.partitions, first_usable, last_usable)?;

    let disk_guid = *l.disk_guid.get_or_insert_with(Uuid::new_v4);
    let mut array = vec![0u8; (array_sectors * u64::from(ss)) as usize];
    for p in &mut l.partitions {
        let PartType::Gpt(t) = p.ptype else {
            return Err(layout_err(
                dev,
                format!("partition {} has an MBR type in a GPT layout", p.number),
            ));
        };
        if p.number == 0 || p.number > num_entries {
            return Err(layout_err(
                dev,
                format!("partition number {} outside 1..={num_entries}", p.number),
            ));
        }
        let idx = (p.number - 1) as usize * entry_size as usize;
        let slot = array
            .get_mut(idx..idx + entry_size as usize)
            .ok_or_else(|| layout_err(dev, format!("partition {} slot", p.number)))?;
        if slot.iter().any(|&b| b != 0) {
            return Err(layout_err(
                dev,
                format!("two partitions numbered {}", p.number),
            ));
        }
        // On GPT "bootable" is the legacy-BIOS-bootable attribute; the returned
        // layout is normalised to what a read of the disk will give.
        if p.bootable {
            p.attributes |= ATTR_LEGACY_BIOS_BOOTABLE;
        }
        p.bootable = p.attributes & ATTR_LEGACY_BIOS_BOOTABLE != 0;
        let name = p.name.get_or_insert_with(String::new);
        let e = GptEntry {
            partition_type_guid: t,
            unique_partition_guid: *p.uuid.get_or_insert_with(Uuid::new_v4),
            starting_lba: p.start_lba.get(),
            ending_lba: p.end_lba.get(),
            attributes: p.attributes,
            name: name.clone(),
        };
        e.encode_into(slot);
    }
    let array_crc = crc32fast::hash(array.get(..array_bytes as usize).unwrap_or(&[]));
    let primary = GptHeader {
        revision: REVISION_1_0,
        header_size: 92,
        my_lba: 1,
        alternate_lba: last,
        first_usable_lba: first_usable,
        last_usable_lba: last_usable,
        disk_guid,
        partition_entry_lba: 2,
        num_partition_entries: num_entries,
        sizeof_partition_entry: entry_size,
        partition_entry_array_crc32: array_crc,
    };
    let backup = GptHeader {
        my_lba: last,
        alternate_lba: 1,
        partition_entry_lba: backup_array,
        ..primary.clone()
    };

    // Protective (or hybrid) MBR, keeping boot code and signature.
    let mut m = current_mbr(dev);
    if let Some(sig) = l.disk_signature {
        mbr::write_signature(&mut m, sig);
    }
    let (entries, bases) = if l.hybrid_mbr && !l.hybrid_entries.is_empty() {
        let mut e = [EMPTY; 4];
        let mut b = [0u64; 4];
        for (i, h) in l.hybrid_entries.iter().take(4).enumerate() {
            let end = u64::from(h.start) + u64::from(h.sectors);
            if end > sectors {
                return Err(layout_err(
                    dev,
                    format!(
                        "hybrid MBR entry {} ends at LBA {end}, past the device",
                        i + 1
                    ),
                ));
            }
            e[i] = *h;
            b[i] = u64::from(h.start);
        }
        (e, b)
    } else {
        let pmbr = MbrEntry {
            status: 0,
            ptype: mbr::TYPE_GPT_PROTECTIVE,
            start: 1,
            sectors: u32::try_from(sectors - 1).unwrap_or(u32::MAX),
        };
        ([pmbr, EMPTY, EMPTY, EMPTY], [1, 0, 0, 0])
    };
    mbr::write_entries(&mut m, &entries, &bases);
    dev.write_at(0, &m)?;

    write_lba(dev, ss, 2, &array)?;
    write_lba(dev, ss, 1, &primary.encode(ss))?;
    write_lba(dev, ss, backup_array, &array)?;
    write_lba(dev, ss, last, &backup.encode(ss))?;

    l.gpt = Some(super::GptGeometry {
        first_usable_lba: Lba(first_usable),
        last_usable_lba: Lba(last_usable),
        num_entries,
        entry_size,
        entries_lba: Lba(2),
        alternate_lba: Lba(last),
        from_backup: false,
    });
    Ok(())
}

/// Zeroes a stale GPT header at `lba` so no tool finds an old table there later.
fn wipe_gpt_header(dev: &dyn BlockDevice, ss: u32, lba: u64) -> Result<(), TableError> {
    let off = Lba(lba).to_bytes(ss).map(|o| o.get());
    if let Some(off) = off {
        if dev.check_range(off, u64::from(ss)).is_ok() {
            let s = dev.read_vec(off, 8)?;
            if s == super::gpt_header::SIGNATURE {
                dev.write_at(off, &vec![0u8; ss as usize])?;
            }
        }
    }
    Ok(())
}

fn write_mbr(dev: &dyn BlockDevice, ss: u32, l: &mut DiskLayout) -> Result<(), TableError> {
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

/// Rewrites a GPT so its backup sits at the device's real end (after a restore onto
/// a bigger disk), leaving partitions and identifiers as they are. The old backup
/// header, if elsewhere, is wiped. Returns the layout as now on disk.
pub fn relocate_gpt_backup(dev: &dyn BlockDevice) -> Result<DiskLayout, TableError> {
    let layout = super::read_layout(dev)?;
    if layout.kind != TableKind::Gpt {
        return Err(layout_err(
            dev,
            format!("not a GPT disk (table is {})", layout.kind.name()),
        ));
    }
    let old_alt = layout.gpt.as_ref().map(|g| g.alternate_lba.get());
    let ss = layout.sector_size;
    let written = write_layout(dev, &layout, &WriteOptions::default())?;
    let new_alt = written.gpt.as_ref().map(|g| g.alternate_lba.get());
    if let Some(old) = old_alt {
        if Some(old) != new_alt && old > 1 {
            wipe_gpt_header(dev, ss, old)?;
            dev.flush()?;
        }
    }
    Ok(written)
}
