use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use pvedr::cli::{InputArgs, OutputArgs, WriteArgs, values};
use pvedr::connect::ConnectArgs;

const AFTER: &str = "EXAMPLES:
  pve-ls-backups --host pve1 --latest | backup-sync push --to s3://offsite/pve --host pve1
  pve-ls-backups --dir /mnt/nas/dump --storage nas --node pve1 \\
      | backup-sync push --to s3://offsite/pve --dir /mnt/nas/dump --jobs 2 --bwlimit 50M
  backup-sync push --to s3://locked/pve --object-lock-days 30 --sse AES256 --host pve1 \\
      list.jsonl
  backup-sync ls --from s3://offsite/pve --format table
  backup-sync push --to s3://offsite/pve --encrypt-to-file /etc/pvedr/recipients --host pve1 \\
      list.jsonl
  backup-sync pull --age-identity /root/offsite.age --to-dir . s3://offsite/pve/pve1/100/…
  backup-sync ls --from s3://offsite/pve | backup-prune --keep-daily 30 --apply --yes
  backup-sync pull s3://offsite/pve/pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst --to-dir .
  backup-sync pull 'offsite:backup/pve/pve1/100/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst' \\
      --to-dir /var/lib/vz/dump
  backup-sync ls --from s3://offsite/pve \\
      | backup-sync pull --to-node pve1 --storage local --host pve1
  backup-sync ls --from s3://offsite/pve | jq -c 'select(.vmid==100)' \\
      | backup-sync pull --to-dir .
  backup-sync verify --from s3://offsite/pve --max-egress 20G --min-lock-days 7 \\
      | backup-check

KEYS:
  PREFIX/<node, or --storage ID>/<vmid>/<archive name>, its `.notes` and `.log` beside it,
  and <archive name>.manifest.json: sha256, size, node, storage, vmid, subtype, format,
  ctime, notes (whole, any characters), protected, source volid, side files with their
  sha256. The manifest is written last: an archive without one is not a copy.

