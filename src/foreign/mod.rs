//! Images written by other tools, read as backup sources: Clonezilla/Rescuezilla image
//! folders, the partclone, ntfsclone and dd images in them, their compression and their
//! split volumes.

pub mod clonezilla;
pub mod compress;
pub mod error;
pub mod ntfsclone;
pub mod partclone;
pub mod tool_decode;
pub mod volumes;
