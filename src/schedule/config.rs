//! schedule.json: what a scheduled run backs up, where to, when, and what it keeps.
//!
//! The file is typed and versioned, unknown fields are refused (a typo like
//! `keep_montly` must not silently keep nothing), and a bad value is reported with
//! the field's name. serde_json's own type errors give only a line and column, so
//! the fields are first checked one by one from the parsed JSON object; the typed
//! struct (with `deny_unknown_fields`) is then read from the same object.

use super::error::ScheduleError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format version this build writes and reads.
pub const CONFIG_VERSION: u32 = 1;
/// Upper bound on the file: a schedule is a few hundred bytes.
const MAX_CONFIG: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub version: u32,
    /// Where the repository is: see `RepoLocation`.
    pub repo: RepoLocation,
    /// Disks by stable name (/dev/disk/by-id/...) or disk image files.
    pub disks: Vec<PathBuf>,
    /// systemd calendar spec (OnCalendar=).
    pub calendar: String,
    pub budget: Budget,
    pub keep_last: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
    pub allow_battery: bool,
}

impl ScheduleConfig {
    /// Reads and validates the config file; a missing file is `NotConfigured`.
    pub fn load(path: &Path) -> Result<ScheduleConfig, ScheduleError> {
        let meta = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ScheduleError::NotConfigured {
                    path: path.to_path_buf(),
                })
            }
            other => other.map_err(ScheduleError::io(path))?,
        };
        if meta.len() > MAX_CONFIG {
            return Err(ScheduleError::Syntax {
                path: path.to_path_buf(),
                why: format!("{} bytes is too large for a schedule", meta.len()),
            });
        }
        let bytes = std::fs::read(path).map_err(ScheduleError::io(path))?;
        Self::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<ScheduleConfig, ScheduleError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ScheduleError::Syntax {
                path: path.to_path_buf(),
                why: e.to_string(),
            })?;
        let obj = value.as_object().ok_or_else(|| ScheduleError::Syntax {
            path: path.to_path_buf(),
            why: "the top level is not an object".into(),
        })?;
        let bad = |field: &str, why: String| ScheduleError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            why,
        };
        for (k, v) in obj {
            check_field(k, v).map_err(|why| bad(k, why))?;
        }
        let cfg: ScheduleConfig = serde_json::from_value(value).map_err(|e| {
            // Only a missing field is left for serde to find: name it.
            let msg = e.to_string();
            let field = msg.split('`').nth(1).unwrap_or("?").to_string();
            bad(&field, msg)
        })?;
        cfg.validate().map_err(|(field, why)| bad(field, why))?;
        Ok(cfg)
    }

    /// Checks across fields; returns the field at fault.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.version != CONFIG_VERSION {
            return Err((
                "version",
                format!(
                    "version {} is not the one this build reads ({CONFIG_VERSION})",
                    self.version
                ),
            ));
        }
        if self.disks.is_empty() {
            return Err(("disks", "no disk to back up".into()));
        }
        if let Some(d) = self.disks.iter().find(|d| !d.is_absolute()) {
            return Err(("disks", format!("{} is not an absolute path", d.display())));
        }
        if self.keep_last == 0 {
            return Err((
                "keep_last",
                "must be at least 1 (the newest image is always kept)".into(),
            ));
        }
        Ok(())
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// One field's value checked on its own, so that its error can name it.
fn check_field(name: &str, v: &serde_json::Value) -> Result<(), String> {
    fn typed<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<(), String> {
        T::deserialize(v).map(drop).map_err(|e| e.to_string())
    }
    match name {
        "version" | "keep_last" | "keep_weekly" | "keep_monthly" => typed::<u32>(v),
        "repo" => typed::<RepoLocation>(v),
        "disks" => typed::<Vec<PathBuf>>(v),
        "calendar" => match v.as_str() {
            Some(s) if !s.trim().is_empty() && !s.contains('\n') => Ok(()),
            _ => Err("expected a non-empty one-line calendar spec".into()),
        },
        "budget" => typed::<Budget>(v),
        "allow_battery" => typed::<bool>(v),
        other => Err(format!("unknown field \"{other}\"")),
    }
}

/// The space the repository may take on its filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Budget {
    Bytes(u64),
    /// Percent of the target filesystem's size.
    Percent(u8),
}

impl Budget {
    /// The budget in bytes on a filesystem of `fs_size` bytes.
    pub fn bytes(self, fs_size: u64) -> u64 {
        match self {
            Budget::Bytes(b) => b,
            Budget::Percent(p) => (u128::from(fs_size) * u128::from(p) / 100) as u64,
        }
    }
}

impl TryFrom<String> for Budget {
    type Error = String;
    fn try_from(s: String) -> Result<Budget, String> {
        s.parse()
    }
}

