//! The two S3 answers prune reads about unfinished multipart uploads, decoded here
//! and nowhere else: `ListMultipartUploadsResult` (one page of uploads under a
//! prefix) and `ListPartsResult` (one page of an upload's parts, for its size).
//! Everything is checked: a missing field, a number that does not parse or overflows
//! a `u64`, a sum of sizes past 2^64, or XML that is not well formed is a
//! `ListingError` naming the field, never a guess.

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListingError {
    #[error("not well-formed XML near byte {at}: {why}")]
    Xml { at: u64, why: String },
    #[error("the answer is <{found}>, not <{expected}>")]
    WrongRoot {
        expected: &'static str,
        found: String,
    },
    #[error("an <{element}> without <{field}>")]
    Missing {
        element: &'static str,
        field: &'static str,
    },
    #[error("<{field}> is {value:?}, not a number in range")]
    BadNumber { field: &'static str, value: String },
    #[error("<IsTruncated> is {0:?}, not true or false")]
    BadBool(String),
    #[error("the part sizes add up past 2^64 bytes")]
    Overflow,
}

/// One unfinished multipart upload as the store lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedUpload {
    /// The object key the upload would create (with the repository's prefix).
    pub key: String,
    pub upload_id: String,
    /// As the store wrote it (ISO 8601), for messages only.
    pub initiated: Option<String>,
}

/// One page of `ListMultipartUploads`.
#[derive(Debug, PartialEq, Eq)]
pub struct UploadsPage {
    pub uploads: Vec<ListedUpload>,
    /// Where the next page starts (`key-marker`, `upload-id-marker`), when the page
    /// says it is truncated. AWS names it in `NextKeyMarker`/`NextUploadIdMarker`;
    /// SeaweedFS 4.48 omits `NextKeyMarker`, so the last upload listed stands in.
    pub next: Option<(String, String)>,
}

/// One page of `ListParts`.
#[derive(Debug, PartialEq, Eq)]
pub struct PartsPage {
    pub bytes: u64,
    /// `part-number-marker` of the next page, when truncated.
    pub next: Option<u64>,
}

/// Each element closed, in document order: its path from the root and its text.
/// Children close before their parent, which is how records are grouped below.
fn closed_elements(xml: &str) -> Result<Vec<(Vec<String>, String)>, ListingError> {
    let mut r = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut text: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let err = |r: &Reader<&[u8]>, why: String| ListingError::Xml {
        at: r.buffer_position(),
        why,
    };
    loop {
        match r.read_event() {
            Err(e) => return Err(err(&r, e.to_string())),
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                path.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.push(String::new());
            }
            Ok(Event::Empty(e)) => {
                let mut p = path.clone();
                p.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                out.push((p, String::new()));
            }
            Ok(Event::End(_)) => {
                let t = text.pop().unwrap_or_default();
                out.push((path.clone(), t));
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let s = t.decode().map_err(|e| err(&r, e.to_string()))?;
                if let Some(cur) = text.last_mut() {
                    cur.push_str(&s);
                }
            }
            Ok(Event::CData(t)) => {
                let s = t.decode().map_err(|e| err(&r, e.to_string()))?;
                if let Some(cur) = text.last_mut() {
                    cur.push_str(&s);
                }
            }
            Ok(Event::GeneralRef(g)) => {
                let c = match g.resolve_char_ref().map_err(|e| err(&r, e.to_string()))? {
                    Some(c) => c,
                    None => match g.as_ref() {
                        b"amp" => '&',
                        b"lt" => '<',
                        b"gt" => '>',
                        b"quot" => '"',
                        b"apos" => '\'',
                        other => {
                            let name = String::from_utf8_lossy(other).into_owned();
                            return Err(err(&r, format!("unknown entity &{name};")));
                        }
                    },
                };
                if let Some(cur) = text.last_mut() {
                    cur.push(c);
                }
            }
            Ok(_) => {} // declaration, comments, processing instructions
        }
    }
    if let Some(open) = path.last() {
        return Err(err(&r, format!("<{open}> is never closed")));
    }
    match out.last() {
        Some((p, _)) if p.len() == 1 => Ok(out),
        _ => Err(err(&r, "no root element".into())),
    }
}

