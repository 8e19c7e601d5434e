//! Reading `/sys/class/block`: one small text file per attribute. Missing
//! attributes are normal (a loop device has no model), so readers return `Option`;
//! only the directory listing itself is an error.

use super::Transport;
use std::path::Path;

pub fn read_str(path: &Path) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

pub fn read_u64(path: &Path) -> Option<u64> {
    read_str(path)?.parse().ok()
}

pub fn read_bool(path: &Path) -> bool {
    read_u64(path).is_some_and(|v| v != 0)
}

/// `dev` holds `major:minor`.
pub fn read_dev(dir: &Path) -> Option<(u32, u32)> {
    let s = read_str(&dir.join("dev"))?;
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// The first of `names` (relative to `dir`) that holds a non-empty value.
pub fn first_of(dir: &Path, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| read_str(&dir.join(n)))
}

/// The unit serial number of a SCSI disk, from its VPD page 0x80 (`device/vpd_pg80`:
/// a 4-byte header whose bytes 2-3 are the length, then the serial in ASCII). For a
/// SATA disk libata fills it from the ATA IDENTIFY serial, the one udev's ata_id gives
/// as ID_SERIAL_SHORT; inner blanks become `_` as udev writes them. So a live system
/// without udev names a disk as the installed system with udev did, and a rescue run
/// finds the disk its schedule recorded.
pub fn vpd_serial(dir: &Path) -> Option<String> {
    let raw = std::fs::read(dir.join("device/vpd_pg80")).ok()?;
    let (header, body) = raw.split_first_chunk::<4>()?;
    if header[1] != 0x80 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    // A page shorter than its header says is read as far as it goes.
    let body = body.get(..len).unwrap_or(body);
    let text = String::from_utf8_lossy(body);
    let serial = text
        .split(|c: char| c.is_whitespace() || c == '\0')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    (!serial.is_empty()).then_some(serial)
}

/// A SCSI disk's world-wide name from the kernel's `device/wwid`, in udev's ID_WWN
/// form: `naa.5000c500...` is `0x5000c500...`. The other designators (`t10.` is
/// vendor, model and serial; `eui.` of a SCSI disk) are no WWN to udev, so none here.
pub fn scsi_wwn(dir: &Path) -> Option<String> {
    let wwid = read_str(&dir.join("device/wwid"))?;
    let hex = wwid.strip_prefix("naa.")?;
    (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("0x{}", hex.to_ascii_lowercase()))
}

/// Entries of a sysfs directory (e.g. `holders`), sorted.
pub fn list_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The bus a disk hangs off, from the device path in sysfs (the canonical path of
/// `/sys/class/block/<name>` walks through the controller) and from udev's
/// `ID_BUS`/`ID_PATH` when sysfs is ambiguous. USB is checked before ATA and SCSI
/// because a USB stick also appears as a SCSI disk.
pub fn transport(
    name: &str,
    canonical: &str,
    id_bus: Option<&str>,
    id_path: Option<&str>,
) -> Transport {
    // ID_PATH spells the same hops with dashes: "pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0".
    let id_path = id_path.unwrap_or("");
    let has = |s: &str| canonical.contains(s) || id_path.contains(&format!("-{}-", &s[1..]));
    if name.starts_with("loop") {
        Transport::Loop
    } else if name.starts_with("nvme") || has("/nvme") {
        Transport::Nvme
    } else if has("/usb") || id_bus == Some("usb") {
        Transport::Usb
    } else if name.starts_with("mmcblk") || has("/mmc") {
        Transport::Mmc
    } else if has("/ata") || id_bus == Some("ata") {
        Transport::Sata
    } else if name.starts_with("vd") && has("/virtio") {
        Transport::Virtio
    } else if has("/host") || id_bus == Some("scsi") || name.starts_with("sd") {
        Transport::Scsi
    } else if has("/virtio") {
        Transport::Virtio
    } else {
        Transport::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_from_device_paths() {
        let t = |n, p, b| transport(n, p, b, None);
        assert_eq!(
            t(
                "nvme0n1",
                "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1",
                None
            ),
            Transport::Nvme
        );
        assert_eq!(
            t(
                "sda",
                "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda",
                None
            ),
            Transport::Sata
        );
        assert_eq!(t("sdb", "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb", None), Transport::Usb);
        assert_eq!(
            t(
                "vda",
                "/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda",
                None
            ),
            Transport::Virtio
        );
        assert_eq!(
            t(
                "sdc",
                "/sys/devices/pci0000:00/0000:00:03.0/virtio2/host2/target2:0:0/2:0:0:0/block/sdc",
                None
            ),
            Transport::Scsi
        );
        assert_eq!(
            t("loop3", "/sys/devices/virtual/block/loop3", None),
            Transport::Loop
        );
        assert_eq!(
            t(
                "mmcblk0",
                "/sys/devices/platform/soc/mmc0/mmc0:0001/block/mmcblk0",
                None
            ),
            Transport::Mmc
        );
        assert_eq!(
            t("xyz", "/sys/devices/virtual/block/xyz", None),
            Transport::Unknown
        );
    }
}
