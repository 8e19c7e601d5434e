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
    /// Set by `zero_filling`: a failed read returns zeros and is recorded here.
    zero_fill: bool,
    failed: Option<String>,
}

impl<'a> Cursor<'a> {
    pub fn new(dev: Arc<dyn BlockDevice + 'a>) -> Cursor<'a> {
        Cursor {
            dev,
            pos: 0,
            zero_fill: false,
            failed: None,
        }
    }

    /// A cursor whose failed reads give zeros, the first failure kept for `take_failure`.
    /// The `ntfs` crate (0.4) panics (`unreachable!`) when an I/O error reaches it while
    /// it parses a structure through binrw, so the NTFS reader must never hand it one;
    /// it checks `take_failure` after every operation and reports the read error
    /// instead of whatever the zeros made of the result. Backups read a dying disk's
    /// Windows boot store through this, so a bad sector must not abort them.
    pub fn zero_filling(dev: Arc<dyn BlockDevice + 'a>) -> Cursor<'a> {
        Cursor {
            zero_fill: true,
            ..Cursor::new(dev)
        }
    }

    /// The first read error since the last call, if any.
    pub fn take_failure(&mut self) -> Option<String> {
        self.failed.take()
    }
}

impl Read for Cursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.dev.size().saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let dst = buf.get_mut(..n).unwrap_or_default();
        match self.dev.read_at(self.pos, dst) {
            Ok(()) => {}
            Err(e) if self.zero_fill => {
                dst.fill(0);
                self.failed.get_or_insert_with(|| e.to_string());
            }
            Err(e) => return Err(std::io::Error::other(e)),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{DeviceError, MemDevice};

    /// Every read fails, as a dying disk's sectors do.
    struct Dead(MemDevice);

    impl BlockDevice for Dead {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
            Err(DeviceError::Io {
                device: "dead".into(),
                offset,
                len: buf.len() as u64,
                source: std::io::Error::from_raw_os_error(5),
            })
        }
        fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
            self.0.write_at(offset, buf)
        }
        fn size(&self) -> u64 {
            self.0.size()
        }
        fn logical_sector_size(&self) -> u32 {
            512
        }
        fn flush(&self) -> Result<(), DeviceError> {
            Ok(())
        }
        fn access(&self) -> crate::device::Access {
            self.0.access()
        }
        fn describe(&self) -> String {
            "dead".into()
        }
    }

    #[test]
    fn zero_filling_records_the_error_and_plain_returns_it() {
        let dev: Arc<dyn BlockDevice> = Arc::new(Dead(MemDevice::from_vec(vec![7; 4096], 512)));
        let mut buf = [9u8; 16];
        assert!(Cursor::new(dev.clone()).read(&mut buf).is_err());
        let mut z = Cursor::zero_filling(dev);
        assert_eq!(z.read(&mut buf).unwrap(), 16);
        assert_eq!(buf, [0u8; 16]);
        assert!(z.take_failure().is_some_and(|e| e.contains("I/O error")));
        assert!(z.take_failure().is_none());
    }

    #[test]
    fn ntfs_on_an_unreadable_disk_is_an_error_not_a_panic() {
        // ntfs 0.4 panics when an I/O error reaches its boot-sector parser.
        let dev: Arc<dyn BlockDevice> = Arc::new(Dead(MemDevice::from_vec(vec![0; 1 << 20], 512)));
        let e = crate::browse::open_ntfs(dev)
            .err()
            .expect("opened a dead disk");
        assert!(e.to_string().contains("I/O error"), "{e}");
    }
}
