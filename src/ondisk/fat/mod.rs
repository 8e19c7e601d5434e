//! FAT12/16/32 on-disk structures, named as in Microsoft's FAT specification
//! ("FAT: General Overview of On-Disk Format"): the boot sector with its BPB, where
//! its FAT32 backup copy lives, and the FAT32 FSInfo sector.
//!
//! exFAT is a different format with its own decoders in `ondisk::exfat`.

pub mod backup_boot_sector;
pub mod boot_sector;
pub mod fsinfo;

pub use boot_sector::{BootSector, BootSectorError, FatType, Mode};
