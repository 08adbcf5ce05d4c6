use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};
use pvedr::cli::{OutputArgs, WriteArgs, values};

const AFTER: &str = "EXAMPLES:
  minio-rebuild --endpoint http://minio:9000 --env prod --env lab --dry-run
  minio-rebuild --endpoint http://minio:9000 --env prod --env lab --env monitoring \\
      --noncurrent-days 90 --from /srv/backup/tfstate \\
      --verify-dir infra/prod --verify-dir infra/lab --verify-dir infra/monitoring --yes
  minio-rebuild --env prod --terraform-dir infra/minio --wait 10m --yes   # redeploy MinIO first
  minio-rebuild --env prod --yes --format table                           # nightly, idempotent

STEPS (in this order; the run stops at the first failure, whose message says what to do):
  health           MinIO's /minio/health/live and /minio/health/ready when the server says
                   `Server: MinIO` (or with --minio); otherwise S3 ListBuckets, which proves
                   reachability and credentials. Unhealthy: `skipped` with the reason;
                   credentials refused (403, InvalidAccessKeyId…): `failed` at once.
  reprovision      only with --terraform-dir and an unhealthy store: terraform init, plan,
                   then apply -target=<--module> -auto-approve -input=false.
  wait             health polled with a growing delay (0.5 s up to 10 s) until --wait runs
                   out; progress on stderr.
  buckets          one record per bucket (--bucket B, --env E = tfstate-E), created if missing.
  versioning       one record per bucket: enabled, read back as Enabled; --noncurrent-days N
                   adds the lifecycle rule pvedr-noncurrent-expiration (noncurrent versions
                   only; the current version never expires; other rules are kept).
  reseed           with --from DIR (a `tfstate-versions export` directory): <E>.tfstate or
                   <BUCKET>.tfstate, its .sha256 checked first. Every export (state, .sha256,
                   .version) is read before the first upload, from regular files only (a FIFO
                   or a device there fails the step with nothing uploaded). A state goes up to
                   <--key> only where the key is missing, or holds the same lineage with a
                   lower serial, and is read back. A newer, equal-but-different or
                   foreign-lineage state, or a held .tflock, is left untouched (`skipped`,
                   with why); --force overwrites the first three (the old version stays in
                   the bucket's history, and the command to bring it back is printed).
  verify-backends  per --verify-dir: terraform init -reconfigure -input=false, then
                   terraform plan -detailed-exitcode -lock=false (writes nothing, not even a
                   lock object); drift in the plan is not this run's change: `ok`, with the
                   count in changes and a warning on stderr.

RECORDS:
  `step` records: step, target, status (ok | changed | planned | skipped | failed),
  message, duration_s; reseed adds serial, sha256, export_version_id (the version the
  export was taken from), version_id (the one written) and way_back (after --force);
  verify-backends adds changes (the plan's count). Then one `summary`: counts by status,
  exit_code, duration_s.

S3:
  Buckets: --env E is bucket tfstate-E (as tfstate-versions), --bucket B any other.
  Endpoint: --endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS; a failed
  connection or bucket names the endpoint tried. Region: --region,
  AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. Credentials only from the environment
  (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or the profile AWS_PROFILE
  of ~/.aws/credentials (AWS_SHARED_CREDENTIALS_FILE); never a flag, never printed.
  Terraform gets the same environment.
  Timeouts: a connection 10s (--s3-connect-timeout, PVEDR_S3_CONNECT_TIMEOUT), an
  answer or a pause in an object read 1m (--s3-read-timeout, PVEDR_S3_READ_TIMEOUT), one
  request with its three tries 5m (--s3-timeout, PVEDR_S3_TIMEOUT); a body sent or read
  gets also its size at 128 KiB/s. A listing whose server repeats a continuation token
  is an error, not an endless loop.

EXIT STATUS:
  0    success: the store is healthy, the buckets are versioned, the states are there (a
       state left untouched is reported, not an error); a --dry-run whose reads worked
  1    a step failed (the store stayed unreachable, a bucket could not be created or
       versioned, an export is damaged, a backend does not initialise); the records say
       which, and nothing after it was attempted
  2    usage error, or changes without --yes and without a terminal; nothing was done
  130  interrupted: the running step finished (a running Terraform is asked to stop: SIGINT,
       then SIGTERM and SIGKILL 10 s apart; a second Ctrl-C kills it at once), the records
       were written
  Standard output that cannot be written (a full disk) is an error: status 1, with a
  message; a closed one (`| head`) ends the run quietly with status 0.";

/// Bring the Terraform state store back — on MinIO or any S3 — and prove every backend works.
///
/// Idempotent: on a healthy store with everything in place it changes nothing.
#[derive(Parser, Debug)]
#[command(name = "minio-rebuild", version, after_long_help = AFTER)]
pub struct Cli {
    #[command(flatten)]
    pub s3: pvedr::s3::S3Conn,

    /// Environment E: bucket tfstate-E (repeatable).
    #[arg(long, value_name = "E", help_heading = "S3")]
    pub env: Vec<String>,

    /// A bucket to rebuild (repeatable).
    #[arg(long, value_name = "B", help_heading = "S3")]
    pub bucket: Vec<String>,

    /// The server is MinIO even if it does not say `Server: MinIO` (a proxy in front):
    /// use its health probes.
    #[arg(long, help_heading = "S3")]
    pub minio: bool,

    /// How long to wait for the store to become healthy (30s, 5m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = values::duration)]
    pub wait: Duration,

    #[command(flatten)]
    pub terraform: TerraformArgs,

    /// Add a lifecycle rule that expires noncurrent state versions after N days.
    #[arg(long, value_name = "N", help_heading = "S3", value_parser = clap::value_parser!(i32).range(1..=36500))]
    pub noncurrent_days: Option<i32>,

    /// A `tfstate-versions export` directory to put the states back from.
    #[arg(long, value_name = "DIR", help_heading = "Reseed")]
    pub from: Option<PathBuf>,

    /// The state key in each bucket.
    #[arg(
        long,
        value_name = "KEY",
        default_value = "terraform.tfstate",
        help_heading = "Reseed"
    )]
    pub key: String,

    /// Reseed over a newer, equal-serial or foreign-lineage state (never over a held lock;
    /// the old version stays in the history).
    #[arg(long, help_heading = "Reseed")]
    pub force: bool,

    #[command(flatten)]
    pub write: WriteArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// The Terraform that deploys the store and the backends verified (its own heading).
#[derive(Args, Debug)]
#[command(next_help_heading = "Terraform")]
pub struct TerraformArgs {
    /// Terraform directory that deploys the store: when it is unhealthy, plan and apply its
    /// --module (a local backend there: the store it deploys cannot hold its own state).
    #[arg(long, value_name = "DIR")]
    pub terraform_dir: Option<PathBuf>,

    /// The address applied in --terraform-dir.
    #[arg(long, value_name = "ADDR", default_value = "module.minio")]
    pub module: String,

    /// The Terraform (or OpenTofu) command.
    #[arg(long, value_name = "PATH", default_value = "terraform")]
    pub terraform_bin: String,

    /// The bound of each Terraform command (30s, 10m, 1h). At it, and on Ctrl-C or SIGTERM,
    /// Terraform is asked to stop (SIGINT to its process group; SIGTERM after 10 s, SIGKILL
    /// after 10 s more) and what it may have left (a lock) is said.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10m",
        value_parser = values::bound
    )]
    pub terraform_timeout: Duration,

    /// Check this environment's backend: terraform init -reconfigure and plan (repeatable).
    #[arg(long, value_name = "ENVDIR")]
    pub verify_dir: Vec<PathBuf>,
}
