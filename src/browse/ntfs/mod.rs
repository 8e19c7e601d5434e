//! NTFS through the `ntfs` crate. It wants `Read + Seek`, so a small cursor over the
//! positional `BlockDevice` lives here, with the walk from a path to a file record
//! and the mapping onto `browse::Entry`. NTFS metafiles (`$MFT`, ..., records below
//! 16) and DOS 8.3 duplicate names are left out of listings, as `ntfsls` does.
//!
//! Links are what ntfs-3g shows as links: reparse points that are Windows
//! symlinks, junctions or WSL symlinks (`reparse`), and Interix symlinks, the
//! SYSTEM files ntfs-3g writes for `ln -s` (`interix`); their targets are mapped
//! for Linux as ntfs-3g maps them (`link`). A file behind any other reparse point
//! (deduplicated, WOF-compressed, a cloud placeholder) holds data only a Windows
//! filter can read: it is listed as `other` with its tag and never copied, so that
//! `get` cannot write wrong bytes; so are Interix FIFOs, sockets and devices.

mod interix;
mod link;
mod reparse;

use super::cursor::Cursor;
use super::{components, BrowseError, Entry, Kind, Result};
use crate::device::BlockDevice;
use link::Target;
use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{NtfsFileAttributeFlags, NtfsFileNamespace};
use ntfs::{Ntfs, NtfsAttributeType, NtfsFile, NtfsReadSeek, NtfsTime};
use reparse::Reparse;
use std::io::Write;
use std::sync::Arc;

/// The first file record that is not a metafile.
const FIRST_USER_RECORD: u64 = 16;

pub struct NtfsFs<'a> {
    device: String,
    ntfs: Ntfs,
    cur: Cursor<'a>,
}

/// What a file record is, for a Linux reader.
enum Node {
    Dir,
    File,
    Link(Target),
    /// Not copied; the reason.
    Other(String),
}

/// NT time (100 ns since 1601) to Unix seconds.
fn unix(t: NtfsTime) -> i64 {
    (t.nt_timestamp() / 10_000_000) as i64 - 11_644_473_600
}

impl<'a> NtfsFs<'a> {
    pub fn open(dev: Arc<dyn BlockDevice + 'a>) -> Result<NtfsFs<'a>> {
        let device = dev.describe();
        let mut cur = Cursor::zero_filling(dev);
        let fail = |e: String| BrowseError::Fs {
            device: device.clone(),
            path: "/".into(),
            what: format!("cannot open the NTFS filesystem: {e}"),
        };
        let ntfs = Ntfs::new(&mut cur).and_then(|mut n| {
            n.read_upcase_table(&mut cur)?;
            Ok(n)
        });
        if let Some(e) = cur.take_failure() {
            return Err(fail(e));
        }
        let ntfs = ntfs.map_err(|e| fail(e.to_string()))?;
        Ok(NtfsFs { device, ntfs, cur })
    }

    /// `r`, unless a read failed while it was made (then the read error): the cursor
    /// gives the `ntfs` crate zeros for unreadable bytes (see `Cursor::zero_filling`).
    fn checked<T>(&mut self, path: &str, r: Result<T>) -> Result<T> {
        match self.cur.take_failure() {
            Some(e) => Err(fs_err(&self.device, path, format!("read error: {e}"))),
            None => r,
        }
    }
}

fn fs_err(device: &str, path: &str, e: impl std::fmt::Display) -> BrowseError {
    BrowseError::Fs {
        device: device.to_string(),
        path: path.to_string(),
        what: e.to_string(),
    }
}

/// The file record `names` leads to from the root, with the names as stored on
/// the volume (NTFS looks them up without case), or `None` if one is missing.
fn find<'n>(
    device: &str,
    ntfs: &'n Ntfs,
    cur: &mut Cursor<'_>,
    path: &str,
    names: &[&str],
) -> Result<Option<(NtfsFile<'n>, Vec<String>)>> {
    let mut file = ntfs
        .root_directory(cur)
        .map_err(|e| fs_err(device, "/", e))?;
    let mut stored = Vec::new();
    for name in names {
        if !file.is_directory() {
            return Err(BrowseError::NotADirectory {
                device: device.to_string(),
                path: path.to_string(),
            });
        }
        let index = file
            .directory_index(cur)
            .map_err(|e| fs_err(device, path, e))?;
        let mut finder = index.finder();
        let Some(found) = NtfsFileNameIndex::find(&mut finder, ntfs, cur, name) else {
            return Ok(None);
        };
        let entry = found.map_err(|e| fs_err(device, path, e))?;
        // A found entry has a key; without one, the name asked for is the best we have.
        stored.push(match entry.key() {
            Some(key) => key
                .map_err(|e| fs_err(device, path, e))?
                .name()
                .to_string_lossy(),
            None => name.to_string(),
        });
        file = entry
            .to_file(ntfs, cur)
            .map_err(|e| fs_err(device, path, e))?;
    }
    Ok(Some((file, stored)))
}

