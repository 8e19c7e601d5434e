//! The demo's remote stores: `s3://lab-images/...` (its endpoint prefilled as if
//! AWS_ENDPOINT_URL were set) opens with access key `demo` and secret `secret`, anything
//! else is refused as a real store refuses it; `sftp://...@backup.lan/...` first shows
//! its host key, which must be accepted before it opens.

use crate::tui::remote::{HostKey, RemoteCreds, RemoteDefaults};
use crate::tui::services::ServiceError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the demo SFTP server's key was accepted in this session.
#[derive(Debug, Default)]
pub struct DemoRemote {
    trusted: AtomicBool,
}

pub const DEMO_ENDPOINT: &str = "http://10.0.2.2:8333";

pub fn defaults() -> RemoteDefaults {
    RemoteDefaults {
        endpoint: Some(DEMO_ENDPOINT.into()),
        region: None,
        access_key: None,
        secret_in_env: false,
    }
}

fn demo_key() -> HostKey {
    HostKey {
        host: "backup.lan".into(),
        fingerprints: vec!["SHA256:q5Xb0s9Zk2m1dW8f3VYb7Hj4uTnA6cLr0eQpK9sGzE4 (ED25519)".into()],
        lines: vec!["backup.lan ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemoKeyOnly".into()],
    }
}

impl DemoRemote {
    pub fn open(&self, location: &str, creds: &RemoteCreds) -> Result<PathBuf, ServiceError> {
        if location.starts_with("s3://") {
            if !location.starts_with("s3://lab-images") {
                return Err(format!(
                    "Could not connect to {location}: NotFound: the bucket does not exist"
                )
                .into());
            }
            let ok = creds.access_key == "demo"
                && creds.secret_key == crate::share::Password::new("secret");
            return match ok {
                true => Ok(PathBuf::from(location)),
                false => Err(format!(
                    "Could not connect to {location}: PermissionDenied: access denied (a wrong access key or secret, or no right to this bucket)"
                )
                .into()),
            };
        }
        if !self.trusted.load(Ordering::SeqCst) {
            return Err(ServiceError::UnknownHostKey(demo_key()));
        }
        Ok(PathBuf::from(location))
    }

    pub fn trust(&self, key: &HostKey) -> Result<(), ServiceError> {
        if *key != demo_key() {
            return Err("not the key the demo server offered".into());
        }
        self.trusted.store(true, Ordering::SeqCst);
        Ok(())
    }
}
