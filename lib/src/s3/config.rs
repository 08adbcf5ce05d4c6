//! Where S3 is and who we are there, the AWS way: endpoint and region from the flags, the
//! AWS environment variables or a Terraform backend block; credentials only from the
//! environment or a credentials file (never a flag), never printed.

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::config::timeout::TimeoutConfig;

use crate::error::{Error, Result};

/// An S3 endpoint (`None`: AWS itself), region, and how long S3 may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: Option<String>,
    pub region: String,
    pub timeouts: Timeouts,
}

/// How long an S3 server may take, so that one that accepts a request and never answers
/// cannot hold a tool: `connect` (TCP and TLS), `read` (from a request sent to its answer,
/// and between two chunks of a body read), `operation` (a whole request with the SDK's
/// retries). A request with a body gets also the time to send it at [`MIN_RATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
    pub operation: Duration,
}

/// The slowest link a body is sent or read over before its request times out (1 Mbit/s).
pub const MIN_RATE: u64 = 128 * 1024;

/// Tries of one request by the SDK (the first and two retries).
pub const ATTEMPTS: u32 = 3;

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(60),
            operation: Duration::from_secs(300),
        }
    }
}

impl Timeouts {
    /// The time to move `bytes` at [`MIN_RATE`].
    pub fn body(bytes: u64) -> Duration {
        Duration::from_secs(bytes / MIN_RATE)
    }

    /// The SDK's timeouts for a request with a body of `bytes` (0: none).
    pub(crate) fn sdk(&self, bytes: u64) -> TimeoutConfig {
        let body = Timeouts::body(bytes);
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .read_timeout(self.read + body)
            .operation_timeout(self.operation + body * ATTEMPTS)
            .build()
    }
}

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

