use std::time::Duration;

use clap::Parser;
use pvedr::cli::{InputArgs, OutputArgs, values};
use pvedr::connect::ListingArgs;

const AFTER: &str = "EXAMPLES:
  pve-ls-backups --host pve1 --all-nodes --with-guests --with-storage --with-jobs | backup-check
  pve-snapshot ls --host pve1 --label daily | backup-check --max-snapshot-age 26h
  backup-check --host pve1 --all-nodes --nagios                      # Nagios/Icinga
  backup-check --host pve1 --nagios --timeout 25s                    # a 30 s plugin timeout
  backup-check --local --prom /var/lib/node_exporter/textfile/pvedr.prom   # cron on the node
  backup-check --dir /mnt/nas/dump --storage nas --deep --format table   # offline, whole
  tfstate-versions list --env prod --inspect | backup-check
  backup-check --host pve1 --all-nodes --tfstate infra/prod         # Terraform's guests there?

CHECKS:
  freshness    newest usable backup older than --max-age (WARNING) / --max-age-critical
               (CRITICAL); with a job covering the guest: its schedule's longest interval
               plus --grace (WARNING), twice the interval plus --grace (CRITICAL)
  time         a backup dated more than 5 minutes in the future, or impossibly (before
               1970, out of range) (CRITICAL); it never counts as fresh
  count        fewer usable backups than --min-count
  retention    more backups than the job's prune-backups keeps (pruning not running), or
               fewer than it should keep given the schedule (needs job records)
  size         newest backup of 0 bytes (CRITICAL), or below --shrink-warn of the previous
               one on the same storage (WARNING), or, against the median of the previous
               --size-window (7) backups of the same storage and format, at least
               --size-grow (3) times it (the backup tripled) or at most --size-shrink
               (1/3) of it (suspiciously small) (WARNING; value: its size, threshold: the
               limit crossed, median, backups). Fewer than 3 previous: no median verdict. PBS
               sizes are logical (the data backed up): compared with PBS snapshots only
  last-run     a failed vzdump run (log without archive) newer than the newest backup; a
               job whose last task did not end OK/WARNINGS (CRITICAL)
  verification PBS verification failed (CRITICAL for the newest snapshot)
  coverage     a guest with no backup (CRITICAL) or in no enabled job (WARNING; Proxmox's
               own list counts disabled jobs) (needs guest records)
  space        storage used at --storage-warn / --storage-crit percent
  integrity    --deep: the archive is whole (decompresses, checksums, VMA header and
               extents, LXC tar with pct.conf, sha256= in the notes)
  offsite      an offsite copy that cannot be restored (CRITICAL): an offsite_damaged
               record of backup-sync ls (its object gone or not of its manifest's size)
  versioning, state, lineage   Terraform state versions (tfstate_version records)
  drill        restore drills (`restore` records of pve-restore --test with drill or test
               true, on the input or in --drill-history): a guest whose last drill failed,
               was refused or interrupted is CRITICAL; never drilled, or the last successful
               drill older than --max-drill-age, is WARNING. Checked once any drill record,
               --drill-history or --max-drill-age is given
  orphan       backups of a guest the guest records no longer hold (it was deleted): status
               `orphan`, never raising the exit code or an alert; its other checks are not
               made (needs guest records; UNKNOWN when the listing may leave guests out)
  policy       Proxmox tags on the guest: pvedr-nobackup (no backup and no drill expected:
               coverage, freshness, count, size, last-run, retention and drill stand aside),
               pvedr-nodrill (no drill expected), pvedr-rpo-<DURATION> (e.g. pvedr-rpo-7d:
               freshness WARNING past it, CRITICAL past twice it, instead of a job's schedule
               or --max-age); a pvedr-rpo- tag without a duration is UNKNOWN

  terraform    --tfstate: a guest a state declares (bpg proxmox_virtual_environment_vm,
               _container, _vm2, _cloned_vm; Telmate proxmox_vm_qemu, proxmox_lxc; every
               count/for_each instance; data sources declare nothing) that is not on the
               cluster (CRITICAL, value missing); on it, coverage and freshness judge its
               backups (value declared). A guest on the cluster that no state declares:
               value unmanaged, status OK (it never pages). A state that cannot be read, is
               not JSON, larger than 64 MiB or not format version 4 is UNKNOWN
               (component tfstate/<source>), and then no guest is called unmanaged. Needs
               guest records
  snapshots    newest snapshot of each label per guest (snapshot records of pve-snapshot
               ls) older than --max-snapshot-age (WARNING); component snapshot/<vmid>/<label>.
               Snapshots are not backups: they never count for freshness, count or coverage
  source       UNKNOWN when the checks cannot be trusted to have seen everything: no
               records on the input, a `listing` record that says a node or storage could
               not be read (or the listing failed), listing records without the `listing`
               record that ends them (cut short: a killed process, head, a jq filter), or,
               with --local/--host, a node or storage that did not answer
  A damaged archive does not count for freshness or count. Checks whose records are
  missing from the input are skipped, not UNKNOWN.

RECORDS:
  Reads records (FILE or standard input), or gathers them itself with --local, --host or
  --dir (the same flags as pve-ls-backups); one source of these (two are a usage error). Writes one `check` record per finding:
  component (guest/100, storage/pve1/local, job/<id>, tfstate/prod), check, status
  (ok|warning|critical|unknown|orphan), message, value, threshold; then one `summary`
  record (counts by status, exit_code, duration_s).
  --format table prints one row per component: component, status, last backup, size, notes.
  --nagios prints one plugin status line with perfdata instead of records, also when the
  run fails (BACKUP UNKNOWN - <why>). It ends within --timeout (default 50s): each command's
  bound is cut to fit, so a storage that does not answer is named as unread (and guests
  without backups are then UNKNOWN, not CRITICAL); if the bound passes anyway, the line
  is BACKUP UNKNOWN - no answer within 50s (--timeout) while <what it waited for>.
  --prom FILE writes Prometheus textfile-collector metrics atomically:
  pvedr_backup_last_timestamp_seconds, pvedr_backup_last_size_bytes, pvedr_backup_archives,
  pvedr_backup_guest_status (per guest), pvedr_backup_storage_used_ratio (per storage),
  pvedr_backup_check_status (per check), pvedr_restore_drill_last_success_timestamp_seconds,
  pvedr_restore_drill_duration_seconds, pvedr_restore_throughput_bytes_per_second,
  pvedr_rpo_seconds, pvedr_orphan_backups (per guest, label guest; orphans are in no
  other series), pvedr_backup_check_up (0 when a source could not
  be read), pvedr_backup_check_last_run_timestamp_seconds,
  pvedr_backup_check_duration_seconds. A run that cannot check at all rewrites the file
  with only the last three (up 0), never leaving an earlier run's verdicts in place.
  Alert rules and a dashboard are in contrib/.

EXIT STATUS:
  Nagios plugin convention; the worst status wins (CRITICAL > WARNING > UNKNOWN > OK;
  an orphan counts as OK):
  0    OK
  1    WARNING
  2    CRITICAL
  3    UNKNOWN: could not check (node unreachable, a storage that did not answer within
       --timeout, bad input, interrupted by SIGINT or SIGTERM, standard output not written,
       e.g. a full disk), and every usage error (two sources of records among --local,
       --host, --dir and FILE, too)
  Standard output that cannot be written (a full disk) is an error: status 3, with a
  message; a closed one (`| head`) ends the run quietly with status 0.";

/// Check that every backup exists, is fresh, is whole and can be restored.
///
/// Runs the checks cron, Nagios/Icinga and Prometheus need every night over backup listings:
/// freshness per guest from the archive's own time, count, retention, size, failed runs,
/// coverage, storage space, Terraform state versions, the guests Terraform declares and,
/// with --deep, archive integrity.
#[derive(Parser, Debug)]
// The S3 flags matter only with an s3:// --tfstate: in --help, not in -h.
#[command(
    name = "backup-check",
    version,
    after_long_help = AFTER,
    mut_arg("endpoint", |a| a.hide_short_help(true)),
    mut_arg("region", |a| a.hide_short_help(true))
)]
pub struct Cli {
    #[command(flatten)]
    pub input: InputArgs,