ENCRYPTION:
  --encrypt-to age1… (repeatable) and --encrypt-to-file FILE encrypt the archive and its
  side files on this machine, as they stream, in the age format: `age -d -i KEY` decrypts
  them without pvedr. The manifest adds encrypted (age), recipients (public keys),
  object_size and object_sha256 (size and sha256 stay the archive's own) and keeps no
  notes; ls writes encrypted: age. pull and verify decrypt with --age-identity FILE
  (mode 600, else refused); a copy for other recipients is refused, saying so. An
  interrupted encrypted upload is aborted and its rerun starts from part 1. A lost
  identity means lost copies: keep it (or a second recipient's) off site.

RECORDS:
  push and pull (not with --dry-run): a `step` record per archive: step (push | pull), target (archive name),
    status changed | skipped | failed, message, duration_s, bytes, rate (bytes/s), url,
    sha256; then a `summary` record: counts (changed, skipped, failed), exit_code,
    duration_s.
  ls: a `backup` record per offsite copy, as pve-ls-backups writes them: node, storage
    (the bucket), volid (BUCKET:backup/KEY), vmid, subtype, ctime, time, size, format,
    notes (first line), protected; also url (s3://BUCKET/KEY), sha256, source_volid,
    source_storage. backup-check and backup-prune read them unchanged; backup-prune
    --apply deletes the offsite objects (all versions) of the copies marked remove.
    A manifest whose archive object is gone or of another size is written as an
    `offsite_damaged` record instead: node, storage, vmid, subtype, time, ctime, error,
    volid, url, manifest_size, object_size, source_volid (the next tools pass it on).

SAFETY:
  push and pull print their plan on stderr first (each archive and its key, each copy and
  where it goes); --dry-run stops there; on a terminal they ask; without one (cron,
  timers, Ansible) they need --yes, else they stop with exit 2 before anything is copied.
  Since this release push and pull from cron need --yes.
  An archive already offsite (its object there, of its manifest's size) with the same size
  and sha256 is skipped (push is idempotent and resumes where it stopped); an object gone
  or cut is uploaded again; the same name with other contents is refused unless
  --force. Uploads are multipart and streamed (never a local copy): memory stays within
  a few --part-size per job. An upload that fails, times out or is interrupted
  (SIGINT/SIGTERM) is aborted, so no half object is left. pull writes beside the target and renames only
  after the sha256 matches the manifest; an existing different file is kept unless --force.
  Side files are only the archive's own (<archive>.notes, <stem>.log, <archive>.protected),
  checked before anything is written: a manifest naming another file fails the pull.

VERIFY:
  verify never writes to the bucket. Free checks first (listings and HEADs): each manifest's
  archive object and side files there, of its sizes; an ETag changed since a read that
  matched, under the same manifest (the object replaced); Object Lock retention of the
  archive, its side files and its manifest at least --min-lock-days; a delete marker hiding
  a copy; objects no manifest names. Then whole reads within --max-egress bytes, oldest
  read first: sha256 against the manifest, the MD5 of a single-part upload against its ETag
  (a multipart ETag is no MD5 of the object), and the content walked as backup-check --deep
  does (zstd/gzip frames, VMA header and extents, tar; lzo and bz2 are hashed only). The
  state (--state, default $XDG_STATE_HOME/pvedr/verify-BUCKET.json, else
  ~/.local/state/pvedr/verify-BUCKET.json) keeps when each copy was read, so every byte is
  read once per --cycle days; a copy not read within its cycle is WARNING.
  Records: `check` records (component offsite/<key>, url, vmid; checks offsite-object,
  offsite-size, offsite-checksum, offsite-lock, offsite-read, offsite-manifest,
  offsite-orphan), then a `summary` with bytes_read, max_egress,
  cycle_days, bytes_total, bytes_covered (read within the cycle). backup-check reads them.
  Exit status as a Nagios plugin: 0 OK, 1 WARNING, 2 CRITICAL (a copy missing, cut,
  changed, damaged or short-locked), 3 UNKNOWN (a read that did not end, any error, a
  usage error).

S3:
  Endpoint: --endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS. Region: --region,
  AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. Credentials: AWS_ACCESS_KEY_ID and
  AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), else the profile AWS_PROFILE of
  ~/.aws/credentials; never printed.
  Timeouts: a connection 10s (--s3-connect-timeout, PVEDR_S3_CONNECT_TIMEOUT), an
  answer or a pause in an object read 1m (--s3-read-timeout, PVEDR_S3_READ_TIMEOUT), one
  request with its three tries 5m (--s3-timeout, PVEDR_S3_TIMEOUT); a body sent or read
  gets also its size at 128 KiB/s. A listing whose server repeats a continuation token
  is an error, not an endless loop.
  An upload that S3 does not let us abort (it stopped answering) is named on stderr with
  the `aws s3api abort-multipart-upload` command that aborts it.

EXIT STATUS:
  0    success (every archive copied or skipped as already there)
  1    failed (S3 or the node unreachable, every archive failed)
  2    usage error (bad flag or value), or push/pull without --yes and without a terminal
       to ask on; nothing was done
  3    partial: some archives failed, the others were copied
  130  interrupted: the running uploads were aborted, the records written
  Standard output that cannot be written (a full disk) is an error: status 1, with a
  message; a closed one (`| head`) ends the run quietly with status 0.";

/// Copy vzdump backups off the node to S3, list the offsite copies, bring them back.
///
/// push streams each archive (with its notes and log) from its record's node over SSH, or from a
/// dump directory, into S3 with a manifest; ls lists the offsite copies as backup records
/// for backup-check and backup-prune; pull brings a copy back, verified, for pve-restore.
#[derive(Parser, Debug)]
#[command(name = "backup-sync", version, after_long_help = AFTER)]
pub struct Cli {
    #[command(flatten)]
    pub s3: pvedr::s3::S3Conn,

    #[command(flatten)]
    pub output: OutputArgs,

    /// push and pull: --dry-run shows what would be copied and copies nothing; --yes copies
    /// without asking (required without a terminal: cron, timers, Ansible).
    #[command(flatten)]
    pub write: WriteArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Upload the archives of the `backup` records read (FILE or stdin) to S3.
    Push(Box<PushArgs>),
    /// List the offsite copies as `backup` records.
    Ls {
        /// Where the copies are: s3://BUCKET/PREFIX.
        #[arg(long, value_name = "URL")]
        from: String,
    },
    /// Bring offsite copies back into a directory, verified against their manifest.
    Pull(Box<PullArgs>),
    /// Check the offsite copies: free checks, then whole reads within a byte budget.
    Verify(Box<VerifyArgs>),
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Where the copies go: s3://BUCKET/PREFIX.
    #[arg(long, value_name = "URL")]
    pub to: String,

    #[command(flatten)]
    pub input: InputArgs,

    /// Read the archives from this dump directory (offline, no node) instead of the node.
    #[arg(long, value_name = "DIR", help_heading = "Source")]
    pub dir: Option<PathBuf>,

    /// Node for records that carry none (listings made with --dir).
    #[arg(long, value_name = "NODE", help_heading = "Source")]
    pub node: Option<String>,

    /// Key the copies by this storage id instead of the node (a storage shared by nodes).
    #[arg(long, value_name = "ID", help_heading = "Source")]
    pub storage: Option<String>,

    /// Multipart part size (5M to 5G); memory is a few of these per job.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "8M",
        value_parser = values::size,
        help_heading = "Transfer"
    )]
    pub part_size: u64,

    /// Archives uploaded at once (each has its own SSH connection).
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Transfer")]
    pub jobs: usize,

    /// Upper bound on the upload rate, all jobs together, in bytes per second (50M, 800K).
    #[arg(long, value_name = "RATE", value_parser = values::size, help_heading = "Transfer")]
    pub bwlimit: Option<u64>,

    /// Replace an offsite copy whose contents differ (a new version on a versioned bucket).
    #[arg(long, help_heading = "Transfer")]
    pub force: bool,

    #[command(flatten)]
    pub protection: ProtectionArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Copies to bring back: volids (BUCKET:backup/KEY) or urls (s3://BUCKET/KEY), as ls
    /// and push write them, or `backup` records on stdin when none is given.
    #[arg(value_name = "VOLID")]
    pub volids: Vec<String>,

    /// Directory the archives (and their side files) are written into.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "to_node",
        conflicts_with = "to_node"
    )]
    pub to_dir: Option<PathBuf>,

    /// Node whose backup storage (--storage) the archives go back to: the node reached over
    /// SSH (--host) or this machine, or another node of its cluster through it.
    #[arg(long, value_name = "NODE", requires = "storage")]
    pub to_node: Option<String>,

    /// With --to-node: the directory storage the archives are written to.
    #[arg(long, value_name = "ID", requires = "to_node")]
    pub storage: Option<String>,

    /// Replace a file of the same name whose contents differ.
    #[arg(long)]
    pub force: bool,

    /// The age identity file (age-keygen's, mode 600) that decrypts encrypted copies, into
    /// --to-dir or, decrypted here, onto --to-node (--identity stays the SSH key).
    #[arg(long, value_name = "FILE")]
    pub age_identity: Option<PathBuf>,

    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// How push protects what it writes: server-side encryption, Object Lock, age encryption.
#[derive(Args, Debug)]
#[command(next_help_heading = "Protection")]
pub struct ProtectionArgs {
    /// Server-side encryption of every object written.
    #[arg(long, value_name = "ALGORITHM")]
    pub sse: Option<SseArg>,

    /// KMS key id for --sse aws:kms (default: the server's key).
    #[arg(long, value_name = "ID", requires = "sse", hide_short_help = true)]
    pub sse_kms_key_id: Option<String>,

    /// Object Lock retention of each object written, in days (the bucket must have been
    /// created with Object Lock). Offsite prune cannot delete them before.
    #[arg(long, value_name = "N")]
    pub object_lock_days: Option<u32>,

    /// Object Lock mode: governance (lifted by a user allowed to bypass it) or compliance
    /// (by no one, not even the account's root).
    #[arg(
        long,
        value_enum,
        default_value = "governance",
        requires = "object_lock_days",
        hide_short_help = true
    )]
    pub object_lock_mode: LockModeArg,

    /// Encrypt each archive and its side files to this age recipient (age1…, a public key
    /// from age-keygen), as they stream; repeatable. Decrypted by pull --age-identity or by
    /// `age -d -i KEY`.
    #[arg(long, value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,

    /// Encrypt to the recipients of this file (one age1… a line, # comments); repeatable.
    #[arg(long, value_name = "FILE")]
    pub encrypt_to_file: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SseArg {
    #[value(name = "AES256")]
    Aes256,
    #[value(name = "aws:kms")]
    Kms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LockModeArg {
    Governance,
    Compliance,
}

/// `verify`: never writes to the bucket; its own state file only.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Where the copies are: s3://BUCKET/PREFIX.
    #[arg(long, value_name = "URL")]
    pub from: String,

    /// Bytes this run may download for whole reads (8G, 500M); none: free checks only.
    #[arg(long, value_name = "SIZE", value_parser = values::size)]
    pub max_egress: Option<u64>,

    /// Every copy is read whole once in this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub cycle: u32,

    /// Object Lock retention each object must still have, in days.
    #[arg(long, value_name = "N")]
    pub min_lock_days: Option<u32>,

    /// What was read when. Default: $XDG_STATE_HOME/pvedr/verify-BUCKET.json, else
    /// ~/.local/state/pvedr/verify-BUCKET.json.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// The age identity file (mode 600) that decrypts encrypted copies for their reads;
    /// without it they get the free checks only and are reported not read.
    #[arg(long, value_name = "FILE")]
    pub age_identity: Option<PathBuf>,

    /// The time to check against, in Unix seconds (tests, replays). Default: now.
    #[arg(long, value_name = "EPOCH")]
    pub now: Option<i64>,
}
