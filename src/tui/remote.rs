//! Remote repositories typed in the repository picker (`s3://bucket/prefix`,
//! `sftp://user@host[:port]/path`): what the credentials screen holds and what it hands
//! the services. Secrets are `share::Password` (never printed) and go to the storage
//! layer in memory (`RemoteOptions::set_for`), never through the environment or a file.

use crate::repo::storage::{parse_location, Location};
use crate::share::Password;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteKind {
    S3,
    Sftp,
}

impl RemoteKind {
    /// The kind a typed location names, or None for a path or share. A location that
    /// starts like one but does not parse is an error naming what is wrong.
    pub fn of(text: &str) -> Option<Result<RemoteKind, String>> {
        let t = text.trim();
        if !(t.starts_with("s3://") || t.starts_with("sftp://")) {
            return None;
        }
        Some(match parse_location(Path::new(t)) {
            Ok(Location::S3 { .. }) => Ok(RemoteKind::S3),
            Ok(Location::Sftp { .. }) => Ok(RemoteKind::Sftp),
            Ok(Location::Local(_)) => Err(format!("{t} is not a remote location.")),
            Err(e) => Err(e.to_string()),
        })
    }
}

/// What the user typed on the credentials screen. Empty fields fall back to what the
/// storage layer finds by itself (AWS environment and files, ssh's keys and agent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteCreds {
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: Password,
    pub path_style: bool,
    /// SSH private key file for SFTP.
    pub key_file: String,
    /// SFTP login password (empty: key login only); drawn as stars.
    pub password: Password,
}

/// What the live system's environment already provides, shown prefilled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteDefaults {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key: Option<String>,
    /// A secret key is in `AWS_SECRET_ACCESS_KEY`: an empty field uses it.
    pub secret_in_env: bool,
}

/// An SFTP server's host key that is not in known_hosts yet, as shown for the user to
/// accept (trust on first use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostKey {
    /// `host` or `[host]:port`, as known_hosts names it.
    pub host: String,
    /// One `SHA256:... (ED25519)` line per key the server offered.
    pub fingerprints: Vec<String>,
    /// The known_hosts lines to add when the user accepts: exactly the keys shown.
    pub lines: Vec<String>,
}

/// The credentials screen's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteForm {
    pub location: String,
    pub kind: RemoteKind,
    pub creds: RemoteCreds,
    pub field: usize,
    pub secret_in_env: bool,
    pub note: Option<String>,
}

/// One field of the form as drawn: label, shown text (stars for a secret), hint.
pub struct FieldView {
    pub label: &'static str,
    pub text: String,
    pub hint: &'static str,
}

impl RemoteForm {
    pub fn new(location: &str, kind: RemoteKind, d: &RemoteDefaults) -> RemoteForm {
        let creds = RemoteCreds {
            endpoint: d.endpoint.clone().unwrap_or_default(),
            region: d.region.clone().unwrap_or_default(),
            access_key: d.access_key.clone().unwrap_or_default(),
            // Most self-hosted stores (MinIO, SeaweedFS, Garage) want path-style
            // addressing; AWS itself takes either.
            path_style: d.endpoint.is_some(),
            ..Default::default()
        };
        RemoteForm {
            location: location.trim().to_string(),
            kind,
            creds,
            field: 0,
            secret_in_env: d.secret_in_env,
            note: None,
        }
    }

    pub fn field_count(&self) -> usize {
        match self.kind {
            RemoteKind::S3 => 5,
            RemoteKind::Sftp => 2,
        }
    }

    /// The field that toggles rather than takes text.
    pub fn on_toggle(&self) -> bool {
        self.kind == RemoteKind::S3 && self.field == 4
    }

    pub fn fields(&self) -> Vec<FieldView> {
        let c = &self.creds;
        match self.kind {
            RemoteKind::S3 => vec![
                FieldView {
                    label: "Endpoint:",
                    text: c.endpoint.clone(),
                    hint: "empty: AWS",
                },
                FieldView {
                    label: "Region:",
                    text: c.region.clone(),
                    hint: "empty: us-east-1",
                },
                FieldView {
                    label: "Access key:",
                    text: c.access_key.clone(),
                    hint: "empty: from the AWS environment or files",
                },
                FieldView {
                    label: "Secret key:",
                    text: "*".repeat(c.secret_key.char_count()),
                    hint: if self.secret_in_env {
                        "empty: AWS_SECRET_ACCESS_KEY"
                    } else {
                        ""
                    },
                },
                FieldView {
                    label: "Path-style:",
                    text: if c.path_style { "on" } else { "off" }.into(),
                    hint: "Space; on for MinIO, SeaweedFS, Ceph",
                },
            ],
            RemoteKind::Sftp => vec![
                FieldView {
                    label: "Key file:",
                    text: c.key_file.clone(),
                    hint: "empty: ~/.ssh/id_* and the ssh agent",
                },
                FieldView {
                    label: "Password:",
                    text: "*".repeat(c.password.char_count()),
                    hint: "empty: key login only",
                },
            ],
        }
    }

    /// Why the form cannot be sent yet, if it cannot.
    pub fn missing(&self) -> Option<String> {
        let c = &self.creds;
        match self.kind {
            RemoteKind::S3 if !c.access_key.trim().is_empty() && c.secret_key.char_count() == 0 => {
                (!self.secret_in_env).then(|| "Type the secret key of that access key.".into())
            }
            RemoteKind::S3 if c.access_key.trim().is_empty() && c.secret_key.char_count() > 0 => {
                Some("Type the access key id that goes with the secret key.".into())
            }
            RemoteKind::S3 => {
                let e = c.endpoint.trim();
                let url = e.is_empty() || e.starts_with("http://") || e.starts_with("https://");
                (!url).then(|| "The endpoint is a URL: http://host:port or https://host.".into())
            }
            RemoteKind::Sftp => None,
        }
    }
}
