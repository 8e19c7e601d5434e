//! What can be wrong in a btrfs structure, naming the structure, the field and where.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not btrfs (no \"_BHRfS_M\" magic in the superblock at byte {at})")]
    NotBtrfs { at: u64 },
    #[error("btrfs superblock at byte {at}: {field} = {value}: {why}")]
    Superblock {
        at: u64,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("btrfs {what} at byte {at}: crc32c is {computed:#010x}, stored {found:#010x}")]
    Csum {
        what: &'static str,
        at: u64,
        found: u32,
        computed: u32,
    },
    #[error("btrfs sys_chunk_array at byte {offset}: {why}")]
    SysChunkArray { offset: usize, why: &'static str },
    #[error("btrfs CHUNK_ITEM of logical {logical}: {field} = {value}: {why}")]
    ChunkItem {
        logical: u64,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("btrfs tree block at logical {bytenr}: {field} = {value}: {why}")]
    Node {
        bytenr: u64,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("btrfs {item} in the leaf at logical {bytenr}, slot {slot}: {why}")]
    Item {
        item: &'static str,
        bytenr: u64,
        slot: usize,
        why: &'static str,
    },
}
