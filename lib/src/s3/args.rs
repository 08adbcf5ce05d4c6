//! The S3 flags, defined once and flattened into each tool that talks to S3.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Endpoint, Timeouts};
use crate::cli::values;
use crate::error::{Error, Result};
use crate::terraform::backend::{self, Backend};

/// Where S3 is and how long it may take: the flags of every tool that talks to S3.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "S3")]
pub struct S3Conn {
    /// S3 endpoint URL (MinIO, Garage, SeaweedFS, Ceph RGW, …). Default:
    /// AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, a Terraform backend block's where the tool
    /// reads one, else AWS.
    #[arg(long, value_name = "URL", global = true)]
    pub endpoint: Option<String>,

    /// S3 region (letters, digits, '-', '_', '.'). Default: AWS_REGION, AWS_DEFAULT_REGION, a
    /// backend block's, else us-east-1.
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,

    /// Longest wait for a connection to S3 (TCP and TLS). Default: 10s.
    #[arg(
        long,
        value_name = "DURATION",
        env = "PVEDR_S3_CONNECT_TIMEOUT",
        hide_env_values = true,
        global = true,
        hide_short_help = true,
        value_parser = values::s3_timeout
    )]
    pub s3_connect_timeout: Option<Duration>,

    /// Longest an S3 server may stay silent: from a request sent to its answer, and between
    /// two chunks of an object read. A request with a body (a part, a manifest) gets also
    /// the time to send it at 128 KiB/s. Default: 1m.
    #[arg(
        long,
        value_name = "DURATION",
        env = "PVEDR_S3_READ_TIMEOUT",
        hide_env_values = true,
        global = true,
        hide_short_help = true,
        value_parser = values::s3_timeout
    )]
    pub s3_read_timeout: Option<Duration>,

    /// Longest one S3 request may take, its retries included (three tries; an object read
    /// whole or streamed: plus its size at 128 KiB/s). Default: 5m.
    #[arg(
        long,
        value_name = "DURATION",
        env = "PVEDR_S3_TIMEOUT",
        hide_env_values = true,
        global = true,
        hide_short_help = true,
        value_parser = values::s3_timeout
    )]
    pub s3_timeout: Option<Duration>,
}

impl S3Conn {
    /// The endpoint from the flags, the environment, else a backend block's values.
    pub fn endpoint_with(
        &self,
        backend_url: Option<&str>,
        backend_region: Option<&str>,
    ) -> Result<Endpoint> {
        let mut ep = Endpoint::resolve(
            self.endpoint.as_deref(),
            self.region.as_deref(),
            backend_url,
            backend_region,
        )?;
        ep.timeouts = self.timeouts();
        Ok(ep)
    }

    /// [`S3Conn::endpoint_with`] without a backend block.
    pub fn endpoint(&self) -> Result<Endpoint> {
        self.endpoint_with(None, None)
    }

    pub fn timeouts(&self) -> Timeouts {
        let d = Timeouts::default();
        Timeouts {
            connect: self.s3_connect_timeout.unwrap_or(d.connect),
            read: self.s3_read_timeout.unwrap_or(d.read),
            operation: self.s3_timeout.unwrap_or(d.operation),
        }
    }
}

#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "S3")]
pub struct S3Args {
    /// Environment E: bucket tfstate-E (repeatable where a tool works on several).
    #[arg(long, value_name = "E", global = true)]
    pub env: Vec<String>,

    /// Bucket (instead of --env).
    #[arg(long, value_name = "BUCKET", global = true)]
    pub bucket: Option<String>,

    /// Read bucket, key, region, endpoint and workspace prefix from the backend "s3" block
    /// of this Terraform directory.
    #[arg(long, value_name = "DIR", global = true)]
    pub backend_config: Option<PathBuf>,

    #[command(flatten)]
    pub conn: S3Conn,
}

/// An environment name as it may appear in a bucket name (`tfstate-E` must be a valid one).
pub fn check_env(e: &str) -> Result<()> {
    crate::validate::env_name(e).map(|_| ())
}

impl S3Args {
    /// The backend block of `--backend-config` (empty without it).
    pub fn backend(&self) -> Result<Backend> {
        match &self.backend_config {
            Some(d) => backend::read_backend(d),
            None => Ok(Backend::default()),
        }
    }

    pub fn endpoint_with(&self, b: &Backend) -> Result<Endpoint> {
        self.conn
            .endpoint_with(b.endpoint.as_deref(), b.region.as_deref())
    }

    /// The bucket of environment `env` (or of `--bucket`, or of the backend block).
    pub fn bucket_for(&self, env: Option<&str>, b: &Backend) -> Result<String> {
        if let Some(e) = env {
            check_env(e)?;
        }
        let bucket = self
            .bucket
            .clone()
            .or_else(|| env.map(|e| format!("tfstate-{e}")))
            .or(b.bucket.clone())
            .ok_or_else(|| {
                Error::usage("which bucket? give --env E, --bucket B, or --backend-config DIR")
            })?;
        super::config::check_bucket(&bucket)?;
        Ok(bucket)
    }

    /// Every bucket named by `--bucket` and `--env`, in order, without repeats.
    pub fn buckets(&self) -> Result<Vec<String>> {
        let b = self.backend()?;
        let mut out: Vec<String> = Vec::new();
        if self.bucket.is_some() || (self.env.is_empty() && b.bucket.is_some()) {
            out.push(self.bucket_for(None, &b)?);
        }
        for e in &self.env {
            check_env(e)?;
            let name = format!("tfstate-{e}");
            super::config::check_bucket(&name)?;
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_the_bucket() {
        let a = S3Args {
            env: vec!["lab".into(), "prod".into(), "lab".into()],
            ..Default::default()
        };
        assert_eq!(
            a.buckets().expect("buckets"),
            ["tfstate-lab", "tfstate-prod"]
        );
        assert_eq!(
            a.bucket_for(Some("lab"), &Backend::default()).expect("b"),
            "tfstate-lab"
        );
        assert!(check_env("").is_err());
        assert!(check_env("Prod;x").is_err());
    }

    #[test]
    fn timeouts_from_flags() {
        let c = S3Conn {
            s3_read_timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let t = c.timeouts();
        assert_eq!(t.read, Duration::from_secs(2));
        assert_eq!(t.connect, Timeouts::default().connect);
    }
}
