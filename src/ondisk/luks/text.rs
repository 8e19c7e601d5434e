//! The fixed-size, NUL-padded ASCII fields both LUKS versions share (cipher names, the
//! UUID, the LUKS2 label).

/// The text before the first NUL, if it is printable ASCII; `None` for other bytes.
pub(super) fn ascii_field(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    let s = raw.get(..end)?;
    s.iter()
        .all(|c| c.is_ascii_graphic() || *c == b' ')
        .then(|| String::from_utf8_lossy(s).into_owned())
}

/// A UUID field: cryptsetup writes the 36-character hyphenated form, NUL padded.
pub(super) fn uuid_field(raw: &[u8]) -> Option<String> {
    ascii_field(raw).filter(|u| {
        !u.is_empty() && u.len() <= 36 && u.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-')
    })
}
