use std::time::Duration;

use clap::Parser;
use pvedr::cli::{InputArgs, OutputArgs, WriteArgs, values};
use pvedr::connect::ConnectArgs;

const AFTER: &str = "EXAMPLES:
  pve-ls-backups --host pve1 --vmid 100 --latest \\
      | pve-restore --host pve1 --target-vmid 9100 --dry-run
  pve-restore --host pve1 --volid local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst \\
      --force --yes --start --probe agent
  # overwrite 101 with that day's backup
  pve-restore --host pve1 --vmid 101 --date 2024-01-14 --force --yes
  # restore drill: scratch VMID, links down, agent, destroy
  pve-restore --host pve1 --vmid 100 --test --yes
  # the timer's drill: the guest drilled longest ago, recorded as evidence
  pve-restore --host pve1 --test --sample 1 --all --yes \\
      --drill-history /var/lib/pvedr/drill-history.jsonl
  pve-restore --host pve1 --vmid 120 --snapshot before-upgrade --force --yes
  # the node was reinstalled with other storage and bridge names
  pve-restore --host pve1 --volid local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst \\
      --target-storage local-lvm:nvme,nas:bulk --target-bridge vmbr1:vmbr9 --yes
  # Prometheus, Grafana, Alertmanager health
  pve-restore --host pve1 --vmid 130 --force --yes --probe monitoring:10.0.0.30
  # straight from the offsite copy: streamed from S3, no archive on the node
  backup-sync --endpoint https://s3.example:9000 ls --from offsite \\
      | jq -c 'select(.vmid == 100)' | jq -c -s 'max_by(.ctime)' \\
      | pve-restore --host new1 --endpoint https://s3.example:9000 --yes
  # a whole site, newest copy per guest, planned first, then in two lanes
  backup-sync --endpoint https://s3.example:9000 ls --from offsite \\
      | jq -cs 'map(select(.vmid)) | group_by(.vmid) | map(max_by(.ctime))[]' > site.jsonl
  pve-restore --host new1 --endpoint https://s3.example:9000 --all --dry-run \\
      --target-storage local-lvm:nvme --rto-target 4h < site.jsonl
  pve-restore --host new1 --endpoint https://s3.example:9000 --all --yes --jobs 2 \\
      --target-storage local-lvm:nvme --rto-target 4h < site.jsonl

