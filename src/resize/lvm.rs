//! Writing a PV's label and VG metadata with lvm2's own tools, as Clonezilla does:
//! `pvcreate --uuid --restorefile` lays down the label and metadata area where the
//! metadata text says (`pe_start`), then `vgcfgrestore -f` commits the text. lvm2 is
//! the reference for its on-disk format (label CRC, metadata ring, alignment), so it
//! writes every byte of it; ironclone only decodes it (ondisk/lvm).
//!
//! Both see only the PVs being written (a `devices { filter }` naming them alone): the
//! live system may hold the source PV with the same UUIDs, and lvm2 refuses or mixes
//! duplicates. They write no backup or archive under /etc/lvm, and nothing is
//! activated, so no device-mapper is needed. On a live system whose udev autoactivates
//! VGs as their PVs appear, the new VG may be activated on the scratch loop devices;
//! `vgchange -an` (same filter) undoes that before they are detached. udev may still
//! act after it: a loop device is then detached when its last user closes it.

use super::tool::{run_tool, ToolError};
use std::path::Path;

fn config(devs: &[&Path]) -> String {
    let accept: Vec<String> = devs
        .iter()
        .map(|d| format!("\"a|^{}$|\"", d.display()))
        .collect();
    format!(
        "devices {{ filter = [ {a}, \"r|.*|\" ] global_filter = [ {a}, \"r|.*|\" ] }} \
         backup {{ backup = 0 archive = 0 }}",
        a = accept.join(", ")
    )
}

/// Makes `dev` the PV `pv_id` of VG `vg` as the metadata text in `metadata` describes.
pub fn lvm_write_pv(dev: &Path, pv_id: &str, vg: &str, metadata: &Path) -> Result<(), ToolError> {
    lvm_write_vg(&[(dev, pv_id)], vg, metadata)
}

/// Makes each `(dev, pv_id)` a PV of VG `vg` as the metadata text in `metadata`
/// describes. A VG on several PVs is committed once with all of them in view:
/// `vgcfgrestore` writes the metadata onto every PV the text names and refuses when
/// one is missing, so the PVs cannot be written one by one.
pub fn lvm_write_vg(pvs: &[(&Path, &str)], vg: &str, metadata: &Path) -> Result<(), ToolError> {
    let devs: Vec<&Path> = pvs.iter().map(|(d, _)| *d).collect();
    let config = config(&devs);
    let m = metadata.display().to_string();
    for (dev, pv_id) in pvs {
        let d = dev.display().to_string();
        run_tool(
            "lvm",
            &[
                "pvcreate",
                "--config",
                &config,
                "-q",
                "-ff",
                "-y",
                "--uuid",
                pv_id,
                "--restorefile",
                &m,
                &d,
            ],
            None,
            &[0],
        )?;
    }
    run_tool(
        "lvm",
        &["vgcfgrestore", "--config", &config, "-q", "-f", &m, vg],
        None,
        &[0],
    )?;
    run_tool(
        "lvm",
        &["vgchange", "--config", &config, "-q", "-an", vg],
        None,
        &[0],
    )?;
    Ok(())
}
