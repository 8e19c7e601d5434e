//! On-disk structures, one file per structure, each decoded in exactly one place for
//! every caller (probe, usedmap, rescue, bootfix, imaging). Fields are named as in the
//! kernel or the format's specification; every read goes through `crate::bytes`.

pub mod fat;
