//! The 92-byte GPT header (UEFI spec 5.3.2), found at LBA 1 and, as the backup, at
//! the last LBA. Parsing checks everything a later step relies on, so entry-array
//! reads can never be asked for absurd sizes or positions.

use super::guid::{guid_at, guid_to_disk};
use crate::bytes::{le32, le64, put};
use thiserror::Error;
use uuid::Uuid;

pub const SIGNATURE: &[u8; 8] = b"EFI PART";
pub const REVISION_1_0: u32 = 0x0001_0000;
pub const HEADER_SIZE: u32 = 92;
/// Far more entries than any tool creates (128 is the default, sgdisk allows some
/// thousands); the bound keeps a corrupt header from asking for a huge array.
pub const MAX_ENTRIES: u32 = 16384;
/// Entry sizes are 128 x 2^n; anything above this is garbage.
pub const MAX_ENTRY_SIZE: u32 = 4096;
/// The largest entry array we read (4 MiB).
pub const MAX_ARRAY_BYTES: u64 = 4 << 20;

/// Why a header sector is not a usable GPT header; the field as the UEFI spec names it.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum GptHeaderError {
    #[error("no \"EFI PART\" signature")]
    NoSignature,
    #[error("header too short for field {field}")]
    Short { field: &'static str },
    #[error("HeaderSize {value} outside {HEADER_SIZE}..={max}")]
    HeaderSize { value: u32, max: u32 },
    #[error("HeaderCRC32 mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}")]
    HeaderCrc { stored: u32, computed: u32 },
    #[error("MyLBA is {value}, expected {expected}")]
    MyLba { value: u64, expected: u64 },
    #[error("SizeOfPartitionEntry {value} is not 128 x 2^n (<= {MAX_ENTRY_SIZE})")]
    EntrySize { value: u32 },
    #[error("NumberOfPartitionEntries {value} outside 1..={MAX_ENTRIES}")]
    NumEntries { value: u32 },
    #[error("entry array of {bytes} bytes exceeds {MAX_ARRAY_BYTES}")]
    ArrayTooLarge { bytes: u64 },
    #[error("PartitionEntryLBA {lba} overflows")]
    EntryLbaOverflow { lba: u64 },
    #[error("entry array at LBA {start}..{end} is outside the device (0..{sectors})")]
    ArrayOutside { start: u64, end: u64, sectors: u64 },
    #[error("FirstUsableLBA {first} > LastUsableLBA {last}")]
    UsableOrder { first: u64, last: u64 },
    #[error("LastUsableLBA {last_usable} is past the device's last LBA {last_lba}")]
    LastUsablePastEnd { last_usable: u64, last_lba: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GptHeader {
    pub revision: u32,
    pub header_size: u32,
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable_lba: u64,
    pub last_usable_lba: u64,
    pub disk_guid: Uuid,
    pub partition_entry_lba: u64,
    pub num_partition_entries: u32,
    pub sizeof_partition_entry: u32,
    pub partition_entry_array_crc32: u32,
}

impl GptHeader {
    /// Bytes of the entry array (validated to fit `MAX_ARRAY_BYTES`).
    pub fn array_bytes(&self) -> u64 {
        u64::from(self.num_partition_entries) * u64::from(self.sizeof_partition_entry)
    }

    /// Sectors the entry array occupies.
    pub fn array_sectors(&self, ss: u32) -> u64 {
        self.array_bytes().div_ceil(u64::from(ss))
    }

    /// Parses and validates a header sector read from `lba` on a disk of `sectors`
    /// logical sectors. The error says which field was wrong and its value.
    pub fn parse(sector: &[u8], lba: u64, sectors: u64, ss: u32) -> Result<Self, GptHeaderError> {
        use GptHeaderError as E;
        let f = |field| E::Short { field };
        if sector.get(0..8) != Some(&SIGNATURE[..]) {
            return Err(E::NoSignature);
        }
        let header_size = le32(sector, 12).ok_or(f("HeaderSize"))?;
        if header_size < HEADER_SIZE || u64::from(header_size) > u64::from(ss) {
            return Err(E::HeaderSize {
                value: header_size,
                max: ss,
            });
        }
        let hs = header_size as usize;
        let stored = le32(sector, 16).ok_or(f("HeaderCRC32"))?;
        let mut copy = sector.get(..hs).ok_or(f("HeaderSize"))?.to_vec();
        put(&mut copy, 16, &[0; 4]);
        let computed = crc32fast::hash(&copy);
        if computed != stored {
            return Err(E::HeaderCrc { stored, computed });
        }
        let h = GptHeader {
            revision: le32(sector, 8).ok_or(f("Revision"))?,
            header_size,
            my_lba: le64(sector, 24).ok_or(f("MyLBA"))?,
            alternate_lba: le64(sector, 32).ok_or(f("AlternateLBA"))?,
            first_usable_lba: le64(sector, 40).ok_or(f("FirstUsableLBA"))?,
            last_usable_lba: le64(sector, 48).ok_or(f("LastUsableLBA"))?,
            disk_guid: guid_at(sector, 56).ok_or(f("DiskGUID"))?,
            partition_entry_lba: le64(sector, 72).ok_or(f("PartitionEntryLBA"))?,
            num_partition_entries: le32(sector, 80).ok_or(f("NumberOfPartitionEntries"))?,
            sizeof_partition_entry: le32(sector, 84).ok_or(f("SizeOfPartitionEntry"))?,
            partition_entry_array_crc32: le32(sector, 88).ok_or(f("PartitionEntryArrayCRC32"))?,
        };
        if h.my_lba != lba {
            return Err(E::MyLba {
                value: h.my_lba,
                expected: lba,
            });
        }
        let es = h.sizeof_partition_entry;
        if !(128..=MAX_ENTRY_SIZE).contains(&es) || es % 128 != 0 {
            return Err(E::EntrySize { value: es });
        }
        let n = h.num_partition_entries;
        if n == 0 || n > MAX_ENTRIES {
            return Err(E::NumEntries { value: n });
        }
        if h.array_bytes() > MAX_ARRAY_BYTES {
            return Err(E::ArrayTooLarge {
                bytes: h.array_bytes(),
            });
        }
        let start = h.partition_entry_lba;
        let end = start
            .checked_add(h.array_sectors(ss))
            .ok_or(E::EntryLbaOverflow { lba: start })?;
        if start < 2 || end > sectors {
            return Err(E::ArrayOutside {
                start,
                end,
                sectors,
            });
        }
        if h.first_usable_lba > h.last_usable_lba {
            return Err(E::UsableOrder {
                first: h.first_usable_lba,
                last: h.last_usable_lba,
            });
        }
        if h.last_usable_lba >= sectors {
            return Err(E::LastUsablePastEnd {
                last_usable: h.last_usable_lba,
                last_lba: sectors.saturating_sub(1),
            });
        }
        Ok(h)
    }

    /// The header sector (`ss` bytes, zero-padded) with its CRC computed.
    pub fn encode(&self, ss: u32) -> Vec<u8> {
        let mut s = vec![0u8; ss as usize];
        put(&mut s, 0, SIGNATURE);
        put(&mut s, 8, &self.revision.to_le_bytes());
        put(&mut s, 12, &HEADER_SIZE.to_le_bytes());
        put(&mut s, 24, &self.my_lba.to_le_bytes());
        put(&mut s, 32, &self.alternate_lba.to_le_bytes());
        put(&mut s, 40, &self.first_usable_lba.to_le_bytes());
        put(&mut s, 48, &self.last_usable_lba.to_le_bytes());
        put(&mut s, 56, &guid_to_disk(&self.disk_guid));
        put(&mut s, 72, &self.partition_entry_lba.to_le_bytes());
        put(&mut s, 80, &self.num_partition_entries.to_le_bytes());
        put(&mut s, 84, &self.sizeof_partition_entry.to_le_bytes());
        put(&mut s, 88, &self.partition_entry_array_crc32.to_le_bytes());
        let crc = crc32fast::hash(s.get(..HEADER_SIZE as usize).unwrap_or(&[]));
        put(&mut s, 16, &crc.to_le_bytes());
        s
    }
}