/// The file record `path` names.
fn walk<'n>(
    device: &str,
    ntfs: &'n Ntfs,
    cur: &mut Cursor<'_>,
    path: &str,
) -> Result<NtfsFile<'n>> {
    match find(device, ntfs, cur, path, &components(path))? {
        Some((f, _)) => Ok(f),
        None => Err(BrowseError::NotFound {
            device: device.to_string(),
            path: path.to_string(),
        }),
    }
}

/// Up to `max` bytes of the first attribute of type `ty` (unnamed for $DATA), or
/// `None` without one; `max` bounds what a damaged length can make us read.
fn read_attr(
    device: &str,
    path: &str,
    f: &NtfsFile,
    cur: &mut Cursor<'_>,
    ty: NtfsAttributeType,
    max: u64,
) -> Result<Option<Vec<u8>>> {
    let mut it = f.attributes();
    while let Some(item) = it.next(cur) {
        let item = item.map_err(|e| fs_err(device, path, e))?;
        let attr = item.to_attribute().map_err(|e| fs_err(device, path, e))?;
        if attr.ty().ok() != Some(ty) {
            continue;
        }
        if ty == NtfsAttributeType::Data && attr.name_length() != 0 {
            continue;
        }
        let len = usize::try_from(attr.value_length().min(max)).unwrap_or(0);
        let mut value = attr.value(cur).map_err(|e| fs_err(device, path, e))?;
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
            match value.read(cur, rest).map_err(|e| fs_err(device, path, e))? {
                0 => break,
                n => got += n,
            }
        }
        buf.truncate(got);
        return Ok(Some(buf));
    }
    Ok(None)
}

/// Size of the unnamed $DATA stream (0 for directories).
fn data_len(device: &str, path: &str, f: &NtfsFile, cur: &mut Cursor<'_>) -> Result<u64> {
    if f.is_directory() {
        return Ok(0);
    }
    match f.data(cur, "") {
        None => Ok(0),
        Some(item) => {
            let item = item.map_err(|e| fs_err(device, path, e))?;
            let attr = item.to_attribute().map_err(|e| fs_err(device, path, e))?;
            Ok(attr.value_length())
        }
    }
}

