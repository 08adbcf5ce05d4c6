//! Is the S3 server there? MinIO's unauthenticated probes (`/minio/health/live`,
//! `/minio/health/ready`; minio/minio `cmd/healthcheck-router.go`) over a plain HTTP GET,
//! MinIO recognised by its `Server: MinIO` header; for other servers an S3 call
//! (ListBuckets) that proves reachability and credentials. Every probe is bounded in time
//! and in the bytes it reads.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;

use super::{Bucket, Endpoint, printable_url};
use crate::error::{Error, Result};

/// How long one HTTP probe may take, connection included.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one ListBuckets page may take.
pub const LIST_TIMEOUT: Duration = Duration::from_secs(15);
/// The most of a probe's body read (MinIO's answers are empty).
pub const PROBE_MAX_BODY: usize = 64 * 1024;

/// What one GET answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub status: u16,
    /// The `Server` header, when there is one.
    pub server: Option<String>,
    /// `X-Minio-Server-Status` (`offline` while MinIO's object layer is not initialised).
    pub minio_status: Option<String>,
}

impl Probe {
    /// MinIO says `Server: MinIO` on every answer.
    pub fn is_minio(&self) -> bool {
        self.server
            .as_deref()
            .is_some_and(|s| s.trim().to_ascii_lowercase().starts_with("minio"))
    }
}

/// `scheme://host[:port]` of an endpoint URL, without user:password or path.
pub fn origin(url: &str) -> String {
    let p = printable_url(url);
    let Some((scheme, rest)) = p.split_once("://") else {
        return p;
    };
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the I/O runtime", e))
}

/// GET `origin + path`: `Err` when the server cannot be reached within [`PROBE_TIMEOUT`].
pub fn probe(url: &str, path: &str) -> Result<Probe> {
    let target = format!("{}{path}", origin(url));
    let rt = runtime()?;
    let fail = |m: String| Error::Other(format!("GET {target}: {m}"));
    rt.block_on(async {
        match tokio::time::timeout(PROBE_TIMEOUT, get(&target)).await {
            Ok(r) => r.map_err(fail),
            Err(_) => Err(fail(format!(
                "no answer within {}s",
                PROBE_TIMEOUT.as_secs()
            ))),
        }
    })
}

async fn get(target: &str) -> std::result::Result<Probe, String> {
    let req = http::Request::get(target)
        .header("user-agent", "pvedr")
        .body(Empty::new())
        .map_err(|e| format!("bad URL: {e}"))?;
    let builder = Client::builder(TokioExecutor::new());
    if target.starts_with("http://") {
        // Plain HTTP needs no TLS roots (a host without CA certificates still probes).
        return fetch(builder.build(HttpConnector::new()), req).await;
    }
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| format!("TLS roots: {e}"))?
        .https_only()
        .enable_http1()
        .build();
    fetch(builder.build(https), req).await
}

async fn fetch<C: Connect + Clone + Send + Sync + 'static>(
    client: Client<C, Empty<Bytes>>,
    req: http::Request<Empty<Bytes>>,
) -> std::result::Result<Probe, String> {
    let resp = client.request(req).await.map_err(connect_error)?;
    let text = |v: &http::HeaderValue| {
        v.to_str()
            .ok()
            .map(|s| s.chars().take(200).collect::<String>())
    };
    let headers = resp.headers();
    // Some servers send several `Server` headers (moto: Werkzeug, then amazon.com).
    let servers: Vec<String> = headers.get_all("server").iter().filter_map(text).collect();
    let probe = Probe {
        status: resp.status().as_u16(),
        server: servers
            .iter()
            .find(|s| s.trim().to_ascii_lowercase().starts_with("minio"))
            .or(servers.first())
            .cloned(),
        minio_status: headers.get("x-minio-server-status").and_then(text),
    };
    // Drain a bounded amount of the body so the answer is complete, never more.
    let mut body = resp.into_body();
    let mut read = 0usize;
    while read < PROBE_MAX_BODY {
        match body.frame().await {
            Some(Ok(f)) => read += f.data_ref().map_or(0, Bytes::len),
            _ => break,
        }
    }
    Ok(probe)
}

/// The innermost cause: "Connection refused (os error 111)" rather than hyper's wrapper.
fn connect_error(e: hyper_util::client::legacy::Error) -> String {
    let mut cause: &dyn std::error::Error = &e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if e.is_connect() {
        format!("cannot connect: {cause}")
    } else {
        cause.to_string()
    }
}

/// The outcome of a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    /// The server said it is MinIO (or the caller said so).
    pub minio: bool,
    /// The server answers but refuses the credentials: waiting will not help.
    pub refused: bool,
    /// What was tried and what it answered, for people.
    pub message: String,
}

