//! Network shares as repository locations. Clonezilla users keep their images on a Windows
//! share or a NAS, so the live system mounts SMB shares itself: the kernel's cifs client
//! through mount(2), with the server resolved here (the kernel resolves no names) and the
//! password handed only to the kernel — never on a command line, in a log or an error.
//! Both the CLI (`ironclone share mount`) and the TUI (a typed `//server/share`) use this.

pub mod nfs;
pub mod options;
pub mod spec;

pub use nfs::{NfsExport, NfsOptions};
pub use options::{cifs_options, MountData, Password, SmbCredentials, SmbOptions};
pub use spec::SmbShare;

use nix::errno::Errno;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    #[error("\"{location}\" is not a share location: {why}")]
    BadLocation { location: String, why: String },
    #[error("share option {field}: {why}")]
    BadOption { field: &'static str, why: String },
    #[error("no network: no interface got an address within {waited_s} s (is the cable plugged in, is there a DHCP server?)")]
    NoNetwork { waited_s: u64 },
    #[error("cannot resolve the server name {host}: {why}")]
    Resolve { host: String, why: String },
    #[error("mount point {path}: {why}")]
    MountPoint { path: PathBuf, why: String },
    #[error("{unc} on {ip}: {why} (details: dmesg | grep -i -e CIFS -e NFS)")]
    Mount {
        unc: String,
        ip: IpAddr,
        why: String,
        errno: i32,
    },
    #[error("unmounting {path}: {why}")]
    Umount { path: PathBuf, why: String },
}

/// True when typed text names a share (`//server/share`, `\\server\share`,
/// `smb://server/share`, or an NFS export `server:/path`) rather than a local path.
pub fn is_share_location(text: &str) -> bool {
    text.starts_with("//")
        || text.starts_with("\\\\")
        || text.starts_with("smb://")
        || NfsExport::looks_like(text)
}

/// True when typed text names an SMB share, the kind that can want a login.
pub fn is_smb_location(text: &str) -> bool {
    is_share_location(text) && !NfsExport::looks_like(text)
}

/// True when some interface other than loopback has an IPv4 route, i.e. DHCP (or the user)
/// configured it. /proc/net/route lists only routes of configured interfaces.
fn network_configured() -> bool {
    let Ok(t) = std::fs::read_to_string("/proc/net/route") else {
        return false;
    };
    t.lines()
        .skip(1)
        .any(|l| l.split_whitespace().next().is_some_and(|i| i != "lo"))
}

/// True when something is mounted at `path` (per the mount table that
/// `discover::mountinfo` reads and unescapes). Mounting a share again on top would
/// hide the first one, not replace it.
pub fn is_mounted_at(path: &Path) -> bool {
    crate::discover::mountinfo::load(Path::new("/proc/self/mountinfo"))
        .is_ok_and(|mounts| mounts.iter().any(|m| m.mount_point == path))
}

fn check_mountpoint(mountpoint: &Path) -> Result<(), ShareError> {
    let mp_err = |why: String| ShareError::MountPoint {
        path: mountpoint.to_path_buf(),
        why,
    };
    std::fs::create_dir_all(mountpoint).map_err(|e| mp_err(e.to_string()))?;
    if !mountpoint.is_dir() {
        return Err(mp_err("not a directory".into()));
    }
    if is_mounted_at(mountpoint) {
        return Err(mp_err(
            "something is already mounted there (unmount it first)".into(),
        ));
    }
    Ok(())
}

