//! Multipart uploads: an archive streams from a node into S3 part by part, so memory is
//! bounded by the part size whatever the archive's size. An upload that does not complete
//! is aborted: no half object is ever visible.

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::Bucket;
use crate::error::{Error, Result};
use crate::retry::Retry;
use crate::shell::quote;

/// S3's bounds: parts of 5 MiB (but the last) to 5 GiB, at most 10,000 of them.
pub const MIN_PART: usize = 5 * 1024 * 1024;
pub const MAX_PART: usize = 5 * 1024 * 1024 * 1024;
pub const MAX_PARTS: i32 = 10_000;

/// An upload in progress on the server (`list_uploads`).
#[derive(Debug, Clone)]
pub struct Upload {
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<i64>,
}

/// A finished part.
#[derive(Debug, Clone)]
pub struct Part {
    pub number: i32,
    pub etag: String,
}

impl Bucket {
    pub fn create_multipart(&self, key: &str, metadata: &[(&str, &str)]) -> Result<String> {
        self.create_multipart_opts(key, metadata, &super::WriteOptions::default())
    }

    /// [`Bucket::create_multipart`] with encryption and retention headers.
    pub fn create_multipart_opts(
        &self,
        key: &str,
        metadata: &[(&str, &str)],
        opts: &super::WriteOptions,
    ) -> Result<String> {
        let (sse, kms) = opts.sse();
        let (mode, until) = opts.lock();
        let mut req = self
            .client
            .create_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .set_server_side_encryption(sse)
            .set_ssekms_key_id(kms)
            .set_object_lock_mode(mode)
            .set_object_lock_retain_until_date(until);
        for (k, v) in metadata {
            req = req.metadata(*k, *v);
        }
        let what = format!("starting an upload of {}", self.url(key));
        let r = self.call(&what, req.send())?;
        r.upload_id().map(String::from).ok_or_else(|| Error::S3 {
            what,
            code: None,
            status: None,
            message: "the server returned no upload id".into(),
        })
    }

    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: i32,
        body: Vec<u8>,
    ) -> Result<Part> {
        let conf = self.with_body(body.len());
        let req = self
            .client
            .upload_part()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .customize()
            .config_override(conf)
            .send();
        let r = self.until_interrupted(req)?.map_err(|e| {
            self.explain(&format!("uploading part {number} of {}", self.url(key)), e)
        })?;
        Ok(Part {
            number,
            etag: r.e_tag().unwrap_or_default().to_string(),
        })
    }

    /// Completes an upload; returns the new object's version id.
    pub fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[Part]) -> Result<String> {
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number)
                            .e_tag(&p.etag)
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let req = self
            .client
            .complete_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(done)
            .send();
        self.call(&format!("completing the upload of {}", self.url(key)), req)
            .map(|r| r.version_id().unwrap_or("null").to_string())
    }

    pub fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<()> {
        let req = self
            .client
            .abort_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .send();
        self.call(&format!("aborting the upload of {}", self.url(key)), req)
            .map(|_| ())
    }

    /// `aws s3api abort-multipart-upload …` to paste, every value quoted, the endpoint
    /// without credentials.
    pub fn abort_command(&self, key: &str, upload_id: &str) -> String {
        let ep = self
            .endpoint
            .printable()
            .map(|e| format!(" --endpoint-url {}", quote(&e)))
            .unwrap_or_default();
        format!(
            "aws s3api abort-multipart-upload{ep} --bucket {} --key {} --upload-id {}",
            quote(&self.name),
            quote(key),
            quote(upload_id)
        )
    }

    /// Aborts an upload, best effort: when S3 refuses or does not answer, says so with the
    /// command that finishes the job (an open upload keeps its parts, and their storage).
    pub fn abort_or_say(&self, key: &str, upload_id: &str) {
        if let Err(e) = self.abort_multipart(key, upload_id) {
            crate::msg::warn(format!(
                "{e}; the unfinished upload keeps its parts until it is aborted: {}",
                self.abort_command(key, upload_id)
            ));
        }
    }

    /// Uploads not completed nor aborted under `prefix` (one page: enough to clean up).
    pub fn list_uploads(&self, prefix: &str) -> Result<Vec<Upload>> {
        let req = self
            .client
            .list_multipart_uploads()
            .bucket(&self.name)
            .prefix(prefix)
            .send();
        let r = self.call(&format!("listing uploads under {}", self.url(prefix)), req)?;
        Ok(r.uploads()
            .iter()
            .map(|u| Upload {
                key: u.key().unwrap_or_default().to_string(),
                upload_id: u.upload_id().unwrap_or_default().to_string(),
                initiated: u.initiated().map(|t| t.secs()),
            })
            .collect())
    }
}

