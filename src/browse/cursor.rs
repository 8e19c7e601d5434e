//! `Read + Seek` over a positional `BlockDevice`, for the filesystem crates that want
//! a stream (`ntfs`, `fatfs`). `Write` exists only because `fatfs` asks for it: every
//! write is refused, so browsing can never change an image.

use crate::device::BlockDevice;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

/// The lifetime lets a backup read a file of the source it only borrows (the BCD of
/// a Windows boot partition, at planning time); browsing images uses `Cursor<'static>`.
pub struct Cursor<'a> {
    dev: Arc<dyn BlockDevice + 'a>,
    pos: u64,
}

impl<'a> Cursor<'a> {
    pub fn new(dev: Arc<dyn BlockDevice + 'a>) -> Cursor<'a> {
        Cursor { dev, pos: 0 }
    }
}

impl Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.dev.size().saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let dst = buf.get_mut(..n).unwrap_or_default();
        self.dev
            .read_at(self.pos, dst)
            .map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Cursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.dev.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::other("seek out of range"))?;
        Ok(self.pos)
    }
}

impl Write for Cursor<'_> {
    fn write(&mut self, _buf: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{}: browsing is read-only", self.dev.describe()),
        ))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
