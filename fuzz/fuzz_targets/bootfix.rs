//! The boot-repair parsers on arbitrary bytes: GRUB's boot.img and the diskboot blocklist
//! (the input as a disk), the FAT and NTFS boot sectors (its first sector, through
//! `ondisk`, which the hidden-sectors repair reads them with), and an
//! EFI Boot#### load option with its device path (the whole input). Each gives a value or
//! an error, never a panic, hang or huge allocation.
#![no_main]

use ironclone::bootfix::{efi_load_option, grub_bios};
use ironclone::ondisk::{fat, ntfs};
use ironclone::device::MemDevice;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dev = MemDevice::from_vec(data.to_vec(), 512);
    let _ = grub_bios::locate_core(&dev);
    let sector = data.get(..512).unwrap_or(data);
    // The boot sectors the hidden-sectors repair reads, in both of each decoder's modes.
    for mode in [fat::Mode::Identify, fat::Mode::Trust] {
        let _ = fat::BootSector::parse(sector, mode);
    }
    for mode in [ntfs::Mode::Lenient, ntfs::Mode::Strict] {
        let _ = ntfs::BootSector::parse(sector, mode);
    }
    if let Ok(option) = efi_load_option::LoadOption::decode(data) {
        let _ = option.hard_drive().map(|hd| hd.partition_id());
        let _ = option.file();
        // What was decoded must encode again (the repair writes it back).
        let _ = option.encode();
    }
    let _ = efi_load_option::decode_device_path(data, 0);
});
