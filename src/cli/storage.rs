//! Options for repositories on S3 or SFTP, taken by every command (a repository
//! location is a path, `s3://bucket/prefix` or `sftp://user@host/path`).

use ironclone::repo::storage::RemoteOptions;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Default)]
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
}

impl From<StorageArgs> for RemoteOptions {
    fn from(a: StorageArgs) -> Self {
        RemoteOptions {
            s3_endpoint: a.s3_endpoint,
            s3_region: a.s3_region,
            s3_path_style: a.s3_path_style,
            sftp_key: a.sftp_key,
            sftp_accept_new_host_key: a.sftp_accept_new_host_key,
            ..RemoteOptions::default()
        }
    }
}
