//! The S3 calls about unfinished multipart uploads that opendal 0.57 does not have:
//! `ListMultipartUploads` (by prefix, paginated with `key-marker` and
//! `upload-id-marker`), `ListParts` (an upload's size) and `AbortMultipartUpload`.
//! A backup killed while its manifest streams (remote_stream.rs) leaves such an
//! upload, invisible to listings, whose parts the store keeps (and bills) until
//! aborted; prune finds and aborts them (prune_uploads.rs says which).
//!
//! opendal's S3 service only aborts an upload its own `Writer` started (checked in
//! its source, opendal-service-s3 0.57.0, core.rs: `?uploads` only in the POST that
//! starts one, no ListMultipartUploads or ListParts, and its `S3Core` with the abort
//! call is not reachable through the `Operator`), so these
//! requests are built here and signed with the same crates opendal uses, at the
//! versions Cargo.lock already has (`reqsign-aws-v4`, `reqsign-core`,
//! `reqsign-file-read-tokio`, `reqwest`, `quick-xml`; no new code is downloaded). The
//! endpoint, region, bucket addressing and credentials are the opendal backend's
//! (`S3Config`, one place), the credential chain the same as opendal builds (the
//! static key if the TUI gave one, then the AWS environment, profile files and
//! instance metadata). Each request is retried like opendal's (`retry_when`, 5xx,
//! 429, timeouts and dropped connections); the answers are decoded in
//! s3_uploads_xml.rs.

use super::remote::{retry_when, IO_TIMEOUT, REQUEST_TIMEOUT};
use super::s3_config::S3Config;
use super::s3_uploads_xml::{self as xml, ListingError};
use bytes::Bytes;
use reqsign_aws_v4::StaticCredentialProvider;
use reqsign_aws_v4::{Credential, DefaultCredentialProvider, RequestSigner};
use reqsign_core::{Context, HttpSend, OsEnv, ProvideCredentialChain, Signer};
use std::collections::HashSet;
use std::io;

/// Pages of a listing past which it is taken for a store that does not advance.
const MAX_PAGES: u32 = 10_000;

/// An unfinished multipart upload of the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnfinishedUpload {
    /// The object it would create, relative to the repository (`images/x.json`).
    pub name: String,
    /// Its key in the bucket (with the repository's prefix).
    pub key: String,
    pub upload_id: String,
    /// When the store says it began (ISO 8601, the store's clock), for messages.
    pub initiated: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadsError {
    #[error("{op}: the answer could not be read: {source}")]
    Listing {
        op: &'static str,
        source: ListingError,
    },
    #[error("{op}: HTTP {status}: {detail}")]
    Status {
        op: &'static str,
        status: u16,
        detail: String,
    },
    #[error("{op}: {why}")]
    Request {
        op: &'static str,
        why: String,
        temporary: bool,
    },
    #[error("{op}: signing the request: {why}")]
    Sign { op: &'static str, why: String },
    #[error(
        "the listing of unfinished uploads did not advance past {key:?} after {pages} page(s)"
    )]
    Stuck { key: String, pages: u32 },
}

impl UploadsError {
    pub(super) fn temporary(&self) -> bool {
        match self {
            UploadsError::Status { status, .. } => *status >= 500 || *status == 429,
            UploadsError::Request { temporary, .. } => *temporary,
            _ => false,
        }
    }

    /// A request that failed on its way: temporary (retried) for a timeout, a
    /// connection refused or dropped, or a body cut mid-way (which reqwest's decoder
    /// reports as a decode error).
    pub(super) fn lost(op: &'static str, e: reqwest::Error) -> UploadsError {
        UploadsError::Request {
            op,
            temporary: e.is_timeout()
                || e.is_connect()
                || e.is_request()
                || e.is_body()
                || e.is_decode(),
            why: e.to_string(),
        }
    }

    pub(super) fn into_io(self, attempts: u32) -> io::Error {
        let kind = match &self {
            UploadsError::Status { status: 403, .. } => io::ErrorKind::PermissionDenied,
            UploadsError::Status { status: 404, .. } => io::ErrorKind::NotFound,
            UploadsError::Listing { .. } | UploadsError::Stuck { .. } => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        };
        let temporary = self.temporary();
        let mut what = self.to_string();
        if attempts > 1 {
            what.push_str(&format!(" (gave up after {attempts} attempts)"));
        }
        io::Error::new(kind, super::StoreFailure { what, temporary })
    }
}