/// Whether `f` is a directory, a file, a link or something not to copy. Malformed
/// link data makes the entry `Other`, the decoder's error its reason: one bad
/// record is named in the listing and skipped by `get`, rather than failing the
/// listing of its whole directory (as ntfs-3g fails only that entry).
fn classify(device: &str, path: &str, f: &NtfsFile, cur: &mut Cursor<'_>) -> Result<Node> {
    use NtfsFileAttributeFlags as A;
    let flags = f.info().map(|i| i.file_attributes()).unwrap_or(A::empty());
    if flags.contains(A::REPARSE_POINT) {
        let ty = NtfsAttributeType::ReparsePoint;
        if let Some(b) = read_attr(device, path, f, cur, ty, reparse::MAX_LEN as u64)? {
            let decoded = match reparse::decode(&b) {
                Ok(r) => r,
                Err(e) => return Ok(Node::Other(e.to_string())),
            };
            return Ok(match decoded {
                Reparse::Symlink { substitute, print }
                | Reparse::MountPoint { substitute, print } => {
                    Node::Link(link::from_windows(&substitute, &print))
                }
                Reparse::LxSymlink { target } => Node::Link(Target::Unix(target)),
                // A directory's entries are in its index whatever the tag says.
                Reparse::Other { .. } if f.is_directory() => Node::Dir,
                Reparse::Other { tag } => Node::Other(format!(
                    "reparse point {tag:#010x}: its data is read through a Windows filter"
                )),
            });
        }
    }
    if f.is_directory() {
        return Ok(Node::Dir);
    }
    if !flags.contains(A::SYSTEM) {
        return Ok(Node::File);
    }
    let len = data_len(device, path, f, cur)?;
    // ntfs-3g's rule: an empty SYSTEM file that is not HIDDEN is a FIFO, one of
    // a single byte a socket.
    if len <= 1 && !flags.contains(A::HIDDEN) {
        let what = if len == 0 { "FIFO" } else { "socket" };
        return Ok(Node::Other(format!("an Interix {what}")));
    }
    if (8..=interix::MAX_LEN).contains(&len) {
        let ty = NtfsAttributeType::Data;
        let data = read_attr(device, path, f, cur, ty, len)?.unwrap_or_default();
        match interix::decode(&data) {
            Ok(Some(interix::Interix::Symlink(t))) => return Ok(Node::Link(Target::Unix(t))),
            Ok(Some(interix::Interix::Device)) => {
                return Ok(Node::Other("an Interix device node".into()))
            }
            Ok(None) => {}
            Err(e) => return Ok(Node::Other(e.to_string())),
        }
    }
    Ok(Node::File)
}

/// A link's target as `get` makes it, or why it cannot be made (with the target
/// in Windows form). `path` is the link's own path.
fn resolve(
    device: &str,
    ntfs: &Ntfs,
    cur: &mut Cursor<'_>,
    path: &str,
    t: Target,
) -> Result<std::result::Result<String, (String, &'static str)>> {
    match t {
        Target::Unix(s) => Ok(Ok(s)),
        Target::Elsewhere { shown, why } => Ok(Err((shown, why))),
        Target::FromRoot {
            components: c,
            shown,
        } => {
            let names: Vec<&str> = c.iter().map(String::as_str).collect();
            match find(device, ntfs, cur, path, &names) {
                Ok(Some((_, stored))) => {
                    let me = components(path);
                    let dir = me.get(..me.len().saturating_sub(1)).unwrap_or_default();
                    Ok(Ok(link::relative(dir, &stored)))
                }
                Ok(None) | Err(BrowseError::NotADirectory { .. }) => {
                    Ok(Err((shown, "nothing on this volume: another drive?")))
                }
                Err(e) => Err(e),
            }
        }
    }
}

fn describe(
    device: &str,
    ntfs: &Ntfs,
    cur: &mut Cursor<'_>,
    path: &str,
    name: String,
    f: &NtfsFile,
) -> Result<Entry> {
    let mtime = f.info().ok().map(|i| unix(i.modification_time()));
    let mut e = Entry {
        name,
        kind: Kind::File,
        size: 0,
        mtime_unix: mtime,
        target: None,
        skip: None,
    };
    match classify(device, path, f, cur)? {
        Node::Dir => e.kind = Kind::Dir,
        Node::File => e.size = data_len(device, path, f, cur)?,
        Node::Other(why) => {
            e.kind = Kind::Other;
            e.size = data_len(device, path, f, cur)?;
            e.skip = Some(why);
        }
        Node::Link(t) => {
            e.kind = Kind::Symlink;
            let (target, skip) = match resolve(device, ntfs, cur, path, t)? {
                Ok(t) => (t, None),
                Err((shown, why)) => (shown, Some(why.to_string())),
            };
            e.size = target.len() as u64;
            e.target = Some(target);
            e.skip = skip;
        }
    }
    Ok(e)
}

