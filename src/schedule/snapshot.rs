//! The temporary LVM snapshot a mounted LV is imaged from: `ironclone-snap-<lv>`, a
//! thick snapshot of 20% of its origin (the writes a backup's duration sees), or a
//! thin snapshot when the LV is thin (it then needs no size and costs nothing until
//! written). It is removed after the image, also on error, and a stale one left by a
//! crashed or killed run is removed at the start of the next run, before it can fill
//! its volume group.
//!
//! The lvm2 tools are the reference: they are called through the `lvm` multi-call
//! binary (the live system has no `lvremove` link), with their exit codes checked
//! and stderr carried into the error. The command lines are built apart from running
//! them so that they are tested on a host without device-mapper.

use super::error::ScheduleError;
use crate::resize::run_tool;
use std::path::PathBuf;

pub const SNAP_PREFIX: &str = "ironclone-snap-";

/// An LV as lvm2 names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvRef {
    pub vg: String,
    pub lv: String,
    /// The thin pool, for a thin LV.
    pub pool: Option<String>,
}

impl LvRef {
    pub fn snap_name(&self) -> String {
        format!("{SNAP_PREFIX}{}", self.lv)
    }
    /// The snapshot's device node.
    pub fn snap_device(&self) -> PathBuf {
        PathBuf::from("/dev").join(&self.vg).join(self.snap_name())
    }
}

/// `lvs` arguments listing vg, lv and pool of the LV at `device`, or of every LV.
pub fn lvs_args(device: Option<&str>) -> Vec<String> {
    let mut a: Vec<String> = [
        "--noheadings",
        "--separator",
        "|",
        "-o",
        "vg_name,lv_name,pool_lv",
    ]
    .map(String::from)
    .to_vec();
    a.extend(device.map(String::from));
    a
}

/// Parses `lvs --separator '|' -o vg_name,lv_name,pool_lv` lines.
pub fn parse_lvs(text: &str) -> Vec<LvRef> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split('|').map(str::trim);
            let vg = f.next().filter(|s| !s.is_empty())?.to_string();
            let lv = f.next().filter(|s| !s.is_empty())?.to_string();
            let pool = f.next().filter(|s| !s.is_empty()).map(String::from);
            Some(LvRef { vg, lv, pool })
        })
        .collect()
}

/// `lvcreate` arguments for the snapshot of `lv`, with an LVM tag if given (a thin
/// snapshot's tag names its image: `thin_delta`).
pub fn lvcreate_args(lv: &LvRef, tag: Option<&str>) -> Vec<String> {
    let origin = format!("{}/{}", lv.vg, lv.lv);
    let mut a: Vec<String> = vec!["-s".into()];
    match lv.pool {
        // A thin snapshot is created with activation skipped; -kn (no skip) makes it
        // active so it has a device to read.
        Some(_) => a.extend(["-kn".into()]),
        None => a.extend(["-l".into(), "20%ORIGIN".into()]),
    }
    if let Some(t) = tag {
        a.extend(["--addtag".into(), t.to_string()]);
    }
    a.extend(["-n".into(), lv.snap_name(), origin]);
    a
}

pub fn lvremove_args(vg: &str, lv: &str) -> Vec<String> {
    vec!["-f".into(), format!("{vg}/{lv}")]
}

pub(super) fn lvm(command: &str, args: &[String]) -> Result<String, ScheduleError> {
    let mut a: Vec<&str> = vec![command];
    a.extend(args.iter().map(String::as_str));
    Ok(run_tool("lvm", &a, None, &[0])?.stdout)
}

/// The LV behind `device` (a /dev/VG/LV or /dev/mapper path).
pub fn describe(device: &str) -> Result<LvRef, ScheduleError> {
    let out = lvm("lvs", &lvs_args(Some(device)))?;
    parse_lvs(&out)
        .into_iter()
        .next()
        .ok_or_else(|| ScheduleError::Disk {
            disk: device.into(),
            why: "lvs does not know it as a logical volume".into(),
        })
}

/// Removes snapshots a crashed run left behind; returns their names.
pub fn remove_stale() -> Result<Vec<String>, ScheduleError> {
    let out = match lvm("lvs", &lvs_args(None)) {
        Ok(o) => o,
        // No lvm2 installed: there can be no stale snapshot.
        Err(ScheduleError::Tool(crate::resize::ToolError::Spawn { .. })) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for lv in parse_lvs(&out)
        .into_iter()
        .filter(|l| l.lv.starts_with(SNAP_PREFIX))
    {
        lvm("lvremove", &lvremove_args(&lv.vg, &lv.lv))?;
        removed.push(format!("{}/{}", lv.vg, lv.lv));
    }
    Ok(removed)
}

/// A snapshot that exists while this lives; dropping it removes it.
pub struct Snapshot {
    lv: LvRef,
    live: bool,
}

impl Snapshot {
    pub fn create(lv: &LvRef, tag: Option<&str>) -> Result<Snapshot, ScheduleError> {
        lvm("lvcreate", &lvcreate_args(lv, tag))?;
        Ok(Snapshot {
            lv: lv.clone(),
            live: true,
        })
    }
    pub fn device(&self) -> PathBuf {
        self.lv.snap_device()
    }
    /// Keeps the snapshot as the base of the next run's changed-block tracking.
    pub fn keep_as_base(mut self) -> Result<(), ScheduleError> {
        self.live = false;
        super::thin_delta::promote(&self.lv, &self.lv.snap_name())
    }
    /// Removes the snapshot, reporting a failure (a drop only tries).
    pub fn remove(mut self) -> Result<(), ScheduleError> {
        self.live = false;
        lvm(
            "lvremove",
            &lvremove_args(&self.lv.vg, &self.lv.snap_name()),
        )
        .map(drop)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if self.live {
            let _ = lvm(
                "lvremove",
                &lvremove_args(&self.lv.vg, &self.lv.snap_name()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let thick = LvRef {
            vg: "vg0".into(),
            lv: "root".into(),
            pool: None,
        };
        assert_eq!(
            lvcreate_args(&thick, None).join(" "),
            "-s -l 20%ORIGIN -n ironclone-snap-root vg0/root"
        );
        let thin = LvRef {
            pool: Some("pool0".into()),
            ..thick.clone()
        };
        assert_eq!(
            lvcreate_args(&thin, None).join(" "),
            "-s -kn -n ironclone-snap-root vg0/root"
        );
        assert_eq!(
            lvcreate_args(&thin, Some("ironclone-image=a")).join(" "),
            "-s -kn --addtag ironclone-image=a -n ironclone-snap-root vg0/root"
        );
        assert_eq!(
            thin.snap_device(),
            PathBuf::from("/dev/vg0/ironclone-snap-root")
        );
        assert_eq!(
            lvremove_args("vg0", "ironclone-snap-root").join(" "),
            "-f vg0/ironclone-snap-root"
        );
        assert_eq!(
            lvs_args(Some("/dev/vg0/root")).join(" "),
            "--noheadings --separator | -o vg_name,lv_name,pool_lv /dev/vg0/root"
        );
    }

    #[test]
    fn parses_lvs() {
        let t = "  vg0|root|\n  vg0|data|pool0\n  vg0|ironclone-snap-root|\n\n  |bad|\n";
        let v = parse_lvs(t);
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].pool.as_deref(), Some("pool0"));
        assert_eq!(v[0].pool, None);
        assert!(v[2].lv.starts_with(SNAP_PREFIX));
    }
}
