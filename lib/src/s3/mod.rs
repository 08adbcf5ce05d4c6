//! S3 on the official SDK, for any S3 (MinIO, Garage, Ceph RGW, AWS): path-style addressing,
//! checksums only when required (older MinIO rejects the SDK's default), and errors that say
//! what the server said ([`Error::S3`]). Blocking API over a current-thread runtime: the
//! tools are sequential, and one runtime per client keeps them free of async.
//!
//! Built only with the `s3` feature, so tools without S3 do not compile the SDK.

mod args;
mod config;
mod dynamodb;
pub mod health;
mod lifecycle;
mod multipart;
mod options;
mod stream;

pub use args::{S3Args, S3Conn};
pub use config::{
    ATTEMPTS, Endpoint, MIN_RATE, Timeouts, check_bucket, check_header_value, check_region,
    credentials, printable_url,
};
pub use lifecycle::NONCURRENT_RULE_ID;
pub use multipart::{MAX_PART, MIN_PART, MultipartUpload, Part, Upload};
pub use options::{Lock, LockMode, Sse, WriteOptions};
pub use stream::{IN_FLIGHT, PART, Ranged};

use std::io::Write;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

use crate::error::{Error, Result};

/// One entry of a key's history: a version or a delete marker.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub last_modified: Option<i64>,
    pub size: Option<u64>,
    pub etag: Option<String>,
}

impl Entry {
    /// What a version and a delete marker both say of themselves (a version without an id
    /// is S3's `null` one); a version, no size or etag known.
    fn of(
        key: Option<&str>,
        id: Option<&str>,
        latest: Option<bool>,
        modified: Option<&aws_sdk_s3::primitives::DateTime>,
    ) -> Entry {
        Entry {
            key: key.unwrap_or_default().to_string(),
            version_id: id.unwrap_or("null").to_string(),
            is_latest: latest.unwrap_or(false),
            delete_marker: false,
            last_modified: modified.map(|t| t.secs()),
            size: None,
            etag: None,
        }
    }
}

/// What a HEAD said of an object.
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub size: Option<u64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub metadata: std::collections::HashMap<String, String>,
}

/// S3 credentials; never printed (`Debug` shows the access key only).
pub struct Secret {
    pub ak: String,
    pub sk: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret {{ ak: {:?}, sk: <hidden> }}", self.ak)
    }
}

/// A client bound to one bucket.
pub struct Bucket {
    client: Client,
    rt: tokio::runtime::Runtime,
    endpoint: Endpoint,
    pub name: String,
}

/// `what: Code: message (HTTP status)`, from an SDK error.
pub(crate) fn explain<E: ProvideErrorMetadata, R: HasStatus>(
    what: &str,
    e: SdkError<E, R>,
) -> Error {
    let (code, message) = match &e {
        SdkError::ServiceError(s) => (
            s.err().code().map(String::from),
            s.err().message().unwrap_or("(no message)").to_string(),
        ),
        SdkError::TimeoutError(_) => return Error::S3Timeout { what: what.into() },
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            return Error::S3Timeout { what: what.into() };
        }
        SdkError::DispatchFailure(d) if d.is_io() => (
            None,
            match d.as_connector_error() {
                Some(c) => format!("cannot connect: {}", innermost(c)),
                None => "cannot connect".into(),
            },
        ),
        SdkError::DispatchFailure(_) => (
            None,
            "request failed before it reached the S3 server".into(),
        ),
        SdkError::ResponseError(_) => (None, "unreadable response from the S3 server".into()),
        _ => (None, "request could not be built".into()),
    };
    Error::S3 {
        what: what.into(),
        code,
        status: status(&e),
        message,
    }
}

/// The innermost cause of an error: "Connection refused (os error 111)", not the layers
/// of connector text around it.
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    // Bounded: an error chain is a handful of layers.
    for _ in 0..16 {
        match e.source() {
            Some(next) => e = next,
            None => break,
        }
    }
    e.to_string()
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<String> {
    match e {
        SdkError::ServiceError(s) => s.err().code().map(String::from),
        _ => None,
    }
}

fn status<E, R: HasStatus>(e: &SdkError<E, R>) -> Option<u16> {
    match e {
        SdkError::ServiceError(s) => Some(s.raw().status_code()),
        SdkError::ResponseError(r) => Some(r.raw().status_code()),
        _ => None,
    }
}

fn not_found<E: ProvideErrorMetadata, R: HasStatus>(e: &SdkError<E, R>) -> bool {
    status(e) == Some(404)
        || code(e).is_some_and(|c| c == "NotFound" || c == "NoSuchKey" || c == "NoSuchBucket")
}