impl Endpoint {
    /// `--endpoint`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the backend's; `--region`,
    /// `AWS_REGION`, `AWS_DEFAULT_REGION`, the backend's, else `us-east-1`.
    pub fn resolve(
        flag_url: Option<&str>,
        flag_region: Option<&str>,
        backend_url: Option<&str>,
        backend_region: Option<&str>,
    ) -> Result<Endpoint> {
        let url = flag_url
            .map(String::from)
            .or_else(|| env_var("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env_var("AWS_ENDPOINT_URL"))
            .or(backend_url.map(String::from));
        if let Some(u) = &url {
            check_url(u)?;
        }
        let region = flag_region
            .map(String::from)
            .or_else(|| env_var("AWS_REGION"))
            .or_else(|| env_var("AWS_DEFAULT_REGION"))
            .or(backend_region.map(String::from))
            .unwrap_or_else(|| "us-east-1".into());
        check_region(&region)?;
        Ok(Endpoint {
            url,
            region,
            timeouts: Timeouts::default(),
        })
    }

    /// The endpoint as it may be printed: without user:password.
    pub fn printable(&self) -> Option<String> {
        self.url.as_deref().map(printable_url)
    }

    /// The endpoint as a message names it: its URL without credentials, or AWS's region.
    pub fn named(&self) -> String {
        self.printable()
            .unwrap_or_else(|| format!("AWS S3 ({})", self.region))
    }
}

/// `http://user:pass@host:9000/x` → `http://host:9000/x`.
pub fn printable_url(u: &str) -> String {
    let Some((scheme, rest)) = u.split_once("://") else {
        return u.to_string();
    };
    let (auth, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

fn check_url(u: &str) -> Result<()> {
    let ok = (u.starts_with("http://") || u.starts_with("https://"))
        && u.len() <= 2048
        && !u.bytes().any(|c| c.is_ascii_control() || c == b' ');
    let why = "give http(s)://HOST[:PORT]";
    crate::validate::require(ok, "S3 endpoint", &printable_url(u), why)
}

/// A region as S3 servers name them (`us-east-1`, MinIO's or Garage's own word): it goes
/// into the signature's scope and the `Authorization` header, where a control character
/// made the SDK's signing panic.
pub fn check_region(r: &str) -> Result<()> {
    let ok = (1..=64).contains(&r.len())
        && r.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    let why = "letters, digits, '-', '_' and '.' (us-east-1)";
    crate::validate::require(ok, "S3 region", r, why)
}

/// A value that goes into an HTTP header as it is (a KMS key id): printable ASCII, bounded.
pub fn check_header_value(what: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty() && v.len() <= 2048 && v.bytes().all(|c| (0x20..0x7f).contains(&c));
    crate::validate::require(ok, what, v, "printable ASCII only")
}

/// The access key and token reach the `Authorization` and `x-amz-security-token` headers,
/// where a control character made the SDK panic. Refused without printing them.
fn check_credentials(ak: &str, sk: &str, token: Option<&str>) -> Result<()> {
    let printable = |v: &str| v.len() <= 4096 && v.bytes().all(|c| (0x21..0x7f).contains(&c));
    let sk_ok = sk.len() <= 4096 && !sk.chars().any(char::is_control);
    if printable(ak) && sk_ok && token.is_none_or(printable) {
        Ok(())
    } else {
        Err(Error::usage(
            "the S3 credentials hold a character an HTTP header cannot carry (a newline, a space?): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or the credentials file",
        ))
    }
}

/// A bucket name S3 accepts ([`crate::validate::bucket_name`]).
pub fn check_bucket(b: &str) -> Result<()> {
    crate::validate::bucket_name(b).map(|_| ())
}

/// Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), else the
/// profile (AWS_PROFILE or `default`) of the shared credentials file. Never printed.
pub fn credentials() -> Result<(String, String, Option<String>)> {
    if let (Some(a), Some(s)) = (
        env_var("AWS_ACCESS_KEY_ID"),
        env_var("AWS_SECRET_ACCESS_KEY"),
    ) {
        let token = env_var("AWS_SESSION_TOKEN");
        check_credentials(&a, &s, token.as_deref())?;
        return Ok((a, s, token));
    }
    let profile = env_var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let file = env_var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")));
    if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok())
        && let Some(c) = profile_credentials(&text, &profile)
    {
        check_credentials(&c.0, &c.1, c.2.as_deref())?;
        return Ok(c);
    }
    Err(Error::usage(format!(
        "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile '{profile}' in ~/.aws/credentials"
    )))
}

fn profile_credentials(text: &str, profile: &str) -> Option<(String, String, Option<String>)> {
    let mut section = String::new();
    let (mut ak, mut sk, mut tok) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().trim_start_matches("profile ").to_string();
            continue;
        }
        if section != profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = Some(v.trim().to_string());
            match k.trim() {
                "aws_access_key_id" => ak = v,
                "aws_secret_access_key" => sk = v,
                "aws_session_token" => tok = v,
                _ => {}
            }
        }
    }
    Some((ak?, sk?, tok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_not_printed() {
        assert_eq!(
            printable_url("http://ak:secret@127.0.0.1:9000/x"),
            "http://127.0.0.1:9000/x"
        );
        assert_eq!(printable_url("https://s3.example"), "https://s3.example");
    }

    #[test]
    fn profiles() {
        let t = "[default]\naws_access_key_id = a\naws_secret_access_key = b\n[profile x]\naws_access_key_id=c\naws_secret_access_key=d\naws_session_token=e\n";
        assert_eq!(
            profile_credentials(t, "x"),
            Some(("c".into(), "d".into(), Some("e".into())))
        );
        assert_eq!(profile_credentials(t, "nope"), None);
        assert!(check_bucket("Bad_Bucket").is_err());
        assert!(check_url("ftp://x").is_err());
    }

    #[test]
    fn header_values() {
        assert!(check_region("us-east-1").is_ok());
        assert!(check_region("garage").is_ok());
        for bad in ["us\neast", "", "a b", "a/b", "é"] {
            assert!(check_region(bad).is_err(), "{bad:?}");
        }
        assert!(check_credentials("AKIA", "s/k+", Some("t=")).is_ok());
        assert!(check_credentials("a\nb", "s", None).is_err());
        assert!(check_credentials("a", "s", Some("t\r")).is_err());
        assert!(check_header_value("KMS key id", "arn:aws:kms:x").is_ok());
        assert!(check_header_value("KMS key id", "a\nb").is_err());
    }
}
