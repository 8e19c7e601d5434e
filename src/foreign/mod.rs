//! Images written by other tools, read as backup sources: partclone images (as
//! Clonezilla and Rescuezilla store them), their compression and their split volumes.

pub mod compress;
pub mod error;
pub mod partclone;
pub mod volumes;