pub(crate) trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// The largest object read whole into memory (states, manifests); larger ones stream.
pub const MAX_IN_MEMORY: u64 = 256 * 1024 * 1024;

impl Bucket {
    /// A client with the credentials of the environment or the credentials file.
    pub fn connect(endpoint: &Endpoint, bucket: &str) -> Result<Bucket> {
        let (ak, sk, token) = credentials()?;
        Bucket::connect_with(endpoint, bucket, Secret { ak, sk, token })
    }

    /// A client with the given credentials.
    pub fn connect_with(endpoint: &Endpoint, bucket: &str, secret: Secret) -> Result<Bucket> {
        config::check_bucket(bucket)?;
        let Secret { ak, sk, token } = secret;
        let mut conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(endpoint.region.clone()))
            .credentials_provider(Credentials::new(ak, sk, token, None, "pvedr"))
            .timeout_config(endpoint.timeouts.sdk(0))
            .retry_config(RetryConfig::standard().with_max_attempts(ATTEMPTS))
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(ep) = &endpoint.url {
            conf = conf.endpoint_url(ep);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the I/O runtime", e))?;
        Ok(Bucket {
            client: Client::from_conf(conf.build()),
            rt,
            endpoint: endpoint.clone(),
            name: bucket.into(),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// An SDK error as [`Error::S3`], naming the endpoint tried: a bucket is only found, and
    /// a connection only refused, at one server, and the user must see which.
    pub(crate) fn explain<E: ProvideErrorMetadata, R: HasStatus>(
        &self,
        what: &str,
        e: SdkError<E, R>,
    ) -> Error {
        explain(&format!("{what} at {}", self.endpoint.named()), e)
    }

    /// Runs one request to its end; a failure is explained as `what` at this endpoint.
    pub(crate) fn call<T, E: ProvideErrorMetadata, R: HasStatus>(
        &self,
        what: &str,
        req: impl std::future::Future<Output = std::result::Result<T, SdkError<E, R>>>,
    ) -> Result<T> {
        self.rt.block_on(req).map_err(|e| self.explain(what, e))
    }

    /// Waits for a request, or for SIGINT/SIGTERM (`Err(Interrupted)`, the request
    /// dropped): a part need not wait out a server that does not answer before its upload
    /// is aborted.
    pub(crate) fn until_interrupted<F: std::future::Future>(&self, f: F) -> Result<F::Output> {
        self.rt.block_on(async {
            let mut f = std::pin::pin!(f);
            loop {
                let tick = tokio::time::timeout(std::time::Duration::from_millis(100), f.as_mut());
                match tick.await {
                    Ok(v) => return Ok(v),
                    Err(_) if crate::interrupt::requested() => return Err(Error::Interrupted),
                    Err(_) => {}
                }
            }
        })
    }

    /// The client's settings for a request that sends a body of `bytes`: its timeouts
    /// grow by the time to send it at [`MIN_RATE`].
    pub(crate) fn with_body(&self, bytes: usize) -> aws_sdk_s3::config::Builder {
        aws_sdk_s3::config::Builder::new().timeout_config(self.endpoint.timeouts.sdk(bytes as u64))
    }

    /// Whether the bucket exists and the credentials may use it.
    pub fn head(&self) -> Result<()> {
        let req = self.client.head_bucket().bucket(&self.name).send();
        self.call(&format!("bucket {}", self.name), req).map(|_| ())
    }

    /// `Ok(false)` when the bucket does not exist.
    pub fn exists(&self) -> Result<bool> {
        match self
            .rt
            .block_on(self.client.head_bucket().bucket(&self.name).send())
        {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(self.explain(&format!("bucket {}", self.name), e)),
        }
    }

    pub fn create(&self) -> Result<()> {
        let req = self.client.create_bucket().bucket(&self.name).send();
        self.call(&format!("creating bucket {}", self.name), req)
            .map(|_| ())
    }

    /// Whether versioning is enabled: `Some(true/false)`, or `None` when the server's answer
    /// cannot be read (moto 5.2.5 names its XML root differently from S3); callers then infer
    /// it from the version ids.
    pub fn versioning(&self) -> Result<Option<bool>> {
        match self.rt.block_on(
            self.client
                .get_bucket_versioning()
                .bucket(&self.name)
                .send(),
        ) {
            Ok(r) => Ok(Some(r.status().is_some_and(|s| s.as_str() == "Enabled"))),
            Err(e) if status(&e) == Some(200) => Ok(None),
            Err(e) => Err(self.explain(&format!("bucket {}", self.name), e)),
        }
    }

    /// The versioning status as the server says it: `Some("Enabled")`, `Some("Suspended")`,
    /// or `None` (never enabled). Servers whose answer the SDK cannot parse (moto 5.2.5's
    /// XML root is `GetBucketVersioningResponse`) are read from the raw XML's `<Status>`.
    pub fn versioning_status(&self) -> Result<Option<String>> {
        match self.rt.block_on(
            self.client
                .get_bucket_versioning()
                .bucket(&self.name)
                .send(),
        ) {
            Ok(r) => Ok(r.status().map(|s| s.as_str().to_string())),
            Err(e) if status(&e) == Some(200) => {
                let body = match &e {
                    SdkError::ServiceError(s) => s.raw().body().bytes(),
                    SdkError::ResponseError(r) => r.raw().body().bytes(),
                    _ => None,
                };
                Ok(xml_status(&String::from_utf8_lossy(
                    body.unwrap_or_default(),
                )))
            }
            Err(e) => Err(self.explain(&format!("bucket {}", self.name), e)),
        }
    }

    pub fn enable_versioning(&self) -> Result<()> {
        let conf = VersioningConfiguration::builder()
            .status(BucketVersioningStatus::Enabled)
            .build();
        let req = self
            .client
            .put_bucket_versioning()
            .bucket(&self.name)
            .versioning_configuration(conf)
            .send();
        self.call(&format!("enabling versioning on {}", self.name), req)
            .map(|_| ())
    }

    /// Every version and delete marker under `prefix`, all pages; with `exact`, only
    /// those of exactly that key (not `<key>.tflock`). Newest first per key.
    pub fn versions(&self, prefix: &str, exact: bool) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
        let mut pages = Pages::new(format!("listing versions of {}", self.url(prefix)));
        loop {
            let r = self
                .rt
                .block_on(
                    self.client
                        .list_object_versions()
                        .bucket(&self.name)
                        .prefix(prefix)
                        .set_key_marker(km.clone())
                        .set_version_id_marker(vm.clone())
                        .send(),
                )
                .map_err(|e| {
                    if code(&e).is_some_and(|c| c == "NotImplemented" || c == "MethodNotAllowed") {
                        Error::Refused(format!(
                            "bucket {}: this S3 server does not implement ListObjectVersions; versions cannot be listed here",
                            self.name
                        ))
                    } else {
                        self.explain(&format!("listing versions of {}", self.url(prefix)), e)
                    }
                })?;
            let keep = |k: Option<&str>| !exact || k == Some(prefix);
            for v in r.versions().iter().filter(|v| keep(v.key())) {
                out.push(Entry {
                    size: v.size().and_then(|s| u64::try_from(s).ok()),
                    etag: v.e_tag().map(|e| e.trim_matches('"').to_string()),
                    ..Entry::of(v.key(), v.version_id(), v.is_latest(), v.last_modified())
                });
            }
            for m in r.delete_markers().iter().filter(|m| keep(m.key())) {
                out.push(Entry {
                    delete_marker: true,
                    ..Entry::of(m.key(), m.version_id(), m.is_latest(), m.last_modified())
                });
            }
            km = r.next_key_marker().map(String::from);
            vm = r.next_version_id_marker().map(String::from);
            if r.is_truncated() != Some(true) {
                break;
            }
            if km.is_none() && vm.is_none() {
                return Err(pages.no_way_on());
            }
            pages.next(&format!("{km:?} {vm:?}"), out.len())?;
        }
        // The SDK separates versions from markers: per key the latest first, then by time
        // (servers may round times to the second, so the latest flag decides ties at the top).
        out.sort_by(|a, b| {
            a.key
                .cmp(&b.key)
                .then(b.is_latest.cmp(&a.is_latest))
                .then(b.last_modified.cmp(&a.last_modified))
        });
        Ok(out)
    }

    /// The current objects under `prefix` (key, size), all pages.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = Pages::new(format!("listing {}", self.url(prefix)));
        loop {
            let req = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(prefix)
                .set_continuation_token(token.clone())
                .send();
            let r = self.call(&format!("listing {}", self.url(prefix)), req)?;
            for o in r.contents() {
                let size = o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
                out.push((o.key().unwrap_or_default().to_string(), size));
            }
            token = r.next_continuation_token().map(String::from);
            match &token {
                _ if r.is_truncated() != Some(true) => break,
                Some(t) => pages.next(t, out.len())?,
                None => return Err(pages.no_way_on()),
            }
        }
        Ok(out)
    }

    /// An object's metadata; `Ok(None)` when there is no current object.
    pub fn head_object(&self, key: &str) -> Result<Option<Head>> {
        match self
            .rt
            .block_on(self.client.head_object().bucket(&self.name).key(key).send())
        {
            Ok(r) => Ok(Some(Head {
                size: r.content_length().and_then(|s| u64::try_from(s).ok()),
                etag: r.e_tag().map(|e| e.trim_matches('"').to_string()),
                version_id: r.version_id().map(String::from),
                metadata: r.metadata().cloned().unwrap_or_default(),
            })),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(self.explain(&format!("checking {}", self.url(key)), e)),
        }
    }

    /// Reads an object (a version of it) whole; refused above `limit` bytes so that an
    /// object's size never sizes an allocation unchecked.
    pub fn get(&self, key: &str, version: Option<&str>, limit: u64) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        let mut w = LimitedWriter {
            inner: &mut buf,
            left: limit,
        };
        self.get_to(key, version, &mut w)?;
        Ok(buf)
    }

