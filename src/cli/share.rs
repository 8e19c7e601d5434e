//! `ironclone share mount|umount`: puts an SMB share (Windows, NAS) or an NFSv4 export
//! where a repository can live, from the live system's shell or an unattended job. The password comes from a file
//! or the environment, never from the command line (which every process can read in /proc).

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use ironclone::share::{
    self, NfsExport, NfsOptions, Password, SmbCredentials, SmbOptions, SmbShare,
};
use std::path::PathBuf;
use std::time::Duration;

/// Environment variable read for the password when no --password-file is given.
pub const PASSWORD_ENV: &str = "IRONCLONE_SHARE_PASSWORD";

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Subcommand)]
pub enum Action {
    /// Mount an SMB share (//server/share[/folder]) or NFSv4 export (server:/path) at MOUNTPOINT.
    Mount(MountArgs),
    /// Unmount a share mounted with `share mount`.
    Umount(UmountArgs),
}

#[derive(ClapArgs)]
pub struct MountArgs {
    /// The share: //server/share[/folder], \\server\share, smb://server/share, or an NFSv4
    /// export server:/path (nfs://server/path).
    pub location: String,
    /// Where to mount it (made if missing).
    pub mountpoint: PathBuf,
    /// User name (DOMAIN\user works too). Without it: guest login.
    #[arg(long)]
    pub user: Option<String>,
    /// Windows domain / workgroup of the user.
    #[arg(long)]
    pub domain: Option<String>,
    /// File whose first line is the password (otherwise $IRONCLONE_SHARE_PASSWORD, otherwise
    /// asked for on the terminal without echo).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// SMB version (3.1.1, 3.0, 2.1, 1.0) or NFS version (4, 4.1, 4.2); default: negotiated.
    #[arg(long)]
    pub vers: Option<String>,
    /// NFS server port (NFS only).
    #[arg(long, default_value_t = 2049)]
    pub port: u16,
    /// Mount read-only (enough to restore).
    #[arg(long)]
    pub read_only: bool,
    /// Seconds to wait for DHCP to configure the network before giving up.
    #[arg(long, default_value_t = 30)]
    pub net_wait: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(ClapArgs)]
pub struct UmountArgs {
    pub mountpoint: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// Reads a password from the terminal without echoing it (the rescuer on tty2 types it;
/// a file or an exported variable would linger in the shell's history or environment).
fn prompt_password(prompt: &str) -> anyhow::Result<Password> {
    Ok(Password::new(ironclone::unlock::read_secret(prompt)?))
}

fn credentials(a: &MountArgs, share: &SmbShare) -> anyhow::Result<SmbCredentials> {
    use std::io::IsTerminal;
    let mut password = match &a.password_file {
        Some(f) => Some(Password::from_file_content(
            &std::fs::read_to_string(f)
                .with_context(|| format!("reading the password file {}", f.display()))?,
        )),
        None => std::env::var(PASSWORD_ENV).ok().map(Password::new),
    };
    if password.is_none() && a.user.is_some() && std::io::stdin().is_terminal() {
        password = Some(prompt_password(&format!(
            "Password for {} on {}: ",
            a.user.as_deref().unwrap_or_default(),
            share.source()
        ))?);
    }
    let Some(user) = &a.user else {
        anyhow::ensure!(
            password.is_none(),
            "a password was given (--password-file or ${PASSWORD_ENV}) but no --user"
        );
        return Ok(SmbCredentials::default());
    };
    Ok(SmbCredentials::login(user, a.domain.clone(), password))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    match a.action {
        Action::Mount(m) if NfsExport::looks_like(&m.location) => {
            let export = NfsExport::parse(&m.location)?;
            anyhow::ensure!(
                m.user.is_none() && m.password_file.is_none(),
                "NFS exports take no --user/--password-file (the server trusts this machine's address)"
            );
            let opts = NfsOptions {
                vers: m.vers.clone().unwrap_or_else(|| "4".into()),
                port: m.port,
                read_only: m.read_only,
            };
            let dir = share::mount_nfs(
                &export,
                &m.mountpoint,
                &opts,
                Duration::from_secs(m.net_wait),
            )?;
            report_mounted(m.json, &export.source(), None, &dir);
            Ok(())
        }
        Action::Mount(m) => {
            let share = SmbShare::parse(&m.location)?;
            let opts = SmbOptions {
                credentials: credentials(&m, &share)?,
                vers: m.vers.clone(),
                read_only: m.read_only,
            };
            let dir = share::mount_smb(
                &share,
                &m.mountpoint,
                &opts,
                Duration::from_secs(m.net_wait),
            )?;
            report_mounted(m.json, &share.source(), Some(&share.subdir), &dir);
            Ok(())
        }
        Action::Umount(u) => {
            share::umount(&u.mountpoint)?;
            if u.json {
                println!(
                    "{}",
                    serde_json::json!({"event": "result", "unmounted": u.mountpoint})
                );
            } else {
                println!("unmounted {}", u.mountpoint.display());
            }
            Ok(())
        }
    }
}

/// The result line of a mount: JSON with `--json`, a sentence otherwise.
fn report_mounted(json: bool, source: &str, folder: Option<&str>, dir: &std::path::Path) {
    if json {
        let mut v = serde_json::json!({"event": "result", "share": source, "mountpoint": dir});
        if let Some(f) = folder {
            v["folder"] = f.into();
        }
        println!("{v}");
    } else {
        match folder.filter(|f| !f.is_empty()) {
            Some(f) => println!("mounted {source}/{f} at {}", dir.display()),
            None => println!("mounted {source} at {}", dir.display()),
        }
    }
}
