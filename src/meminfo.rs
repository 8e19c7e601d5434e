//! What the kernel says this machine's memory can still give (`/proc/meminfo`).
//!
//! The live system runs from RAM: its /tmp and spools are memory too, so what a job
//! may hold in buffers or spool is sized from `MemAvailable`, not from a fixed guess.

/// `MemAvailable` in bytes: what can be allocated without swapping (the kernel's own
/// estimate, page cache it can drop included). `None` where /proc is not mounted or
/// the line is missing (kernels before 3.14).
pub fn mem_available() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&s)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let l = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = l.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// What a job may fill under a folder (a spool, scratch files).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Room {
    /// Free bytes, capped at `MemAvailable` when `in_ram`.
    pub bytes: u64,
    /// The folder is on a tmpfs: its files are RAM (the live system's /tmp).
    pub in_ram: bool,
}

/// The free space of `dir`'s filesystem and, on a tmpfs, no more than `MemAvailable`:
/// a tmpfs is sized at half the RAM by default, so its free space alone promises
/// memory the running jobs may already hold.
pub fn room_in(dir: &std::path::Path) -> nix::Result<Room> {
    let st = nix::sys::statvfs::statvfs(dir)?;
    let free = st.blocks_available().saturating_mul(st.fragment_size());
    let in_ram = nix::sys::statfs::statfs(dir)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
    let bytes = if in_ram {
        mem_available().map_or(free, |m| m.min(free))
    } else {
        free
    };
    Ok(Room { bytes, in_ram })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_in_a_folder_is_its_free_space() {
        let d = tempfile::tempdir().unwrap();
        let r = room_in(d.path()).unwrap();
        assert!(r.bytes > 0);
        assert!(room_in(&d.path().join("missing")).is_err());
    }

    #[test]
    fn reads_mem_available_in_bytes() {
        let s = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:    2048 kB\n";
        assert_eq!(parse_mem_available(s), Some(2 << 20));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_mem_available("MemAvailable: lots kB\n"), None);
        assert_eq!(
            parse_mem_available("MemAvailable: 18446744073709551615 kB\n"),
            None
        );
    }
}