    /// Streams an object (a version of it) into `out`, chunk by chunk; returns the bytes.
    pub fn get_to(&self, key: &str, version: Option<&str>, out: &mut dyn Write) -> Result<u64> {
        let what = || {
            format!(
                "reading {} version {} at {}",
                self.url(key),
                version.unwrap_or("latest"),
                self.endpoint.named()
            )
        };
        let mut r = self
            .rt
            .block_on(
                self.client
                    .get_object()
                    .bucket(&self.name)
                    .key(key)
                    .set_version_id(version.map(String::from))
                    .send(),
            )
            .map_err(|e| explain(&what(), e))?;
        // The body is read after the request's own bounds: a silence between chunks longer
        // than the read timeout, or a body slower than MIN_RATE overall, ends it.
        let t = self.endpoint.timeouts;
        let size = r.content_length().and_then(|s| u64::try_from(s).ok());
        let deadline = std::time::Instant::now() + t.operation + Timeouts::body(size.unwrap_or(0));
        let mut n = 0u64;
        loop {
            let next = self
                .rt
                .block_on(async { tokio::time::timeout(t.read, r.body.try_next()).await });
            let chunk = match next {
                Err(_) => return Err(Error::S3Timeout { what: what() }),
                Ok(c) => c.map_err(|e| Error::S3 {
                    what: what(),
                    code: None,
                    status: None,
                    message: e.to_string(),
                })?,
            };
            if std::time::Instant::now() > deadline {
                return Err(Error::S3Timeout { what: what() });
            }
            let Some(chunk) = chunk else { break };
            out.write_all(&chunk).map_err(|e| Error::io(what(), e))?;
            n = n.saturating_add(chunk.len() as u64);
        }
        Ok(n)
    }

