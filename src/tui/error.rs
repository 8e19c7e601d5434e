//! How a service call or a job failed, kept typed up to the screen that shows it, so
//! a media error on a disk is still known as one there (the advice differs: cables and
//! the disk, not the request) and the device error keeps its device and byte.

use crate::device::DeviceError;
use crate::discover::{DiscoverError, TargetCheckError};
use crate::imaging::ImagingError;
use crate::repo::RepoError;
use thiserror::Error;

/// `"{context}: "` before a wrapped error, or nothing when the wrapped error says it all.
fn lead(context: &Option<String>) -> String {
    context
        .as_ref()
        .map(|c| format!("{c}: "))
        .unwrap_or_default()
}

#[derive(Debug, Error)]
pub enum ServiceError {
    /// The user stopped the job; the text says what was kept.
    #[error("Cancelled. {0}")]
    Cancelled(String),
    /// Opening, reading or writing a disk failed.
    #[error("{}{source}", lead(context))]
    Device {
        context: Option<String>,
        #[source]
        source: DeviceError,
    },
    /// The repository could not be opened, read or written. (Boxed, as is the next
    /// one: these errors are large and every `Result` of the services carries them.)
    #[error("{}{source}", lead(context))]
    Repo {
        context: Option<String>,
        #[source]
        source: Box<RepoError>,
    },
    /// Planning, restoring or repairing a disk failed.
    #[error("{}{source}", lead(context))]
    Imaging {
        context: Option<String>,
        #[source]
        source: Box<ImagingError>,
    },
    /// A share location that does not parse.
    #[error(transparent)]
    Share(#[from] crate::share::ShareError),
    /// A share (SMB or NFS) that did not mount.
    #[error("Could not mount {location}: {source}.")]
    Mount {
        location: String,
        #[source]
        source: crate::share::ShareError,
    },
    /// The disks could not be listed.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// The chosen target is one ironclone must not write (boot medium, mounted...).
    #[error(transparent)]
    Target(#[from] TargetCheckError),
    /// Refused before anything was written (wrong disk, mounted target, no room...),
    /// or any other failure the service words itself.
    #[error("{0}")]
    Plain(String),
    /// An SFTP server whose host key is not in known_hosts: shown for the user to accept.
    #[error("The host key of {} is not known yet ({}).", .0.host, .0.fingerprints.join(", "))]
    UnknownHostKey(crate::tui::remote::HostKey),
    /// A bug: the job panicked.
    #[error("ironclone hit an internal error ({0}) and stopped the job. Please report this.")]
    Internal(String),
}

impl ServiceError {
    pub fn device(context: impl Into<String>) -> impl FnOnce(DeviceError) -> ServiceError {
        let context = Some(context.into());
        |source| ServiceError::Device { context, source }
    }

    pub fn repo(context: impl Into<String>) -> impl FnOnce(RepoError) -> ServiceError {
        let context = Some(context.into());
        |source| ServiceError::Repo {
            context,
            source: Box::new(source),
        }
    }

    pub fn imaging(context: impl Into<String>) -> impl FnOnce(ImagingError) -> ServiceError {
        let context = Some(context.into());
        |source| ServiceError::Imaging {
            context,
            source: Box::new(source),
        }
    }

    /// The device error underneath, however deep the layer that met it wrapped it.
    pub fn device_error(&self) -> Option<&DeviceError> {
        match self {
            ServiceError::Device { source, .. } => Some(source),
            ServiceError::Repo { source, .. } => match &**source {
                RepoError::Device(d) => Some(d),
                _ => None,
            },
            ServiceError::Imaging { source, .. } => match &**source {
                ImagingError::Device(d) | ImagingError::Repo(RepoError::Device(d)) => Some(d),
                _ => None,
            },
            _ => None,
        }
    }

    /// True when a disk itself failed (EIO and friends), not the request or the code.
    pub fn is_media_error(&self) -> bool {
        self.device_error().is_some_and(DeviceError::is_media_error)
    }

    pub fn is_cancelled(&self) -> bool {
        matches!(self, ServiceError::Cancelled(_))
    }
}

impl From<String> for ServiceError {
    fn from(s: String) -> Self {
        ServiceError::Plain(s)
    }
}

impl From<&str> for ServiceError {
    fn from(s: &str) -> Self {
        ServiceError::Plain(s.to_string())
    }
}

impl From<RepoError> for ServiceError {
    fn from(source: RepoError) -> Self {
        ServiceError::Repo {
            context: None,
            source: Box::new(source),
        }
    }
}

impl From<ImagingError> for ServiceError {
    fn from(source: ImagingError) -> Self {
        ServiceError::Imaging {
            context: None,
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eio() -> DeviceError {
        DeviceError::Io {
            device: "/dev/sdb".into(),
            offset: 4096,
            len: 512,
            source: std::io::Error::from_raw_os_error(5),
        }
    }

    #[test]
    fn a_media_error_stays_one_through_every_layer() {
        let direct = ServiceError::device("Could not read the source")(eio());
        assert!(direct.is_media_error());
        assert!(direct
            .to_string()
            .starts_with("Could not read the source: /dev/sdb"));
        assert!(direct.to_string().contains("byte 4096"), "{direct}");
        let via_repo = ServiceError::from(RepoError::Device(eio()));
        assert!(via_repo.is_media_error());
        assert_eq!(via_repo.to_string(), eio().to_string());
        let via_imaging = ServiceError::from(ImagingError::Repo(RepoError::Device(eio())));
        assert!(via_imaging.is_media_error());
    }

    #[test]
    fn other_errors_are_not_media_errors() {
        let ro = ServiceError::from(RepoError::Device(DeviceError::ReadOnly {
            device: "/dev/sdb".into(),
            offset: 0,
        }));
        assert!(!ro.is_media_error());
        assert!(!ServiceError::from("The target is the source disk.").is_media_error());
        assert!(ServiceError::Cancelled("Nothing was kept.".into()).is_cancelled());
    }
}