fn join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

impl super::Browse for NtfsFs<'_> {
    fn fs_name(&self) -> &'static str {
        "ntfs"
    }

    fn stat(&mut self, path: &str) -> Result<Entry> {
        let r = self.stat_inner(path);
        self.checked(path, r)
    }

    fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        let r = self.list_inner(path);
        self.checked(path, r)
    }

    fn copy_to(&mut self, path: &str, out: &mut dyn Write) -> Result<u64> {
        let r = self.copy_inner(path, out);
        self.checked(path, r)
    }

    fn read_link(&mut self, path: &str) -> Result<String> {
        let r = self.link_inner(path);
        self.checked(path, r)
    }
}

impl NtfsFs<'_> {
    fn stat_inner(&mut self, path: &str) -> Result<Entry> {
        let NtfsFs { device, ntfs, cur } = self;
        let f = walk(device, ntfs, cur, path)?;
        describe(device, ntfs, cur, path, super::base_name(path), &f)
    }

    fn list_inner(&mut self, path: &str) -> Result<Vec<Entry>> {
        let NtfsFs { device, ntfs, cur } = self;
        let dir = walk(device, ntfs, cur, path)?;
        let not_dir = || BrowseError::NotADirectory {
            device: device.clone(),
            path: path.to_string(),
        };
        if !matches!(classify(device, path, &dir, cur)?, Node::Dir) {
            return Err(not_dir());
        }
        let index = dir
            .directory_index(cur)
            .map_err(|e| fs_err(device, path, e))?;
        let mut it = index.entries();
        let mut out = Vec::new();
        while let Some(e) = it.next(cur) {
            let e = e.map_err(|e| fs_err(device, path, e))?;
            if e.file_reference().file_record_number() < FIRST_USER_RECORD {
                continue;
            }
            let Some(key) = e.key() else { continue };
            let key = key.map_err(|e| fs_err(device, path, e))?;
            if key.namespace() == NtfsFileNamespace::Dos {
                continue;
            }
            let name = key.name().to_string_lossy();
            let child = join(path, &name);
            let f = e.to_file(ntfs, cur).map_err(|e| fs_err(device, path, e))?;
            out.push(describe(device, ntfs, cur, &child, name, &f)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn copy_inner(&mut self, path: &str, out: &mut dyn Write) -> Result<u64> {
        let NtfsFs { device, ntfs, cur } = self;
        let f = walk(device, ntfs, cur, path)?;
        let not_file = || BrowseError::NotAFile {
            device: device.clone(),
            path: path.to_string(),
        };
        if !matches!(classify(device, path, &f, cur)?, Node::File) {
            return Err(not_file());
        }
        let item = f
            .data(cur, "")
            .ok_or_else(not_file)?
            .map_err(|e| fs_err(device, path, e))?;
        let attr = item.to_attribute().map_err(|e| fs_err(device, path, e))?;
        let mut value = attr.value(cur).map_err(|e| fs_err(device, path, e))?;
        super::copy_stream(path, out, |buf| {
            value.read(cur, buf).map_err(|e| fs_err(device, path, e))
        })
    }

    fn link_inner(&mut self, path: &str) -> Result<String> {
        let NtfsFs { device, ntfs, cur } = self;
        let f = walk(device, ntfs, cur, path)?;
        let Node::Link(t) = classify(device, path, &f, cur)? else {
            return Err(BrowseError::NotALink {
                device: device.clone(),
                path: path.to_string(),
            });
        };
        resolve(device, ntfs, cur, path, t)?.map_err(|(target, why)| BrowseError::LinkElsewhere {
            device: device.clone(),
            path: path.to_string(),
            target,
            why,
        })
    }
}
