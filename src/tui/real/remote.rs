//! A typed `s3://` or `sftp://` repository on the real machine: the network comes up as
//! for shares, the credentials go to the storage layer in memory for this location
//! (`RemoteOptions::set_for`), and the store is asked for the repository's config at
//! once so a wrong secret, a bad key or a dead endpoint shows on the credentials
//! screen, not in the middle of a job.
//!
//! SFTP host keys: a live system has no known_hosts, so a first connection would always
//! be refused. The key is fetched with `ssh-keyscan`, its fingerprints are shown, and
//! only when the user types "yes" are those exact keys added to the known_hosts file
//! that `ssh` itself reads (`ssh -G`); the connection then runs with strict checking,
//! so a different key offered later (someone in between) is still refused.

use crate::repo::storage::{parse_location, Location, RemoteOptions};
use crate::repo::Repository;
use crate::tui::remote::{HostKey, RemoteCreds, RemoteDefaults};
use crate::tui::services::ServiceError;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long a remote location waits for DHCP (as a typed share does).
const NET_WAIT: Duration = Duration::from_secs(20);

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub(super) fn defaults() -> RemoteDefaults {
    RemoteDefaults {
        endpoint: env("AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL")),
        region: env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")),
        access_key: env("AWS_ACCESS_KEY_ID"),
        secret_in_env: env("AWS_SECRET_ACCESS_KEY").is_some(),
    }
}

