//! How an object is written beyond its bytes: server-side encryption and Object Lock
//! retention (immutable offsite copies). Passed through to S3 as headers.

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode, ServerSideEncryption,
};

use super::Bucket;
use crate::error::{Error, Result};

/// Server-side encryption requested of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    /// `AES256`: keys managed by the server.
    Aes256,
    /// `aws:kms`, with an optional key id (else the server's default key).
    Kms(Option<String>),
}

/// Object Lock modes: governance can be lifted by a privileged user, compliance by no one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// Retention until `until` (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub mode: LockMode,
    pub until: i64,
}

/// Encryption and retention of every object a tool writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    pub sse: Option<Sse>,
    pub lock: Option<Lock>,
}

impl WriteOptions {
    pub(crate) fn sse(&self) -> (Option<ServerSideEncryption>, Option<String>) {
        match &self.sse {
            None => (None, None),
            Some(Sse::Aes256) => (Some(ServerSideEncryption::Aes256), None),
            Some(Sse::Kms(k)) => (Some(ServerSideEncryption::AwsKms), k.clone()),
        }
    }

    pub(crate) fn lock(&self) -> (Option<ObjectLockMode>, Option<DateTime>) {
        match &self.lock {
            None => (None, None),
            Some(l) => (
                Some(match l.mode {
                    LockMode::Governance => ObjectLockMode::Governance,
                    LockMode::Compliance => ObjectLockMode::Compliance,
                }),
                Some(DateTime::from_secs(l.until)),
            ),
        }
    }
}

impl Bucket {
    /// A whole write with encryption and retention; returns the version id.
    pub fn put_opts(&self, key: &str, body: Vec<u8>, opts: &WriteOptions) -> Result<String> {
        let (sse, kms) = opts.sse();
        let (mode, until) = opts.lock();
        let conf = self.with_body(body.len());
        let req = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .set_object_lock_mode(mode)
            .set_object_lock_retain_until_date(until)
            // S3 wants a body checksum on a write with retention.
            .set_checksum_algorithm(
                opts.lock
                    .is_some()
                    .then_some(aws_sdk_s3::types::ChecksumAlgorithm::Sha256),
            );
        let req = req.customize().config_override(conf).send();
        self.call(&format!("writing {}", self.url(key)), req)
            .map(|r| r.version_id().unwrap_or("null").to_string())
    }

    /// Sets the retention of one version (servers that ignore the lock headers of a
    /// multipart upload get it this way).
    pub fn set_retention(&self, key: &str, version: Option<&str>, lock: &Lock) -> Result<()> {
        let mode = match lock.mode {
            LockMode::Governance => ObjectLockRetentionMode::Governance,
            LockMode::Compliance => ObjectLockRetentionMode::Compliance,
        };
        let r = ObjectLockRetention::builder()
            .mode(mode)
            .retain_until_date(DateTime::from_secs(lock.until))
            .build();
        let req = self
            .client
            .put_object_retention()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version.map(String::from))
            .retention(r)
            .send();
        self.call(&format!("locking {}", self.url(key)), req)
            .map(|_| ())
    }

    /// The retention of one version, from its HEAD (which every S3 with Object Lock
    /// answers; moto has no GetObjectRetention); `Ok(None)` when it has none.
    pub fn retention(&self, key: &str, version: Option<&str>) -> Result<Option<Lock>> {
        let r = self.rt.block_on(
            self.client
                .head_object()
                .bucket(&self.name)
                .key(key)
                .set_version_id(version.map(String::from))
                .send(),
        );
        match r {
            Ok(r) => Ok(
                match (r.object_lock_mode(), r.object_lock_retain_until_date()) {
                    (Some(m), Some(until)) => Some(Lock {
                        mode: match m {
                            ObjectLockMode::Compliance => LockMode::Compliance,
                            _ => LockMode::Governance,
                        },
                        until: until.secs(),
                    }),
                    _ => None,
                },
            ),
            Err(e) if super::not_found(&e) => Ok(None),
            Err(e) => Err(self.explain(&format!("reading the lock of {}", self.url(key)), e)),
        }
    }

    /// Deletes exactly one version; `Err(Error::Refused)` when Object Lock forbids it.
    pub fn delete_version(&self, key: &str, version: &str) -> Result<()> {
        let r = self.rt.block_on(
            self.client
                .delete_object()
                .bucket(&self.name)
                .key(key)
                .version_id(version)
                .send(),
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) if super::code(&e).is_some_and(|c| c == "AccessDenied") => Err(Error::Refused(
                format!("{} is locked (Object Lock)", self.url(key)),
            )),
            Err(e) => Err(self.explain(&format!("deleting {}", self.url(key)), e)),
        }
    }
}
