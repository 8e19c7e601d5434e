//! A network share typed where the TUI asks for a repository path (`//server/share`,
//! `//server/share/folder`, or an NFSv4 export `server:/path`). A guest share (a NAS's
//! public folder) needs nothing more; when the guest mount fails, the TUI asks for a user
//! name and password and mounts again with them (`SmbCredentials`, whose password never
//! prints itself).

use crate::share::{self, NfsExport, NfsOptions, SmbCredentials, SmbOptions, SmbShare};
use crate::tui::services::ServiceError;
use std::path::PathBuf;
use std::time::Duration;

/// How long a typed share waits for DHCP: right after boot the address may still be coming.
const NET_WAIT: Duration = Duration::from_secs(20);

/// Mounts the share with `login` (a guest login when it names no user) unless it is
/// mounted already, and returns the directory to use as the repository: the folder
/// typed, or the share's `subdir` (like a partition).
pub fn open_share(
    text: &str,
    subdir: &str,
    login: &SmbCredentials,
) -> Result<PathBuf, ServiceError> {
    if NfsExport::looks_like(text) {
        return open_nfs(text, subdir);
    }
    let s = SmbShare::parse(text)?;
    let mp = share::default_mountpoint(&s);
    let mp = if s.subdir.is_empty() {
        mp
    } else {
        // A folder is mounted as its own root, so it gets its own mount point.
        PathBuf::from(format!("{}-{}", mp.display(), s.subdir.replace('/', "_")))
    };
    if !share::is_mounted_at(&mp) {
        let opts = SmbOptions {
            credentials: login.clone(),
            ..SmbOptions::default()
        };
        share::mount_smb(&s, &mp, &opts, NET_WAIT).map_err(|source| ServiceError::Mount {
            location: s.source(),
            source,
        })?;
    }
    if !s.subdir.is_empty() || (mp.join("config").exists() && !mp.join(subdir).exists()) {
        Ok(mp)
    } else {
        Ok(mp.join(subdir))
    }
}

/// An NFSv4 export is used like a share root: `<export>/ironclone` unless it already is a
/// repository.
fn open_nfs(text: &str, subdir: &str) -> Result<PathBuf, ServiceError> {
    let x = NfsExport::parse(text)?;
    let clean: String = format!("{}{}", x.host, x.path)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mp = PathBuf::from(format!("/run/ironclone/shares/nfs-{clean}"));
    if !share::is_mounted_at(&mp) {
        share::mount_nfs(&x, &mp, &NfsOptions::default(), NET_WAIT).map_err(|source| {
            ServiceError::Mount {
                location: x.source(),
                source,
            }
        })?;
    }
    if mp.join("config").exists() && !mp.join(subdir).exists() {
        Ok(mp)
    } else {
        Ok(mp.join(subdir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_location_is_a_sentence() {
        let e = open_share("//nas", "ironclone", &SmbCredentials::default()).unwrap_err();
        assert!(e.to_string().contains("share name is missing"), "{e}");
    }
}
