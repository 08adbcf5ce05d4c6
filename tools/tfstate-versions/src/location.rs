//! Which state: bucket and key from the flags, `--env`, or a Terraform directory's
//! `backend "s3"` block; the endpoint and the legacy lock table with it.

use pvedr::error::Result;
use pvedr::s3::{Endpoint, S3Args};
use pvedr::terraform::backend;

/// Where one state lives and how to reach it.
#[derive(Debug, Clone)]
pub struct StateLocation {
    pub env: Option<String>,
    pub bucket: String,
    pub key: String,
    pub endpoint: Endpoint,
    /// The legacy lock table and its endpoint, from the backend block or the environment.
    pub dynamodb_table: Option<String>,
    pub dynamodb_endpoint: Option<String>,
}

/// The longest key accepted (S3 allows 1,024 bytes).
const MAX_KEY: usize = 1024;

impl StateLocation {
    pub fn resolve(
        s3: &S3Args,
        env: Option<&str>,
        key: Option<&str>,
        workspace: Option<&str>,
    ) -> Result<StateLocation> {
        let b = s3.backend()?;
        let bucket = s3.bucket_for(env, &b)?;
        let base = key
            .map(String::from)
            .or(b.key.clone())
            .unwrap_or_else(|| "terraform.tfstate".into());
        if base.is_empty() || base.len() > MAX_KEY || base.chars().any(char::is_control) {
            return Err(pvedr::Error::usage(format!(
                "invalid state key '{}': 1 to {MAX_KEY} printable characters",
                base.chars().take(80).collect::<String>().escape_debug()
            )));
        }
        let key = backend::workspace_key(&b, &base, workspace)?;
        let dynamodb_endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .ok()
            .filter(|v| !v.is_empty())
            .or(b.dynamodb_endpoint.clone());
        Ok(StateLocation {
            env: env.map(String::from),
            endpoint: s3.endpoint_with(&b)?,
            bucket,
            key,
            dynamodb_table: b.dynamodb_table,
            dynamodb_endpoint,
        })
    }

    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_shorthand() {
        let a = S3Args {
            conn: pvedr::s3::S3Conn {
                endpoint: Some("http://x".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let t = StateLocation::resolve(&a, Some("lab"), None, None).expect("t");
        assert_eq!(
            (t.bucket.as_str(), t.key.as_str()),
            ("tfstate-lab", "terraform.tfstate")
        );
        assert!(StateLocation::resolve(&a, Some("lab"), Some(""), None).is_err());
        assert!(StateLocation::resolve(&a, Some(""), None, None).is_err());
    }
}
