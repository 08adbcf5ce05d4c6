use clap::Parser;
use pvedr::cli::{InputArgs, OutputArgs, WriteArgs};
use pvedr::connect::ConnectArgs;

const AFTER: &str = "EXAMPLES:
  pve-ls-backups --host pve1 | backup-prune --keep-daily 7 --keep-weekly 4 --format table
  pve-ls-backups --host pve1 --storage local | backup-prune --prune-backups keep-last=3
  pve-ls-backups --host pve1 --with-jobs | backup-prune --from-job \\
      | jq 'select(.mark==\"remove\")'
  pve-ls-backups --host pve1 --storage local --vmid 100 \\
      | backup-prune --keep-daily 7 --apply --host pve1
  # from cron: each job's own policy on its own storage, no question asked
  pve-ls-backups --host pve1 --with-jobs | backup-prune --from-job --apply --yes --host pve1
  backup-sync ls --from s3://offsite/pve | backup-prune --keep-daily 30 --apply --yes
  backup-prune --keep-monthly 12 --timezone Europe/Paris backups.jsonl

RECORDS:
  Reads records (JSON Lines) from FILEs or standard input. Every record is written back in
  input order; `backup` records gain:
    mark    keep | remove | protected | renamed (the words of `pvesm prune-backups`)
    reason  the rule that kept it: keep-last, keep-hourly, keep-daily, keep-weekly,
            keep-monthly, keep-yearly, keep-all; no-job / no-policy with --from-job when
            no job (or no job retention) covers the guest; unfinished; null otherwise
  Backups are grouped as Proxmox groups them on each storage: by node and storage, then by
  guest type and VMID. Non-standard names are `renamed` and never removed; protected
  backups neither use a slot nor cover a period; an unfinished PBS snapshot (a backup being
  written) is kept with reason `unfinished`, takes no slot and is never removed. Periods use
  the node's local time with ISO weeks: --timezone, else the `timezone` each record carries
  (pve-ls-backups writes its node's), else the zone of the node it talks to, else TZ; so a
  preview off the node marks what --apply deletes.
  With --apply, a `step` record follows for each deletion: step=delete, target=<volid>,
  status changed | skipped | failed, message, duration_s; then a `summary` record: tool,
  counts (changed, skipped, failed), exit_code, duration_s.
  --format table prints what `pvesm prune-backups --dry-run` prints.

SAFETY:
  Without --apply nothing is deleted. With --apply, the backups marked remove are shown
  first (on stderr, as `pvesm prune-backups` lists them); --dry-run stops there; on a
  terminal it asks; without one (cron, timers, Ansible) it needs --yes, else it stops with
  exit 2 before anything is deleted. Since this release --apply from cron needs --yes.
  One policy for every storage of a listing would prune PBS and NFS alike: scope the
  listing (--storage) or use each job's own retention (--from-job, which needs the `job`
  records of pve-ls-backups --with-jobs). Then the storages are listed again: a
  backup that is gone, now protected, or in a group that changed since the input was read
  (a backup added or removed) is skipped (--force deletes the unchanged ones anyway). Only
  backups of the input marked `remove` are deleted, one at a time, through
  `pvesh delete /nodes/<node>/storage/<storage>/content/<volid>`; a failure does not stop
  the others. Afterwards the storages are listed once more to prove each deletion.
  Offsite copies (records of `backup-sync ls`, with url=s3://BUCKET/KEY) are deleted on S3,
  not through a node: every version of the archive, of its .notes and .log (named from the
  archive's own name, as Proxmox names them; never what its manifest lists) and, last, of
  its manifest. A key that a copy not marked remove owns is never deleted. A copy under S3
  Object Lock is skipped with the date it frees, and the others go on. S3 credentials:
  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials; S3 timeouts: see the S3
  flags (defaults 10s to connect, 1m for an answer, 5m a request).

EXIT STATUS:
  0    success (with --apply: every deletion done or skipped as unsafe)
  1    failed (bad input records, node unreachable, every deletion failed)
  2    usage error (bad flag, bad policy string, --from-job without `job` records), or
       --apply without --yes and without a terminal to ask on; nothing was done
  3    partial: some deletions failed, the others were done
  130  interrupted
  Standard output that cannot be written (a full disk) is an error: status 1, with a
  message; a closed one (`| head`) ends the run quietly with status 0.";

/// Mark and delete vzdump backups with Proxmox's own retention rules.
///
/// Reads `backup` records (from pve-ls-backups), marks each with what Proxmox's
/// `prune-backups` would do — keep, remove, protected, renamed — and why, and with --apply
/// deletes the ones marked remove through the node.
#[derive(Parser, Debug)]
#[command(name = "backup-prune", version, after_long_help = AFTER)]
pub struct Cli {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub keep: KeepFlags,

    /// Keep everything.
    #[arg(long, help_heading = "Retention")]
    pub keep_all: bool,

    /// The policy as Proxmox writes it: "keep-daily=7,keep-weekly=4".
    #[arg(long, value_name = "STRING", help_heading = "Retention",
          conflicts_with_all = ["keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_all"])]
    pub prune_backups: Option<String>,

    /// Use the retention of the backup job covering each guest, from the `job` records in the
    /// input (pve-ls-backups --with-jobs).
    #[arg(long, help_heading = "Retention",
          conflicts_with_all = ["prune_backups", "keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly", "keep_all"])]
    pub from_job: bool,

    /// The node's time zone (IANA name) for periods. Default: the `timezone` of the records
    /// (their node's), else the zone of the node it talks to (--host, --tfvars, --apply),
    /// else TZ, else the system zone.
    #[arg(long, value_name = "NAME", help_heading = "Retention")]
    pub timezone: Option<String>,

    /// Delete the backups marked remove, through the node (see SAFETY).
    #[arg(long, help_heading = "Apply")]
    pub apply: bool,

    /// With --apply: delete even in groups that changed since the input was listed.
    #[arg(long, requires = "apply", help_heading = "Apply")]
    pub force: bool,

    /// Node for records that carry none (listings made with --dir).
    #[arg(long, value_name = "NODE", help_heading = "Apply")]
    pub node: Option<String>,

    /// With --apply: --dry-run shows what would be deleted and deletes nothing; --yes
    /// deletes without asking (required without a terminal: cron, timers, Ansible).
    #[command(flatten)]
    pub write: WriteArgs,

    /// Where offsite copies (records with `url` = s3://…, from backup-sync ls) are deleted.
    #[command(flatten)]
    pub s3: pvedr::s3::S3Conn,

    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Proxmox's prune-backups keys with a count, one flag each (`--keep-last N` …): the flag
