//! The schedule's typed errors. Each says what to fix in words a user acts on; the
//! run records its text in the state file for `schedule status` and the journal.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {why}")]
    Syntax { path: PathBuf, why: String },
    #[error("{path}: field \"{field}\": {why}")]
    Field {
        path: PathBuf,
        field: String,
        why: String,
    },
    #[error("no schedule configured ({path} is missing; run `ironclone schedule init`)")]
    NotConfigured { path: PathBuf },
    #[error("calendar \"{spec}\": {why}")]
    Calendar { spec: String, why: String },
    #[error("disk {disk}: {why}")]
    Disk { disk: String, why: String },
    #[error("repository {location}: {why}")]
    Target { location: String, why: String },
    #[error("another scheduled run (pid {pid}) holds {path}")]
    Locked { path: PathBuf, pid: String },
    #[error(transparent)]
    Tool(#[from] crate::resize::ToolError),
    #[error(transparent)]
    Repo(#[from] crate::repo::RepoError),
    #[error("rescue entry: {why}")]
    Rescue { why: String },
    #[error(transparent)]
    Firmware(#[from] crate::bootfix::BootfixError),
    #[error("disk {disk}: backup failed: {why}")]
    Backup { disk: String, why: String },
}

impl ScheduleError {
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScheduleError + '_ {
        move |source| ScheduleError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