/// Whether `host` is this machine: no DHCP address is needed to reach it.
fn is_local_host(host: &str) -> bool {
    let h = host.trim_matches(|c| c == '[' || c == ']');
    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// The host of an `http(s)://host[:port]/...` endpoint.
fn endpoint_host(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
}

pub(super) fn open(location: &str, creds: &RemoteCreds) -> Result<PathBuf, ServiceError> {
    let path = Path::new(location);
    let loc = parse_location(path).map_err(|e| ServiceError::Plain(e.to_string()))?;
    let mut opts = RemoteOptions::default();
    let host = match &loc {
        Location::S3 { .. } => {
            let endpoint = Some(creds.endpoint.trim().to_string()).filter(|e| !e.is_empty());
            opts.s3_endpoint = endpoint.or_else(|| defaults().endpoint);
            let host = opts
                .s3_endpoint
                .as_deref()
                .map_or("", endpoint_host)
                .to_string();
            opts.s3_region = Some(creds.region.trim().to_string()).filter(|r| !r.is_empty());
            opts.s3_path_style = creds.path_style;
            let id = creds.access_key.trim();
            if !id.is_empty() && creds.secret_key.char_count() > 0 {
                opts.s3_access_key = Some(id.to_string());
                opts.s3_secret_key = Some(creds.secret_key.clone());
            }
            host
        }
        Location::Sftp { host, .. } => {
            let key = creds.key_file.trim();
            if !key.is_empty() {
                let key = PathBuf::from(key);
                if !key.is_file() {
                    return Err(format!("The key file {} does not exist.", key.display()).into());
                }
                opts.sftp_key = Some(key);
            }
            if creds.password.char_count() > 0 {
                opts.sftp_password = Some(creds.password.clone());
            }
            host.clone()
        }
        Location::Local(_) => return Err(format!("{location} is not a remote location.").into()),
    };
    if !is_local_host(&host) {
        crate::share::wait_for_network(NET_WAIT)?;
    }
    if let Location::Sftp {
        user, host, port, ..
    } = &loc
    {
        check_host_key(user.as_deref(), host, *port)?;
    }
    RemoteOptions::set_for(location, opts);
    Repository::exists(path).map_err(ServiceError::repo(format!(
        "Could not connect to {location}"
    )))?;
    Ok(path.to_path_buf())
}

/// Runs `cmd`; its stdout, or an error naming the tool with its stderr.
fn run(cmd: &mut Command, input: Option<&str>) -> Result<String, ServiceError> {
    let what = format!("{:?}", cmd.get_program());
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("Could not run {what}: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("Could not talk to {what}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("Could not run {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `host` or `[host]:port`, as known_hosts names a server.
fn known_name(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) if p != 22 => format!("[{host}]:{p}"),
        _ => host.to_string(),
    }
}

/// The known_hosts files `ssh` reads for this server (user's first), from `ssh -G`.
fn known_hosts_files(user: Option<&str>, host: &str, port: Option<u16>) -> Vec<PathBuf> {
    let mut cmd = Command::new("ssh");
    cmd.arg("-G");
    if let Some(p) = port {
        cmd.arg("-p").arg(p.to_string());
    }
    if let Some(u) = user {
        cmd.arg("-l").arg(u);
    }
    cmd.arg(host);
    let home = env("HOME").unwrap_or_else(|| "/root".into());
    let mut files = Vec::new();
    if let Ok(out) = run(&mut cmd, None) {
        // The user's files first: an accepted key is added to the first of them.
        for key in ["userknownhostsfile ", "globalknownhostsfile "] {
            for l in out.lines() {
                if let Some(v) = l.strip_prefix(key) {
                    files.extend(v.split_whitespace().map(|f| match f.strip_prefix("~/") {
                        Some(rest) => Path::new(&home).join(rest),
                        None => PathBuf::from(f),
                    }));
                }
            }
        }
    }
    if files.is_empty() {
        files.push(Path::new(&home).join(".ssh/known_hosts"));
    }
    files
}

/// Refuses (with the keys to show) a server whose host key no known_hosts file has.
fn check_host_key(user: Option<&str>, host: &str, port: Option<u16>) -> Result<(), ServiceError> {
    let name = known_name(host, port);
    let files = known_hosts_files(user, host, port);
    let known = files.iter().filter(|f| f.is_file()).any(|f| {
        Command::new("ssh-keygen")
            .arg("-F")
            .arg(&name)
            .arg("-f")
            .arg(f)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if known {
        return Ok(());
    }
    let mut scan = Command::new("ssh-keyscan");
    scan.args(["-T", "10"]);
    if let Some(p) = port {
        scan.arg("-p").arg(p.to_string());
    }
    let lines: Vec<String> = run(scan.arg(host), None)?
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        return Err(
            format!("{name} offered no host key (is an SSH server listening there?).").into(),
        );
    }
    let listed = run(
        Command::new("ssh-keygen").args(["-l", "-f", "-"]),
        Some(&(lines.join("\n") + "\n")),
    )?;
    // "256 SHA256:abc... [127.0.0.1]:2222 (ED25519)" → "SHA256:abc... (ED25519)"
    let fingerprints = listed
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let fp = w.nth(1)?;
            let kind = l.rsplit(' ').next().unwrap_or("");
            Some(format!("{fp} {kind}"))
        })
        .collect();
    Err(ServiceError::UnknownHostKey(HostKey {
        host: name,
        fingerprints,
        lines,
    }))
}

/// Appends the accepted keys to the user's known_hosts (the first file `ssh` reads).
pub(super) fn trust(key: &HostKey) -> Result<(), ServiceError> {
    let (host, port) = match key.host.strip_prefix('[').and_then(|r| r.split_once("]:")) {
        Some((h, p)) => (h.to_string(), p.parse().ok()),
        None => (key.host.clone(), None),
    };
    let files = known_hosts_files(None, &host, port);
    let Some(file) = files.first() else {
        return Err("ssh names no known_hosts file.".into());
    };
    let fail = |e: std::io::Error| format!("{}: {e}", file.display());
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(fail)?;
    for l in &key.lines {
        writeln!(f, "{l}").map_err(fail)?;
    }
    f.sync_all().map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_hosts_and_local_hosts() {
        assert_eq!(endpoint_host("http://127.0.0.1:8333"), "127.0.0.1");
        assert_eq!(endpoint_host("https://s3.example.com/x"), "s3.example.com");
        assert!(is_local_host("127.0.0.1"));
        assert!(is_local_host("localhost"));
        assert!(!is_local_host("s3.example.com"));
        assert!(!is_local_host(""));
        assert_eq!(known_name("h", Some(2222)), "[h]:2222");
        assert_eq!(known_name("h", None), "h");
    }
}
