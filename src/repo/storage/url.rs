//! One parser for every repository location a command takes: a local path,
//! `s3://bucket[/prefix]` or `sftp://[user@]host[:port]/path`. Anything else with a
//! `scheme://` is refused by name rather than taken for a directory called `s3:`.

use std::path::{Path, PathBuf};
use thiserror::Error;

/// Where a repository lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3 {
        bucket: String,
        /// Without leading or trailing `/`; empty for the bucket's top.
        prefix: String,
    },
    Sftp {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        /// Absolute, or relative to the login directory when it starts with `~/`.
        path: String,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LocationError {
    #[error("{url}: unknown scheme {scheme:?} (a repository is a path, s3://bucket/prefix or sftp://user@host/path)")]
    Scheme { url: String, scheme: String },
    #[error("{url}: no bucket after s3://")]
    NoBucket { url: String },
    #[error("{url}: bucket {bucket:?} is not a valid S3 bucket name (3-63 of a-z 0-9 . -)")]
    BadBucket { url: String, bucket: String },
    #[error("{url}: no host after sftp://")]
    NoHost { url: String },
    #[error("{url}: port {port:?} is not a number from 1 to 65535")]
    BadPort { url: String, port: String },
    #[error("{url}: no repository path after the host (sftp://user@host/path)")]
    NoPath { url: String },
    #[error("{url}: the location is not valid UTF-8")]
    NotUtf8 { url: String },
    #[error("{url}: {part:?} holds `..` or an empty path segment")]
    BadSegment { url: String, part: String },
}

fn valid_bucket(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
}

/// Whether a `/`-separated key prefix has no `..` and no empty inner segment.
fn clean(path: &str) -> bool {
    path.split('/').all(|s| s != "..") && !path.contains("//")
}

/// Parses a repository location as the user typed it.
pub fn parse_location(p: &Path) -> Result<Location, LocationError> {
    let Some(s) = p.to_str() else {
        // A non-UTF-8 name can only be a local path.
        return Ok(Location::Local(p.to_path_buf()));
    };
    let Some((scheme, rest)) = s.split_once("://") else {
        return Ok(Location::Local(p.to_path_buf()));
    };
    let url = s.to_string();
    // A path such as `./a://b` is a directory; a scheme is letters only.
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+')
    {
        return Ok(Location::Local(p.to_path_buf()));
    }
    match scheme {
        "s3" => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(LocationError::NoBucket { url });
            }
            if !valid_bucket(bucket) {
                return Err(LocationError::BadBucket {
                    bucket: bucket.into(),
                    url,
                });
            }
            let prefix = prefix.trim_matches('/');
            if !clean(prefix) {
                return Err(LocationError::BadSegment {
                    part: prefix.into(),
                    url,
                });
            }
            Ok(Location::S3 {
                bucket: bucket.into(),
                prefix: prefix.into(),
            })
        }
        "sftp" => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let (user, hostport) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u.to_string()).filter(|u| !u.is_empty()), h),
                None => (None, authority),
            };
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, port)) => {
                    let n = port.parse::<u16>().ok().filter(|&n| n > 0).ok_or_else(|| {
                        LocationError::BadPort {
                            port: port.into(),
                            url: url.clone(),
                        }
                    })?;
                    (h, Some(n))
                }
                None => (hostport, None),
            };
            if host.is_empty() {
                return Err(LocationError::NoHost { url });
            }
            // `sftp://host/~/repo` is relative to the login directory, as with scp.
            let path = path
                .strip_prefix("/~/")
                .map_or(path.to_string(), |r| format!("~/{r}"));
            let trimmed = path.trim_end_matches('/');
            if trimmed.is_empty() || trimmed == "~" {
                return Err(LocationError::NoPath { url });
            }
            if !clean(trimmed) {
                return Err(LocationError::BadSegment {
                    part: trimmed.into(),
                    url,
                });
            }
            Ok(Location::Sftp {
                user,
                host: host.into(),
                port,
                path: trimmed.into(),
            })
        }
        other => Err(LocationError::Scheme {
            scheme: other.into(),
            url,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Location, LocationError> {
        parse_location(Path::new(s))
    }

    #[test]
    fn paths_s3_and_sftp_parse_and_bad_parts_are_named() {
        assert_eq!(parse("/mnt/repo"), Ok(Location::Local("/mnt/repo".into())));
        assert_eq!(parse("rel/dir"), Ok(Location::Local("rel/dir".into())));
        assert_eq!(
            parse("s3://my-bucket/a/b/"),
            Ok(Location::S3 {
                bucket: "my-bucket".into(),
                prefix: "a/b".into()
            })
        );
        assert_eq!(
            parse("s3://bkt"),
            Ok(Location::S3 {
                bucket: "bkt".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            parse("sftp://me@host.lan:2222/srv/repo"),
            Ok(Location::Sftp {
                user: Some("me".into()),
                host: "host.lan".into(),
                port: Some(2222),
                path: "/srv/repo".into()
            })
        );
        assert_eq!(
            parse("sftp://host/~/repo"),
            Ok(Location::Sftp {
                user: None,
                host: "host".into(),
                port: None,
                path: "~/repo".into()
            })
        );
        assert!(matches!(
            parse("s3:///x"),
            Err(LocationError::NoBucket { .. })
        ));
        assert!(
            matches!(parse("s3://Big_Bucket/x"), Err(LocationError::BadBucket { bucket, .. }) if bucket == "Big_Bucket")
        );
        assert!(matches!(
            parse("s3://bkt/a/../b"),
            Err(LocationError::BadSegment { .. })
        ));
        assert!(
            matches!(parse("sftp://h:0/x"), Err(LocationError::BadPort { port, .. }) if port == "0")
        );
        assert!(matches!(
            parse("sftp://h:ssh/x"),
            Err(LocationError::BadPort { .. })
        ));
        assert!(matches!(
            parse("sftp://u@/x"),
            Err(LocationError::NoHost { .. })
        ));
        assert!(matches!(
            parse("sftp://h"),
            Err(LocationError::NoPath { .. })
        ));
        assert!(
            matches!(parse("ftp://h/x"), Err(LocationError::Scheme { scheme, .. }) if scheme == "ftp")
        );
    }
}
