//! Where S3 is and who we are there, the AWS way: endpoint and region from the flags, the
//! AWS environment variables or a Terraform backend block; credentials only from the
//! environment or a credentials file (never a flag), never printed.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// An S3 endpoint (`None`: AWS itself) and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: Option<String>,
    pub region: String,
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
        Ok(Endpoint { url, region })
    }

    /// The endpoint as it may be printed: without user:password.
    pub fn printable(&self) -> Option<String> {
        self.url.as_deref().map(printable_url)
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
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "invalid S3 endpoint '{}': give http(s)://HOST[:PORT]",
            printable_url(u).escape_debug()
        )))
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
        return Ok((a, s, env_var("AWS_SESSION_TOKEN")));
    }
    let profile = env_var("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let file = env_var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".aws/credentials")));
    if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
        if let Some(c) = profile_credentials(&text, &profile) {
            return Ok(c);
        }
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
}
