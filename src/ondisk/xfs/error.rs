//! Why XFS bytes could not be decoded: each error names the structure, the allocation
//! group and the block (or field) so a raw fallback can be explained to a person.

use thiserror::Error;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum XfsDecodeError {
    #[error("XFS {structure}: {len} bytes, shorter than the {need} it needs")]
    Short {
        structure: &'static str,
        len: usize,
        need: usize,
    },
    #[error("not XFS: sb_magicnum is {value:#010x}, expected 0x58465342 (\"XFSB\")")]
    SuperblockMagic { value: u32 },
    #[error("XFS superblock field {field} = {value}: {why}")]
    Superblock {
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("XFS superblock: {what}")]
    Unsupported { what: String },
    #[error("XFS superblock CRC {stored:#010x}, computed {computed:#010x}")]
    SuperblockCrc { stored: u32, computed: u32 },
    #[error("XFS AG {ag}: AGF magic {value:#010x}, expected 0x58414746 (\"XAGF\")")]
    AgfMagic { ag: u32, value: u32 },
    #[error("XFS AG {ag}: AGF CRC {stored:#010x}, computed {computed:#010x}")]
    AgfCrc { ag: u32, stored: u32, computed: u32 },
    #[error("XFS AG {ag}: AGF field {field} = {value}: {why}")]
    Agf {
        ag: u32,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("XFS AG {ag}: AGFL field {field} = {value}: {why}")]
    Agfl {
        ag: u32,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("XFS AG {ag}: AGFL CRC {stored:#010x}, computed {computed:#010x}")]
    AgflCrc { ag: u32, stored: u32, computed: u32 },
    #[error(
        "XFS AG {ag}, free-space B+tree block {agbno}: magic {value:#010x}, expected {want:#010x}"
    )]
    BtreeMagic {
        ag: u32,
        agbno: u32,
        value: u32,
        want: u32,
    },
    #[error("XFS AG {ag}, free-space B+tree block {agbno}: CRC {stored:#010x}, computed {computed:#010x}")]
    BtreeCrc {
        ag: u32,
        agbno: u32,
        stored: u32,
        computed: u32,
    },
    #[error("XFS AG {ag}, free-space B+tree block {agbno}: {field} = {value}: {why}")]
    Btree {
        ag: u32,
        agbno: u32,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
}
