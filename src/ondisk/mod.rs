//! On-disk structures, one file per structure, decoded in exactly one place: probe,
//! usedmap, rescue and bootfix all read them through here.

pub mod ext;
