//! Building and writing a GPT for a device's real size: primary header and array
//! at LBA 1 and 2, backup array and header at the end, protective (or hybrid) MBR.

use super::gpt_entry::{GptEntry, ATTR_LEGACY_BIOS_BOOTABLE};
use super::gpt_header::{GptHeader, REVISION_1_0};
use super::mbr::{self, MbrEntry};
use super::write::{check_fit, current_mbr, layout_err, write_lba, EMPTY};
use super::{DiskLayout, PartType, TableError};
use crate::device::BlockDevice;
use crate::units::Lba;
use uuid::Uuid;

pub(super) fn write_gpt(
    dev: &dyn BlockDevice,
    ss: u32,
    l: &mut DiskLayout,
) -> Result<(), TableError> {
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
pub(super) fn wipe_gpt_header(dev: &dyn BlockDevice, ss: u32, lba: u64) -> Result<(), TableError> {
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
