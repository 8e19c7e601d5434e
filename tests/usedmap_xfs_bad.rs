//! A corrupt XFS must give a typed error that names the structure (the AG, the block,
//! the field), and through `map_filesystem` an image of the whole partition with that
//! reason: copies of a fresh mkfs.xfs image with one field or checksum broken.

mod fsfixture;
mod xfs_fixture;

use fsfixture::*;
use ironclone::device::{open_path, Access, MemDevice};
use ironclone::ondisk::xfs::XfsDecodeError;
use ironclone::probe::FsKind;
use ironclone::usedmap::{map_filesystem, map_xfs, UsedMap, XfsError};
use std::path::PathBuf;
use xfs_fixture::mkfs;

/// A fresh, empty filesystem image to corrupt copies of.
struct Pristine {
    _t: tempfile::TempDir,
    img: PathBuf,
    bs: u64,
    agblocks: u64,
}

impl Pristine {
    fn new(args: &[&str]) -> Self {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("src.img");
        mkfs(&img, args);
        let head = read_range(&img, 0, 512);
        let (bs, agblocks) = (be32_at(&head, 4), be32_at(&head, 84));
        Pristine {
            _t: t,
            img,
            bs: bs.into(),
            agblocks: agblocks.into(),
        }
    }

    fn be32(&self, off: u64) -> u32 {
        be32_at(&read_range(&self.img, off, 4), 0)
    }

    /// Byte offset of AG `ag`'s AGF.
    fn agf(&self, ag: u64, sect: u64) -> u64 {
        ag * self.agblocks * self.bs + sect
    }

    /// A sparse copy with `patches` (offset, bytes) written in, mapped.
    fn map_patched(&self, patches: &[(u64, &[u8])]) -> Result<UsedMap, XfsError> {
        use std::io::{Seek, SeekFrom, Write};
        let copy = self.img.with_extension("bad.img");
        run(
            "cp",
            &[
                "--sparse=always",
                self.img.to_str().unwrap(),
                copy.to_str().unwrap(),
            ],
        );
        {
            let mut f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
            for (off, bytes) in patches {
                f.seek(SeekFrom::Start(*off)).unwrap();
                f.write_all(bytes).unwrap();
            }
        }
        let dev = open_path(&copy, Access::ReadOnly).unwrap();
        map_xfs(&dev)
    }

    fn flipped(&self, off: u64, mask: u8) -> Result<UsedMap, XfsError> {
        let b = read_range(&self.img, off, 1)[0] ^ mask;
        self.map_patched(&[(off, &[b])])
    }
}

fn be32_at(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes(b[o..o + 4].try_into().unwrap())
}

#[test]
fn corrupt_agf_magic_names_the_ag() {
    let p = Pristine::new(&["-m", "crc=0"]);
    let agf2 = p.agf(2, 512);
    assert_eq!(p.be32(agf2), 0x5841_4746);
    let e = p.map_patched(&[(agf2, b"Y")]).unwrap_err();
    assert!(
        matches!(
            e,
            XfsError::Decode {
                source: XfsDecodeError::AgfMagic { ag: 2, .. },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("AG 2"), "{e}");
    // Through map_filesystem: imaged raw, the reason kept.
    let copy = p.img.with_extension("bad.img");
    let m = map_filesystem(&open_path(&copy, Access::ReadOnly).unwrap(), FsKind::Xfs);
    assert!(m.raw);
    let why = m.raw_reason.unwrap();
    assert!(why.contains("AGF magic") && why.contains("AG 2"), "{why}");
    assert!(p.map_patched(&[]).is_ok());
}

#[test]
fn corrupt_v5_checksums_are_caught() {
    let p = Pristine::new(&[]);
    // A superblock byte (inside sb_fdblocks): CRC mismatch.
    let e = p.flipped(150, 1).unwrap_err();
    assert!(
        matches!(
            e,
            XfsError::Decode {
                source: XfsDecodeError::SuperblockCrc { .. },
                ..
            }
        ),
        "{e}"
    );
    // An AGF field of AG 1 (agf_freeblks): CRC mismatch naming AG 1.
    let e = p.flipped(p.agf(1, 512) + 55, 1).unwrap_err();
    assert!(
        matches!(
            e,
            XfsError::Decode {
                source: XfsDecodeError::AgfCrc { ag: 1, .. },
                ..
            }
        ),
        "{e}"
    );
    // A record in AG 3's bno root: the block's CRC fails, naming AG and block.
    let root = u64::from(p.be32(p.agf(3, 512) + 16));
    let blk = (3 * p.agblocks + root) * p.bs;
    assert_eq!(p.be32(blk), 0x4142_3342);
    let e = p.flipped(blk + 60, 0x40).unwrap_err();
    assert!(
        matches!(
            e,
            XfsError::Decode {
                source: XfsDecodeError::BtreeCrc { ag: 3, agbno, .. },
                ..
            } if u64::from(agbno) == root
        ),
        "{e}"
    );
    // A wrong magic in that block.
    let e = p.flipped(blk + 1, 0x20).unwrap_err();
    assert!(
        e.to_string().contains("AG 3") && e.to_string().contains("magic"),
        "{e}"
    );
    assert!(p.map_patched(&[]).is_ok());
}

#[test]
fn v4_garbage_fields_are_errors() {
    let p = Pristine::new(&["-m", "crc=0"]);
    let agf1 = p.agf(1, 512);
    // AGF level beyond any tree.
    let e = p
        .map_patched(&[(agf1 + 28, &77u32.to_be_bytes())])
        .unwrap_err();
    assert!(
        e.to_string().contains("AG 1") && e.to_string().contains("agf_levels"),
        "{e}"
    );
    // A free extent past the AG's end (v4: no CRC to stop it first).
    let root = u64::from(p.be32(agf1 + 16));
    let blk = (p.agblocks + root) * p.bs;
    let last = (p.agblocks as u32 - 1).to_be_bytes();
    let e = p.map_patched(&[(blk + 16, &last)]).unwrap_err();
    assert!(e.to_string().contains("past the AG's end"), "{e}");
    // A loop: the root as its own child, at level 2.
    let e = p
        .map_patched(&[
            (agf1 + 28, &2u32.to_be_bytes()),
            (blk + 4, &1u16.to_be_bytes()),
        ])
        .unwrap_err();
    assert!(e.to_string().contains("AG 1"), "{e}");
    // An external log, a realtime section: refused, the reason said.
    let e = p.map_patched(&[(48, &0u64.to_be_bytes())]).unwrap_err();
    assert!(e.to_string().contains("external device"), "{e}");
    let e = p.map_patched(&[(16, &1u64.to_be_bytes())]).unwrap_err();
    assert!(e.to_string().contains("realtime"), "{e}");
    // agcount that does not match dblocks.
    let e = p.map_patched(&[(88, &1u32.to_be_bytes())]).unwrap_err();
    assert!(e.to_string().contains("sb_dblocks"), "{e}");
    // The device shorter than the filesystem.
    let dev = MemDevice::from_vec(read_range(&p.img, 0, 1 << 20), 512);
    assert!(matches!(map_xfs(&dev), Err(XfsError::Truncated { .. })));
}
