//! A Ctrl-C during an import's check or a partition image's unpack (both decode whole
//! partition images before anything is stored) ends them at their next decoded run,
//! naming the image, and leaves no scratch file: `ImageDevice::cancel_with` and
//! `unpack::unpack_standalone_until` with the cancel flag set. Before, neither polled
//! the flag, so a first Ctrl-C waited for the whole decode and a second one ended the
//! process with its scratch files left behind.

mod clonezilla_fixture;
mod fsfixture;

use ironclone::foreign::clonezilla::device::ImageDevice;
use ironclone::foreign::clonezilla::{unpack, ClonezillaImage, PartImageKind};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[test]
fn a_set_cancel_flag_ends_the_check_and_the_unpack() {
    let dir = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(dir.path(), "img", 11, false);
    let img = ClonezillaImage::open(&fx.image).unwrap();
    // Not cancelled first: the same calls pass, so the refusal below is the flag's.
    for cancelled in [false, true] {
        let table = dir.path().join(format!("table-{cancelled}"));
        let dev = ImageDevice::open(&img, &table)
            .unwrap()
            .cancel_with(Arc::new(AtomicBool::new(cancelled)));
        let checked = dev.check_all(&img);
        if cancelled {
            let e = checked.expect_err("a cancelled check passed").to_string();
            assert!(e.contains("cancelled by the user"), "{e}");
            assert!(e.contains("ptcl-img"), "the image is not named: {e}");
        } else {
            checked.unwrap();
        }
        drop(dev);
        assert!(!table.exists(), "the table's scratch file was left");
    }
    let src = fx.image.join("sda2.ext4-ptcl-img.gz");
    let kind = PartImageKind::Partclone { fs: "ext4".into() };
    for cancelled in [false, true] {
        let out = dir.path().join(format!("unpacked-{cancelled}.img"));
        let flag = AtomicBool::new(cancelled);
        let unpacked = unpack::unpack_standalone_until(&src, kind.clone(), &out, &flag);
        if cancelled {
            let e = unpacked.expect_err("a cancelled unpack passed").to_string();
            assert!(e.contains("cancelled by the user"), "{e}");
            assert!(!out.exists(), "the half-unpacked scratch file was left");
        } else {
            assert!(unpacked.unwrap().used_bytes > 0);
            assert!(out.exists());
        }
    }
}
