//! The metadata area: its `mda_header` (one sector) and the ring buffer after it, in
//! which `raw_locns[0]` points at the committed VG metadata text. The text may wrap
//! from the end of the area back to just after the header.

use super::crc::calc_crc;
use super::error::LvmError;
use crate::bytes::{le32, le64};
use crate::device::BlockDevice;

const MDA_HEADER_SIZE: u64 = 512;
const FMTT_MAGIC: &[u8; 16] = b" LVM2 x[5A%r0N*>";
const FMTT_VERSION: u32 = 1;
/// `raw_locn.flags`: this copy is to be ignored (`pvchange --metadataignore`).
const RAW_LOCN_IGNORED: u32 = 1;
/// lvm2's metadata areas are 1 MiB by default and rarely above a few; a bigger text
/// than this is garbage, not a VG.
pub const MAX_METADATA: u64 = 64 << 20;

/// The decoded `mda_header` and its first `raw_locn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdaHeader {
    pub start: u64,
    pub size: u64,
    /// Offset (from `start`), size and checksum of the committed metadata, or `None`
    /// when the area holds none (an orphan PV) or is marked ignored.
    pub committed: Option<(u64, u64, u32)>,
}

impl MdaHeader {
    /// Decodes the header sector of the area at byte `offset` of `size` bytes.
    pub fn decode(offset: u64, size: u64, b: &[u8]) -> Result<MdaHeader, LvmError> {
        let bad = |what: String| LvmError::MdaHeader { offset, what };
        let short = || bad("shorter than a sector".into());
        let body = b.get(4..MDA_HEADER_SIZE as usize).ok_or_else(short)?;
        if b.get(4..20) != Some(FMTT_MAGIC.as_slice()) {
            return Err(bad("magic is not lvm2's \" LVM2 x[5A%r0N*>\"".into()));
        }
        let checksum = le32(b, 0).ok_or_else(short)?;
        let crc = calc_crc(body);
        if checksum != crc {
            return Err(bad(format!(
                "checksum_xl {checksum:#010x}, computed {crc:#010x}"
            )));
        }
        let version = le32(b, 20).ok_or_else(short)?;
        if version != FMTT_VERSION {
            return Err(bad(format!("version {version}, not 1")));
        }
        let start = le64(b, 24).ok_or_else(short)?;
        let area = le64(b, 32).ok_or_else(short)?;
        if start != offset || area != size {
            return Err(bad(format!(
                "says it starts at {start} and holds {area} bytes; the PV header says {offset} and {size}"
            )));
        }
        let r_off = le64(b, 40).ok_or_else(short)?;
        let r_size = le64(b, 48).ok_or_else(short)?;
        let r_sum = le32(b, 56).ok_or_else(short)?;
        let r_flags = le32(b, 60).ok_or_else(short)?;
        let committed =
            (r_off != 0 && r_flags & RAW_LOCN_IGNORED == 0).then_some((r_off, r_size, r_sum));
        if let Some((o, s, _)) = committed {
            if o < MDA_HEADER_SIZE
                || o >= size
                || s == 0
                || s > size - MDA_HEADER_SIZE
                || s > MAX_METADATA
            {
                return Err(bad(format!(
                    "raw_locns[0] = {s} bytes at {o}: outside the {size}-byte area"
                )));
            }
        }
        Ok(MdaHeader {
            start,
            size,
            committed,
        })
    }
}

/// Reads and checks the committed metadata text of the area at `offset` (`size`
/// bytes), following the ring buffer's wrap.
pub fn read_metadata(dev: &dyn BlockDevice, offset: u64, size: u64) -> Result<String, LvmError> {
    let header = dev.read_vec(offset, MDA_HEADER_SIZE as usize)?;
    let h = MdaHeader::decode(offset, size, &header)?;
    let Some((r_off, r_size, r_sum)) = h.committed else {
        return Err(LvmError::MdaHeader {
            offset,
            what: "holds no committed metadata".into(),
        });
    };
    let at = offset + r_off;
    let bad = |what: String| LvmError::Metadata {
        offset: at,
        len: r_size,
        what,
    };
    // Checked in decode: r_off < size, r_size ≤ size - header.
    let first = r_size.min(size - r_off);
    let mut text = dev.read_vec(at, first as usize)?;
    if first < r_size {
        let rest = dev.read_vec(offset + MDA_HEADER_SIZE, (r_size - first) as usize)?;
        text.extend_from_slice(&rest);
    }
    let crc = calc_crc(&text);
    if crc != r_sum {
        return Err(bad(format!("checksum {r_sum:#010x}, computed {crc:#010x}")));
    }
    while text.last() == Some(&0) {
        text.pop();
    }
    String::from_utf8(text).map_err(|e| {
        bad(format!(
            "not UTF-8 at byte {}",
            e.utf8_error().valid_up_to()
        ))
    })
}
