//! The Clonezilla restore's fallback to a temporary repository: a plan that
//! re-creates a partition cannot be copied from the rebuilt scratch disk, so the
//! restore backs the scratch disk up into a temporary repository and restores from
//! it. The fixture forces it the way a user meets it: the GPT disk's FAT ESP
//! (512-byte sectors in its boot sector) restored onto a target with 4096-byte logical
//! sectors must be re-created (FAT32 with 4096-byte sectors). Judged by independent
//! tools on a 4Kn loop device: sgdisk -v, fsck.vfat -n and the ESP's file, e2fsck -fn
//! and every ext4 file; and nothing is left in the scratch folder (neither the
//! scratch disk nor the temporary repository), which run_with_scratch asserts.

mod clonezilla_fixture;
mod fsfixture;

use clonezilla_fixture::{run_with_scratch, MIB};
use fsfixture::{prng_bytes, run, run_status};
use std::fs;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
#[ignore = "needs root"]
fn recreated_esp_goes_through_a_temporary_repository_and_leaves_nothing() {
    let d = tempfile::tempdir().unwrap();
    let fx = clonezilla_fixture::build(d.path(), "img", 31, false);
    let scratch = d.path().join("scratch");
    let target = d.path().join("t4k.img");
    fs::File::create(&target)
        .unwrap()
        .set_len(160 * MIB + 320 * MIB)
        .unwrap();
    let (ok, out) = run_with_scratch(
        &[
            "restore",
            s(&fx.root),
            "img",
            s(&target),
            "--sector-size",
            "4096",
            "--yes",
            "--no-nvram",
        ],
        &scratch,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("re-created: restoring through a temporary repository"),
        "no fallback:\n{out}"
    );
    assert!(
        fs::read_dir(&fx.root).unwrap().count() == 1,
        "the Clonezilla folder got new entries"
    );
    let o = run("losetup", &["-b", "4096", "-P", "--show", "-f", s(&target)]);
    let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let _ = run_status("partx", &["-a", &dev]);
    let p2 = format!("{dev}p2");
    for _ in 0..100 {
        if Path::new(&p2).exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let check = || {
        let o = run_status("sgdisk", &["-v", &dev]);
        let t = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && t.contains("No problems found"),
            "sgdisk -v: {t}"
        );
        let esp = format!("{dev}p1");
        let o = run_status("fsck.vfat", &["-n", &esp]);
        assert!(
            o.status.success(),
            "fsck.vfat -n: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        let efi = d.path().join("efi.out");
        let _ = fs::remove_file(&efi);
        run("mcopy", &["-i", &esp, "::/EFI/BOOT/BOOTX64.EFI", s(&efi)]);
        assert!(
            fs::read(&efi).unwrap() == prng_bytes(131, 300_000),
            "ESP file differs"
        );
        let root = format!("{dev}p2");
        let o = run_status("e2fsck", &["-fn", &root]);
        assert!(
            o.status.success(),
            "e2fsck -fn: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        for i in 0..4u64 {
            let o = run("debugfs", &["-R", &format!("cat /data{i}"), &root]);
            assert!(
                o.stdout == prng_bytes(310 + i, 2_000_000),
                "/data{i} differs"
            );
        }
    };
    let r = std::panic::catch_unwind(check);
    let _ = run_status("losetup", &["-d", &dev]);
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
}
