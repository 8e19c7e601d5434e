//! How an `s3://bucket/prefix` location is reached, resolved in this one place: the
//! opendal backend (remote.rs) and the few requests opendal lacks (s3_uploads.rs)
//! both take it, so they talk to the same endpoint, region and bucket addressing with
//! the same credentials.
//!
//! The endpoint is always resolved here and handed to opendal explicitly (its own
//! fallbacks to the environment then never apply): `--s3-endpoint`, else
//! `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `AWS_ENDPOINT`, `AWS_S3_ENDPOINT`,
//! else AWS's regional endpoint. It is normalized as opendal 0.57 does
//! (`S3Builder::build_endpoint`): `https://` when no scheme, no trailing `/`, a
//! `bucket.` in the host removed, `https://s3.amazonaws.com` made regional.

use super::remote::RemoteOptions;
use crate::share::Password;

#[derive(Clone)]
pub(super) struct S3Config {
    pub bucket: String,
    /// The repository's prefix in the bucket, without slashes at its ends.
    pub prefix: String,
    /// `scheme://host[:port]`, without the bucket.
    pub endpoint: String,
    pub region: String,
    /// `https://bucket.host/key` (else `https://host/bucket/key`).
    pub virtual_host: bool,
    /// A key typed in the TUI; else the AWS environment and files (the default chain).
    pub static_key: Option<(String, Password)>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl S3Config {
    pub fn resolve(bucket: &str, prefix: &str, opts: &RemoteOptions) -> S3Config {
        let region = opts
            .s3_region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let given = opts
            .s3_endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| env("AWS_ENDPOINT"))
            .or_else(|| env("AWS_S3_ENDPOINT"));
        S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            endpoint: normalize_endpoint(given.as_deref(), bucket, &region),
            region,
            virtual_host: !opts.s3_path_style,
            static_key: match (&opts.s3_access_key, &opts.s3_secret_key) {
                (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
                _ => None,
            },
        }
    }

    /// The opendal backend for this location.
    pub fn opendal(&self) -> opendal::services::S3 {
        let mut b = opendal::services::S3::default()
            .bucket(&self.bucket)
            .root(&format!("/{}", self.prefix))
            .endpoint(&self.endpoint)
            .region(&self.region);
        if let Some((id, secret)) = &self.static_key {
            b = b
                .access_key_id(id)
                .secret_access_key(secret.expose_for_storage());
        }
        if self.virtual_host {
            b = b.enable_virtual_host_style();
        }
        b
    }

    /// The bucket's URL, without a trailing `/` (as opendal builds it).
    pub fn bucket_url(&self) -> String {
        match self.virtual_host {
            true => self
                .endpoint
                .replacen("//", &format!("//{}.", self.bucket), 1),
            false => format!("{}/{}", self.endpoint, self.bucket),
        }
    }

    /// The start of every key of this repository: `prefix/`, or nothing.
    pub fn key_prefix(&self) -> String {
        match self.prefix.is_empty() {
            true => String::new(),
            false => format!("{}/", self.prefix),
        }
    }
}

fn normalize_endpoint(given: Option<&str>, bucket: &str, region: &str) -> String {
    let e = match given {
        Some(e) if e.starts_with("http") => e.to_string(),
        Some(e) => format!("https://{e}"),
        None => "https://s3.amazonaws.com".to_string(),
    };
    let e = e.replace(&format!("//{bucket}."), "//");
    let e = e.trim_end_matches('/');
    let e = match e.strip_suffix(":443") {
        Some(h) if e.starts_with("https://") => h,
        _ => match e.strip_suffix(":80") {
            Some(h) if e.starts_with("http://") => h,
            _ => e,
        },
    };
    match e {
        "https://s3.amazonaws.com" => format!("https://s3.{region}.amazonaws.com"),
        e => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalized_as_opendal_does() {
        let n = |e: Option<&str>| normalize_endpoint(e, "bk", "eu-west-1");
        assert_eq!(n(None), "https://s3.eu-west-1.amazonaws.com");
        assert_eq!(
            n(Some("https://s3.amazonaws.com/")),
            "https://s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(n(Some("minio:9000")), "https://minio:9000");
        assert_eq!(n(Some("http://127.0.0.1:8333")), "http://127.0.0.1:8333");
        assert_eq!(
            n(Some("https://bk.s3.example.com:443")),
            "https://s3.example.com"
        );
        let opts = RemoteOptions {
            s3_endpoint: Some("http://127.0.0.1:8333".into()),
            s3_path_style: true,
            ..Default::default()
        };
        let c = S3Config::resolve("bk", "/repo/x/", &opts);
        assert_eq!(c.bucket_url(), "http://127.0.0.1:8333/bk");
        assert_eq!(c.key_prefix(), "repo/x/");
        let c = S3Config {
            virtual_host: true,
            ..c
        };
        assert_eq!(c.bucket_url(), "http://bk.127.0.0.1:8333");
    }
}
