//! Why a partclone image was refused: each error names the image file, the structure
//! or field, and the byte offset in the (decompressed) image stream, so a user can tell
//! a damaged download from a damaged disk.

use std::io;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PartcloneError {
    #[error("{file}: reading the {structure} at image byte {offset}: {source}")]
    Io {
        file: String,
        structure: String,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("{file}: truncated: the image ends inside the {structure} at image byte {offset}")]
    Truncated {
        file: String,
        structure: String,
        offset: u64,
    },
    #[error("{file}: not a partclone image: the magic at byte 0 is {found:?}, expected \"partclone-image\"")]
    BadMagic { file: String, found: String },
    #[error("{file}: partclone image format {version:?} (header byte 30) is not supported (only 0001 and 0002)")]
    UnsupportedVersion { file: String, version: String },
    #[error("{file}: header field {field} (byte {offset}) = {value}: {why}")]
    BadField {
        file: String,
        field: &'static str,
        offset: u64,
        value: u64,
        why: &'static str,
    },
    #[error(
        "{file}: header CRC32 (byte 106) is {stored:#010x} but bytes 0..106 give {computed:#010x}"
    )]
    HeaderCrc {
        file: String,
        stored: u32,
        computed: u32,
    },
    #[error("{file}: bitmap CRC32 (image byte {offset}) is {stored:#010x} but the bitmap gives {computed:#010x}")]
    BitmapCrc {
        file: String,
        offset: u64,
        stored: u32,
        computed: u32,
    },
    #[error(
        "{file}: bitmap byte for block {block} (image byte {offset}) is {value}, expected 0 or 1"
    )]
    BitmapByte {
        file: String,
        block: u64,
        offset: u64,
        value: u8,
    },
    #[error("{file}: the bitmap end marker \"BiTmAgIc\" is missing at image byte {offset}")]
    BitmapMagic { file: String, offset: u64 },
    #[error("{file}: header says {header} used blocks (byte {field_offset}) but the bitmap marks {bitmap}")]
    UsedCount {
        file: String,
        field_offset: u64,
        header: u64,
        bitmap: u64,
    },
    #[error("{file}: {mode} checksum mismatch at image byte {offset} (covering blocks {first_block}..={last_block}): stored {stored}, computed {computed}")]
    DataChecksum {
        file: String,
        mode: &'static str,
        offset: u64,
        first_block: u64,
        last_block: u64,
        stored: String,
        computed: String,
    },
}