fn check_root(
    elements: &[(Vec<String>, String)],
    expected: &'static str,
) -> Result<(), ListingError> {
    let found = elements
        .last()
        .and_then(|(p, _)| p.first())
        .cloned()
        .unwrap_or_default();
    match found == expected {
        true => Ok(()),
        false => Err(ListingError::WrongRoot { expected, found }),
    }
}

/// The text of the root's child `name`, if present.
fn top<'a>(elements: &'a [(Vec<String>, String)], name: &str) -> Option<&'a str> {
    elements
        .iter()
        .find(|(p, _)| p.len() == 2 && p[1] == name)
        .map(|(_, t)| t.trim())
}

fn truncated(elements: &[(Vec<String>, String)]) -> Result<bool, ListingError> {
    match top(elements, "IsTruncated") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ListingError::BadBool(other.to_string())),
    }
}

fn number(field: &'static str, value: &str) -> Result<u64, ListingError> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| ListingError::BadNumber {
            field,
            value: value.to_string(),
        })
}

/// Decodes one `ListMultipartUploadsResult`.
pub fn uploads_page(xml: &str) -> Result<UploadsPage, ListingError> {
    let el = closed_elements(xml)?;
    check_root(&el, "ListMultipartUploadsResult")?;
    let mut uploads = Vec::new();
    let (mut key, mut id, mut initiated) = (None, None, None);
    for (p, t) in &el {
        match (
            p.len(),
            p.get(1).map(String::as_str),
            p.get(2).map(String::as_str),
        ) {
            (3, Some("Upload"), Some("Key")) => key = Some(t.clone()),
            (3, Some("Upload"), Some("UploadId")) => id = Some(t.trim().to_string()),
            (3, Some("Upload"), Some("Initiated")) => initiated = Some(t.trim().to_string()),
            (2, Some("Upload"), _) => {
                let missing = |field| ListingError::Missing {
                    element: "Upload",
                    field,
                };
                let key = key.take().filter(|k| !k.is_empty()).ok_or(missing("Key"))?;
                let upload_id = id
                    .take()
                    .filter(|i| !i.is_empty())
                    .ok_or(missing("UploadId"))?;
                uploads.push(ListedUpload {
                    key,
                    upload_id,
                    initiated: initiated.take(),
                });
            }
            _ => {}
        }
    }
    let next = match truncated(&el)? {
        false => None,
        true => {
            let last = uploads.last();
            let key = top(&el, "NextKeyMarker")
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .or_else(|| last.map(|u| u.key.clone()));
            let id = top(&el, "NextUploadIdMarker")
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .or_else(|| last.map(|u| u.upload_id.clone()));
            match (key, id) {
                (Some(k), Some(i)) => Some((k, i)),
                _ => {
                    return Err(ListingError::Missing {
                        element: "ListMultipartUploadsResult",
                        field: "NextKeyMarker",
                    })
                }
            }
        }
    };
    Ok(UploadsPage { uploads, next })
}

/// Decodes one `ListPartsResult`: the bytes of its parts (checked sum).
pub fn parts_page(xml: &str) -> Result<PartsPage, ListingError> {
    let el = closed_elements(xml)?;
    check_root(&el, "ListPartsResult")?;
    let mut bytes: u64 = 0;
    let mut size = None;
    for (p, t) in &el {
        match (
            p.len(),
            p.get(1).map(String::as_str),
            p.get(2).map(String::as_str),
        ) {
            (3, Some("Part"), Some("Size")) => size = Some(number("Size", t)?),
            (2, Some("Part"), _) => {
                let s = size.take().ok_or(ListingError::Missing {
                    element: "Part",
                    field: "Size",
                })?;
                bytes = bytes.checked_add(s).ok_or(ListingError::Overflow)?;
            }
            _ => {}
        }
    }
    let next = match truncated(&el)? {
        false => None,
        true => Some(number(
            "NextPartNumberMarker",
            top(&el, "NextPartNumberMarker").ok_or(ListingError::Missing {
                element: "ListPartsResult",
                field: "NextPartNumberMarker",
            })?,
        )?),
    };
    Ok(PartsPage { bytes, next })
}
