//! One GPT partition entry (UEFI spec 5.3.3): type GUID, unique GUID, first/last
//! LBA (inclusive), attributes and a 36-character UTF-16LE name.

use super::guid::{guid_at, guid_to_disk};
use crate::bytes::{le64, put};
use uuid::Uuid;

pub const NAME_OFFSET: usize = 56;
pub const NAME_UNITS: usize = 36;
/// Attribute bit 2: legacy BIOS bootable.
pub const ATTR_LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;

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
    pub fn parse(b: &[u8]) -> Result<Option<Self>, String> {
        let short = || "entry shorter than 128 bytes".to_string();
        let t = guid_at(b, 0).ok_or_else(short)?;
        if t.is_nil() {
            return Ok(None);
        }
        let mut units = Vec::with_capacity(NAME_UNITS);
        for i in 0..NAME_UNITS {
            let off = NAME_OFFSET + 2 * i;
            let u = b
                .get(off..off + 2)
                .map(|x| u16::from_le_bytes([x[0], x[1]]))
                .ok_or_else(short)?;
            if u == 0 {
                break;
            }
            units.push(u);
        }
        Ok(Some(GptEntry {
            partition_type_guid: t,
            unique_partition_guid: guid_at(b, 16).ok_or_else(short)?,
            starting_lba: le64(b, 32).ok_or_else(short)?,
            ending_lba: le64(b, 40).ok_or_else(short)?,
            attributes: le64(b, 48).ok_or_else(short)?,
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
