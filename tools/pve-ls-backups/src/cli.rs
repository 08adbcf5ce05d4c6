use clap::Parser;
use pvedr::cli::OutputArgs;
use pvedr::connect::ListingArgs;
use pvedr::listing::FilterArgs;

const AFTER: &str = concat!(
    "EXAMPLES:
  pve-ls-backups                                   # on the node itself
  pve-ls-backups --host pve1 --all-nodes --format table
  pve-ls-backups --host pve1 --vmid 100 --latest | pve-restore --target-vmid 9100 --dry-run
  pve-ls-backups --dir /mnt/nas/dump --storage nas --timezone Europe/Paris
  pve-ls-backups --host pve1 | jq -r 'select(.protected) | .volid'
  pve-ls-backups --host pve1 | jq -e 'select(.kind == \"listing\") | .complete'   # whole?
  pve-ls-backups --host pve1 --with-guests --with-storage --with-jobs | backup-check

RECORDS:
  One JSON object per line on stdout (logs and warnings go to stderr).
  kind=backup: node, storage, volid, vmid, subtype (qemu|lxc|openvz|unknown), ctime (Unix
    seconds, from the archive name read in the node's local time; the file's ctime for
    non-standard names; the snapshot time for PBS), time (ctime as RFC 3339 UTC), size
    (bytes), format (vma.zst, tar.gz, pbs-vm, ...), notes (first line), protected (bool),
    verification ({state, upid}, PBS), encrypted (PBS), name (guest name, --with-guests),
    path, log, log_status (ok|warning|error|unknown; --dir mode only), timezone (the node's
    IANA zone, or --timezone: what backup-prune reads periods in), unfinished (true on a PBS
    snapshot without a manifest, a backup being written: no size, never --latest).
  kind=guest (--with-guests): node, vmid, type, name, status, template, tags, lock, pool.
  kind=storage (--with-storage): node, storage, type, total, used, avail, used_fraction,
    shared, active (path in --dir mode: the directory's file system).
  kind=job (--with-jobs): id, schedule, storage, vmid, all, exclude, pool, node, enabled,
    prune_backups, mode, next_run, comment.
  kind=backup_failure (--with-failures): node, storage (--dir), vmid, subtype, ctime, time,
    log (the .log path, or the task's UPID), error (the ERROR line). A failed task whose
    log cannot be read is a `problems` entry of the listing record, never read as no failure.
  kind=listing, always last (JSON Lines only): complete (true when every node and storage
    asked for was read), records (how many came before it), problems (what could not be
    read), blind (why backups may be left out: privileges), error (the failure that ended a
    run before anything was listed: that run writes only this record). A stream without it
    was cut short. jq one-liners pick a kind: jq -r 'select(.kind == \"backup\") | .volid'.
  Backups come in Proxmox's order: by storage as listed, then by volid (case-insensitive).
  Table and CSV columns: the fields above in that order, then any others.

",
    "EXIT STATUS:
  0    success
  1    the listing failed (node unreachable, host key refused, Proxmox error, a --node the
       cluster does not have, or no --storage named exists with backup content on the
       nodes: the error names those that do)
  2    usage error (bad flag or value); nothing was run on the node
  3    partial: some nodes or storages could not be listed (see stderr); the others were
  130  interrupted
  Standard output that cannot be written (a full disk) is an error: status 1, with a
  message; a closed one (`| head`) ends the run quietly with status 0."
);

/// List Proxmox VE vzdump backups as JSON Lines.
///
/// Lists the backups of one node, several nodes or the whole cluster, over SSH or on the node
/// itself, with what Proxmox knows of each (size, notes, protection, PBS verification). With
/// --dir it reads a dump directory directly, without Proxmox, and lists exactly what Proxmox
/// would list for it.
#[derive(Parser, Debug)]
#[command(name = "pve-ls-backups", version, after_long_help = AFTER)]
pub struct Cli {
    #[command(flatten)]
    pub listing: ListingArgs,

    #[command(flatten)]
    pub filter: FilterArgs,

    /// Also emit a `guest` record per VM/CT of the cluster, and name each backup's guest.
    #[arg(long, help_heading = "Extra records")]
    pub with_guests: bool,

    /// Also emit a `storage` record per listed storage (space used).
    #[arg(long, help_heading = "Extra records")]
    pub with_storage: bool,

    /// Also emit a `job` record per scheduled backup job.
    #[arg(long, help_heading = "Extra records")]
    pub with_jobs: bool,

    /// Also emit a `backup_failure` record per failed guest backup: from a vzdump log with no
    /// archive (--dir), or from the ERROR lines of failed vzdump tasks (on a node). Failed
    /// runs are always reported on stderr.
    #[arg(long, help_heading = "Extra records")]
    pub with_failures: bool,

    #[command(flatten)]
    pub output: OutputArgs,
}