/// A `Write` into a multipart upload: bytes are buffered up to the part size, each full
/// part is uploaded (retried as `retry` says), [`MultipartUpload::finish`] completes the
/// object. Dropped without `finish` (an error, a signal): the upload is aborted.
pub struct MultipartUpload<'a> {
    bucket: &'a Bucket,
    key: String,
    upload_id: Option<String>,
    part_size: usize,
    buf: Vec<u8>,
    parts: Vec<Part>,
    retry: Retry,
    bytes: u64,
}

impl<'a> MultipartUpload<'a> {
    pub fn start(
        bucket: &'a Bucket,
        key: &str,
        part_size: usize,
        metadata: &[(&str, &str)],
        retry: Retry,
    ) -> Result<Self> {
        Self::begin(bucket, key, part_size, retry, || {
            bucket.create_multipart(key, metadata)
        })
    }

    /// [`MultipartUpload::start`] with encryption and retention headers.
    pub fn start_opts(
        bucket: &'a Bucket,
        key: &str,
        part_size: usize,
        retry: Retry,
        opts: &super::WriteOptions,
    ) -> Result<Self> {
        Self::begin(bucket, key, part_size, retry, || {
            bucket.create_multipart_opts(key, &[], opts)
        })
    }

    /// The part size checked before `create` asks S3 for an upload id.
    fn begin(
        bucket: &'a Bucket,
        key: &str,
        part_size: usize,
        retry: Retry,
        create: impl FnOnce() -> Result<String>,
    ) -> Result<Self> {
        if !(MIN_PART..=MAX_PART).contains(&part_size) {
            return Err(Error::usage(format!(
                "part size {part_size} is outside S3's bounds (5 MiB to 5 GiB)"
            )));
        }
        let upload_id = create()?;
        Ok(MultipartUpload {
            bucket,
            key: key.into(),
            upload_id: Some(upload_id),
            part_size,
            buf: Vec::with_capacity(part_size),
            parts: Vec::new(),
            retry,
            bytes: 0,
        })
    }

    pub fn upload_id(&self) -> Option<&str> {
        self.upload_id.as_deref()
    }

    fn flush_part(&mut self) -> Result<()> {
        let Some(id) = self.upload_id.clone() else {
            return Err(Error::Other("the upload was aborted".into()));
        };
        let number = i32::try_from(self.parts.len() + 1)
            .ok()
            .filter(|n| *n <= MAX_PARTS)
            .ok_or_else(|| {
                Error::Refused(format!(
                    "{}: more than {MAX_PARTS} parts: give a larger part size",
                    self.key
                ))
            })?;
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        let what = format!("part {number} of s3://{}/{}", self.bucket.name, self.key);
        let part = self.retry.run(&what, |_| {
            self.bucket
                .upload_part(&self.key, &id, number, body.clone())
        })?;
        self.parts.push(part);
        Ok(())
    }

    /// Uploads what is buffered and completes the object; returns its version id and size.
    pub fn finish(mut self) -> Result<(String, u64)> {
        if !self.buf.is_empty() || self.parts.is_empty() {
            self.flush_part()?;
        }
        let id = self
            .upload_id
            .take()
            .ok_or_else(|| Error::Other("the upload was aborted".into()))?;
        match self.bucket.complete_multipart(&self.key, &id, &self.parts) {
            Ok(v) => Ok((v, self.bytes)),
            Err(e) => {
                self.bucket.abort_or_say(&self.key, &id);
                Err(e)
            }
        }
    }

    /// Aborts the upload now (also done on drop).
    pub fn abort(mut self) -> Result<()> {
        match self.upload_id.take() {
            Some(id) => self.bucket.abort_multipart(&self.key, &id),
            None => Ok(()),
        }
    }
}

impl Write for MultipartUpload<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.part_size - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.bytes = self.bytes.saturating_add(n as u64);
        if self.buf.len() == self.part_size {
            self.flush_part().map_err(std::io::Error::other)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MultipartUpload<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.upload_id.take() {
            self.bucket.abort_or_say(&self.key, &id);
        }
    }
}
