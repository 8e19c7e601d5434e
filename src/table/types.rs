//! Names for the partition types people meet on rescue disks, so `inspect` and the
//! TUI can say "EFI System" instead of a GUID.

use uuid::{uuid, Uuid};

pub const ESP: Uuid = uuid!("c12a7328-f81f-11d2-ba4b-00a0c93ec93b");
pub const BIOS_BOOT: Uuid = uuid!("21686148-6449-6e6f-744e-656564454649");
pub const MS_BASIC_DATA: Uuid = uuid!("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7");
pub const MS_RESERVED: Uuid = uuid!("e3c9e316-0b5c-4db8-817d-f92df00215ae");
pub const WINDOWS_RECOVERY: Uuid = uuid!("de94bba4-06d1-4d40-a16a-bfd50179d6ac");
pub const LINUX_FS: Uuid = uuid!("0fc63daf-8483-4772-8e79-3d69d8477de4");
pub const LINUX_SWAP: Uuid = uuid!("0657fd6d-a4ab-43c4-84e5-0933c84b4f4f");
pub const LINUX_LVM: Uuid = uuid!("e6d6d379-f507-44c2-a23c-238f2a3df928");
pub const LINUX_RAID: Uuid = uuid!("a19d880f-05fc-4d3b-a006-743f0f84911e");
pub const LINUX_ROOT_X86_64: Uuid = uuid!("4f68bce3-e8cd-4db1-96e7-fbcaf984b709");
pub const LINUX_HOME: Uuid = uuid!("933ac7e1-2eb4-4f13-b844-0e14e2aef915");
pub const LINUX_LUKS: Uuid = uuid!("ca7d7ccb-63ed-4c53-861c-1742536059cc");
pub const APPLE_HFS: Uuid = uuid!("48465300-0000-11aa-aa11-00306543ecac");

pub fn gpt_type_name(u: &Uuid) -> Option<&'static str> {
    Some(match *u {
        ESP => "EFI System",
        BIOS_BOOT => "BIOS boot",
        MS_BASIC_DATA => "Microsoft basic data",
        MS_RESERVED => "Microsoft reserved",
        WINDOWS_RECOVERY => "Windows recovery environment",
        LINUX_FS => "Linux filesystem",
        LINUX_SWAP => "Linux swap",
        LINUX_LVM => "Linux LVM",
        LINUX_RAID => "Linux RAID",
        LINUX_ROOT_X86_64 => "Linux root (x86-64)",
        LINUX_HOME => "Linux home",
        LINUX_LUKS => "Linux LUKS",
        APPLE_HFS => "Apple HFS/HFS+",
        _ => return None,
    })
}

pub fn mbr_type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0E => "FAT16",
        0x05 => "Extended",
        0x07 => "NTFS/exFAT/HPFS",
        0x0B | 0x0C => "W95 FAT32",
        0x0F => "W95 Extended (LBA)",
        0x27 => "Hidden NTFS WinRE",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x85 => "Linux extended",
        0x8E => "Linux LVM",
        0xA5 => "FreeBSD",
        0xEE => "GPT protective",
        0xEF => "EFI System",
        0xFD => "Linux RAID autodetect",
        _ => return None,
    })
}
