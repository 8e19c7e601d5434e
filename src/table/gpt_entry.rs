//! One GPT partition entry (UEFI spec 5.3.3): type GUID, unique GUID, first/last
//! LBA (inclusive), attributes and a 36-character UTF-16LE name.

use super::guid::{guid_at, guid_to_disk};
use crate::bytes::{le16, le64, put};
use thiserror::Error;
use uuid::Uuid;

pub const NAME_OFFSET: usize = 56;
pub const NAME_UNITS: usize = 36;
/// Attribute bit 2: legacy BIOS bootable.
pub const ATTR_LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;

/// Why a used entry cannot be taken; entries are numbered from 1, as tools show them.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum GptEntryError {
    #[error("entry shorter than 128 bytes")]
    Short,
    #[error("StartingLBA {start} > EndingLBA {end}")]
    StartAfterEnd { start: u64, end: u64 },
    #[error("EndingLBA {end} is past the device's last LBA {last_lba}")]
    PastEnd { end: u64, last_lba: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GptEntry {
    pub partition_type_guid: Uuid,
    pub unique_partition_guid: Uuid,
    pub starting_lba: u64,
    pub ending_lba: u64,
    pub attributes: u64,
    pub name: String,
}

impl GptEntry {
    /// Parses one entry; `Ok(None)` for an unused entry (zero type GUID).
    pub fn parse(b: &[u8]) -> Result<Option<Self>, GptEntryError> {
        let short = GptEntryError::Short;
        let t = guid_at(b, 0).ok_or(short.clone())?;
        if t.is_nil() {
            return Ok(None);
        }
        let mut units = Vec::with_capacity(NAME_UNITS);
        for i in 0..NAME_UNITS {
            let off = NAME_OFFSET + 2 * i;
            let u = le16(b, off).ok_or(short.clone())?;
            if u == 0 {
                break;
            }
            units.push(u);
        }
        Ok(Some(GptEntry {
            partition_type_guid: t,
            unique_partition_guid: guid_at(b, 16).ok_or(short.clone())?,
            starting_lba: le64(b, 32).ok_or(short.clone())?,
            ending_lba: le64(b, 40).ok_or(short.clone())?,
            attributes: le64(b, 48).ok_or(short)?,
            name: String::from_utf16_lossy(&units),
        }))
    }

    /// Writes this entry into `b` (an entry slot of at least 128 bytes). Names longer
    /// than 36 UTF-16 units are cut, as every tool does.
    pub fn encode_into(&self, b: &mut [u8]) {
        put(b, 0, &guid_to_disk(&self.partition_type_guid));
        put(b, 16, &guid_to_disk(&self.unique_partition_guid));
        put(b, 32, &self.starting_lba.to_le_bytes());
        put(b, 40, &self.ending_lba.to_le_bytes());
        put(b, 48, &self.attributes.to_le_bytes());
        for (i, u) in self.name.encode_utf16().take(NAME_UNITS).enumerate() {
            put(b, NAME_OFFSET + 2 * i, &u.to_le_bytes());
        }
    }
}