/// and its help, in Proxmox's order.
const KEEP: [(&str, &str); 6] = [
    ("keep-last", "Keep the N newest backups"),
    (
        "keep-hourly",
        "Keep the newest backup of each of the last N hours that have one",
    ),
    (
        "keep-daily",
        "Keep the newest backup of each of the last N days that have one",
    ),
    (
        "keep-weekly",
        "Keep the newest backup of each of the last N ISO weeks that have one",
    ),
    (
        "keep-monthly",
        "Keep the newest backup of each of the last N months that have one",
    ),
    (
        "keep-yearly",
        "Keep the newest backup of each of the last N years that have one",
    ),
];

/// `--keep-last` … `--keep-yearly`, in the order of [`KEEP`]; built from that table rather
/// than six fields declared alike.
#[derive(Debug, Clone, Default)]
pub struct KeepFlags(pub [Option<u64>; 6]);

/// The flags' ids, as clap derives them from field names: `conflicts_with_all` names these.
const KEEP_IDS: [&str; 6] = [
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
];

impl clap::FromArgMatches for KeepFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Ok(KeepFlags(KEEP_IDS.map(|id| m.get_one::<u64>(id).copied())))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for KeepFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        KEEP_IDS
            .iter()
            .zip(KEEP)
            .fold(cmd, |cmd, (id, (flag, help))| {
                cmd.arg(
                    clap::Arg::new(id)
                        .long(flag)
                        .value_name("N")
                        .value_parser(clap::value_parser!(u64))
                        .action(clap::ArgAction::Set)
                        .help(help)
                        .help_heading("Retention"),
                )
            })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}
