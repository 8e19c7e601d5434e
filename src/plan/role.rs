//! Partition roles decide which partitions scale with the disk. Boot and system
//! partitions (ESP, BIOS-boot, MSR, recovery, Windows' System Reserved) and swap keep
//! their size, as
//! Clonezilla's `-k1` does, because nothing gains from a bigger one and firmware or
//! Windows may care about their size.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Esp,
    BiosBoot,
    Msr,
    Recovery,
    /// Windows' boot partition on MBR disks ("System Reserved": bootmgr and the BCD,
    /// without Windows itself), found from its files, not its type byte.
    WindowsBoot,
    Swap,
    Extended,
    Data,
}

impl Role {
    /// True for partitions whose size follows the disk in proportional mode.
    pub fn scales(self) -> bool {
        self == Role::Data
    }

    /// The role of a GPT partition type GUID.
    pub fn from_gpt_type(t: &Uuid) -> Role {
        match t.to_string().as_str() {
            "c12a7328-f81f-11d2-ba4b-00a0c93ec93b" => Role::Esp,
            "21686148-6449-6e6f-744e-656564454649" => Role::BiosBoot,
            "e3c9e316-0b5c-4db8-817d-f92df00215ae" => Role::Msr,
            "de94bba4-06d1-4d40-a16a-bfd50179d6ac" => Role::Recovery,
            "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f" => Role::Swap,
            _ => Role::Data,
        }
    }

    /// The role of an MBR partition type byte.
    pub fn from_mbr_type(t: u8) -> Role {
        match t {
            0xEF => Role::Esp,
            0x82 => Role::Swap,
            0x27 => Role::Recovery,
            0x05 | 0x0F | 0x85 => Role::Extended,
            _ => Role::Data,
        }
    }
}