    /// Writes an object; returns its version id (`null` without versioning).
    pub fn put(&self, key: &str, body: Vec<u8>) -> Result<String> {
        self.put_with(key, body, false, &[])
            .map(|v| v.unwrap_or_else(|| "null".into()))
    }

    /// Terraform's conditional write for locks (`If-None-Match: *`): `Ok(None)` when the
    /// key exists already (someone was faster).
    pub fn put_if_absent(&self, key: &str, body: Vec<u8>) -> Result<Option<String>> {
        self.put_with(key, body, true, &[])
    }

    /// A write with user metadata (`x-amz-meta-*`; ASCII values only, as S3 requires).
    pub fn put_with(
        &self,
        key: &str,
        body: Vec<u8>,
        only_if_absent: bool,
        metadata: &[(&str, &str)],
    ) -> Result<Option<String>> {
        let conf = self.with_body(body.len());
        let mut req = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(ByteStream::from(body));
        for (k, v) in metadata {
            req = req.metadata(*k, *v);
        }
        if only_if_absent {
            req = req.if_none_match("*");
        }
        match self
            .rt
            .block_on(req.customize().config_override(conf).send())
        {
            Ok(r) => Ok(Some(r.version_id().unwrap_or("null").to_string())),
            Err(e)
                if only_if_absent
                    && (status(&e) == Some(412)
                        || code(&e).is_some_and(|c| c == "PreconditionFailed")) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.explain(&format!("writing {}", self.url(key)), e)),
        }
    }

    /// Deletes a key (a delete marker on a versioned bucket) or exactly one version.
    pub fn delete(&self, key: &str, version: Option<&str>) -> Result<()> {
        let req = self
            .client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version.map(String::from))
            .send();
        self.call(&format!("deleting {}", self.url(key)), req)
            .map(|_| ())
    }

    /// Server-side copy of `from` (a version of it) to `to` in the same bucket.
    pub fn copy(&self, from: &str, version: Option<&str>, to: &str) -> Result<String> {
        let mut src = format!("{}/{}", self.name, urlencode_key(from));
        if let Some(v) = version {
            src.push_str(&format!("?versionId={}", urlencode_key(v)));
        }
        let req = self
            .client
            .copy_object()
            .bucket(&self.name)
            .key(to)
            .copy_source(src)
            .send();
        self.call(&format!("copying {} to {to}", self.url(from)), req)
            .map(|r| r.version_id().unwrap_or("null").to_string())
    }
}

