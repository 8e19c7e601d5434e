//! The LVM part of a Clonezilla image: `lvm_vg_dev.list` (`<vg> /dev/<pv> <pv-uuid>`
//! lines: which partitions are physical volumes), `lvm_logv.list` (`/dev/<vg>/<lv>
//! <file(1) output>` lines: the logical volumes saved), `lvm_<vg>.conf` (the VG's
//! metadata as `vgcfgbackup` wrote it), and one image per LV named `<vg>-<lv>.<fs>-
//! ptcl-img.*` (or `swappt-<vg>-<lv>.info` for swap). A PV partition has no image of
//! its own: Clonezilla re-creates it from the metadata and restores the LVs into it
//! (ironclone too: lvm_place.rs, also for a saveparts image's PV).

use super::error::ClonezillaError;
use super::partimg::{self, PartImage};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalVolume {
    pub vg: String,
    /// Without `/dev/`, as in `parts` (`sda2`).
    pub dev: String,
    pub uuid: String,
}

#[derive(Clone, Debug)]
pub struct LogicalVolume {
    pub vg: String,
    pub lv: String,
    /// What `file -Ls` said about it when saved.
    pub what: String,
    pub image: PartImage,
}

#[derive(Clone, Debug, Default)]
pub struct LvmInfo {
    pub pvs: Vec<PhysicalVolume>,
    pub lvs: Vec<LogicalVolume>,
    /// `lvm_<vg>.conf` of each VG that has one: (vg, file).
    pub confs: Vec<(String, PathBuf)>,
}

impl LvmInfo {
    /// True when `part` (a name from `parts`) is a physical volume.
    pub fn is_pv(&self, part: &str) -> bool {
        self.pvs.iter().any(|p| p.dev == part)
    }

    /// The LV an area name means: `vg-lv` (the image's name) or `vg/lv`.
    pub fn find(&self, area: &str) -> Option<&LogicalVolume> {
        self.lvs
            .iter()
            .find(|l| l.image.part == area || format!("{}/{}", l.vg, l.lv) == area)
    }
}

/// Refuses a restore or import of an image whose LVM ironclone cannot rebuild
/// (lvm_place.rs says which shapes it can; a saveparts image's PVs each on their own),
/// before anything is written:
/// the physical volume would otherwise come out with LVs missing or empty.
pub fn refuse_whole_disk(img: &super::ClonezillaImage) -> Result<(), ClonezillaError> {
    super::lvm_place::check(img)
}

/// Clonezilla's name for an LV's image: the device path without `/dev/`, `/` as `-`.
pub fn image_name(vg: &str, lv: &str) -> String {
    format!("{vg}-{lv}")
}

fn valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
}

fn bad_line(file: &Path, i: usize, why: &'static str, line: &str) -> ClonezillaError {
    ClonezillaError::BadLine {
        file: file.to_path_buf(),
        line: i + 1,
        why,
        text: line.to_string(),
    }
}

pub fn vg_dev(file: &Path, text: &str) -> Result<Vec<PhysicalVolume>, ClonezillaError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let w: Vec<&str> = t.split_whitespace().collect();
        let [vg, dev, uuid, ..] = w.as_slice() else {
            return Err(bad_line(file, i, "expected `<vg> /dev/<pv> <uuid>`", line));
        };
        let dev = dev.trim_start_matches("/dev/");
        // A PV inside an opened LUKS volume is its mapping (`/dev/mapper/<name>`).
        let dev_ok = valid(dev.strip_prefix("mapper/").unwrap_or(dev));
        if !valid(vg) || !dev_ok || !valid(uuid) {
            return Err(bad_line(file, i, "not a VG, device and UUID", line));
        }
        out.push(PhysicalVolume {
            vg: vg.to_string(),
            dev: dev.to_string(),
            uuid: uuid.to_string(),
        });
    }
    Ok(out)
}

/// (vg, lv, what) of each `lvm_logv.list` line.
pub fn logv(file: &Path, text: &str) -> Result<Vec<(String, String, String)>, ClonezillaError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (path, what) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        let rest = path.strip_prefix("/dev/").unwrap_or(path);
        let Some((vg, lv)) = rest.split_once('/') else {
            return Err(bad_line(file, i, "expected `/dev/<vg>/<lv> ...`", line));
        };
        if !valid(vg) || !valid(lv) {
            return Err(bad_line(file, i, "not a VG and LV name", line));
        }
        out.push((vg.to_string(), lv.to_string(), what.trim().to_string()));
    }
    Ok(out)
}

/// Reads the LVM files of the folder `dir` (whose file names are `names`); `None`
/// when it has no `lvm_vg_dev.list`.
pub fn read(
    dir: &Path,
    names: &BTreeSet<String>,
    read_text: &dyn Fn(&Path) -> Result<String, ClonezillaError>,
) -> Result<Option<LvmInfo>, ClonezillaError> {
    if !names.contains("lvm_vg_dev.list") {
        return Ok(None);
    }
    let p = dir.join("lvm_vg_dev.list");
    let pvs = vg_dev(&p, &read_text(&p)?)?;
    let mut lvs = Vec::new();
    if names.contains("lvm_logv.list") {
        let p = dir.join("lvm_logv.list");
        for (vg, lv, what) in logv(&p, &read_text(&p)?)? {
            let image = partimg::find(dir, names, &image_name(&vg, &lv))?;
            lvs.push(LogicalVolume {
                vg,
                lv,
                what,
                image,
            });
        }
    }
    let vgs: BTreeSet<&str> = pvs.iter().map(|p| p.vg.as_str()).collect();
    let confs = vgs
        .iter()
        .filter_map(|vg| {
            let n = format!("lvm_{vg}.conf");
            names.contains(&n).then(|| (vg.to_string(), dir.join(n)))
        })
        .collect();
    Ok(Some(LvmInfo { pvs, lvs, confs }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_lvm_lists() {
        let p = Path::new("x");
        let v = vg_dev(p, "vg0 /dev/sda2 i20UTQ-OaX3-c6nB-CiBv-Gav1-hgVf-tEkO2W\n").unwrap();
        assert_eq!(v[0].dev, "sda2");
        assert_eq!(v[0].vg, "vg0");
        // a PV inside an opened LUKS volume
        let v = vg_dev(p, "vg0 /dev/mapper/ocs_luks_Ab1 i20UTQ\n").unwrap();
        assert_eq!(v[0].dev, "mapper/ocs_luks_Ab1");
        assert!(vg_dev(p, "vg0 /dev/mapper/../x i20UTQ\n").is_err());
        assert!(vg_dev(p, "vg0\n")
            .unwrap_err()
            .to_string()
            .contains("line 1"));
        let l = logv(
            p,
            "/dev/vg0/root  Linux rev 1.0 ext4 filesystem data\n/dev/vg0/swap  swap\n",
        )
        .unwrap();
        assert_eq!(
            l[0],
            (
                "vg0".into(),
                "root".into(),
                "Linux rev 1.0 ext4 filesystem data".into()
            )
        );
        assert_eq!(l[1].1, "swap");
        assert!(logv(p, "/dev/vg0/../x y\n").is_err());
        assert!(logv(p, "root\n").is_err());
    }
}
