use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use pvedr::cli::{OutputArgs, WriteArgs, values};
use pvedr::connect::ConnectArgs;
use pvedr::listing::{FilterArgs, GuestArgs};

const AFTER: &str = concat!(
    "SNAPSHOTS ARE NOT BACKUPS:
  A snapshot lives on the guest's own storage: it is gone with the disk, the storage or the
  node, and it is never counted by backup-check toward backup freshness. It is the fast way
  back from a bad upgrade (pve-restore --snapshot), next to real backups (vzdump).

EXAMPLES:
  pve-snapshot create --host pve1 --all --exclude 9000 --label daily --yes
  pve-snapshot create --host pve1 --tag prod --vmstate --wait-lock 10m --dry-run
  pve-snapshot prune --host pve1 --all --label daily --keep 7 --dry-run
  pve-snapshot ls --host pve1 --label daily | jq -r 'select(.vmid==101) | .name'
  pve-snapshot ls --host pve1 --label daily --max-age 26h        # Nagios: 0 OK, 1 WARNING
  pve-snapshot ls --host pve1 | backup-check --max-snapshot-age 26h
  pve-snapshot ls --host pve1 --vmid 101 --label daily --latest | jq -r .name |
    xargs -I{} pve-restore --host pve1 --vmid 101 --snapshot {} --force --safety-storage nas

RECORDS:
  One JSON object per line on stdout (logs and warnings go to stderr).
  kind=snapshot: node, vmid, type (qemu|lxc), name, label (of a snapshot pve-snapshot made:
    name <label>-<YYYYMMDD-HHMMSS in the node's local time> and a description beginning
    'pve-snapshot'; absent for every other snapshot), snaptime (Unix seconds), time
    (snaptime as RFC 3339 UTC), parent, vmstate (VMs: RAM saved), description, current (true
    on the snapshot the guest's current state grew from).
    create adds status (created|planned|refused|failed), message (Proxmox's words when it
    refused) and way_back (the command that removes the new snapshot, to run on its node).
    prune adds mark (keep|remove), reason (keep N, beyond keep N, incomplete, not made by
    pve-snapshot) and, for removals, status (removed|planned|refused|failed) and message.
  kind=summary (create, prune): counts by status, exit_code, duration_s.
  Table and CSV columns: node, vmid, type, name, label, time, parent, vmstate,
  description, mark, reason, status, message, then any others.

",
    "EXIT STATUS:
  0    success
  1    nothing succeeded (every guest refused or failed; node unreachable; standard
       output could not be written, e.g. a full disk)
  2    usage error (bad flag or value); nothing was run on the node; or create/prune
       without --yes and without a terminal to ask on: nothing was changed
  3    partial: some guests were refused or failed (see their records)
  130  interrupted: the running command finished, the records were written
  ls --max-age follows the Nagios plugin convention instead: 0 OK, 1 WARNING (a guest's
  newest snapshot is older than --max-age, or it has none), 3 UNKNOWN (could not list;
  every usage error too; a guest or step that did not answer within --timeout, 50s by
  default, too).
  Standard output that cannot be written (a full disk) is an error: status 1 (3 with
  --max-age), with a message; a closed one (`| head`) ends the run quietly with status 0."
);

/// Take, rotate and list Proxmox VE guest snapshots as JSON Lines.
///
/// Snapshots every selected guest on the node that owns it, named by a label and the node's
/// local time, removes the oldest of a label beyond --keep, and lists snapshots as records
/// for jq and backup-check. Snapshots are not backups: see below.
#[derive(Parser, Debug)]
#[command(name = "pve-snapshot", version, after_long_help = AFTER)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Take a snapshot `<label>-<YYYYMMDD-HHMMSS>` of every selected guest.
    Create(CreateArgs),
    /// Remove the oldest snapshots of a label beyond --keep per guest.
    Prune(PruneArgs),
    /// List snapshots as `snapshot` records.
    Ls(LsArgs),
}

