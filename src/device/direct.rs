//! Reads through an O_DIRECT descriptor at any offset and length.
//!
//! O_DIRECT wants the memory, the offset and the length aligned (to the logical
//! sector of a block device). A rescue re-reads single sectors at arbitrary places
//! into slices of a bigger buffer, so the read is widened to whole units, done into
//! an aligned bounce buffer of bounded size, and the asked-for bytes copied out.
//! Widening to the logical sector adds nothing the disk could fail on: the sector
//! is the smallest unit it reads.

use super::DIRECT_ALIGN;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The largest single direct read, which bounds the bounce buffer whatever is asked.
const MAX_CHUNK: u64 = 1 << 20;

/// Fills `buf` from `offset` with direct reads in units of `unit` bytes (a power of
/// two up to a page). The caller has checked that the range lies inside the device.
/// An EINVAL means the descriptor refuses this alignment.
pub(super) fn read(file: &File, unit: u64, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    let unit = unit.clamp(1, DIRECT_ALIGN as u64);
    let len = buf.len() as u64;
    let end = offset
        .checked_add(len)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    let aligned_mem = buf.as_ptr().align_offset(DIRECT_ALIGN) == 0;
    if aligned_mem && offset % unit == 0 && len % unit == 0 {
        let got = fill(file, offset, unit, buf)?;
        return if got == buf.len() {
            Ok(())
        } else {
            Err(io::ErrorKind::UnexpectedEof.into())
        };
    }
    let first = offset / unit * unit;
    let last = end.div_ceil(unit).saturating_mul(unit);
    let chunk = (MAX_CHUNK / unit).max(1) * unit;
    let cap = usize::try_from(chunk.min(last - first))
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut bounce = vec![0u8; cap + DIRECT_ALIGN];
    let start = bounce.as_ptr().align_offset(DIRECT_ALIGN);
    let mut pos = first;
    while pos < end {
        let n = (last - pos).min(cap as u64) as usize;
        let Some(b) = bounce.get_mut(start..start + n) else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        let got = fill(file, pos, unit, b)? as u64;
        let (lo, hi) = (pos.max(offset), pos.saturating_add(got).min(end));
        if hi > lo {
            let dst = buf.get_mut((lo - offset) as usize..(hi - offset) as usize);
            let src = b.get((lo - pos) as usize..(hi - pos) as usize);
            if let (Some(dst), Some(src)) = (dst, src) {
                dst.copy_from_slice(src);
            }
        }
        if pos.saturating_add(got) < end && got < n as u64 {
            // The file ended inside the asked range: the size changed under us.
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        pos = pos.saturating_add(n as u64);
    }
    Ok(())
}

/// Reads until `b` is full or the file ends; returns the bytes read. Stops after a
/// short read that leaves an unaligned position (only the end of an image file
/// does that), since O_DIRECT would refuse to go on from there.
fn fill(file: &File, pos: u64, unit: u64, b: &mut [u8]) -> io::Result<usize> {
    let mut done = 0usize;
    while let Some(rest) = b.get_mut(done..).filter(|r| !r.is_empty()) {
        match file.read_at(rest, pos.saturating_add(done as u64)) {
            Ok(0) => break,
            Ok(k) => {
                done += k;
                if (done as u64) % unit != 0 {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
