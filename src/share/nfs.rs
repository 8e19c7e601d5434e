//! NFSv4 exports as repository locations (Linux NAS boxes, TrueNAS, a Linux server). Like
//! SMB, the kernel client is driven straight through mount(2): the text options need the
//! server's address (`addr=`, the kernel resolves no names) and, for NFSv4.0 callbacks, our
//! own address towards it (`clientaddr=`), which is what mount.nfs would compute. Only v4 is
//! offered: it needs no rpcbind/statd/lockd helpers, which the live system does not run.

use super::ShareError;
use nix::errno::Errno;
use std::net::{IpAddr, UdpSocket};

/// A parsed NFS location: `server:/export/path` or `nfs://server/export/path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfsExport {
    pub host: String,
    /// Absolute path on the server, starting with `/`.
    pub path: String,
}

impl NfsExport {
    pub fn parse(text: &str) -> Result<NfsExport, ShareError> {
        let bad = |why: &str| ShareError::BadLocation {
            location: text.to_string(),
            why: why.to_string(),
        };
        let (host, path) = if let Some(rest) = text.strip_prefix("nfs://") {
            let (h, p) = rest.split_once('/').unwrap_or((rest, ""));
            (h.to_string(), format!("/{p}"))
        } else {
            let (h, p) = text
                .split_once(":/")
                .ok_or_else(|| bad("an NFS export is written server:/path or nfs://server/path"))?;
            (h.to_string(), format!("/{p}"))
        };
        if host.is_empty() {
            return Err(bad("the server name is missing"));
        }
        if host.contains(['/', ',', '@']) || host.chars().any(|c| c.is_control()) {
            return Err(bad(
                "the server name contains a character that is not allowed",
            ));
        }
        if path.contains(',') || path.chars().any(|c| c.is_control()) {
            return Err(bad("the path contains a comma or a control character"));
        }
        Ok(NfsExport { host, path })
    }

    /// True for text that names an NFS export rather than an SMB share or a local path.
    /// `smb://host/share` also holds ":/", so a URL counts only with the nfs scheme.
    pub fn looks_like(text: &str) -> bool {
        text.starts_with("nfs://")
            || (!text.starts_with('/')
                && !text.starts_with('\\')
                && !text.contains("://")
                && text.contains(":/"))
    }

    /// `server:/path`, the mount source the kernel and /proc/mounts show.
    pub fn source(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.path)
        } else {
            format!("{}:{}", self.host, self.path)
        }
    }
}

/// NFS mount settings besides the export.
#[derive(Clone, Debug)]
pub struct NfsOptions {
    /// "4", "4.0", "4.1" or "4.2"; "4" lets the kernel take the highest both sides speak.
    pub vers: String,
    pub port: u16,
    pub read_only: bool,
}

impl Default for NfsOptions {
    fn default() -> Self {
        NfsOptions {
            vers: "4".into(),
            port: 2049,
            read_only: false,
        }
    }
}

/// Our own address on the route to `server` (a UDP connect sends nothing, it only picks the
/// route and source address).
pub fn local_addr_for(server: IpAddr) -> Result<IpAddr, ShareError> {
    let any = if server.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(any)
        .and_then(|s| s.connect((server, 2049)).map(|_| s))
        .and_then(|s| s.local_addr())
        .map_err(|e| ShareError::Resolve {
            host: server.to_string(),
            why: format!("no route to it from this machine: {e}"),
        })?;
    Ok(sock.ip())
}

/// The text options for the kernel's nfs4 client.
pub fn nfs_options(
    server: IpAddr,
    client: IpAddr,
    opts: &NfsOptions,
) -> Result<String, ShareError> {
    if !["4", "4.0", "4.1", "4.2"].contains(&opts.vers.as_str()) {
        return Err(ShareError::BadOption {
            field: "vers",
            why: format!("{:?} is not an NFSv4 version (4, 4.0, 4.1, 4.2)", opts.vers),
        });
    }
    Ok(format!(
        "vers={},addr={server},clientaddr={client},port={},proto={},{}",
        opts.vers,
        opts.port,
        if server.is_ipv6() { "tcp6" } else { "tcp" },
        if opts.read_only { "ro" } else { "rw" }
    ))
}

/// What an nfs mount errno means for this export.
pub fn explain_errno(e: Errno, x: &NfsExport) -> String {
    let (h, p) = (&x.host, &x.path);
    match e {
        Errno::ENOENT => format!("the server {h} exports no path {p} (check the export)"),
        Errno::EACCES | Errno::EPERM => {
            format!("the server {h} refused this machine access to {p} (check the export's client list)")
        }
        Errno::ECONNREFUSED => {
            format!("the server {h} refused the connection (no NFS server there?)")
        }
        Errno::ETIMEDOUT => format!("the server {h} did not answer (timed out)"),
        Errno::EHOSTUNREACH | Errno::ENETUNREACH => {
            format!("the server {h} cannot be reached (no route; check the network)")
        }
        Errno::EPROTONOSUPPORT => format!("the server {h} does not speak NFS version 4 as asked"),
        Errno::ENODEV => "this kernel has no NFSv4 client (nfsv4 module missing)".into(),
        Errno::EBUSY => "the mount point is busy (already mounted?)".into(),
        other => format!("mount failed: {}", other.desc()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        let a = NfsExport::parse("nas:/volume1/backups").unwrap();
        let b = NfsExport::parse("nfs://nas/volume1/backups").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.source(), "nas:/volume1/backups");
        assert_eq!(NfsExport::parse("10.0.2.2:/").unwrap().path, "/");
        for bad in ["nas", ":/x", "na,s:/x", "nas:/a,b", "nfs:///x"] {
            let e = NfsExport::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn detection() {
        assert!(NfsExport::looks_like("nas:/x"));
        assert!(NfsExport::looks_like("nfs://nas/x"));
        assert!(!NfsExport::looks_like("//nas/x"));
        assert!(!NfsExport::looks_like("/mnt/a:/b"));
    }

    #[test]
    fn options() {
        let s: IpAddr = "10.0.2.2".parse().unwrap();
        let c: IpAddr = "10.0.2.15".parse().unwrap();
        let o = nfs_options(s, c, &NfsOptions::default()).unwrap();
        assert_eq!(
            o,
            "vers=4,addr=10.0.2.2,clientaddr=10.0.2.15,port=2049,proto=tcp,rw"
        );
        let bad = NfsOptions {
            vers: "3".into(),
            ..Default::default()
        };
        assert!(nfs_options(s, c, &bad).is_err());
        assert!(local_addr_for("127.0.0.1".parse().unwrap())
            .unwrap()
            .is_loopback());
    }

    #[test]
    fn errors_name_server_and_path() {
        let x = NfsExport::parse("nas:/backups").unwrap();
        let m = explain_errno(Errno::ENOENT, &x);
        assert!(m.contains("nas") && m.contains("/backups"), "{m}");
    }
}
