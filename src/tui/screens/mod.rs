//! One file per screen. Each only draws from the `App`'s state; keys are handled in
//! `app.rs` so that every state change goes through one `event` function.

pub mod ask;
pub mod cancel;
pub mod confirm;
pub mod deploy;
pub mod deploy_client;
pub mod disks;
pub mod done;
pub mod error;
pub mod home;
pub mod host_key;
pub mod images;
pub mod luks_key;
pub mod name;
pub mod new_repo;
pub mod part_targets;
pub mod passphrase;
pub mod plan;
pub mod progress;
pub mod remote_login;
pub mod repo_unlock;
pub mod repos;
pub mod schedule;
pub mod share_login;
pub mod summary;
