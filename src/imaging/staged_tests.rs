//! Unit tests of staged.rs: the copy of a scratch file into its partition, and the
//! read-back that must catch a target not holding what it was given.

use super::*;
use crate::device::{DeviceError, MemDevice};
use crate::imaging::meta::PartitionMeta;
use crate::probe::FsKind;
use crate::progress::NoProgress;
use crate::usedmap::UsedMap;

const MIB: u64 = 1 << 20;

/// A disk that returns one wrong byte at `bad` on reads (a write lost or misplaced).
struct Lying {
    inner: MemDevice,
    bad: u64,
}

impl BlockDevice for Lying {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        self.inner.read_at(offset, buf)?;
        if let Some(i) = self
            .bad
            .checked_sub(offset)
            .filter(|&i| i < buf.len() as u64)
        {
            buf[i as usize] ^= 0x40;
        }
        Ok(())
    }
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), DeviceError> {
        self.inner.write_at(offset, buf)
    }
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn logical_sector_size(&self) -> u32 {
        512
    }
    fn flush(&self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn access(&self) -> Access {
        Access::ReadWrite
    }
    fn describe(&self) -> String {
        "lying disk".into()
    }
}

/// A 6 MiB scratch file of a pattern, two used ranges (the second crosses a 4 MiB
/// step), for partition 2 at 1 MiB of the target.
fn setup(dir: &std::path::Path) -> (Staged, PartTarget) {
    let mut s = Staged::create(dir, "p2.fs", 6 * MIB).unwrap();
    let data: Vec<u8> = (0..6 * MIB).map(|i| (i % 251) as u8).collect();
    std::fs::write(&s.path, &data).unwrap();
    s.extents = vec![
        ByteExtent {
            offset: 0,
            len: 64 << 10,
        },
        ByteExtent {
            offset: MIB,
            len: 5 * MIB,
        },
    ];
    let map = UsedMap::raw(6 * MIB, 512, "test");
    let p = PartTarget {
        area: "p2".into(),
        meta: PartitionMeta::new(None, None, map),
        kind: FsKind::Ext4,
        old_offset: MIB,
        old_size: 8 * MIB,
        new_offset: MIB,
        new_size: 6 * MIB,
        recreate: false,
    };
    (s, p)
}

#[test]
fn the_copy_is_read_back_and_counted() {
    let d = tempfile::tempdir().unwrap();
    let (s, p) = setup(d.path());
    let disk = MemDevice::new((8 * MIB) as usize, 512);
    let c = copy_staged(&s, &disk, &p, true, &NoProgress).unwrap();
    assert_eq!(
        (c.written, c.verified),
        (5 * MIB + (64 << 10), 5 * MIB + (64 << 10))
    );
    let got = disk.snapshot();
    let want = std::fs::read(&s.path).unwrap();
    assert_eq!(
        got[MIB as usize..(MIB + (64 << 10)) as usize],
        want[..64 << 10]
    );
    assert_eq!(
        got[2 * MIB as usize..7 * MIB as usize],
        want[MIB as usize..]
    );
    // the unused range between stays as the target had it
    assert!(got[(MIB + (64 << 10)) as usize..2 * MIB as usize]
        .iter()
        .all(|&b| b == 0));
    // without verify nothing is read back
    let c = copy_staged(&s, &disk, &p, false, &NoProgress).unwrap();
    assert_eq!((c.written, c.verified), (5 * MIB + (64 << 10), 0));
}

#[test]
fn a_target_that_reads_back_different_is_named() {
    let d = tempfile::tempdir().unwrap();
    let (s, p) = setup(d.path());
    // target byte 1 MiB + 5 MiB + 3: the partition's byte 5 MiB + 3, in the second
    // 4 MiB step of the second range
    let bad = MIB + 5 * MIB + 3;
    let disk = Lying {
        inner: MemDevice::new((8 * MIB) as usize, 512),
        bad,
    };
    let e = copy_staged(&s, &disk, &p, true, &NoProgress).unwrap_err();
    match &e {
        ImagingError::StagedReadBack {
            area,
            what,
            offset,
            target_offset,
        } => {
            assert_eq!((area.as_str(), *what), ("p2", "shrunk"));
            assert_eq!((*offset, *target_offset), (5 * MIB + 3, bad));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("reads back different"), "{e}");
    // without verify the lie goes unseen: what `verify_after` is for
    assert!(copy_staged(&s, &disk, &p, false, &NoProgress).is_ok());
}
