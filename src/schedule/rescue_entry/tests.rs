//! Unit tests of the rescue entry's command line.

use super::*;

#[test]
fn command_lines() {
    let u = cmdline(
        Firmware::Uefi,
        Finds::Root("6b1e0d2a-4c1f"),
        &["console=ttyS0,115200".into()],
    )
    .unwrap();
    assert_eq!(
        u,
        "initrd=\\EFI\\ironclone\\initrd.img ironclone.run=schedule+run+--rescue+6b1e0d2a-4c1f \
         ironclone.reboot=1 panic=10 console=ttyS0,115200"
    );
    let b = cmdline(Firmware::Bios, Finds::Root("ABCD-1234"), &[]).unwrap();
    assert_eq!(
        b,
        "ironclone.run=schedule+run+--rescue+ABCD-1234 ironclone.reboot=1 panic=10"
    );
    // A root on device-mapper: the ESP (a FAT volume id) or /boot by its UUID.
    let m = cmdline(Firmware::Uefi, Finds::Boot("1C0E-C1A5"), &[]).unwrap();
    assert_eq!(
        m,
        "initrd=\\EFI\\ironclone\\initrd.img ironclone.run=schedule+run+--rescue-boot+1C0E-C1A5 \
         ironclone.reboot=1 panic=10"
    );
    for f in [Finds::Root, Finds::Boot] {
        assert!(cmdline(Firmware::Bios, f("x y"), &[]).is_err());
        assert!(cmdline(Firmware::Bios, f(""), &[]).is_err());
        assert!(cmdline(Firmware::Bios, f("ab+cd"), &[]).is_err());
    }
    for bad in ["a'b", "$x", "a;b", "", "a b", "{"] {
        assert!(
            cmdline(Firmware::Uefi, Finds::Root("ab"), &[bad.into()]).is_err(),
            "{bad}"
        );
    }
}
