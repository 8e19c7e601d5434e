//! Why ext bytes could not be decoded: each error names the device, the structure and
//! the field with its byte offset, so a refusal can be explained to a person.

use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ExtDecodeError {
    #[error("{device}: the {structure} is {len} bytes, shorter than the {need} it needs")]
    Short {
        device: String,
        structure: &'static str,
        len: usize,
        need: usize,
    },
    #[error("{device}: the descriptor of group {group} is {len} bytes, shorter than the {need} it needs")]
    ShortDesc {
        device: String,
        group: u64,
        len: usize,
        need: usize,
    },
    #[error(
        "{device}: not ext2/3/4: s_magic (superblock byte 0x38) is {value:#06x}, expected 0xef53"
    )]
    BadMagic { device: String, value: u16 },
    #[error("{device}: superblock field {field} (byte {offset:#x}) = {value}: {why}")]
    BadField {
        device: String,
        field: &'static str,
        offset: usize,
        value: u64,
        why: &'static str,
    },
    #[error("{device}: an external ext journal device, not a filesystem")]
    JournalDev { device: String },
}
