//! Parsing what a user types for an SMB share (`//host/share/dir`, `\\host\share`,
//! `smb://host/share`). Users copy these from Windows Explorer, a NAS's web page or
//! Clonezilla docs, so every common spelling is accepted and anything else is refused with
//! the reason, before any network traffic.

use super::ShareError;

/// A parsed SMB location: server, share name and an optional folder inside the share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmbShare {
    pub host: String,
    pub share: String,
    /// Folder inside the share, `/`-separated, no leading or trailing slash; may be empty.
    pub subdir: String,
}

impl SmbShare {
    /// Accepts `//host/share[/dir...]`, `\\host\share[\dir...]` and `smb://host/share[/dir...]`.
    pub fn parse(text: &str) -> Result<SmbShare, ShareError> {
        let bad = |why: &str| ShareError::BadLocation {
            location: text.to_string(),
            why: why.to_string(),
        };
        let rest = text
            .strip_prefix("smb://")
            .or_else(|| text.strip_prefix("//"))
            .or_else(|| text.strip_prefix("\\\\"))
            .ok_or_else(|| bad("a share is written //server/share (or \\\\server\\share)"))?;
        let norm = rest.replace('\\', "/");
        let mut parts = norm.split('/').filter(|p| !p.is_empty());
        let host = parts
            .next()
            .ok_or_else(|| bad("the server name is missing"))?;
        let share = parts
            .next()
            .ok_or_else(|| bad("the share name is missing after the server"))?;
        let subdir: Vec<&str> = parts.collect();
        if subdir.contains(&"..") {
            return Err(bad("\"..\" is not allowed in the folder"));
        }
        for (what, v) in [("server", host), ("share", share)] {
            if let Some(c) = v.chars().find(|c| c.is_control() || *c == ',' || *c == '@') {
                return Err(bad(&format!(
                    "the {what} name contains the character {c:?}, which cannot be passed to the kernel"
                )));
            }
        }
        if subdir.iter().any(|p| p.chars().any(|c| c.is_control())) {
            return Err(bad("the folder contains a control character"));
        }
        Ok(SmbShare {
            host: host.to_string(),
            share: share.to_string(),
            subdir: subdir.join("/"),
        })
    }

    /// `\\host\share` as the kernel's `unc=` option and Windows users write it.
    pub fn unc(&self) -> String {
        format!("\\\\{}\\{}", self.host, self.share)
    }

    /// `//host/share`, the mount source the kernel and /proc/mounts show.
    pub fn source(&self) -> String {
        format!("//{}/{}", self.host, self.share)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        for t in [
            "//nas/backups",
            "\\\\nas\\backups",
            "smb://nas/backups/",
            "//nas//backups",
        ] {
            let s = SmbShare::parse(t).unwrap();
            assert_eq!(
                (s.host.as_str(), s.share.as_str()),
                ("nas", "backups"),
                "{t}"
            );
            assert_eq!(s.subdir, "", "{t}");
        }
        let s = SmbShare::parse("//10.0.2.4/qemu/lab/pc1").unwrap();
        assert_eq!(s.subdir, "lab/pc1");
        assert_eq!(s.unc(), "\\\\10.0.2.4\\qemu");
        assert_eq!(s.source(), "//10.0.2.4/qemu");
    }

    #[test]
    fn refused() {
        for t in [
            "/mnt/x",
            "nas/backups",
            "//",
            "//nas",
            "//nas/",
            "//na,s/x",
            "//nas/sh,are",
            "//nas/x/../y",
            "//user@nas/x",
        ] {
            let e = SmbShare::parse(t).unwrap_err().to_string();
            assert!(e.contains(t), "{t}: {e}");
        }
    }
}
