//! What can be wrong in an exFAT structure, naming the structure and the field.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not an exFAT volume (no \"EXFAT   \" FileSystemName at byte 3)")]
    NotExfat,
    #[error("exFAT main boot sector: {field} (byte {offset}) = {value}: {why}")]
    BootSector {
        field: &'static str,
        offset: usize,
        value: u64,
        why: &'static str,
    },
    #[error(
        "exFAT boot checksum sector ({region} boot region): word at byte {offset} is \
         {found:#010x}, the checksum of sectors 0-10 is {computed:#010x}"
    )]
    BootChecksum {
        region: &'static str,
        offset: usize,
        found: u32,
        computed: u32,
    },
    #[error("exFAT boot region: {got} bytes, need {need} (11 sectors and the checksum sector)")]
    BootRegionShort { got: usize, need: usize },
    #[error("exFAT directory entry {kind} at byte {offset}: {field} = {value}: {why}")]
    DirEntry {
        kind: &'static str,
        offset: u64,
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    #[error("exFAT FAT entry of cluster {cluster} = {value:#010x}: {why}")]
    FatEntry {
        cluster: u32,
        value: u32,
        why: &'static str,
    },
    #[error("exFAT cluster chain from cluster {first}: {why} after {steps} clusters")]
    Chain {
        first: u32,
        steps: u64,
        why: &'static str,
    },
}
