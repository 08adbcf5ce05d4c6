//! What every step shares: the run's context built from the flags (checked first), the
//! record writer and the summary.

use pvedr::records::StepStatus;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pvedr::error::{Error, Result};
use pvedr::msg::one_line;
use pvedr::output::Output;
use pvedr::records::{Record, Step, Summary, seconds_since};
use pvedr::s3::{Bucket, Endpoint};
use serde_json::Value;

use crate::cli::Cli;

/// The longest key accepted (S3 allows 1,024 bytes).
const MAX_KEY: usize = 1024;

/// What every step needs, and what the run has written so far.
pub struct Ctx<'a> {
    pub cli: &'a Cli,
    pub endpoint: Endpoint,
    pub buckets: Vec<String>,
    pub wait: Duration,
    /// The bound of each Terraform command.
    pub tf_timeout: Duration,
    pub dry_run: bool,
    /// Dry run: the store was down, so later steps cannot read it.
    pub store_unread: bool,
    /// Buckets a dry run would create (their versioning cannot be read).
    pub missing: Vec<String>,
    pub(crate) out: Output,
    counts: BTreeMap<String, u64>,
}

impl Ctx<'_> {
    /// Writes a step record; a failed one is said on stderr too, on one line (its message
    /// may quote what a server or a file said).
    pub fn emit(&mut self, s: Step) -> Result<()> {
        if s.status == StepStatus::Failed {
            pvedr::msg::say(format!(
                "{} {} failed: {}",
                s.step,
                one_line(s.target.as_deref().unwrap_or("")),
                one_line(s.message.as_deref().unwrap_or(""))
            ));
        }
        *self.counts.entry(s.status.to_string()).or_insert(0) += 1;
        self.out.write(&Record::Step(s))?;
        // A rebuild is watched as it happens: every step is on stdout when it ends.
        self.out.flush()
    }

    /// Whether anything so far is only planned (a dry run that would change something).
    pub fn planned_any(&self) -> bool {
        self.counts.contains_key(StepStatus::Planned.as_str())
    }

    /// A client for `bucket` on the run's endpoint.
    pub fn client(&self, bucket: &str) -> Result<Bucket> {
        Bucket::connect(&self.endpoint, bucket)
    }

    /// Terraform in `dir`, bounded by `--terraform-timeout`.
    pub fn terraform(&self, dir: &std::path::Path) -> pvedr::terraform::Terraform {
        pvedr::terraform::Terraform::new(&self.cli.terraform.terraform_bin, dir)
            .with_timeout(self.tf_timeout)
    }

    /// The endpoint as it may be printed.
    pub fn endpoint_text(&self) -> String {
        self.endpoint.printable().unwrap_or_else(|| "AWS S3".into())
    }
}

/// `--bucket B…` then `--env E…` (as tfstate-E), in order, without repeats.
fn buckets(cli: &Cli) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let envs = cli
        .env
        .iter()
        .map(|e| pvedr::s3::S3Args::default().bucket_for(Some(e), &Default::default()));
    for b in cli.bucket.iter().cloned().map(Ok).chain(envs) {
        let b = b?;
        pvedr::s3::check_bucket(&b)?;
        if !out.contains(&b) {
            out.push(b);
        }
    }
    if out.is_empty() {
        return Err(Error::usage(
            "which buckets? give --env E (bucket tfstate-E) or --bucket B, repeatable",
        ));
    }
    Ok(out)
}

fn check_flags(cli: &Cli) -> Result<()> {
    let k = &cli.key;
    if k.is_empty() || k.len() > MAX_KEY || k.chars().any(char::is_control) {
        return Err(Error::usage(format!(
            "invalid --key '{}': 1 to {MAX_KEY} printable characters",
            k.chars().take(80).collect::<String>().escape_debug()
        )));
    }
    let m = &cli.terraform.module;
    if m.is_empty() || m.len() > 256 || m.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::usage(format!(
            "invalid --module '{}': a Terraform address such as module.minio",
            m.escape_debug()
        )));
    }
    for d in cli
        .terraform
        .verify_dir
        .iter()
        .chain(&cli.terraform.terraform_dir)
        .chain(&cli.from)
    {
        if !d.is_dir() {
            return Err(Error::usage(format!("{} is not a directory", d.display())));
        }
    }
    Ok(())
}

pub(crate) fn context(cli: &Cli) -> Result<Ctx<'_>> {
    check_flags(cli)?;
    let endpoint = cli.s3.endpoint()?;
    if cli.minio && endpoint.url.is_none() {
        return Err(Error::usage(
            "--minio needs an endpoint (--endpoint or AWS_ENDPOINT_URL)",
        ));
    }
    // Credentials are looked up now, so a missing one is a usage error before anything.
    pvedr::s3::credentials()?;
    Ok(Ctx {
        cli,
        endpoint,
        buckets: buckets(cli)?,
        wait: cli.wait,
        tf_timeout: cli.terraform.terraform_timeout,
        dry_run: cli.write.dry_run,
        store_unread: false,
        missing: Vec::new(),
        out: cli.output.output(),
        counts: BTreeMap::new(),
    })
}

/// The run's summary record: the steps counted by status.
pub(crate) fn summary(ctx: &mut Ctx, exit_code: u8, t0: Instant) -> Result<()> {
    let counts = ctx
        .counts
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(*v)))
        .collect();
    let s = Summary {
        tool: Some("minio-rebuild".into()),
        counts,
        exit_code,
        duration_s: Some(seconds_since(t0)),
        ..Default::default()
    };
    ctx.out.write(&Record::Summary(s))
}