/// reqsign's way to fetch credentials over HTTP (instance metadata, STS).
#[derive(Debug)]
struct ReqwestSend(reqwest::Client);

impl HttpSend for ReqwestSend {
    async fn http_send(
        &self,
        req: http::Request<Bytes>,
    ) -> reqsign_core::Result<http::Response<Bytes>> {
        let fail = |what: &str, e: reqwest::Error| {
            reqsign_core::Error::unexpected(what.to_string()).with_source(e)
        };
        let req = reqwest::Request::try_from(req).map_err(|e| fail("building a request", e))?;
        let resp = self.0.execute(req).await.map_err(|e| fail("sending", e))?;
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.bytes().await.map_err(|e| fail("reading", e))?;
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

/// The S3 requests ironclone signs and sends itself, not through opendal: the
/// multipart-upload calls opendal lacks (here) and the ranged reads (s3_ranges.rs).
pub(super) struct S3Direct {
    pub(super) http: reqwest::Client,
    signer: Signer<Credential>,
    pub(super) bucket_url: String,
    pub(super) key_prefix: String,
}

/// Percent-encoding as SigV4 wants it: all but `A-Za-z0-9-_.~` (and `/` in paths).
pub(super) fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

impl S3Direct {
    pub fn new(cfg: &S3Config) -> io::Result<S3Direct> {
        // The limits opendal's requests have (remote.rs, `timeouts`): a whole request,
        // and a connection that goes quiet (the ranged reads stream long bodies).
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .read_timeout(IO_TIMEOUT)
            .build()
            .map_err(io::Error::other)?;
        let ctx = Context::new()
            .with_file_read(reqsign_file_read_tokio::TokioFileRead)
            .with_http_send(ReqwestSend(http.clone()))
            .with_env(OsEnv);
        let mut provider =
            ProvideCredentialChain::new().push(DefaultCredentialProvider::builder().build());
        if let Some((id, secret)) = &cfg.static_key {
            provider = provider.push_front(StaticCredentialProvider::new(
                id,
                secret.expose_for_storage(),
            ));
        }
        let signer = Signer::new(ctx, provider, RequestSigner::new("s3", &cfg.region));
        Ok(S3Direct {
            http,
            signer,
            bucket_url: cfg.bucket_url(),
            key_prefix: cfg.key_prefix(),
        })
    }

    /// One signed request; the body of a 2xx answer.
    async fn send(
        &self,
        op: &'static str,
        method: http::Method,
        key: &str,
        query: &str,
    ) -> Result<String, UploadsError> {
        let uri = format!("{}/{}?{query}", self.bucket_url, encode(key, true));
        let req = self
            .signed(op, http::Request::builder().method(method).uri(&uri))
            .await?;
        let failed = |e| UploadsError::lost(op, e);
        let resp = self.http.execute(req).await.map_err(failed)?;
        let status = resp.status();
        let body = resp.text().await.map_err(failed)?;
        if !status.is_success() {
            let detail: String = body.trim().chars().take(300).collect();
            return Err(UploadsError::Status {
                op,
                status: status.as_u16(),
                detail,
            });
        }
        Ok(body)
    }

    /// The request `b` (without a body) signed for the bucket's credentials, ready to
    /// send.
    pub(super) async fn signed(
        &self,
        op: &'static str,
        b: http::request::Builder,
    ) -> Result<reqwest::Request, UploadsError> {
        let bad = |why: String| UploadsError::Request {
            op,
            why,
            temporary: false,
        };
        let (mut parts, ()) = b.body(()).map_err(|e| bad(e.to_string()))?.into_parts();
        self.signer
            .sign(&mut parts, None)
            .await
            .map_err(|e| UploadsError::Sign {
                op,
                why: e.to_string(),
            })?;
        let req = http::Request::from_parts(parts, Bytes::new());
        reqwest::Request::try_from(req).map_err(|e| bad(e.to_string()))
    }

    /// `send` on the backend's runtime, retried.
    fn call(
        &self,
        rt: &tokio::runtime::Runtime,
        op: &'static str,
        method: http::Method,
        key: &str,
        query: &str,
    ) -> io::Result<String> {
        retry_when(
            || rt.block_on(self.send(op, method.clone(), key, query)),
            UploadsError::temporary,
        )
        .map_err(|(e, n)| e.into_io(n))
    }

    /// Every unfinished upload under the repository's prefix that ironclone may have
    /// started: only manifests are streamed (`images/*.json`), so another tool's
    /// upload sharing the prefix is not touched.
    pub fn list(&self, rt: &tokio::runtime::Runtime) -> io::Result<Vec<UnfinishedUpload>> {
        let op = "ListMultipartUploads";
        let mut out = Vec::new();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut marker: Option<(String, String)> = None;
        for page in 1..=MAX_PAGES {
            let mut q = format!("prefix={}&uploads=", encode(&self.key_prefix, false));
            if let Some((k, u)) = &marker {
                q = format!(
                    "key-marker={}&prefix={}&upload-id-marker={}&uploads=",
                    encode(k, false),
                    encode(&self.key_prefix, false),
                    encode(u, false)
                );
            }
            let body = self.call(rt, op, http::Method::GET, "", &q)?;
            let p = xml::uploads_page(&body)
                .map_err(|source| UploadsError::Listing { op, source }.into_io(1))?;
            let mut new = 0;
            for u in p.uploads {
                if !seen.insert((u.key.clone(), u.upload_id.clone())) {
                    continue;
                }
                new += 1;
                let Some(name) = u.key.strip_prefix(&self.key_prefix) else {
                    continue;
                };
                if name.starts_with("images/") && name.ends_with(".json") {
                    out.push(UnfinishedUpload {
                        name: name.to_string(),
                        key: u.key,
                        upload_id: u.upload_id,
                        initiated: u.initiated,
                    });
                }
            }
            match p.next {
                None => return Ok(out),
                // A page with nothing new would be asked for again and again.
                Some((k, _)) if new == 0 => {
                    return Err(UploadsError::Stuck {
                        key: k,
                        pages: page,
                    }
                    .into_io(1))
                }
                next => marker = next,
            }
        }
        let key = marker.map(|(k, _)| k).unwrap_or_default();
        Err(UploadsError::Stuck {
            key,
            pages: MAX_PAGES,
        }
        .into_io(1))
    }

    /// The bytes `u`'s parts hold (`ListParts`, every page).
    pub fn bytes(&self, rt: &tokio::runtime::Runtime, u: &UnfinishedUpload) -> io::Result<u64> {
        let op = "ListParts";
        let id = encode(&u.upload_id, false);
        let mut total: u64 = 0;
        let mut marker: Option<u64> = None;
        for page in 1..=MAX_PAGES {
            let q = match marker {
                None => format!("uploadId={id}"),
                Some(m) => format!("part-number-marker={m}&uploadId={id}"),
            };
            let body = self.call(rt, op, http::Method::GET, &u.key, &q)?;
            let p = xml::parts_page(&body)
                .map_err(|source| UploadsError::Listing { op, source }.into_io(1))?;
            total = total.checked_add(p.bytes).ok_or_else(|| {
                UploadsError::Listing {
                    op,
                    source: ListingError::Overflow,
                }
                .into_io(1)
            })?;
            match p.next {
                None => return Ok(total),
                Some(m) if marker.is_some_and(|old| m <= old) => {
                    return Err(UploadsError::Stuck {
                        key: u.key.clone(),
                        pages: page,
                    }
                    .into_io(1))
                }
                next => marker = next,
            }
        }
        Err(UploadsError::Stuck {
            key: u.key.clone(),
            pages: MAX_PAGES,
        }
        .into_io(1))
    }

    /// Aborts `u`; one already gone (`NoSuchUpload`) is not an error.
    pub fn abort(&self, rt: &tokio::runtime::Runtime, u: &UnfinishedUpload) -> io::Result<()> {
        let q = format!("uploadId={}", encode(&u.upload_id, false));
        match self.call(rt, "AbortMultipartUpload", http::Method::DELETE, &u.key, &q) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other.map(drop),
        }
    }
}