/// The largest listing read (entries): about 500,000 offsite copies, or a key's versions.
pub const MAX_LISTED: usize = 2_000_000;

/// The pages of one listing: a continuation token seen before (a server saying IsTruncated
/// with the same token forever) or more than [`MAX_LISTED`] entries end it with an error.
struct Pages {
    what: String,
    seen: std::collections::HashSet<String>,
}

impl Pages {
    fn new(what: String) -> Pages {
        Pages {
            what,
            seen: Default::default(),
        }
    }

    /// A page that says the listing goes on but names no next page: an error rather than a
    /// listing cut short in silence (copies or versions would seem not to exist).
    fn no_way_on(&self) -> Error {
        Error::S3 {
            what: self.what.clone(),
            code: None,
            status: None,
            message: "the server says the listing is truncated but gives no continuation token or marker: the listing cannot go on".into(),
        }
    }

    /// Accepts the next page's token, or says why the listing cannot go on.
    fn next(&mut self, token: &str, listed: usize) -> Result<()> {
        // An empty page with a new token each time is bounded by the page count.
        if listed > MAX_LISTED || self.seen.len() > MAX_LISTED / 100 {
            return Err(Error::Refused(format!(
                "{}: more than {MAX_LISTED} entries; list a narrower prefix",
                self.what
            )));
        }
        if !self.seen.insert(token.to_string()) {
            return Err(Error::S3 {
                what: self.what.clone(),
                code: None,
                status: None,
                message: format!(
                    "the server gave a continuation token it gave before ('{}'): the listing would never end",
                    token.chars().take(80).collect::<String>().escape_debug()
                ),
            });
        }
        Ok(())
    }
}

/// The text of the first `<Status>` element (bounded: a status is a short word).
fn xml_status(xml: &str) -> Option<String> {
    let start = xml.find("<Status>")? + "<Status>".len();
    let len = xml[start..].find("</Status>")?;
    let s = xml[start..start + len].trim();
    (!s.is_empty() && s.len() <= 32).then(|| s.to_string())
}

/// Percent-encodes a key for `x-amz-copy-source` (slashes stay).
fn urlencode_key(k: &str) -> String {
    let mut s = String::new();
    for b in k.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A writer that refuses to grow past a bound.
struct LimitedWriter<'a> {
    inner: &'a mut Vec<u8>,
    left: u64,
}

impl Write for LimitedWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(std::io::Error::other(
                "the object is larger than this tool reads into memory",
            ));
        }
        self.left -= buf.len() as u64;
        self.inner.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_versioning_status() {
        let moto = r#"<GetBucketVersioningResponse xmlns="x"><Status>Enabled</Status></GetBucketVersioningResponse>"#;
        assert_eq!(xml_status(moto).as_deref(), Some("Enabled"));
        assert_eq!(xml_status("<GetBucketVersioningResponse/>"), None);
    }

    #[test]
    fn copy_source_is_encoded() {
        assert_eq!(urlencode_key("a b/c+d.tfstate"), "a%20b/c%2Bd.tfstate");
    }

    #[test]
    fn a_repeated_token_ends_a_listing() {
        let mut p = Pages::new("listing".into());
        assert!(p.next("a", 1000).is_ok());
        assert!(p.next("b", 2000).is_ok());
        assert!(matches!(p.next("a", 3000), Err(Error::S3 { .. })));
        assert!(matches!(
            p.next("c", MAX_LISTED + 1),
            Err(Error::Refused(_))
        ));
    }

    #[test]
    fn limited_writer_refuses_past_the_bound() {
        let mut v = Vec::new();
        let mut w = LimitedWriter {
            inner: &mut v,
            left: 4,
        };
        assert!(w.write_all(b"abcd").is_ok());
        assert!(w.write_all(b"e").is_err());
    }
}
