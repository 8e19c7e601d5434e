//! Windows' boot store on an MBR disk, read at backup time from the source (read-only)
//! so that every restore knows, from the manifest alone, which partition is "System
//! Reserved" and which partitions the BCD names by offset (docs/RESIZE.md, issue 16).

use super::meta::WindowsBoot;
use crate::bootfix::bcd::{self, BCD_PATH};
use crate::browse::{self, BrowseError, Kind};
use crate::device::BlockDevice;
use std::sync::Arc;
use thiserror::Error;

/// A BCD store is tens of KiB; anything past this is not one.
const BCD_LIMIT: u64 = 16 << 20;

#[derive(Debug, Error)]
pub enum WindowsBootError {
    #[error(transparent)]
    Browse(#[from] BrowseError),
    #[error(transparent)]
    Bcd(#[from] crate::bootfix::BootfixError),
}

/// The boot store of the NTFS on `part`, or None when it has no `\Boot\BCD`.
/// `signature` is the disk's MBR signature: only descriptors naming this disk count.
pub fn read_windows_boot(
    part: Arc<dyn BlockDevice + '_>,
    signature: u32,
) -> Result<Option<WindowsBoot>, WindowsBootError> {
    let mut fs = browse::open_ntfs(part)?;
    let bcd_entry = match fs.stat(BCD_PATH) {
        Ok(e) if e.kind == Kind::File => e,
        Ok(_) | Err(BrowseError::NotFound { .. }) | Err(BrowseError::NotADirectory { .. }) => {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    if bcd_entry.size > BCD_LIMIT {
        return Err(crate::bootfix::BootfixError::Bcd {
            what: format!("{} bytes, not a BCD store", bcd_entry.size),
        }
        .into());
    }
    let mut hive = Vec::new();
    fs.copy_to(BCD_PATH, &mut hive)?;
    let has_windows_dir = matches!(fs.stat("/Windows"), Ok(e) if e.kind == Kind::Dir);
    // A store that does not decode (a hive left dirty by a crash, damage) still marks
    // the partition as Windows' boot partition, so it keeps its size; which starts it
    // names is then unknown, and the caller says so.
    let (bcd, unreadable) = match bcd::device_refs(&hive, signature) {
        Ok(refs) => (refs, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    Ok(Some(WindowsBoot {
        has_windows_dir,
        bcd,
        unreadable,
    }))
}
