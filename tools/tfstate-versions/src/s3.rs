//! The S3 calls, on the official SDK: path-style addressing, checksums only when required
//! (older MinIO rejects the SDK's default), SDK errors turned into one clear line.

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use pvedr::error::{Error, Result};

use crate::target::{self, Target};

pub struct S3 {
    client: Client,
    rt: tokio::runtime::Runtime,
    region: String,
    pub bucket: String,
    pub key: String,
}

/// One entry of a key's history.
#[derive(Debug, Clone)]
pub struct Entry {
    pub version_id: String,
    pub is_latest: bool,
    pub delete_marker: bool,
    pub last_modified: Option<i64>,
    pub size: Option<u64>,
    pub etag: Option<String>,
}

/// `bucket tfstate-prod: NoSuchBucket: The specified bucket does not exist`.
fn explain<E: ProvideErrorMetadata, R>(what: &str, e: SdkError<E, R>) -> Error {
    let msg = match &e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            format!(
                "{}: {}",
                err.code().unwrap_or("error"),
                err.message().unwrap_or("(no message)")
            )
        }
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(d) => {
            if d.is_io() || d.is_timeout() {
                "cannot reach the S3 endpoint".into()
            } else {
                "request failed before it reached the S3 server".into()
            }
        }
        SdkError::ResponseError(_) => "unreadable response from the S3 server".into(),
        _ => "request could not be built".into(),
    };
    Error::Other(format!("{what}: {msg}"))
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
        _ => None,
    }
}

pub trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

