//! This machine's name, as the kernel has it (what gethostname(2) returns), read from
//! `/proc/sys/kernel/hostname` rather than through nix's `hostname` feature: one file
//! read, and the same answer in the live system, where nothing sets it but the kernel.
//!
//! Repository locks, key slots, scheduled image names and the TUI's suggested image
//! name all record it; each used to read and clean the file its own way.

/// The host name, trimmed; `None` when it is unset (empty, the kernel's `(none)`) or is
/// not one word (a lock body and an image name are split on whitespace).
pub fn hostname() -> Option<String> {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    clean(&raw)
}

fn clean(raw: &str) -> Option<String> {
    let h = raw.trim();
    (!h.is_empty() && h != "(none)" && !h.contains(char::is_whitespace)).then(|| h.to_string())
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn unset_or_odd_names_are_none() {
        assert_eq!(clean("lab-07\n").as_deref(), Some("lab-07"));
        assert_eq!(clean("\n"), None);
        assert_eq!(clean("(none)\n"), None);
        assert_eq!(clean("two words\n"), None);
    }
}
