//! The internal log's record header (`struct xlog_rec_header`, `xfs_log_format.h`)
//! and the cycle number every 512-byte log block carries, which is all it takes to
//! tell whether the log ends with an unmount record (clean) or holds changes the
//! kernel has not yet written into the filesystem (dirty).
//!
//! The log is counted in 512-byte basic blocks. A record is a header block followed by
//! `h_len` bytes of data; the first word of each data block is replaced by the cycle
//! number (the word itself is saved in the header), so a block's cycle is its first word,
//! or, for a header block, the word after the magic.

use crate::bytes::{be32, u8_at};

/// `XLOG_HEADER_MAGIC_NUM`.
pub const XLOG_HEADER_MAGIC_NUM: u32 = 0xFEED_BABE;
/// A log basic block.
pub const BBSIZE: u64 = 512;
const H_CYCLE: usize = 4;
const H_VERSION: usize = 8;
const H_LEN: usize = 12;
const H_NUM_LOGOPS: usize = 40;
const H_SIZE: usize = 320;
const XLOG_VERSION_2: u32 = 2;
/// `XLOG_HEADER_CYCLE_SIZE`: one header block holds the saved words of this much data.
const XLOG_HEADER_CYCLE_SIZE: u32 = 32 * 1024;
/// `oh_flags` in the first operation header (`struct xlog_op_header`), after
/// `oh_tid`, `oh_len` and `oh_clientid`.
const OH_FLAGS: usize = 9;
/// `XLOG_UNMOUNT_TRANS`: the operation is the unmount record.
const XLOG_UNMOUNT_TRANS: u8 = 0x20;

/// The cycle number of a log block (`xlog_get_cycle`); `None` when shorter than 8 bytes.
pub fn block_cycle(b: &[u8]) -> Option<u32> {
    let w = be32(b, 0)?;
    if w == XLOG_HEADER_MAGIC_NUM {
        be32(b, H_CYCLE)
    } else {
        Some(w)
    }
}

/// A record header block's fields that locate the record's end and first operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecHeader {
    pub h_cycle: u32,
    pub h_len: u32,
    pub h_num_logops: u32,
    /// Header blocks (more than one for v2 logs with records over 32 KiB).
    pub header_blocks: u64,
}

impl RecHeader {
    /// Parses `b` (a 512-byte log block) when it is a record header.
    pub fn parse(b: &[u8]) -> Option<Self> {
        if be32(b, 0)? != XLOG_HEADER_MAGIC_NUM {
            return None;
        }
        let version = be32(b, H_VERSION)?;
        let h_size = be32(b, H_SIZE)?;
        let header_blocks = if version & XLOG_VERSION_2 != 0 && h_size > XLOG_HEADER_CYCLE_SIZE {
            u64::from(h_size.div_ceil(XLOG_HEADER_CYCLE_SIZE))
        } else {
            1
        };
        Some(RecHeader {
            h_cycle: be32(b, H_CYCLE)?,
            h_len: be32(b, H_LEN)?,
            h_num_logops: be32(b, H_NUM_LOGOPS)?,
            header_blocks,
        })
    }

    /// Blocks from the header to the record's end.
    pub fn blocks(&self) -> u64 {
        self.header_blocks + u64::from(self.h_len).div_ceil(BBSIZE)
    }
}

/// Whether `first_data` (the record's first data block) starts with the unmount
/// operation, in a record of one operation.
pub fn is_unmount_record(h: &RecHeader, first_data: &[u8]) -> bool {
    h.h_num_logops == 1 && u8_at(first_data, OH_FLAGS).is_some_and(|f| f & XLOG_UNMOUNT_TRANS != 0)
}