/// What every subcommand takes, flattened as the other tools flatten theirs: the
/// connection and the guests.
#[derive(Args, Debug)]
pub struct Shared {
    #[command(flatten)]
    pub connect: ConnectArgs,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub guests: GuestArgs,
}

/// What create and prune take: the guests they change (the time filters are for ls, so
/// hidden here) and the label, the first part of the names pve-snapshot gives.
#[derive(Args, Debug)]
#[command(
    mut_arg("since", |a| a.hide(true)),
    mut_arg("until", |a| a.hide(true)),
    mut_arg("latest", |a| a.hide(true))
)]
pub struct Changing {
    #[command(flatten)]
    pub shared: Shared,

    /// Label of the snapshots (`daily`, `hourly`, `pre-upgrade`): a letter, then letters,
    /// digits, `-` or `_`, at most 24 characters.
    #[arg(
        long,
        value_name = "LABEL",
        default_value = "daily",
        help_heading = "Snapshots"
    )]
    pub label: String,
}

/// How create and prune are confirmed (`--dry-run`, `--yes`) and what they write.
#[derive(Args, Debug)]
pub struct Changes {
    #[command(flatten)]
    pub write: WriteArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub on: Changing,

    /// Save the RAM of running VMs too (Proxmox saves none for a stopped VM; containers
    /// have no such state).
    #[arg(long, help_heading = "Snapshots")]
    pub vmstate: bool,

    /// Wait this long for a guest's lock (backup, migrate, …) to go away before its
    /// snapshot (30s, 10m). Default: a locked guest is reported at once.
    #[arg(long, value_name = "DURATION", value_parser = values::duration, help_heading = "Snapshots")]
    pub wait_lock: Option<Duration>,

    #[command(flatten)]
    pub changes: Changes,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub on: Changing,

    /// Snapshots of the label to keep per guest, the newest (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Snapshots")]
    pub keep: u32,

    /// Wait this long for a guest's lock to go away before removing its snapshots.
    #[arg(long, value_name = "DURATION", value_parser = values::duration, help_heading = "Snapshots")]
    pub wait_lock: Option<Duration>,

    #[command(flatten)]
    pub changes: Changes,
}

#[derive(Args, Debug)]
#[command(
    mut_arg("since", |a| a.help("Only snapshots taken at or after this time (YYYY-MM-DD, or RFC 3339)")),
    mut_arg("until", |a| a.help("Only snapshots taken at or before this time (a date means the end of that day)")),
    mut_arg("latest", |a| a.help("Only the newest snapshot of each label per guest (manual ones as one group)"))
)]
pub struct LsArgs {
    #[command(flatten)]
    pub shared: Shared,

    /// `--dry-run`, `--yes`: accepted (the vocabulary of every tool), ignored here.
    #[command(flatten)]
    pub no_change: pvedr::cli::NoChangeArgs,

    /// Only the snapshots pve-snapshot made with this label.
    #[arg(long, value_name = "LABEL", help_heading = "Snapshots")]
    pub label: Option<String>,

    /// Nagios check: WARNING when a selected guest's newest pve-snapshot snapshot (of
    /// --label) is older than this (26h, 7d), or when it has none. Templates are skipped.
    #[arg(long, value_name = "DURATION", value_parser = values::duration, help_heading = "Snapshots")]
    pub max_age: Option<Duration>,

    /// End the whole run within this (30s, 2m): UNKNOWN (3), naming the guest or the step
    /// that did not answer, before a monitoring system kills the plugin. Default with
    /// --max-age: 50s (Nagios allows 60 s); otherwise each command's --command-timeout.
    #[arg(long, value_name = "DURATION", value_parser = values::bound, help_heading = "Snapshots")]
    pub timeout: Option<Duration>,

    #[command(flatten)]
    pub output: OutputArgs,
}