impl S3 {
    pub fn connect(t: &Target) -> Result<S3> {
        let (ak, sk, token) = target::credentials()?;
        let mut conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(t.region.clone()))
            .credentials_provider(Credentials::new(ak, sk, token, None, "pvedr"))
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(ep) = &t.endpoint {
            conf = conf.endpoint_url(ep);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("cannot start the I/O runtime", e))?;
        Ok(S3 {
            client: Client::from_conf(conf.build()),
            rt,
            region: t.region.clone(),
            bucket: t.bucket.clone(),
            key: t.key.clone(),
        })
    }

    fn what(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Whether versioning is enabled: `Some(true/false)`, or `None` when the server's answer
    /// cannot be read (moto 5.2.5 names its XML root differently from S3); callers then infer
    /// it from the version ids.
    pub fn versioning(&self) -> Result<Option<bool>> {
        match self.rt.block_on(
            self.client
                .get_bucket_versioning()
                .bucket(&self.bucket)
                .send(),
        ) {
            Ok(r) => Ok(Some(r.status().is_some_and(|s| s.as_str() == "Enabled"))),
            Err(e) if status(&e) == Some(200) => Ok(None),
            Err(e) => Err(explain(&format!("bucket {}", self.bucket), e)),
        }
    }

    pub fn head_bucket(&self) -> Result<()> {
        self.rt
            .block_on(self.client.head_bucket().bucket(&self.bucket).send())
            .map(|_| ())
            .map_err(|e| explain(&format!("bucket {}", self.bucket), e))
    }

    /// Every version and delete marker of exactly this key (not `<key>.tflock`), newest
    /// first, all pages.
    pub fn history(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
        loop {
            let r = self
                .rt
                .block_on(
                    self.client
                        .list_object_versions()
                        .bucket(&self.bucket)
                        .prefix(&self.key)
                        .set_key_marker(km.clone())
                        .set_version_id_marker(vm.clone())
                        .send(),
                )
                .map_err(|e| {
                    let not_impl = code(&e).is_some_and(|c| c == "NotImplemented" || c == "MethodNotAllowed");
                    if not_impl {
                        Error::Other(format!(
                            "bucket {}: this S3 server does not implement ListObjectVersions; versions cannot be listed here",
                            self.bucket
                        ))
                    } else {
                        explain(&format!("listing versions of {}", self.what()), e)
                    }
                })?;
            for v in r.versions() {
                if v.key() != Some(self.key.as_str()) {
                    continue;
                }
                out.push(Entry {
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    is_latest: v.is_latest().unwrap_or(false),
                    delete_marker: false,
                    last_modified: v.last_modified().map(|t| t.secs()),
                    size: v.size().and_then(|s| u64::try_from(s).ok()),
                    etag: v.e_tag().map(|e| e.trim_matches('"').to_string()),
                });
            }
            for m in r.delete_markers() {
                if m.key() != Some(self.key.as_str()) {
                    continue;
                }
                out.push(Entry {
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    is_latest: m.is_latest().unwrap_or(false),
                    delete_marker: true,
                    last_modified: m.last_modified().map(|t| t.secs()),
                    size: None,
                    etag: None,
                });
            }
            if r.is_truncated() != Some(true) {
                break;
            }
            km = r.next_key_marker().map(String::from);
            vm = r.next_version_id_marker().map(String::from);
            if km.is_none() && vm.is_none() {
                break;
            }
        }
        // The SDK separates versions from markers: the latest first, then by time (servers
        // may round times to the second, so the latest flag decides ties at the top).
        out.sort_by(|a, b| {
            b.is_latest
                .cmp(&a.is_latest)
                .then(b.last_modified.cmp(&a.last_modified))
        });
        Ok(out)
    }

    pub fn get(&self, version: Option<&str>) -> Result<Vec<u8>> {
        let r = self
            .rt
            .block_on(
                self.client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .set_version_id(version.map(String::from))
                    .send(),
            )
            .map_err(|e| {
                explain(
                    &format!(
                        "reading {} version {}",
                        self.what(),
                        version.unwrap_or("latest")
                    ),
                    e,
                )
            })?;
        let body = self
            .rt
            .block_on(r.body.collect())
            .map_err(|e| Error::Other(format!("reading {}: {e}", self.what())))?;
        Ok(body.into_bytes().to_vec())
    }

    /// Whether an object exists now (a HEAD on the current version).
    pub fn exists(&self, key: &str) -> Result<bool> {
        match self.rt.block_on(
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(key)
                .send(),
        ) {
            Ok(_) => Ok(true),
            Err(e)
                if status(&e) == Some(404)
                    || code(&e).is_some_and(|c| c == "NotFound" || c == "NoSuchKey") =>
            {
                Ok(false)
            }
            Err(e) => Err(explain(&format!("checking s3://{}/{key}", self.bucket), e)),
        }
    }

    /// Writes an object; returns its version id. `only_if_absent`: Terraform's conditional
    /// write for locks (`If-None-Match: *`); `Ok(None)` when someone was faster.
    pub fn put(&self, key: &str, body: Vec<u8>, only_if_absent: bool) -> Result<Option<String>> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body));
        if only_if_absent {
            req = req.if_none_match("*");
        }
        match self.rt.block_on(req.send()) {
            Ok(r) => Ok(Some(r.version_id().unwrap_or("null").to_string())),
            Err(e)
                if only_if_absent
                    && (status(&e) == Some(412)
                        || code(&e).is_some_and(|c| c == "PreconditionFailed")) =>
            {
                Ok(None)
            }
            Err(e) => Err(explain(&format!("writing s3://{}/{key}", self.bucket), e)),
        }
    }

    /// Deletes a key (a delete marker on a versioned bucket) or exactly one version.
    pub fn delete(&self, key: &str, version: Option<&str>) -> Result<()> {
        self.rt
            .block_on(
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_version_id(version.map(String::from))
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| explain(&format!("deleting s3://{}/{key}", self.bucket), e))
    }

    /// The legacy DynamoDB lock table's digest item (`<bucket>/<key>-md5`): Terraform refuses
    /// a state whose MD5 differs from it, so a restore must rewrite it.
    pub fn put_digest(&self, table: &str, endpoint: Option<&str>, digest: &str) -> Result<()> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let (ak, sk, token) = target::credentials()?;
        let mut conf = aws_sdk_dynamodb::config::Builder::new()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new(self.region.clone()))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                ak, sk, token, None, "pvedr",
            ));
        if let Some(ep) = endpoint {
            conf = conf.endpoint_url(ep);
        }
        let db = aws_sdk_dynamodb::Client::from_conf(conf.build());
        let lock_id = format!("{}/{}-md5", self.bucket, self.key);
        self.rt
            .block_on(
                db.put_item()
                    .table_name(table)
                    .item("LockID", AttributeValue::S(lock_id))
                    .item("Digest", AttributeValue::S(digest.to_string()))
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| explain(&format!("DynamoDB table {table}"), e))
    }

    /// Server-side copy of the current object to another key (a safety copy).
    pub fn copy_to(&self, to: &str) -> Result<()> {
        let src = format!("{}/{}", self.bucket, self.key);
        self.rt
            .block_on(
                self.client
                    .copy_object()
                    .bucket(&self.bucket)
                    .key(to)
                    .copy_source(src)
                    .send(),
            )
            .map(|_| ())
            .map_err(|e| explain(&format!("copying {} to {to}", self.what()), e))
    }
}
