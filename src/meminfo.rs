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

#[cfg(test)]
mod tests {
    use super::*;

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
