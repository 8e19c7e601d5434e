//! Options for repositories on S3 or SFTP, taken by every command (a repository
//! location is a path, `s3://bucket/prefix` or `sftp://user@host/path`).

use anyhow::Context;
use ironclone::repo::storage::RemoteOptions;
use ironclone::share::Password;
use std::io::IsTerminal;
use std::path::PathBuf;
use zeroize::Zeroizing;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct StorageArgs {
    /// S3 endpoint URL (MinIO, Ceph, Garage, SeaweedFS...); default $AWS_ENDPOINT_URL, else AWS.
    #[arg(long, global = true, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region; default $AWS_REGION, else us-east-1.
    #[arg(long, global = true)]
    pub s3_region: Option<String>,
    /// Path-style S3 addressing (endpoint/bucket/key), as most self-hosted stores want.
    #[arg(long, global = true)]
    pub s3_path_style: bool,
    /// SSH private key for sftp:// repositories (default: ssh's own keys and agent).
    #[arg(long, global = true, value_name = "FILE")]
    pub sftp_key: Option<PathBuf>,
    /// Accept an SFTP server's host key that is not in known_hosts yet, and remember it.
    #[arg(long, global = true)]
    pub sftp_accept_new_host_key: bool,
    /// File whose first line is the SFTP login password (not the repository
    /// passphrase, which is --password-file).
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        conflicts_with = "sftp_ask_password"
    )]
    pub sftp_password_file: Option<PathBuf>,
    /// Ask for the SFTP login password on the terminal (not echoed).
    #[arg(long, global = true)]
    pub sftp_ask_password: bool,
}

impl StorageArgs {
    /// The SFTP password the options name, read now (a file or the no-echo prompt).
    /// Never from the environment: other processes of the user could read it there.
    pub fn sftp_password(&self) -> anyhow::Result<Option<Password>> {
        if let Some(f) = &self.sftp_password_file {
            let text = Zeroizing::new(
                std::fs::read_to_string(f)
                    .with_context(|| format!("reading the SFTP password file {}", f.display()))?,
            );
            let p = Password::from_file_content(&text);
            anyhow::ensure!(
                p.char_count() > 0,
                "the SFTP password file {} is empty",
                f.display()
            );
            return Ok(Some(p));
        }
        if self.sftp_ask_password {
            anyhow::ensure!(
                std::io::stdin().is_terminal(),
                "--sftp-ask-password needs a terminal; use --sftp-password-file"
            );
            let p = Zeroizing::new(ironclone::unlock::read_secret("SFTP password: ")?);
            return Ok(Some(Password::new(p.as_str())));
        }
        Ok(None)
    }
}

impl From<StorageArgs> for RemoteOptions {
    fn from(a: StorageArgs) -> Self {
        RemoteOptions {
            s3_endpoint: a.s3_endpoint,
            s3_region: a.s3_region,
            s3_path_style: a.s3_path_style,
            sftp_key: a.sftp_key,
            sftp_accept_new_host_key: a.sftp_accept_new_host_key,
            // Read by `sftp_password` first (it can fail); never from here.
            sftp_password: None,
            ..RemoteOptions::default()
        }
    }
}

/// The remote options of the command line, with the SFTP password read. The password
/// login helper is set up here, before any thread starts, when a password is given or
/// for the TUI on the real machine (where one may be typed later).
pub fn setup(cli: &super::Cli) -> anyhow::Result<RemoteOptions> {
    let password = cli.storage.sftp_password()?;
    let tui = cli.command.is_none() && !cli.demo_data;
    if password.is_some() || tui {
        let exe = std::env::current_exe().context("finding the ironclone binary")?;
        ironclone::repo::storage::askpass::install(&exe)
            .context("setting up SFTP password login")?;
    }
    let mut opts = RemoteOptions::from(cli.storage.clone());
    opts.sftp_password = password;
    Ok(opts)
}
