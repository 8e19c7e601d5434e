//! The repository picker's typed location. The field opens holding "/" so that a
//! folder can be typed without its leading slash; it decides here, in one place, what
//! the text names (a folder on this machine or a network share), and the screen shows
//! that decision under the field before Enter.

use super::input::LineInput;
use crate::share::{is_share_location, is_smb_location};
use crate::tui::model::RepoTarget;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathField {
    text: String,
    /// The first character is the "/" the field opened with, not one the user typed.
    /// Typing a "/" or "\" over it alone starts the text over: `/mnt/backups` typed
    /// as anyone types it would otherwise become `//mnt/backups`, an SMB share.
    opening_slash: bool,
}

/// What the typed text names, as the screen states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypedKind {
    Folder,
    SmbShare,
    NfsExport,
    /// `s3://bucket/prefix`: object storage (the credentials screen follows).
    S3Store,
    /// `sftp://user@host/path`.
    SftpServer,
    /// Neither: a relative path, which is refused when opened.
    Unclear,
}

impl Default for PathField {
    fn default() -> Self {
        PathField {
            text: String::from("/"),
            opening_slash: true,
        }
    }
}

impl PathField {
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> TypedKind {
        let t = self.text.trim();
        if t.starts_with("s3://") {
            TypedKind::S3Store
        } else if t.starts_with("sftp://") {
            TypedKind::SftpServer
        } else if is_smb_location(t) {
            TypedKind::SmbShare
        } else if is_share_location(t) {
            TypedKind::NfsExport
        } else if t.starts_with('/') {
            TypedKind::Folder
        } else {
            TypedKind::Unclear
        }
    }

    /// One line saying what Enter will open.
    pub fn describe(&self) -> &'static str {
        match self.kind() {
            TypedKind::Folder => "a folder on this machine",
            TypedKind::SmbShare => "a Windows/SMB network share (//server/share)",
            TypedKind::NfsExport => "an NFS export (server:/path)",
            TypedKind::S3Store => "S3 object storage (s3://bucket/prefix)",
            TypedKind::SftpServer => "an SFTP server (sftp://user@host[:port]/path)",
            TypedKind::Unclear => "not a location yet: a folder starts with /, a share with //",
        }
    }

    pub fn target(&self) -> RepoTarget {
        RepoTarget::Path(PathBuf::from(self.text.trim()))
    }
}

/// Characters a typed location takes: a deep folder or a long `sftp://` or `s3://`
/// URL (user, host, port, a path on the server) is well over the 64 of other fields;
/// PATH_MAX (4096) would only let a stuck key fill the screen's memory of the field.
pub const LOCATION_MAX_CHARS: usize = 1024;

impl LineInput for PathField {
    fn char_len(&self) -> usize {
        self.text.char_len()
    }

    fn max_chars(&self) -> usize {
        LOCATION_MAX_CHARS
    }

    fn push(&mut self, c: char) {
        if self.opening_slash && self.text == "/" && (c == '/' || c == '\\') {
            self.text = c.to_string();
            self.opening_slash = false;
            return;
        }
        self.text.push(c);
        // `smb://nas/x` or `nas:/volume1` typed after the opening "/": the slash was
        // never meant, and `/smb://...` would be taken for a folder.
        if self.opening_slash {
            let rest = &self.text[1..];
            // A host comes before its first "/" (`nas:/x`); `mnt/c:/x` is a folder.
            let host_first = rest.find(':').is_some_and(|c| !rest[..c].contains('/'));
            if host_first && is_share_location(rest) {
                self.text.remove(0);
                self.opening_slash = false;
            }
        }
    }

    fn pop(&mut self) {
        self.text.pop();
        if self.text.is_empty() {
            self.opening_slash = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> PathField {
        let mut f = PathField::default();
        for c in s.chars() {
            LineInput::push(&mut f, c);
        }
        f
    }

    #[test]
    fn an_absolute_path_typed_over_the_opening_slash_is_a_folder() {
        let f = typed("/mnt/backups");
        assert_eq!(f.text(), "/mnt/backups");
        assert_eq!(f.kind(), TypedKind::Folder);
        assert_eq!(typed("mnt/usb").text(), "/mnt/usb");
        assert_eq!(typed("mnt/c:/x").kind(), TypedKind::Folder);
    }

    #[test]
    fn shares_typed_in_any_spelling_stay_shares() {
        for (keys, text, kind) in [
            ("//nas/backups", "//nas/backups", TypedKind::SmbShare),
            ("\\\\nas\\backups", "\\\\nas\\backups", TypedKind::SmbShare),
            (
                "smb://nas/backups",
                "smb://nas/backups",
                TypedKind::SmbShare,
            ),
            (
                "nas:/volume1/backups",
                "nas:/volume1/backups",
                TypedKind::NfsExport,
            ),
            (
                "s3://lab-images/pcs",
                "s3://lab-images/pcs",
                TypedKind::S3Store,
            ),
            (
                "sftp://me@nas:2222/srv/img",
                "sftp://me@nas:2222/srv/img",
                TypedKind::SftpServer,
            ),
        ] {
            let f = typed(keys);
            assert_eq!((f.text(), f.kind()), (text, kind), "typed {keys}");
        }
    }

    #[test]
    fn a_long_url_is_kept_whole_up_to_the_location_limit() {
        let long = format!(
            "sftp://backup-operator@nas-02.lab.example.org:2222/{}",
            "d/".repeat(40)
        );
        assert!(long.chars().count() > 64);
        let f = typed(&long);
        assert_eq!(f.text(), long);
        // The limit is edit()'s, the key handler's.
        let mut f = PathField::default();
        for _ in 0..LOCATION_MAX_CHARS + 10 {
            let k = super::super::key(crossterm::event::KeyCode::Char('x'));
            assert!(super::super::edit(&mut f, &k));
        }
        assert_eq!(f.char_len(), LOCATION_MAX_CHARS);
        LineInput::pop(&mut f);
        assert_eq!(f.char_len(), LOCATION_MAX_CHARS - 1);
    }

    #[test]
    fn an_emptied_field_takes_text_as_typed() {
        let mut f = PathField::default();
        LineInput::pop(&mut f);
        for c in "mnt".chars() {
            LineInput::push(&mut f, c);
        }
        assert_eq!((f.text(), f.kind()), ("mnt", TypedKind::Unclear));
    }
}
