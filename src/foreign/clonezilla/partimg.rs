//! Which file holds each partition's image: `<part>.<fs>-ptcl-img.<comp>` (partclone),
//! `<part>.ntfs-img.<comp>` (ntfsclone) or `<part>.dd-img.<comp>` (dd), each possibly
//! split into `.aa`, `.ab`, ...; a swap partition has no image, only `swappt-<part>.info`.

use super::error::ClonezillaError;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const COMPRESSIONS: &[&str] = &[
    "gz", "bz2", "lzo", "lzma", "xz", "lzip", "lrz", "lz4", "zst", "uncomp",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartImageKind {
    Partclone {
        fs: String,
    },
    Ntfsclone,
    Dd,
    /// No data saved: Clonezilla recreates swap from `swappt-<part>.info`.
    Swap,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartImage {
    pub part: String,
    pub kind: PartImageKind,
    /// The image as `foreign::compress::open_image` takes it (volumes found from it).
    pub path: PathBuf,
}

/// `name` without a split suffix, when it has one after a compression extension.
fn unsplit(name: &str) -> &str {
    match name.rsplit_once('.') {
        Some((base, s))
            if s.len() == 2
                && s.bytes().all(|c| c.is_ascii_lowercase())
                && base
                    .rsplit_once('.')
                    .is_some_and(|(_, c)| COMPRESSIONS.contains(&c)) =>
        {
            base
        }
        _ => name,
    }
}

fn kind_of(rest: &str) -> Option<PartImageKind> {
    let (what, comp) = rest.rsplit_once('.')?;
    if !COMPRESSIONS.contains(&comp) {
        return None;
    }
    match what {
        "ntfs-img" => Some(PartImageKind::Ntfsclone),
        "dd-img" => Some(PartImageKind::Dd),
        _ => what
            .strip_suffix("-ptcl-img")
            .filter(|fs| !fs.is_empty())
            .map(|fs| PartImageKind::Partclone { fs: fs.to_string() }),
    }
}

/// Finds the image of `part` among the folder's file `names`.
pub fn find(
    dir: &Path,
    names: &BTreeSet<String>,
    part: &str,
) -> Result<PartImage, ClonezillaError> {
    let prefix = format!("{part}.");
    let found: BTreeSet<&str> = names
        .iter()
        .filter_map(|n| n.strip_prefix(&prefix).map(|_| unsplit(n)))
        .filter(|n| n.strip_prefix(&prefix).and_then(kind_of).is_some())
        .collect();
    match found.iter().next() {
        Some(name) => Ok(PartImage {
            part: part.to_string(),
            kind: name
                .strip_prefix(&prefix)
                .and_then(kind_of)
                .unwrap_or(PartImageKind::Dd),
            path: dir.join(name),
        }),
        None if names.contains(&format!("swappt-{part}.info")) => Ok(PartImage {
            part: part.to_string(),
            kind: PartImageKind::Swap,
            path: dir.join(format!("swappt-{part}.info")),
        }),
        None => Err(ClonezillaError::NoPartitionImage {
            dir: dir.to_path_buf(),
            part: part.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_split_and_swap_images() {
        let names: BTreeSet<String> = [
            "sda1.vfat-ptcl-img.zst",
            "sda2.ext4-ptcl-img.xz.aa",
            "sda2.ext4-ptcl-img.xz.ab",
            "sda3.ntfs-img.gz",
            "sda4.dd-img.uncomp",
            "swappt-sda5.info",
            "sda10.ext4-ptcl-img.gz",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let d = Path::new("/img");
        let p = find(d, &names, "sda2").unwrap();
        assert_eq!(p.kind, PartImageKind::Partclone { fs: "ext4".into() });
        assert_eq!(p.path, Path::new("/img/sda2.ext4-ptcl-img.xz"));
        assert_eq!(
            find(d, &names, "sda1").unwrap().path,
            Path::new("/img/sda1.vfat-ptcl-img.zst")
        );
        assert_eq!(
            find(d, &names, "sda3").unwrap().kind,
            PartImageKind::Ntfsclone
        );
        assert_eq!(find(d, &names, "sda4").unwrap().kind, PartImageKind::Dd);
        assert_eq!(find(d, &names, "sda5").unwrap().kind, PartImageKind::Swap);
        let e = find(d, &names, "sda6").unwrap_err().to_string();
        assert!(e.contains("sda6"), "{e}");
    }
}