/// Waits up to `max` for an address from DHCP, which the live system requests in the
/// background at boot (a share typed right after boot must not fail for being early).
pub fn wait_for_network(max: Duration) -> Result<(), ShareError> {
    let start = Instant::now();
    while !network_configured() {
        if start.elapsed() >= max {
            return Err(ShareError::NoNetwork {
                waited_s: max.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// The server's address: an IP literal as is, a name through the system resolver
/// (/etc/hosts, then DNS from /etc/resolv.conf that DHCP wrote). IPv4 is preferred because
/// the live system's DHCP only configures IPv4.
pub fn resolve(host: &str) -> Result<IpAddr, ShareError> {
    if let Ok(ip) = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
    {
        return Ok(ip);
    }
    let addrs: Vec<IpAddr> = (host, 445)
        .to_socket_addrs()
        .map_err(|e| ShareError::Resolve {
            host: host.into(),
            why: e.to_string(),
        })?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| ShareError::Resolve {
            host: host.into(),
            why: "the resolver returned no address".into(),
        })
}

/// What a cifs mount errno means for this share, in words a user can act on.
pub fn explain_errno(e: Errno, share: &SmbShare) -> String {
    let (h, s) = (&share.host, &share.share);
    match e {
        Errno::ENOENT if share.subdir.is_empty() => {
            format!("the server {h} has no share named \"{s}\" (check the share name)")
        }
        Errno::ENOENT => format!(
            "the server {h} has no share \"{s}\" or no folder \"{}\" in it",
            share.subdir
        ),
        Errno::EACCES | Errno::EKEYREJECTED => format!(
            "the server {h} refused the login for share \"{s}\" (wrong user or password, or no guest access)"
        ),
        Errno::EPERM => "permission denied (mounting needs root)".into(),
        Errno::EHOSTUNREACH | Errno::ENETUNREACH | Errno::EHOSTDOWN => {
            format!("the server {h} cannot be reached (no route; check the network)")
        }
        Errno::ECONNREFUSED => {
            format!("the server {h} refused the connection on port 445 (no SMB server there?)")
        }
        Errno::ETIMEDOUT => format!("the server {h} did not answer (timed out)"),
        Errno::ENODEV => "this kernel has no SMB/CIFS support (cifs module missing)".into(),
        Errno::EOPNOTSUPP | Errno::EPROTO => format!(
            "the server {h} does not speak the requested SMB version (try another --vers)"
        ),
        Errno::EBUSY => "the mount point is busy (already mounted?)".into(),
        Errno::EINVAL => "the kernel refused the mount options (invalid argument)".into(),
        other => format!("mount failed: {}", other.desc()),
    }
}

/// Mounts `share` at `mountpoint` (made if missing) and returns the directory to use: the
/// mount point, or the folder inside the share when the location named one.
pub fn mount_smb(
    share: &SmbShare,
    mountpoint: &Path,
    opts: &SmbOptions,
    net_wait: Duration,
) -> Result<PathBuf, ShareError> {
    // Bad options are the user's to fix now, not after waiting for the network.
    cifs_options(share, IpAddr::from([0, 0, 0, 0]), opts)?;
    check_mountpoint(mountpoint)?;
    wait_for_network(net_wait)?;
    let ip = resolve(&share.host)?;
    let data = cifs_options(share, ip, opts)?;
    // The mount source carries the folder: the kernel then mounts that folder as the root
    // (its prefixpath), so the folder must exist on the server.
    let source = if share.subdir.is_empty() {
        share.source()
    } else {
        format!("{}/{}", share.source(), share.subdir)
    };
    let flags = if opts.read_only {
        nix::mount::MsFlags::MS_RDONLY
    } else {
        nix::mount::MsFlags::empty()
    };
    nix::mount::mount(
        Some(source.as_str()),
        mountpoint,
        Some("cifs"),
        flags,
        Some(data.as_kernel_data()),
    )
    .map_err(|e| ShareError::Mount {
        unc: share.unc(),
        ip,
        why: explain_errno(e, share),
        errno: e as i32,
    })?;
    Ok(mountpoint.to_path_buf())
}

/// Mounts an NFSv4 export at `mountpoint` (made if missing).
pub fn mount_nfs(
    export: &NfsExport,
    mountpoint: &Path,
    opts: &NfsOptions,
    net_wait: Duration,
) -> Result<PathBuf, ShareError> {
    let unspecified = IpAddr::from([0, 0, 0, 0]);
    nfs::nfs_options(unspecified, unspecified, opts)?;
    check_mountpoint(mountpoint)?;
    wait_for_network(net_wait)?;
    let ip = resolve(&export.host)?;
    let client = nfs::local_addr_for(ip)?;
    let data = nfs::nfs_options(ip, client, opts)?;
    let flags = if opts.read_only {
        nix::mount::MsFlags::MS_RDONLY
    } else {
        nix::mount::MsFlags::empty()
    };
    nix::mount::mount(
        Some(export.source().as_str()),
        mountpoint,
        Some("nfs4"),
        flags,
        Some(data.as_str()),
    )
    .map_err(|e| ShareError::Mount {
        unc: export.source(),
        ip,
        why: nfs::explain_errno(e, export),
        errno: e as i32,
    })?;
    Ok(mountpoint.to_path_buf())
}

/// Unmounts a share. Repositories sync what they write, so a plain unmount loses nothing.
pub fn umount(mountpoint: &Path) -> Result<(), ShareError> {
    nix::mount::umount(mountpoint).map_err(|e| ShareError::Umount {
        path: mountpoint.to_path_buf(),
        why: match e {
            Errno::EINVAL => "not a mount point".into(),
            Errno::EBUSY => "still in use (a shell or a job has files open there)".into(),
            other => other.desc().into(),
        },
    })
}

/// Where the TUI mounts a share typed as a location: one directory per server and share.
pub fn default_mountpoint(share: &SmbShare) -> PathBuf {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    PathBuf::from(format!(
        "/run/ironclone/shares/{}-{}",
        clean(&share.host),
        clean(&share.share)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_or_path() {
        assert!(is_share_location("//nas/backups"));
        assert!(is_share_location("\\\\nas\\backups"));
        assert!(is_share_location("smb://nas/x"));
        assert!(is_share_location("nas:/volume1/backups"));
        assert!(!is_share_location("/mnt/usb"));
        assert!(is_smb_location("//nas/backups"));
        assert!(!is_smb_location("nas:/volume1/backups"));
        assert!(
            is_smb_location("smb://nas/x"),
            "an SMB URL is not an NFS export"
        );
        assert!(!is_smb_location("nfs://nas/x"));
    }

    #[test]
    fn errors_name_host_and_share() {
        let s = SmbShare::parse("//nas/backups").unwrap();
        let m = explain_errno(Errno::ENOENT, &s);
        assert!(m.contains("nas") && m.contains("\"backups\""), "{m}");
        let m = explain_errno(Errno::EACCES, &s);
        assert!(
            m.contains("refused the login") && m.contains("backups"),
            "{m}"
        );
        let s = SmbShare::parse("//nas/backups/pc1").unwrap();
        assert!(explain_errno(Errno::ENOENT, &s).contains("\"pc1\""));
        assert!(explain_errno(Errno::EHOSTUNREACH, &s).contains("cannot be reached"));
    }

    #[test]
    fn resolve_literals_and_names() {
        assert_eq!(resolve("10.0.2.4").unwrap().to_string(), "10.0.2.4");
        assert_eq!(resolve("[::1]").unwrap().to_string(), "::1");
        assert!(resolve("localhost").unwrap().is_loopback());
        let e = resolve("no-such-host.invalid").unwrap_err().to_string();
        assert!(e.contains("no-such-host.invalid"), "{e}");
    }

    #[test]
    fn mounted_detection() {
        assert!(is_mounted_at(Path::new("/proc")));
        assert!(!is_mounted_at(Path::new("/proc/self")));
        let s = SmbShare::parse("//nas/backups").unwrap();
        let e = mount_smb(
            &s,
            Path::new("/proc"),
            &SmbOptions::default(),
            Duration::ZERO,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("already mounted"), "{e}");
    }

    #[test]
    fn mountpoint_names() {
        let s = SmbShare::parse("//10.0.2.4/my share").unwrap();
        assert_eq!(
            default_mountpoint(&s),
            PathBuf::from("/run/ironclone/shares/10.0.2.4-my_share")
        );
    }
}
