//! What a Windows link target means to a Linux reader of one volume, following
//! ntfs-3g's mapping (libntfs-3g/reparse.c, `ntfs_make_symlink`):
//!
//! - a relative target (`..\a\b`) stays relative, `\` turned into `/`;
//! - a target from a drive's root (`\??\C:\a`, `C:\a`) or from the volume's root
//!   (`\a`) is looked up on this volume: the Windows drive letter of an image is
//!   not known, so, as ntfs-3g does, a path that names something here is taken to
//!   be here. ntfs-3g then links to `<mount point>/a`; an extracted tree has no
//!   mount point, so it becomes a link relative to the link's own directory
//!   (`../a`), which stays right wherever the tree is copied (the Linux kernel's
//!   ntfs3 driver does the same for junctions);
//! - anything else (a volume GUID, a network share, a path that is not on this
//!   volume) cannot be expressed: ntfs-3g points those into a `.NTFS-3G` directory
//!   the user has to fill by hand. Here they are listed, with the Windows target,
//!   and skipped by `get` with a note, rather than made into links to nowhere.

/// An NTFS link's target.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// A Linux path, used as it is (Interix, WSL, relative Windows targets).
    Unix(String),
    /// A path from the root of a volume, to be looked up on this one.
    FromRoot {
        components: Vec<String>,
        shown: String,
    },
    /// Cannot be expressed here; `why` says what it names.
    Elsewhere { shown: String, why: &'static str },
}

/// The target of a Windows symlink or junction from its substitute and print names.
pub fn from_windows(substitute: &str, print: &str) -> Target {
    let nt = substitute
        .strip_prefix("\\??\\")
        .or_else(|| substitute.strip_prefix("\\\\?\\"));
    let plain = nt.unwrap_or(substitute);
    let shown = if print.is_empty() { plain } else { print }.to_string();
    let from_root = |rest: &str| Target::FromRoot {
        components: rest
            .split('\\')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect(),
        shown: shown.clone(),
    };
    let drive_rest = |p: &str| {
        let mut ch = p.chars();
        match (ch.next(), ch.next()) {
            (Some(l), Some(':')) if l.is_ascii_alphabetic() => {
                let rest = ch.as_str();
                (rest.is_empty() || rest.starts_with('\\')).then(|| rest.to_string())
            }
            _ => None,
        }
    };
    let elsewhere = |why| Target::Elsewhere {
        shown: shown.clone(),
        why,
    };
    if let Some(rest) = drive_rest(plain) {
        return from_root(&rest);
    }
    if nt.is_some() {
        return if plain.starts_with("UNC\\") {
            elsewhere("a network share")
        } else if plain.starts_with("Volume{") {
            elsewhere("another volume, named by its GUID")
        } else {
            elsewhere("a Windows device path")
        };
    }
    if plain.starts_with("\\\\") {
        return elsewhere("a network share");
    }
    if let Some(rest) = plain.strip_prefix('\\') {
        return from_root(rest);
    }
    Target::Unix(plain.replace('\\', "/"))
}

/// `to` (components from the volume's root) as a path relative to the directory
/// `from` (components of the link's directory). NTFS names are compared without
/// case, as the volume looks them up.
pub fn relative(from: &[&str], to: &[String]) -> String {
    let same = from
        .iter()
        .zip(to)
        .take_while(|(a, b)| a.to_lowercase() == b.to_lowercase())
        .count();
    let ups = from.len().saturating_sub(same);
    let mut parts: Vec<&str> = std::iter::repeat_n("..", ups).collect();
    parts.extend(to.iter().skip(same).map(String::as_str));
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(c: &[&str], shown: &str) -> Target {
        Target::FromRoot {
            components: c.iter().map(|s| s.to_string()).collect(),
            shown: shown.into(),
        }
    }

    #[test]
    fn windows_targets_map_as_ntfs_3g_maps_them() {
        assert_eq!(
            from_windows("..\\a\\b.txt", "..\\a\\b.txt"),
            Target::Unix("../a/b.txt".into())
        );
        assert_eq!(
            from_windows("\\??\\C:\\Users\\Public", "C:\\Users\\Public"),
            root(&["Users", "Public"], "C:\\Users\\Public")
        );
        assert_eq!(from_windows("d:\\x\\", ""), root(&["x"], "d:\\x\\"));
        assert_eq!(from_windows("\\??\\C:\\", ""), root(&[], "C:\\"));
        assert_eq!(
            from_windows("\\Windows", ""),
            root(&["Windows"], "\\Windows")
        );
        assert!(matches!(
            from_windows("\\??\\Volume{1234-5678}\\", ""),
            Target::Elsewhere { why, .. } if why.contains("GUID")
        ));
        assert!(matches!(
            from_windows("\\??\\UNC\\srv\\share", "\\\\srv\\share"),
            Target::Elsewhere { shown, why: "a network share" } if shown == "\\\\srv\\share"
        ));
        assert!(matches!(
            from_windows("\\\\srv\\share", ""),
            Target::Elsewhere {
                why: "a network share",
                ..
            }
        ));
        // Not a drive: `C:x` is relative to the drive's current directory.
        assert!(matches!(
            from_windows("\\??\\C:x", ""),
            Target::Elsewhere { .. }
        ));
    }

    #[test]
    fn relative_paths_climb_only_what_differs() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(relative(&["d3"], &s(&["d2", "sub"])), "../d2/sub");
        assert_eq!(relative(&[], &s(&["d4"])), "d4");
        assert_eq!(relative(&["A", "b"], &s(&["a", "B", "c"])), "c");
        assert_eq!(relative(&["a", "b"], &s(&["a"])), "..");
        assert_eq!(relative(&["a"], &s(&["a"])), ".");
    }
}