RECORDS:
  Reads `backup` records (pve-ls-backups) from FILE or standard input unless --volid or --vmid
  names the backup; several records need --all. An offsite record (backup-sync ls: url
  s3://BUCKET/KEY, sha256, size) is restored straight from S3 on --node (or the node
  reached): ranged GETs, decompressed here (zstd, gzip; lzo and bz2 refused), into
  `qmrestore - N` or `pct restore N - --rootfs …` over SSH (over the API: refused), no
  archive written on the node; a container's mount points and unprivileged are read from
  the archive's head. Its check step is a HEAD (object there, of its manifest's size); the
  sha256 is checked at the end of the stream: a mismatch, a cut or a lost S3 server fails
  the restore, removes the guest just restored (remove-leftover) or, for an overwrite
  (needs --safety-storage), rolls back to the safety point. Its record carries offsite
  ({url, sha256, bytes}). Writes one `restore` record per guest:
  vmid, target_vmid, volid, node, dry_run, status (planned | restored | verified | failed |
  rolled-back | refused | interrupted), steps (each: step, target, status planned|ok|changed|skipped|failed,
  message (why, or what happened), duration_s, command), safety_point ({volid, storage} of the
  vzdump taken before overwriting), verify ([{probe, status, message, attempts}]),
  duration_s, error, way_back (the command that undoes the run), started (RFC 3339 UTC,
  when the guest's restore began), drill (true for --test), size (bytes of the archive,
  when known); for an overwrite also
  deleted_snapshots ([names]), and erased_volumes (a container) or detached_volumes (a VM)
  ([{key, volume}]); after a failed restore to a new VMID, leftover (removed | kept: the
  config qmrestore leaves behind); warnings (the WARN: lines of a restore task that ended
  WARNINGS: N); over an API token dropped_lxc_keys (raw lxc.* lines of a container backup
  such a restore drops: only root@pam restores them); with maps, disks ([{key,
  source_storage, target_storage, size}]), nets ([{key, source_bridge, target_bridge}])
  and dropped ([hostpciN/usbN keys], with --drop-passthrough); for --snapshot, snapshot (the name) and, once rolled
  back, running (true | false: a rollback stops the guest; one that ran is started again,
  a stopped one stays stopped and the rollback step's message says how to start it); in a
  site, predicted_s (seconds), predicted_from (history | history-site | probe), order (its
  startup order; absent: none), lane and rpo_s (the copy's age, seconds); then a
  `summary`, for a site with predicted_rto_s, rpo_s (the oldest copy's age), rto_target_s
  and, once restored, rto_s (wall clock), prediction_error_pct and, when
  --stop-on-failure held guests back, stopped (which guest failed, how many were not
  started).

SITE:
  Several records (--all), not drills, are a site: one plan for all of them before any
  change, read-only. Order: Proxmox's boot order (pve-manager startall), each archive's own
  config's startup order ascending, guests without one after, ties by VMID; a guest starts
  only once every guest of a lower order has finished. Space: every guest's disks (sizes
  from the archive's config) onto the storages they go to (--target-storage, --storage, or
  their own), first fit in that order: the guests that do not fit are named in one
  refusal, exit 2, nothing done (a thin pool's overcommit is a warning; an overwrite is not
  counted; a VM mapped onto several storages needs room for all its disks on one of
  them, which qmrestore fills before the others are moved). In lanes a guest whose disks,
  next to what the others of its wave hold staged at the same time, would overfill a
  storage waits for them (the plan says so; restored in series, not refused).
  Duration per guest: its last restore in --history (or --drill-history) scaled to the
  archive's size, without the steps this run does not take (a drill's isolate, probe,
  cleanup; the archive test, which a streamed restore replaces by a HEAD), else the
  history's bytes per second, else for an offsite record a ranged GET of 8 MiB of its S3
  copy and 8 MiB through the node's connection (the slower rate); the plan says which.
  The RTO is the makespan of the --jobs lanes, the RPO the oldest copy's age. Each lane
  has its own connection; Ctrl-C lets every lane finish its guest, each lane with a step
  running saying at once which and how, on its own line. A guest not restored does not
  stop the site by default (Proxmox's startall goes on past a guest that fails to start);
  with --stop-on-failure the guests running in other lanes finish and no other guest
  starts, in one lane not even the rest of its order: each guest held back is recorded
  `refused`, naming it.
  Progress goes to stderr: the plan, each changing step as it starts (`[7/9] restore 100
  (started 12:03:04)`), every 30 s while it runs (`still running, 4m30s`), and how it
  ended. After an overwrite that stopped the guest and did not start it, how to start it
  (`qm start N` / `pct start N`, on its node). With --jobs above 1 every line of a lane
  names it and its guest (`pve-restore: [lane 2 VM 300] [5/9] restore 300 …`), each line
  written whole, so the lanes' interleaved lines stay readable.

SAFETY:
  Every run builds the plan first and prints it; --dry-run stops there and runs only
  read-only commands (the archive test among them). A plan that changes the node asks on the
  terminal; without one it needs --yes (else exit 2, nothing done). Overwriting an existing
  guest (--target-vmid equal to the backup's VMID counts), or rolling it back to a snapshot,
  needs --force (else exit 1; a --dry-run shows the whole plan first, then says so); another
  --target-vmid must be free cluster-wide. A --snapshot the guest does not have is refused
  first, naming the ones it has. Before anything changes the archive is tested on the
  node (zstd -t, gzip -t, lzop -t, vma verify). Before overwriting: the guest's lock is
  checked (--wait-lock), and so is the node's vzdump lock (no vzdump task may be running
  there: the safety point would wait behind it for up to three hours with the guest down);
  a guest HA is asked to keep started is refused (the message gives the ha-manager
  commands to stop it and to set it back after); a running guest is stopped, and a safety point is made with vzdump (--prune-backups
  keep-all=1, so no retention deletes old archives; --lockwait 1, so it never waits long
  for the node's vzdump lock). An overwrite deletes every snapshot of the guest (named in
  the plan and the record). A container's volumes that its backup does not hold (mount
  points without backup=1, unusedN) are erased by the overwrite: it is refused unless
  --erase-unbacked-volumes; a VM's backup=0 disks come back detached as unusedN. The restore uses the
  restore command's own --force (never destroy --purge, which drops the guest from backup
  jobs). If the restore or the verification fails, the safety point is restored
  (--no-rollback keeps the failed state); a failure before anything was overwritten starts a
  guest the run stopped again; a lost connection touches nothing (the way back says how). One
  restore per target VMID at a time.
  With --target-storage/--target-bridge/--drop-passthrough (a new VMID only) the backup's
  own config is read and every mapped storage (enabled and active on the node, content
  images or rootdir, free space for its disks; a thin pool's overcommit is a warning),
  bridge or SDN vnet, and host device is checked before any change: all mismatches in one
  refusal, exit 2, nothing done; a VM's CPU type or pinned machine version the node does not
  offer is warned about. Without maps a restore to a new VMID is checked the same way
  (disks where the restore puts them, NICs on their own bridges).

EXIT STATUS:
  0    success (restored, verified when asked)
  1    failed or refused (the record says which steps ran and the way back)
  2    usage error, a map the target node does not fit, or a change without --yes and
       without a terminal; nothing was done (among several records a guest the maps
       cannot place is refused on its own, the others go on: 1 or 3)
  3    partial: with --all, some guests restored and some failed
  4    a site's RTO exceeds --rto-target: the plan's predicted one (also with --dry-run) or
       the measured one; nothing failed
  130  interrupted (Ctrl-C or SIGTERM): the running step is finished (over the API the wait
       for its task ends and the task goes on: nothing is rolled back), nothing further is
       started, an overwritten guest is put back from the safety point, a stopped one
       started again, a drill's scratch guest destroyed; the first Ctrl-C is answered at
       once with what will happen (`finishing the restore, then restoring the safety
       point …`), the last message says what did; a second Ctrl-C stops at once
  Standard output that cannot be written (a full disk) is an error: status 1, with a
  message; a closed one (`| head`) ends the run quietly with status 0.";

/// Restore a Proxmox VE VM or container from a backup: plan, dry-run, safety point,
/// restore, verify.
#[derive(Parser, Debug)]
// The S3 flags matter only for offsite records: in --help, not in -h (a screen).
#[command(
    name = "pve-restore",
    version,
    after_long_help = AFTER,
    mut_arg("endpoint", |a| a.hide_short_help(true)),
    mut_arg("region", |a| a.hide_short_help(true))
)]
pub struct Cli {
    #[command(flatten)]
    pub input: InputArgs,

