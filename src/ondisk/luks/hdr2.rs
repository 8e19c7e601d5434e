//! The LUKS2 binary header (`struct luks2_hdr_disk` in cryptsetup's `luks2/luks2.h`):
//! 4096 big-endian bytes in front of the JSON area, written twice (primary at byte 0,
//! secondary at `hdr_size`). It gives the JSON area's size and the header's UUID and
//! label; the data segment's place is in the JSON.
//!
//! The SHA-256 in `csum` is not verified here: the crate has no SHA-256, and every
//! path that trusts the header for more than an image's offsets goes through
//! `cryptsetup open`, which verifies it.

use super::error::LuksError;
use super::text::{ascii_field, uuid_field};
use crate::bytes::{be16, be64};

/// `LUKS2_HDR_BIN_LEN`.
pub const BIN_LEN: usize = 4096;
/// `LUKS2_HDR_16K_LEN` .. `LUKS2_HDR_MAX_LEN`: the sizes cryptsetup allows for
/// binary header + JSON area, each a power of two.
pub const MIN_HDR_SIZE: u64 = 16 << 10;
pub const MAX_HDR_SIZE: u64 = 4 << 20;
const MAGIC_1ST: &[u8] = b"LUKS\xba\xbe";
const MAGIC_2ND: &[u8] = b"SKUL\xba\xbe";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BinHeader {
    /// Binary header plus JSON area, in bytes.
    pub hdr_size: u64,
    pub seqid: u64,
    pub label: Option<String>,
    pub checksum_alg: String,
    pub uuid: String,
    /// Where this copy says it is (0 for the primary).
    pub hdr_offset: u64,
}

impl BinHeader {
    /// Decodes the copy read at byte `offset` of the device (0 for the primary).
    pub fn decode(b: &[u8], offset: u64) -> Result<BinHeader, LuksError> {
        let bad = |field: &'static str, what: String| LuksError::BinHeader {
            offset,
            field,
            what,
        };
        if b.len() < BIN_LEN {
            return Err(bad("hdr", format!("shorter than {BIN_LEN} bytes")));
        }
        let magic = if offset == 0 { MAGIC_1ST } else { MAGIC_2ND };
        if b.get(..6) != Some(magic) {
            return Err(bad("magic", format!("not {magic:02x?}")));
        }
        let short = || bad("hdr", "short".into());
        let version = be16(b, 6).ok_or_else(short)?;
        if version != 2 {
            return Err(bad("version", format!("{version}, not 2")));
        }
        let hdr_size = be64(b, 8).ok_or_else(short)?;
        if !(MIN_HDR_SIZE..=MAX_HDR_SIZE).contains(&hdr_size) || !hdr_size.is_power_of_two() {
            return Err(bad(
                "hdr_size",
                format!("{hdr_size} is not a power of two from 16 KiB to 4 MiB"),
            ));
        }
        let seqid = be64(b, 16).ok_or_else(short)?;
        let label = b
            .get(24..72)
            .and_then(ascii_field)
            .ok_or_else(|| bad("label", "not ASCII text".into()))?;
        let checksum_alg = b
            .get(72..104)
            .and_then(ascii_field)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("checksum_alg", "empty or not ASCII text".into()))?;
        let uuid = b
            .get(168..208)
            .and_then(uuid_field)
            .ok_or_else(|| bad("uuid", "not a hyphenated hex UUID".into()))?;
        let hdr_offset = be64(b, 256).ok_or_else(short)?;
        if hdr_offset != offset {
            return Err(bad(
                "hdr_offset",
                format!("{hdr_offset}, but this copy is at byte {offset}"),
            ));
        }
        Ok(BinHeader {
            hdr_size,
            seqid,
            label: (!label.is_empty()).then_some(label),
            checksum_alg,
            uuid,
            hdr_offset,
        })
    }

    /// Bytes of JSON text after the binary header.
    pub fn json_size(&self) -> u64 {
        self.hdr_size.saturating_sub(BIN_LEN as u64)
    }
}
