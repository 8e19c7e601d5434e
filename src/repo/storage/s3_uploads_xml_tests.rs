//! The S3 listing answers prune decodes (s3_uploads_xml.rs): pages, empty answers,
//! malformed and out-of-range ones, each a typed error.

use super::s3_uploads_xml::{parts_page, uploads_page, ListedUpload, ListingError};

const NS: &str = r#"xmlns="http://s3.amazonaws.com/doc/2006-03-01/""#;

fn uploads_xml(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult {NS}><Bucket>b</Bucket><Prefix>repo/</Prefix>{body}</ListMultipartUploadsResult>"#
    )
}

fn upload(key: &str, id: &str) -> String {
    format!("<Upload><Key>{key}</Key><UploadId>{id}</UploadId><Initiated>2026-12-04T14:47:30.000Z</Initiated><Owner><ID>x</ID></Owner></Upload>")
}

#[test]
fn an_empty_listing_is_no_uploads_and_no_next_page() {
    let p = uploads_page(&uploads_xml("<IsTruncated>false</IsTruncated>")).unwrap();
    assert!(p.uploads.is_empty() && p.next.is_none());
    // SeaweedFS's empty elements and no IsTruncated at all.
    let p = uploads_page(&uploads_xml("<Delimiter></Delimiter><KeyMarker/>")).unwrap();
    assert!(p.uploads.is_empty() && p.next.is_none());
}

#[test]
fn uploads_are_read_with_the_markers_of_the_next_page() {
    let body = format!(
        "<IsTruncated>true</IsTruncated><NextKeyMarker>repo/images/b.json</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>{}{}",
        upload("repo/images/a&amp;b.json", "u1"),
        upload("repo/images/b.json", "u2")
    );
    let p = uploads_page(&uploads_xml(&body)).unwrap();
    assert_eq!(
        p.uploads[0],
        ListedUpload {
            key: "repo/images/a&b.json".into(),
            upload_id: "u1".into(),
            initiated: Some("2026-12-04T14:47:30.000Z".into()),
        }
    );
    assert_eq!(p.uploads.len(), 2);
    assert_eq!(p.next, Some(("repo/images/b.json".into(), "u2".into())));
    // Without NextKeyMarker (SeaweedFS), the last upload listed is the marker.
    let body = format!(
        "<IsTruncated>true</IsTruncated><NextUploadIdMarker>u1</NextUploadIdMarker>{}",
        upload("repo/images/a.json", "u1")
    );
    let p = uploads_page(&uploads_xml(&body)).unwrap();
    assert_eq!(p.next, Some(("repo/images/a.json".into(), "u1".into())));
    // Truncated with nothing to go on from.
    let e = uploads_page(&uploads_xml("<IsTruncated>true</IsTruncated>")).unwrap_err();
    assert!(
        matches!(
            e,
            ListingError::Missing {
                field: "NextKeyMarker",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn malformed_listings_are_named_errors() {
    let e = uploads_page(&uploads_xml("<Upload><UploadId>u</UploadId></Upload>")).unwrap_err();
    assert_eq!(
        e,
        ListingError::Missing {
            element: "Upload",
            field: "Key"
        }
    );
    let e = uploads_page(&uploads_xml("<Upload><Key>k</Key></Upload>")).unwrap_err();
    assert!(
        matches!(
            e,
            ListingError::Missing {
                field: "UploadId",
                ..
            }
        ),
        "{e}"
    );
    let e = uploads_page(&uploads_xml("<IsTruncated>maybe</IsTruncated>")).unwrap_err();
    assert_eq!(e, ListingError::BadBool("maybe".into()));
    for broken in [
        "<ListMultipartUploadsResult><Upload><Key>k</Key>",
        "<ListMultipartUploadsResult><Key>k</Upload></ListMultipartUploadsResult>",
        "<ListMultipartUploadsResult>&bogus;</ListMultipartUploadsResult>",
        "",
        "not xml at all",
    ] {
        let e = uploads_page(broken).unwrap_err();
        assert!(matches!(e, ListingError::Xml { .. }), "{broken:?}: {e}");
    }
    let e = uploads_page("<Error><Code>AccessDenied</Code></Error>").unwrap_err();
    assert_eq!(
        e,
        ListingError::WrongRoot {
            expected: "ListMultipartUploadsResult",
            found: "Error".into()
        }
    );
}

fn parts_xml(body: &str) -> String {
    format!(
        r#"<ListPartsResult {NS}><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>{body}</ListPartsResult>"#
    )
}

fn part(n: u64, size: &str) -> String {
    format!(
        "<Part><ETag>&#34;d2ac&#34;</ETag><PartNumber>{n}</PartNumber><Size>{size}</Size></Part>"
    )
}

#[test]
fn parts_add_up_with_checked_arithmetic() {
    let p = parts_page(&parts_xml(&format!(
        "<IsTruncated>false</IsTruncated>{}{}",
        part(1, "5242880"),
        part(2, "17")
    )))
    .unwrap();
    assert_eq!((p.bytes, p.next), (5_242_897, None));
    let p = parts_page(&parts_xml("<IsTruncated>false</IsTruncated>")).unwrap();
    assert_eq!((p.bytes, p.next), (0, None));
    let p = parts_page(&parts_xml(&format!(
        "<IsTruncated>true</IsTruncated><NextPartNumberMarker>1</NextPartNumberMarker>{}",
        part(1, "18446744073709551615")
    )))
    .unwrap();
    assert_eq!((p.bytes, p.next), (u64::MAX, Some(1)));
    // Huge numbers: a sum past u64, a size past u64, a negative one.
    let e = parts_page(&parts_xml(&format!(
        "{}{}",
        part(1, "18446744073709551615"),
        part(2, "1")
    )))
    .unwrap_err();
    assert_eq!(e, ListingError::Overflow);
    for bad in ["18446744073709551616", "-1", "5 MiB", ""] {
        let e = parts_page(&parts_xml(&part(1, bad))).unwrap_err();
        assert_eq!(
            e,
            ListingError::BadNumber {
                field: "Size",
                value: bad.into()
            }
        );
    }
    let e = parts_page(&parts_xml("<Part><PartNumber>1</PartNumber></Part>")).unwrap_err();
    assert!(
        matches!(e, ListingError::Missing { field: "Size", .. }),
        "{e}"
    );
    let e = parts_page(&parts_xml("<IsTruncated>true</IsTruncated>")).unwrap_err();
    assert!(
        matches!(
            e,
            ListingError::Missing {
                field: "NextPartNumberMarker",
                ..
            }
        ),
        "{e}"
    );
    let e = parts_page(&parts_xml(
        "<IsTruncated>true</IsTruncated><NextPartNumberMarker>99999999999999999999</NextPartNumberMarker>",
    ))
    .unwrap_err();
    assert!(
        matches!(
            e,
            ListingError::BadNumber {
                field: "NextPartNumberMarker",
                ..
            }
        ),
        "{e}"
    );
}