    /// The backup to restore (a volume ID, as pve-ls-backups prints it).
    #[arg(long, value_name = "VOLID", help_heading = "What")]
    pub volid: Option<String>,

    /// Restore this guest from its newest backup (or the one of --date): the newest with a
    /// standard vzdump name that is not a pvedr safety point, as pve-ls-backups --latest
    /// picks it; the plan shows its date, age and size.
    #[arg(
        long,
        value_name = "VMID",
        conflicts_with = "volid",
        help_heading = "What"
    )]
    pub vmid: Option<String>,

    /// With --vmid: the newest backup made on this day (node's local date).
    #[arg(
        long,
        value_name = "YYYY-MM-DD",
        requires = "vmid",
        help_heading = "What",
        hide_short_help = true
    )]
    pub date: Option<String>,

    /// Roll the guest (--vmid) back to this snapshot instead of restoring a backup (a
    /// snapshot the guest does not have is refused first, naming the ones it has; on ZFS one
    /// with newer snapshots is refused before the safety point). Needs --force. A running
    /// guest is started again after the rollback.
    #[arg(long, value_name = "NAME", requires = "vmid", help_heading = "What")]
    pub snapshot: Option<String>,

    /// Restore every record read, in order.
    #[arg(long, help_heading = "What")]
    pub all: bool,

    /// VMID to restore to (the restore record's `target_vmid`; --target-id is an alias).
    /// Default: the backup's own VMID (an overwrite).
    #[arg(
        long = "target-vmid",
        visible_alias = "target-id",
        value_name = "VMID",
        help_heading = "Where"
    )]
    pub target_id: Option<String>,

    /// Node to restore on. Default: the node of the guest overwritten, else the backup
    /// record's node; for --volid to a new VMID, a node where the archive's storage is
    /// enabled (storage.cfg `nodes`) and the archive is: the node reached when it is one,
    /// else the only one (several copies on a storage that is not shared: exit 2, give
    /// --node).
    #[arg(long, value_name = "NODE", help_heading = "Where")]
    pub node: Option<String>,

    /// Storage for the restored volumes. Default: a container's go where its root file
    /// system is now (overwrite) or where the backup's own config puts it (pct restore alone
    /// would use `local`); a VM's disks each go back to their original storage.
    #[arg(long, value_name = "STORAGE", help_heading = "Where")]
    pub storage: Option<String>,

    /// Map the backup's storages to the node's, as qm remote-migrate does; bridges: see
    /// --target-bridge. SOURCE:TARGET pairs, comma separated; one TARGET alone for every
    /// other source; 1 for each to itself. Read from the backup's own config and checked on the target node
    /// before any change (enabled, active, content, free space): every mismatch in one
    /// refusal (exit 2). A container's volumes go with pct restore --rootfs/--mpN; a VM's
    /// with qmrestore --storage, and with several targets each other disk then moves with
    /// qm disk move --delete 1 (written twice). A restore to a new VMID only.
    #[arg(
        long,
        value_name = "MAP",
        help_heading = "Where",
        conflicts_with = "storage"
    )]
    pub target_storage: Option<String>,

    /// Where the bridges of the backup's NICs go, same grammar (vmbr1:vmbr9,vnet0): each
    /// target must be a bridge or SDN vnet on the node; the NIC's line is kept whole (model,
    /// MAC, VLAN tag, firewall) but for its bridge.
    #[arg(
        long,
        value_name = "MAP",
        help_heading = "Where",
        hide_short_help = true
    )]
    pub target_bridge: Option<String>,

    /// Restore without the backup's host devices (hostpciN, usbN with host=) instead of
    /// refusing: the record lists them in `dropped`.
    #[arg(long, help_heading = "Where", hide_short_help = true)]
    pub drop_passthrough: bool,

    /// Give the restored guest new MAC addresses.
    #[arg(long, help_heading = "Where", hide_short_help = true)]
    pub unique: bool,

    /// Restore without testing the archive first (the plan and the record say so). Over
    /// the API (--api) no archive can be read, so a vzdump file needs this; a PBS snapshot
    /// is never read (PBS verifies its own).
    #[arg(long, help_heading = "Where")]
    pub no_archive_test: bool,

    /// Start the guest after restoring and wait until it runs (not a template: Proxmox
    /// restores a template's backup as a template and does not start it; start and probes
    /// are then skipped).
    #[arg(long, help_heading = "Verify")]
    pub start: bool,

    /// Check the restored guest (implies --start): agent, ping:HOST, tcp:HOST:PORT,
    /// ssh[:HOST], http:URL[=STATUS], monitoring[:HOST] (Prometheus, Grafana and
    /// Alertmanager health). Without HOST, the IP from the guest's config. Repeatable.
    #[arg(long, value_name = "PROBE", help_heading = "Verify")]
    pub probe: Vec<String>,

    /// Time allowed to each probe attempt and for the guest to start.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        value_parser = values::duration,
        help_heading = "Verify",
        hide_short_help = true
    )]
    pub probe_timeout: Duration,

    /// Attempts per probe (2 s apart).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        help_heading = "Verify",
        hide_short_help = true
    )]
    pub probe_retries: u32,

    /// No restore: prove the guest --vmid works as it is (one rebuilt with Terraform, say):
    /// start it if it is stopped, then run the --probe checks.
    #[arg(long, requires = "vmid", help_heading = "Verify",
          conflicts_with_all = ["volid", "snapshot", "test", "date", "target_id", "all"])]
    pub verify_only: bool,

    /// Restore drill: restore to a scratch VMID (--target-vmid, or the first free from 9900
    /// that no other drill on this machine holds) with every network link down, check the
    /// guest agent, destroy the scratch guest. Its record says `drill: true`.
    #[arg(long, help_heading = "Verify")]
    pub test: bool,

    // Drills on a schedule (pvedr-restore-drill.timer): --sample, --drill-history.
    /// With --test: drill the N guests whose last successful drill (in --drill-history) is
    /// oldest, never drilled first (ties: the lower VMID), each from its newest backup;
    /// among the backup records read, or with --all among every backup on the cluster
    /// (listed from the node: standard input is not read). Each drill gets its own scratch
    /// VMID: concurrent drills never share one.
    #[arg(long, value_name = "N", requires = "test", help_heading = "Drill", hide_short_help = true,
          value_parser = clap::value_parser!(u32).range(1..=1000),
          conflicts_with_all = ["volid", "vmid", "target_id"])]
    pub sample: Option<u32>,

    /// Append each restore record (one JSON line each, `drill` and `started` in it) to FILE,
    /// under a lock (FILE.lock), synced: concurrent runs never mix their lines. The shipped
    /// timer uses /var/lib/pvedr/drill-history.jsonl. --sample reads it.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Drill",
        hide_short_help = true
    )]
    pub drill_history: Option<std::path::PathBuf>,

    /// What --drill-history keeps: records that started within DURATION (e.g. 400d), or the
    /// newest N records; older ones are dropped (the file rewritten atomically) when the run
    /// first appends.
    #[arg(
        long,
        value_name = "DURATION|N",
        default_value = "400d",
        value_parser = crate::history::parse_keep,
        help_heading = "Drill",
        hide_short_help = true
    )]
    pub drill_history_keep: crate::history::Keep,

    /// With several records (a site): restore in N lanes at once, each with its own
    /// connection, still in startup order (a guest starts once every guest of a lower
    /// order has finished). Above 1 it needs --yes.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Site", hide_short_help = true,
          value_parser = clap::value_parser!(u32).range(1..=16))]
    pub jobs: u32,

    /// With several records: restore records (pve-restore's own, e.g. a --drill-history
    /// file) to predict each guest's duration from: its last restore scaled to this
    /// archive's size, else the history's bytes per second. Default: --drill-history;
    /// without either, an offsite record is predicted from a short probe of its S3 copy and
    /// of the node's connection.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Site",
        hide_short_help = true
    )]
    pub history: Option<std::path::PathBuf>,

    /// With several records: the RTO the site must meet (e.g. 4h). A plan whose predicted
    /// RTO, or a restore whose measured RTO, exceeds it exits 4 (when nothing failed).
    #[arg(long, value_name = "DURATION", help_heading = "Site", hide_short_help = true,
          value_parser = pvedr::cli::values::duration)]
    pub rto_target: Option<std::time::Duration>,

    /// With several records: a guest that is not restored (failed, rolled back, refused)
    /// starts no other: the guests running in other lanes finish, the rest (in one lane
    /// the rest of its own startup order too) are not started, each recorded `refused`
    /// naming the guest that failed, and the summary's `stopped` says why. Default: go
    /// on, as Proxmox's startall does.
    #[arg(long, help_heading = "Site", hide_short_help = true)]
    pub stop_on_failure: bool,

    #[command(flatten)]
    pub write: WriteArgs,

    /// Allow overwriting an existing guest, or rolling it back to a --snapshot (after a
    /// safety point). Without it a --dry-run shows the plan and exits 1. The overwrite deletes
    /// every snapshot of the guest (the plan and the record name them; the safety point
    /// cannot bring them back) and, for a container, every volume its backup does not hold
    /// (see --erase-unbacked-volumes).
    #[arg(long, help_heading = "Safety")]
    pub force: bool,

    /// Overwrite a container although volumes not in its backup are erased: mount points
    /// without backup=1 come back empty and unusedN volumes are deleted (Proxmox frees
    /// every volume of the old config; the safety point lacks them too). Without this flag
    /// such an overwrite is refused and the volumes are listed. Bind and device mount
    /// points are kept. A VM keeps its backup=0 disks, detached as unusedN.
    #[arg(long, help_heading = "Safety", hide_short_help = true)]
    pub erase_unbacked_volumes: bool,

    /// Keep the failed state instead of restoring the safety point.
    #[arg(long, help_heading = "Safety", hide_short_help = true)]
    pub no_rollback: bool,

    /// Wait this long for the guest's lock (backup, snapshot, …) and for a vzdump running
    /// on its node (it holds the node's vzdump lock, which the safety point needs) to go
    /// away; without it either refuses at once, before the guest is stopped.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = values::duration,
        help_heading = "Safety",
        hide_short_help = true
    )]
    pub wait_lock: Option<Duration>,

    /// Storage for the safety point. Default: where the guest's backups go: the storage of
    /// the backup being restored; for --snapshot, the storage of the enabled vzdump job that
    /// backs the guest up (no such job, or one without a storage: refused, naming the
    /// storages with backup content on the guest's node).
    #[arg(long, value_name = "STORAGE", help_heading = "Safety")]
    pub safety_storage: Option<String>,

    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Where an offsite record's S3 copy is read (`url` = s3://…, from `backup-sync ls`):
    /// credentials from the environment or the credentials file, as backup-sync has them.
    #[command(flatten)]
    pub s3: pvedr::s3::S3Conn,

    /// The age identity file that opens an encrypted offsite copy (backup-sync push
    /// --encrypt-to): decrypted as it streams, its plaintext sha256 checked. Refused when
    /// group or others can read it; never printed.
    #[arg(long, value_name = "FILE", hide_short_help = true)]
    pub age_identity: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,
}
