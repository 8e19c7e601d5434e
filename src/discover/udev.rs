//! The udev database (`/run/udev/data/b<major>:<minor>`), parsed by hand because the
//! `udev` crate links libudev dynamically and ironclone ships as one static binary.
//! udev knows what sysfs does not say plainly (the bus a USB disk hangs off, the
//! serial of a SATA disk from its ATA IDENTIFY data), so it is preferred when present.

use std::collections::HashMap;
use std::path::Path;

/// The `E:` properties of one device.
#[derive(Clone, Debug, Default)]
pub struct UdevProps(HashMap<String, String>);

impl UdevProps {
    /// Reads the record for `major:minor`; a missing database gives empty properties.
    pub fn load(udev_data: &Path, major: u32, minor: u32) -> Self {
        match std::fs::read_to_string(udev_data.join(format!("b{major}:{minor}"))) {
            Ok(text) => Self::parse(&text),
            Err(_) => Self::default(),
        }
    }

    pub fn parse(text: &str) -> Self {
        UdevProps(
            text.lines()
                .filter_map(|l| l.strip_prefix("E:"))
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A value udev stores twice, as `KEY` (spaces turned to `_`) and `KEY_ENC`
    /// (`\x20` escapes): the encoded one keeps the real spelling.
    pub fn get_decoded(&self, key: &str) -> Option<String> {
        if let Some(enc) = self.get(&format!("{key}_ENC")) {
            let s = decode_hex_escapes(enc).trim().to_string();
            if !s.is_empty() {
                return Some(s);
            }
        }
        self.get(key).map(|v| v.trim().to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Decodes udev's `\xNN` escapes; anything malformed is kept as written.
pub fn decode_hex_escapes(s: &str) -> String {
    super::escape::decode(s, b"\\x", 2, 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_properties_and_decodes() {
        let p = UdevProps::parse(
            "S:disk/by-id/ata-X\nE:ID_MODEL=Samsung_SSD_870\nE:ID_MODEL_ENC=Samsung\\x20SSD\\x20870\\x20\\x20\nE:ID_BUS=ata\nE:EMPTY=\nG:systemd\n",
        );
        assert_eq!(p.get("ID_BUS"), Some("ata"));
        assert_eq!(p.get("EMPTY"), None);
        assert_eq!(
            p.get_decoded("ID_MODEL").as_deref(),
            Some("Samsung SSD 870")
        );
        assert_eq!(decode_hex_escapes("a\\xZZb\\x4"), "a\\xZZb\\x4");
    }
}
