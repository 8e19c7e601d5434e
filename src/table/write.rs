//! Writing a whole layout onto a device of any size, and moving a GPT backup to a
//! grown device's real end.
//!
//! A restore lands on a disk that is rarely the original's size, so the GPT is not
//! copied but rebuilt: LastUsableLBA, AlternateLBA and the backup position follow
//! the target's real sector count, both CRCs are recomputed, and the protective MBR
//! is sized to match. Identifiers (disk GUID, partition GUIDs, MBR signature) are
//! kept by default because fstab, GRUB and Windows BCD refer to them.

use super::mbr::{MbrEntry, MBR_SIZE};
use super::write_gpt::{wipe_gpt_header, write_gpt};
use super::write_mbr::write_mbr;
use super::{check_sector_size, DiskLayout, Partition, TableError, TableKind};
use crate::device::BlockDevice;
use crate::units::Lba;
use uuid::Uuid;

#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// New disk GUID, partition GUIDs and MBR signature (for a clone that will sit
    /// in the same machine as its original).
    pub fresh_ids: bool,
}

pub(super) const EMPTY: MbrEntry = MbrEntry {
    status: 0,
    ptype: 0,
    start: 0,
    sectors: 0,
};

pub(super) fn layout_err(dev: &dyn BlockDevice, reason: String) -> TableError {
    TableError::Layout {
        device: dev.describe(),
        reason,
    }
}

pub(super) fn write_lba(
    dev: &dyn BlockDevice,
    ss: u32,
    lba: u64,
    data: &[u8],
) -> Result<(), TableError> {
    let off = Lba(lba)
        .to_bytes(ss)
        .ok_or_else(|| layout_err(dev, format!("LBA {lba} overflows")))?;
    dev.write_at(off.get(), data)?;
    Ok(())
}

/// Checks every partition ends by `limit` (inclusive) and starts at or after `first`.
pub(super) fn check_fit(
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
pub(super) fn current_mbr(dev: &dyn BlockDevice) -> Vec<u8> {
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
