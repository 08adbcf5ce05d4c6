use std::path::PathBuf;

use clap::{Parser, Subcommand};
use pvedr::cli::{OutputArgs, WriteArgs};
use pvedr::s3::S3Args;

const AFTER: &str = "EXAMPLES:
  tfstate-versions --endpoint http://minio:9000 --env prod list --inspect --format table
  tfstate-versions --backend-config infra/prod list
  tfstate-versions --env prod diff 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY 0v2Zb3XkQpNX.Lz9nHxK
  tfstate-versions --env prod restore 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY --dry-run
  tfstate-versions --env prod restore 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY --yes
  tfstate-versions --env prod --env lab --env monitoring export --to /srv/backup/tfstate
  tfstate-versions fallback --dir infra/prod --yes   # MinIO is down: work on a local state
  tfstate-versions return --dir infra/prod --yes     # MinIO is back: migrate home
  tfstate-versions list --env prod --inspect | backup-check

RECORDS:
  list: one `tfstate_version` record per version and delete marker of exactly the key,
  newest first: env, bucket, key, version_id, is_latest, delete_marker, last_modified
  (RFC 3339), size, etag; with --inspect also serial, lineage, terraform_version,
  resources (count), outputs (names), valid (false when the version is not a state).
  show: the version's state JSON itself (not a record).
  diff: `tfstate_diff` records: address, change (added | removed | changed), then one with
  serial and lineage of both sides.
  restore, undelete, export, fallback, return: `step` records (step, target, status
  planned | ok | changed | skipped | failed, message, duration_s); restore ends with the
  command that undoes it (also on stderr).

S3:
  Bucket: --env E is bucket tfstate-E, --bucket B any other, else the backend block's
  (--backend-config DIR). Key: --key, the backend block's, else terraform.tfstate.
  Endpoint: --endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the backend block's
  endpoints.s3/endpoint, else AWS; an error names the bucket and the endpoint tried. Region: --region, AWS_REGION, AWS_DEFAULT_REGION, the
  backend's region, else us-east-1. Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
  (AWS_SESSION_TOKEN), else the profile AWS_PROFILE (default `default`) of
  ~/.aws/credentials. Path-style addressing; request checksums only when required.
  Timeouts: a connection 10s (--s3-connect-timeout, PVEDR_S3_CONNECT_TIMEOUT), an
  answer or a pause in an object read 1m (--s3-read-timeout, PVEDR_S3_READ_TIMEOUT), one
  request with its three tries 5m (--s3-timeout, PVEDR_S3_TIMEOUT); a body sent or read
  gets also its size at 128 KiB/s. A listing whose server repeats a continuation token
  is an error, not an endless loop.

EXIT STATUS:
  0    success
  1    failed or refused (not a valid state, foreign lineage, lock held, S3 error); nothing
       was written
  2    usage error, or a write without --yes and without a terminal; nothing was written
  3    partial: export of several environments where some failed
  130  interrupted
  Standard output that cannot be written (a full disk) is an error: status 1, with a
  message; a closed one (`| head`) ends the run quietly with status 0.";

/// List, inspect, diff and restore Terraform state versions on any S3; fall back to a local
/// backend and return.
#[derive(Parser, Debug)]
#[command(name = "tfstate-versions", version, after_long_help = AFTER)]
pub struct Cli {
    #[command(flatten)]
    pub s3: S3Args,

    /// State key. Default: terraform.tfstate (or the backend block's key).
    #[arg(long, value_name = "KEY", global = true)]
    pub key: Option<String>,

    /// Terraform workspace: the key becomes <workspace_key_prefix, default env:>/W/<key>.
    #[arg(long, value_name = "W", global = true)]
    pub workspace: Option<String>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// restore, undelete, fallback and return: --dry-run shows the plan and writes
    /// nothing, --yes writes without asking. Accepted and ignored by list, show and diff;
    /// export refuses --dry-run (it only writes into its --to directory).
    #[command(flatten)]
    pub write: WriteArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every version and delete marker of the state, newest first.
    List {
        /// Download each version and add serial, lineage, terraform_version, resources, outputs.
        #[arg(long)]
        inspect: bool,
    },
    /// Print one version's state JSON.
    Show {
        /// Version id (or `latest`).
        version: String,
    },
    /// Resource-level differences between two versions.
    Diff { a: String, b: String },
    /// Make an old version current again, as a new version, safely.
    Restore {
        /// Version id to restore.
        version: String,
        /// Go ahead although the lineage differs or a lock is held (a lock held by someone
        /// else is never deleted or overwritten).
        #[arg(long)]
        force: bool,
        /// Update the legacy DynamoDB lock table's digest item (`<bucket>/<key>-md5`) too.
        /// Default: the backend block's dynamodb_table. Endpoint: AWS_ENDPOINT_URL_DYNAMODB,
        /// the block's endpoints.dynamodb, else --endpoint.
        #[arg(long, value_name = "TABLE")]
        dynamodb_table: Option<String>,
        /// Byte-exact copy, keeping the old serial (default: serial = highest + 1, as
        /// `terraform state push` requires).
        #[arg(long)]
        keep_serial: bool,
    },
    /// Remove the delete marker on top of the state: the previous version is current again.
    Undelete,
    /// Write the current state of each environment to DIR, atomically, with its sha256 and
    /// version id.
    ///
    /// DIR/ENV.tfstate is written with mode 0600 (a state holds the secrets of its
    /// resources), ENV.tfstate.sha256 and ENV.tfstate.version with 0644. A file or symlink
    /// already at those names is replaced, never written through.
    Export {
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Switch a Terraform directory to a local backend (an override file; your files are
    /// not edited), migrating the state.
    Fallback(TerraformDir),
    /// Bring a directory in fallback back to its S3 backend.
    Return(TerraformDir),
}

/// The directory `fallback` and `return` switch, and the Terraform they run there.
#[derive(clap::Args, Debug, Clone)]
pub struct TerraformDir {
    #[arg(long, value_name = "ENVDIR")]
    pub dir: PathBuf,
    #[arg(long, value_name = "PATH", default_value = "terraform")]
    pub terraform_bin: String,
    #[command(flatten)]
    pub timeout: TerraformTimeout,
}

impl TerraformDir {
    pub fn terraform(&self) -> pvedr::terraform::Terraform {
        pvedr::terraform::Terraform::new(&self.terraform_bin, &self.dir)
            .with_timeout(self.timeout.terraform_timeout)
    }
}

/// The bound of each Terraform command of `fallback` and `return`.
#[derive(clap::Args, Debug, Clone)]
pub struct TerraformTimeout {
    /// The bound of each Terraform command (30s, 10m, 1h). At it, and on Ctrl-C or
    /// SIGTERM, Terraform is asked to stop (SIGINT to its process group; SIGTERM after 10 s,
    /// SIGKILL after 10 s more), the directory is put back as it was, and what Terraform
    /// may have left (a lock) is said.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = pvedr::cli::values::bound)]
    pub terraform_timeout: std::time::Duration,
}