    /// Gather the records on this machine (a Proxmox VE node) instead of reading them.
    #[arg(long, help_heading = "Selection")]
    pub local: bool,

    #[command(flatten)]
    pub listing: ListingArgs,

    /// Newest backup older than this is WARNING (30m, 26h, 2d, …).
    #[arg(
        long,
        value_parser = values::duration,
        value_name = "DURATION",
        default_value = "26h",
        help_heading = "Thresholds"
    )]
    pub max_age: Duration,

    /// Newest backup older than this is CRITICAL.
    #[arg(
        long,
        value_parser = values::duration,
        value_name = "DURATION",
        default_value = "48h",
        help_heading = "Thresholds"
    )]
    pub max_age_critical: Duration,

    /// Margin added to a job's schedule interval.
    #[arg(
        long,
        value_parser = values::duration,
        value_name = "DURATION",
        default_value = "2h",
        help_heading = "Thresholds",
        hide_short_help = true
    )]
    pub grace: Duration,

    /// Fewer usable backups per guest is WARNING.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        help_heading = "Thresholds",
        hide_short_help = true
    )]
    pub min_count: usize,

    /// Newest backup smaller than this share of the previous one (same storage, not PBS) is
    /// WARNING (percent). The --size-* rule judges against the median of several instead.
    #[arg(
        long,
        value_parser = values::percent,
        value_name = "PERCENT",
        default_value = "50",
        help_heading = "Thresholds",
        hide_short_help = true
    )]
    pub shrink_warn: f64,

    /// The newest backup is judged against the median of the guest's previous N backups
    /// of the same storage and format (at least 3 of them, else no verdict); 0: off.
    #[arg(
        long,
        value_name = "N",
        default_value = "7",
        value_parser = crate::size_anomaly::window,
        help_heading = "Thresholds",
        hide_short_help = true
    )]
    pub size_window: usize,

    /// Newest backup at least this many times the median is WARNING (the backup tripled).
    #[arg(
        long,
        value_parser = crate::size_anomaly::grow,
        value_name = "FACTOR",
        default_value = "3",
        help_heading = "Thresholds",
        hide_short_help = true
    )]
    pub size_grow: f64,

    /// Newest backup at most this share of the median is WARNING (suspiciously small):
    /// a fraction or a decimal (1/4, 0.25).
    #[arg(
        long,
        value_parser = crate::size_anomaly::shrink,
        value_name = "FACTOR",
        default_value = "1/3",
        help_heading = "Thresholds",
        hide_short_help = true
    )]
    pub size_shrink: f64,

    /// Storage used at or above this is WARNING (percent; `80%` is accepted too).
    #[arg(
        long,
        value_parser = values::percent,
        value_name = "PERCENT",
        default_value = "80",
        help_heading = "Thresholds"
    )]
    pub storage_warn: f64,

    /// Storage used at or above this is CRITICAL (percent).
    #[arg(
        long,
        value_parser = values::percent,
        value_name = "PERCENT",
        default_value = "90",
        help_heading = "Thresholds"
    )]
    pub storage_crit: f64,

    /// Newest snapshot of a label (pve-snapshot ls records) older than this is WARNING.
    /// Snapshots are checked on their own: they never count as backups.
    #[arg(
        long,
        value_parser = values::duration,
        value_name = "DURATION",
        default_value = "26h",
        help_heading = "Thresholds",
        hide_short_help = true
    )]
    pub max_snapshot_age: Duration,

    /// A guest's last successful restore drill older than this is WARNING; a guest whose
    /// last drill failed is CRITICAL. Default 35d once a drill record or --drill-history
    /// is given; without either, drills are not checked.
    #[arg(
        long,
        value_parser = values::duration,
        value_name = "DURATION",
        help_heading = "Thresholds",
        hide_short_help = true
    )]
    pub max_drill_age: Option<Duration>,

    /// Also read restore drill records (pve-restore --test, JSON Lines) from FILE.
    #[arg(long, value_name = "FILE", help_heading = "Selection")]
    pub drill_history: Option<std::path::PathBuf>,

    /// A Terraform state whose guests must be on the cluster and backed up (repeatable): a
    /// state file, s3://BUCKET/KEY, or a Terraform directory (the state its backend "s3"
    /// block names, else its terraform.tfstate). Guests in no state are reported unmanaged.
    #[arg(long, value_name = "SOURCE", help_heading = "Selection")]
    pub tfstate: Vec<String>,

    #[command(flatten)]
    pub s3: pvedr::s3::S3Conn,

    /// Check that every archive is whole (see CHECKS). Over SSH the node's compressors test
    /// the archives; with --dir (or records with a path) pvedr reads them itself.
    #[arg(long, help_heading = "Integrity")]
    pub deep: bool,

    /// Archives checked in parallel with --deep. Default: the number of CPUs.
    #[arg(long, value_name = "N", help_heading = "Integrity")]
    pub jobs: Option<usize>,

    /// Print one Nagios plugin status line with perfdata instead of records.
    #[arg(long, help_heading = "Output")]
    pub nagios: bool,

    /// End the whole run within this (30s, 2m): UNKNOWN, naming what did not answer (a hung
    /// storage), instead of being killed by Nagios at its 60 s. Default with --nagios: 50s;
    /// without --nagios, no bound but each command's --command-timeout.
    #[arg(long, value_parser = values::duration, value_name = "DURATION", help_heading = "Output")]
    pub timeout: Option<Duration>,

    /// Also write Prometheus textfile-collector metrics to FILE (atomically).
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub prom: Option<std::path::PathBuf>,

    /// Check as if it were this Unix time (for tests and replays).
    #[arg(long, value_name = "EPOCH", hide = true)]
    pub now: Option<i64>,

    #[command(flatten)]
    pub output: OutputArgs,
}