/// MinIO's live and ready probes (`force_minio`: even without a `Server: MinIO` header),
/// else ListBuckets with `bucket`'s client. Never `Err`: an unreachable server is unhealthy.
pub fn check(endpoint: &Endpoint, force_minio: bool, client: &Bucket) -> Health {
    let Some(url) = endpoint.url.as_deref() else {
        return s3_check(client, false, String::new());
    };
    let live = match probe(url, "/minio/health/live") {
        Ok(p) => p,
        Err(e) => {
            return Health {
                healthy: false,
                minio: force_minio,
                refused: false,
                message: e.to_string(),
            };
        }
    };
    if !(live.is_minio() || force_minio) {
        let note = format!(
            "not MinIO (/minio/health/live: HTTP {}, Server: {}); ",
            live.status,
            live.server.as_deref().unwrap_or("-")
        );
        return s3_check(client, false, note);
    }
    minio_check(url, &live)
}

fn minio_check(url: &str, live: &Probe) -> Health {
    let said = |p: &Probe| {
        let extra = p
            .minio_status
            .as_deref()
            .map(|s| format!(", X-Minio-Server-Status: {s}"))
            .unwrap_or_default();
        format!("HTTP {}{extra}", p.status)
    };
    let unhealthy = |message: String| Health {
        healthy: false,
        minio: true,
        refused: false,
        message,
    };
    if live.status != 200 || live.minio_status.as_deref() == Some("offline") {
        return unhealthy(format!("MinIO /minio/health/live: {}", said(live)));
    }
    match probe(url, "/minio/health/ready") {
        Ok(r) if r.status == 200 => Health {
            healthy: true,
            minio: true,
            refused: false,
            message: "MinIO /minio/health/live and /minio/health/ready: HTTP 200".into(),
        },
        Ok(r) => unhealthy(format!(
            "MinIO is live but /minio/health/ready: {}",
            said(&r)
        )),
        Err(e) => unhealthy(e.to_string()),
    }
}

fn s3_check(client: &Bucket, minio: bool, note: String) -> Health {
    match client.list_buckets() {
        Ok(b) => Health {
            healthy: true,
            minio,
            refused: false,
            message: format!(
                "{note}S3 ListBuckets answers with these credentials ({} buckets)",
                b.len()
            ),
        },
        Err(e) => Health {
            healthy: false,
            minio,
            refused: credentials_refused(&e),
            message: format!("{note}S3 ListBuckets: {e}"),
        },
    }
}

/// The server's way of saying the key is unknown, the signature wrong or access denied.
pub fn credentials_refused(e: &Error) -> bool {
    const CODES: [&str; 4] = [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "InvalidToken",
    ];
    matches!(e, Error::S3 { status, code, .. }
        if matches!(status, Some(401 | 403)) || code.as_deref().is_some_and(|c| CODES.contains(&c)))
}

impl Bucket {
    /// Every bucket the credentials see (ListBuckets, all pages), each page bounded by
    /// [`LIST_TIMEOUT`] so that a server that accepts connections and never answers cannot
    /// hold a health check.
    pub fn list_buckets(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = super::Pages::new("listing buckets".into());
        loop {
            let req = self
                .client
                .list_buckets()
                .set_continuation_token(token.clone())
                .send();
            let r = self
                .rt
                .block_on(async { tokio::time::timeout(LIST_TIMEOUT, req).await })
                .map_err(|_| {
                    Error::Other(format!(
                        "listing buckets: no answer within {}s",
                        LIST_TIMEOUT.as_secs()
                    ))
                })?
                .map_err(|e| self.explain("listing buckets", e))?;
            out.extend(
                r.buckets()
                    .iter()
                    .filter_map(|b| b.name().map(String::from)),
            );
            token = r.continuation_token().map(String::from);
            match &token {
                Some(t) => pages.next(t, out.len())?,
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_credentials_and_path() {
        assert_eq!(
            origin("http://ak:sk@127.0.0.1:9000/x/y"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(origin("https://s3.example"), "https://s3.example");
    }

    #[test]
    fn refused_credentials_are_told_apart_from_a_server_down() {
        let s3 = |status, code: Option<&str>| Error::S3 {
            what: "x".into(),
            code: code.map(String::from),
            status,
            message: "m".into(),
        };
        assert!(credentials_refused(&s3(Some(403), None)));
        assert!(credentials_refused(&s3(
            Some(400),
            Some("InvalidAccessKeyId")
        )));
        assert!(!credentials_refused(&s3(Some(503), Some("SlowDown"))));
        assert!(!credentials_refused(&s3(None, None)));
    }

    #[test]
    fn minio_is_known_by_its_server_header() {
        let p = |s: Option<&str>| Probe {
            status: 200,
            server: s.map(String::from),
            minio_status: None,
        };
        assert!(p(Some("MinIO")).is_minio());
        assert!(!p(Some("Werkzeug/3.1")).is_minio());
        assert!(!p(None).is_minio());
    }
}