impl std::str::FromStr for Budget {
    type Err = String;
    fn from_str(text: &str) -> Result<Budget, String> {
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            return match p.trim().parse::<u8>() {
                Ok(n) if (1..=100).contains(&n) => Ok(Budget::Percent(n)),
                _ => Err(format!(
                    "\"{text}\": a percentage must be a whole number from 1 to 100"
                )),
            };
        }
        let t = t
            .strip_suffix("iB")
            .or_else(|| t.strip_suffix('B'))
            .unwrap_or(t);
        let (num, shift) = [('K', 10), ('M', 20), ('G', 30), ('T', 40)]
            .into_iter()
            .find_map(|(c, shift)| {
                t.strip_suffix(c)
                    .or_else(|| t.strip_suffix(c.to_ascii_lowercase()))
                    .map(|n| (n, shift))
            })
            .unwrap_or((t, 0));
        let n: u64 = num
            .trim()
            .parse()
            .map_err(|_| format!("\"{text}\" is not a size like 500G or a percentage like 20%"))?;
        match n.checked_mul(1u64 << shift) {
            Some(0) => Err(format!("\"{text}\": the budget must be more than 0")),
            Some(b) => Ok(Budget::Bytes(b)),
            None => Err(format!("\"{text}\" is too large")),
        }
    }
}

impl From<Budget> for String {
    fn from(b: Budget) -> String {
        match b {
            Budget::Percent(p) => format!("{p}%"),
            Budget::Bytes(n) => {
                for (shift, s) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
                    if n % (1u64 << shift) == 0 {
                        return format!("{}{s}", n >> shift);
                    }
                }
                n.to_string()
            }
        }
    }
}

/// Where the repository is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RepoLocation {
    /// A directory on the running system (absolute).
    Local(PathBuf),
    /// `uuid=<fs-uuid>:/path`: a directory on a filesystem found by its UUID, mounted
    /// by the run under /run/ironclone/ (and unmounted after) unless already mounted.
    FsUuid { uuid: String, path: PathBuf },
    /// An SMB share or NFSv4 export in `share`'s syntax.
    Share(String),
}

impl TryFrom<String> for RepoLocation {
    type Error = String;
    fn try_from(s: String) -> Result<RepoLocation, String> {
        s.parse()
    }
}

impl std::str::FromStr for RepoLocation {
    type Err = String;
    fn from_str(t: &str) -> Result<RepoLocation, String> {
        if let Some(rest) = t.strip_prefix("uuid=") {
            let (uuid, path) = rest
                .split_once(':')
                .ok_or_else(|| format!("\"{t}\": expected uuid=<fs-uuid>:/path"))?;
            let ok = !uuid.is_empty() && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
            if !ok {
                return Err(format!("\"{uuid}\" is not a filesystem UUID"));
            }
            let path = PathBuf::from(path);
            if !path.is_absolute() || path.components().any(|c| c.as_os_str() == "..") {
                return Err(format!(
                    "\"{}\" must be an absolute path inside the filesystem",
                    path.display()
                ));
            }
            return Ok(RepoLocation::FsUuid {
                uuid: uuid.to_ascii_lowercase(),
                path,
            });
        }
        if crate::share::is_share_location(t) || t.starts_with("nfs://") {
            return Ok(RepoLocation::Share(t.to_string()));
        }
        let p = PathBuf::from(t);
        if !p.is_absolute() {
            return Err(format!(
                "\"{t}\" is not an absolute path (a timer runs from /)"
            ));
        }
        Ok(RepoLocation::Local(p))
    }
}

impl From<RepoLocation> for String {
    fn from(r: RepoLocation) -> String {
        r.to_string()
    }
}

impl std::fmt::Display for RepoLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepoLocation::Local(p) => write!(f, "{}", p.display()),
            RepoLocation::FsUuid { uuid, path } => write!(f, "uuid={uuid}:{}", path.display()),
            RepoLocation::Share(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets() {
        assert_eq!("500G".parse(), Ok(Budget::Bytes(500 << 30)));
        assert_eq!("64MiB".parse(), Ok(Budget::Bytes(64 << 20)));
        assert_eq!("20%".parse(), Ok(Budget::Percent(20)));
        assert_eq!(Budget::Percent(20).bytes(1000), 200);
        for bad in ["0", "101%", "0%", "lots", "99999999999T", "-5G"] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
        assert_eq!(String::from(Budget::Bytes(3 << 30)), "3G");
    }

    #[test]
    fn locations() {
        assert_eq!(
            "uuid=ABCD-12:/backups".parse(),
            Ok(RepoLocation::FsUuid {
                uuid: "abcd-12".into(),
                path: "/backups".into()
            })
        );
        assert!(matches!(
            "//nas/share".parse::<RepoLocation>(),
            Ok(RepoLocation::Share(_))
        ));
        for bad in [
            "uuid=zz:/x",
            "uuid=ab",
            "uuid=ab:rel",
            "uuid=ab:/../x",
            "rel/path",
        ] {
            assert!(bad.parse::<RepoLocation>().is_err(), "{bad}");
        }
    }
}
