//! Restoring one guest, in phases: select (target, refusals), plan, check (read-only),
//! change (stop, safety point, restore), verify (isolate, start, probes), clean up, roll
//! back. Every phase ends in the `restore` record: a connection lost after the first
//! change says which steps ran and how to get back, and the commands run are the plan's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pvedr::error::Result;
use pvedr::plan::{Plan, StepId};
use pvedr::pve::GuestConfig;
use pvedr::records::{Backup, Restore, RestoreStatus, StepStatus, seconds_since};
use pvedr::retry::{Retry, poll_until};
use pvedr::shell;
use pvedr::transport::{CommandOutput, RemoteCommand, Transport};
use pvedr::validate;
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::guest::{self, Present, argv, restore_cmd, tool_of};
use crate::options::Options;
use crate::probe::{self, ProbeTarget};
use crate::progress;

/// The wait before a safety point, so its name (one-second resolution) is new: see
/// `Job::safety_point`.
const SAFETY_NAME_GAP: Duration = Duration::from_secs(1);

/// Minutes the safety point's vzdump may wait for the node's vzdump lock (`--lockwait`;
/// Proxmox's default is 180, with the guest stopped). No vzdump ran when checked, so a
/// wait means one started since: better to fail and start the guest again.
const SAFETY_LOCKWAIT_MIN: u64 = 1;

/// What every guest's restore shares.
pub struct Ctx<'a> {
    pub cli: &'a Cli,
    pub o: &'a Options,
    pub t: &'a dyn Transport,
    pub port: u16,
    pub cluster: pvedr::cluster::Cluster,
}

/// The plan's steps by role.
#[derive(Default)]
struct Steps {
    check: StepId,
    lock: Option<StepId>,
    vzdump: Option<StepId>,
    loss: Option<StepId>,
    stop: Option<StepId>,
    safety: Option<StepId>,
    restore: StepId,
    isolate: Option<StepId>,
    start: Option<StepId>,
    probes: Vec<StepId>,
    cleanup: Option<StepId>,
    rollback: Option<StepId>,
    leftover: Option<StepId>,
}

/// One guest's restore as it goes.
struct Job<'a> {
    ctx: &'a Ctx<'a>,
    /// Where node-local commands run: the node that owns the guest (or will).
    t: &'a dyn Transport,
    b: Backup,
    lxc: bool,
    target: u64,
    storage: String,
    /// Where the restored volumes go: `--storage`, else for a container where its root file
    /// system is now (overwrite) or was at backup time; `None`: qmrestore's own choice (each
    /// disk back on its original storage).
    target_storage: Option<String>,
    overwrite: bool,
    was_running: bool,
    /// The overwritten guest's pool: the restore keeps the membership (user.cfg).
    pool: Option<String>,
    /// The target's config as the lock check read it (overwrite).
    conf: Option<GuestConfig>,
    /// What the overwrite deletes for good (snapshots, volumes), said in the restore step.
    loss: Option<String>,
    /// qmrestore's leftover after a failed restore to a new VMID: removed or kept.
    leftover: Option<&'static str>,
    plan: Plan,
    s: Steps,
    rec: Restore,
    started: Instant,
    safety: Option<String>,
    failure: Option<Failure>,
    lost: bool,
    stopped_by_us: bool,
    restored: bool,
    rolled_back: bool,
}

/// Where a run failed, set where it happens: what is done with the guest follows from it
/// ([`after_failure`]), never from the wording of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    /// Before anything was overwritten: a vzdump started, the stop or the safety point failed.
    BeforeOverwrite,
    /// The restore task failed: the guest may be half overwritten (qemu-server
    /// `restore_vma_archive` has emptied its config and freed its disks before the data).
    RestoreTask,
    /// After the restore: isolating, starting or probing the restored guest failed.
    AfterRestore,
    /// The drill's scratch guest could not be destroyed.
    Cleanup,
    /// Ctrl-C or SIGTERM before the restore ran.
    InterruptedBefore,
    /// Ctrl-C or SIGTERM after the restore ran.
    InterruptedAfter,
    /// The connection was lost, or a task was left running: the node's state is unknown.
    StateUnknown,
}

/// What a failure leaves to do with the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterFailure {
    /// Restore the safety point (then start the guest if it ran).
    RollBack,
    /// Nothing was overwritten: start the guest again if the run stopped it.
    StartAgain,
    /// Touch nothing (never a blind rollback): the way back says what to do.
    Leave,
}

/// The one table of what follows a failure (docs/BACKUP-RESTORE.md, "When a restore fails").
fn after_failure(kind: FailureKind) -> AfterFailure {
    use FailureKind as F;
    match kind {
        F::RestoreTask | F::AfterRestore | F::InterruptedAfter => AfterFailure::RollBack,
        F::BeforeOverwrite | F::InterruptedBefore => AfterFailure::StartAgain,
        F::StateUnknown | F::Cleanup => AfterFailure::Leave,
    }
}

#[derive(Debug, Clone)]
struct Failure {
    kind: FailureKind,
    /// The record's `error`.
    message: String,
}

/// A refusal before anything changed.
pub fn refused(rec: Restore, plan: Plan, msg: String, started: Instant) -> Restore {
    ended_early(rec, plan, RestoreStatus::Refused, msg, started)
}

/// A failure before anything changed (a node that does not answer, say).
fn failed_early(rec: Restore, plan: Plan, e: pvedr::Error, started: Instant) -> Restore {
    ended_early(
        rec,
        plan,
        RestoreStatus::Failed,
        format!("{e}; nothing was changed"),
        started,
    )
}

fn ended_early(
    mut rec: Restore,
    plan: Plan,
    status: RestoreStatus,
    msg: String,
    started: Instant,
) -> Restore {
    pvedr::msg::say(format!("{status}: {msg}"));
    rec.status = status;
    rec.error = Some(msg);
    rec.steps = plan.steps;
    rec.duration_s = Some(seconds_since(started));
    rec
}

/// Restores one backup. `Err` only for what stops the whole run (no confirmation);
/// everything else, connection failures included, ends up in the record.
pub fn restore_one(ctx: &Ctx, mut b: Backup, default_node: &str) -> Result<Restore> {
    let started = Instant::now();
    // A file's format is its name's (what the archive test and qmrestore go by), whatever
    // the record says; whether it is on PBS is the node's storage type (check_archive).
    let file = b.volid.rsplit('/').next().unwrap_or_default();
    if let Some(a) = pvedr::archive::parse(file) {
        b.format = a.format;
    }
    let node = ctx
        .o
        .node
        .clone()
        .or(b.node.clone())
        .unwrap_or_else(|| default_node.to_string());
    let mut rec = Restore {
        vmid: b.vmid,
        volid: Some(b.volid.clone()),
        node: Some(node.clone()),
        dry_run: ctx.cli.write.dry_run,
        status: RestoreStatus::Planned,
        ..Default::default()
    };
    let plan = Plan::default();
    // A record's VMID is checked like a flag's (`"vmid": 5` must never reach qmrestore).
    let vmid_ok = b.vmid.map_or(Ok(0), |v| validate::vmid(&v.to_string()));
    if let Err(e) = vmid_ok
        .and_then(|_| validate::node(&node))
        .and_then(|_| validate::volid(&b.volid))
        .and_then(|_| validate::storage_id(b.storage.as_deref().unwrap_or_default()))
    {
        return Ok(refused(rec, plan, e.to_string(), started));
    }
    if b.subtype != "qemu" && b.subtype != "lxc" {
        // `unknown`: Proxmox could not type or date the name; qmrestore or pct is a guess.
        let msg = format!(
            "cannot restore a backup of subtype {}: Proxmox cannot tell a VM from a container by this name; rename it to vzdump-qemu-… or vzdump-lxc-… (with a valid date) first",
            b.subtype
        );
        return Ok(refused(rec, plan, msg, started));
    }
    let present = match guest::resources(ctx.t) {
        Ok(p) => p,
        Err(e) => return Ok(failed_early(rec, plan, e, started)),
    };
    let target = match select_target(ctx, &b, &present) {
        Ok(t) => t,
        Err(msg) => return Ok(refused(rec, plan, msg, started)),
    };
    rec.target_vmid = Some(target);
    let existing = present.get(&target).cloned();
    if let Some(e) = &existing {
        rec.node = Some(e.node.clone());
        if let Err(msg) = check_overwrite(ctx, &b, target, e) {
            return Ok(refused(rec, plan, msg, started));
        }
    }
    if existing.is_none() && ctx.o.node.is_none() && b.node.is_none() {
        match choose_node(ctx, &b, &node) {
            Ok(Ok(n)) => rec.node = Some(n),
            Ok(Err(msg)) => return Ok(refused(rec, plan, msg, started)),
            Err(e @ pvedr::Error::Usage(_)) => return Err(e),
            Err(e) => return Ok(failed_early(rec, plan, e, started)),
        }
    }
    let lxc = b.subtype == "lxc";
    let on = rec.node.clone().unwrap_or(node);
    let hop = match ctx.cluster.route(ctx.t, &on) {
        Ok(h) => h,
        Err(e) => return Ok(refused(rec, plan, e.to_string(), started)),
    };
    let t: &dyn Transport = match &hop {
        Some(h) => h.as_ref(),
        None => ctx.t,
    };
    let target_storage = match (&ctx.o.storage, lxc) {
        (Some(s), _) => Some(s.clone()),
        (None, false) => None,
        (None, true) => match ct_storage(t, &b, guest::at(&on, true, target), existing.is_some()) {
            Ok(s) => Some(s),
            Err(msg) => return Ok(refused(rec, plan, msg, started)),
        },
    };
    let mut job = Job {
        ctx,
        t,
        lxc,
        target_storage,
        storage: b.storage.clone().unwrap_or_default(),
        target,
        overwrite: existing.is_some(),
        was_running: existing.as_ref().is_some_and(|e| e.running),
        pool: existing.as_ref().and_then(|e| e.pool.clone()),
        conf: None,
        loss: None,
        leftover: None,
        b,
        plan,
        s: Steps::default(),
        rec,
        started,
        safety: None,
        failure: None,
        lost: false,
        stopped_by_us: false,
        restored: false,
        rolled_back: false,
    };
    job.build_plan();
    job.run()
}

/// `--verify-only`: no restore. The guest as it is gets the verify phase alone: started
/// when it is stopped, then the probes, on the node that owns it.
pub fn verify_existing(ctx: &Ctx, vmid: u64) -> Result<Restore> {
    let started = Instant::now();
    let mut rec = Restore {
        vmid: Some(vmid),
        target_vmid: Some(vmid),
        dry_run: ctx.cli.write.dry_run,
        status: RestoreStatus::Planned,
        ..Default::default()
    };
    let present = match guest::resources(ctx.t) {
        Ok(p) => p,
        Err(e) => return Ok(failed_early(rec, Plan::default(), e, started)),
    };
    let Some(g) = present.get(&vmid) else {
        let msg = format!("guest {vmid} does not exist in the cluster");
        return Ok(refused(rec, Plan::default(), msg, started));
    };
    rec.node = Some(g.node.clone());
    let hop = match ctx.cluster.route(ctx.t, &g.node) {
        Ok(h) => h,
        Err(e) => return Ok(refused(rec, Plan::default(), e.to_string(), started)),
    };
    let t: &dyn Transport = match &hop {
        Some(h) => h.as_ref(),
        None => ctx.t,
    };
    let b = Backup {
        vmid: Some(vmid),
        subtype: g.gtype.clone(),
        ..Default::default()
    };
    let mut job = Job {
        ctx,
        t,
        lxc: g.gtype == "lxc",
        target_storage: None,
        storage: String::new(),
        target: vmid,
        overwrite: false,
        was_running: g.running,
        pool: None,
        conf: None,
        loss: None,
        leftover: None,
        b,
        plan: Plan::default(),
        s: Steps::default(),
        rec,
        started,
        safety: None,
        failure: None,
        lost: false,
        stopped_by_us: false,
        // The guest is there as if just restored: only the verify phase runs.
        restored: true,
        rolled_back: false,
    };
    job.plan_verify();
    job.run_verify()
}

/// The node for a backup that names none (`--volid`) restored to a new VMID: qmrestore
/// and pct restore refuse an archive whose storage is not enabled on their node (pve-storage
/// `Storage.pm` `activate_storage` → `storage_check_enabled`: "storage 'S' is not available
/// on node 'N'"). So a node where the storage is enabled and the archive is: `preferred`
/// when it qualifies, else the only one; several copies on a storage that is not shared may
/// differ, the choice is the user's (`Err`: a usage error naming them).
fn choose_node(
    ctx: &Ctx,
    b: &Backup,
    preferred: &str,
) -> Result<std::result::Result<String, String>> {
    let mut nodes: Vec<String> = ctx.cluster.ips.keys().cloned().collect();
    nodes.extend(ctx.cluster.local.clone());
    nodes.sort();
    nodes.dedup();
    let storage = b.storage.as_deref().unwrap_or_default();
    let found = guest::archive_nodes(ctx.t, &nodes, storage, &b.volid)?;
    let fits = found.nodes.iter().any(|n| n == preferred);
    if fits && (found.shared || found.nodes.len() == 1) {
        return Ok(Ok(preferred.to_string()));
    }
    match found.nodes.as_slice() {
        [] => Ok(Err(format!(
            "{} is on no online node where storage {storage} is enabled (storage.cfg `nodes`); nothing was changed",
            b.volid
        ))),
        [one] => Ok(Ok(one.clone())),
        [first, ..] if found.shared => Ok(Ok(first.clone())),
        several => Err(pvedr::Error::usage(format!(
            "{} is on nodes {}: storage {storage} is not shared, so each node has its own copy; choose one with --node; nothing was changed",
            b.volid,
            several.join(", ")
        ))),
    }
}

/// Where a container's volumes go without `--storage`: `pct restore` would put them all on
/// `local` (pve-container `API2/LXC.pm`: `storage // 'local'`), which on a default install
/// cannot hold containers. So: the storage of its root file system now (overwrite), else
/// the one the backup's own config names (`pvesm extractconfig`).
fn ct_storage(
    t: &dyn Transport,
    b: &Backup,
    at: pvedr::pve::At,
    overwrite: bool,
) -> std::result::Result<String, String> {
    let (config, whose) = if overwrite {
        let c = pvedr::pve::Client::new(t).guest_config(at);
        (c, format!("CT {}'s config", at.vmid))
    } else {
        let c = guest::archive_config(t, &b.volid, true);
        (c, format!("the config inside {}", b.volid))
    };
    let config = config
        .map_err(|e| e.to_string())
        .and_then(|c| c)
        .map_err(|e| format!("cannot read {whose} to tell the storage ({e}); give --storage"))?;
    config
        .rootfs_storage()
        .map(str::to_string)
        .ok_or_else(|| format!("{whose} names no rootfs storage; give --storage"))
}

/// The VMID to restore to: a scratch one for a drill, else --target-vmid or the backup's.
fn select_target(
    ctx: &Ctx,
    b: &Backup,
    present: &HashMap<u64, Present>,
) -> std::result::Result<u64, String> {
    if ctx.cli.test {
        let v = match ctx.o.target {
            Some(v) => v,
            None => (9900..999_999_999)
                .find(|v| !present.contains_key(v))
                .unwrap_or(9900),
        };
        return match present.contains_key(&v) {
            true => Err(format!("scratch VMID {v} is in use")),
            false => Ok(v),
        };
    }
    ctx.o
        .target
        .or(b.vmid)
        .ok_or_else(|| "the backup has no VMID; give --target-vmid".to_string())
}

fn check_overwrite(
    ctx: &Ctx,
    b: &Backup,
    target: u64,
    e: &Present,
) -> std::result::Result<(), String> {
    if Some(target) != b.vmid {
        return Err(format!(
            "--target-vmid {target} is taken ({} on {}): a new VMID must be free cluster-wide",
            e.gtype, e.node
        ));
    }
    if e.gtype != b.subtype {
        return Err(format!(
            "guest {target} is a {} but the backup is a {}",
            e.gtype, b.subtype
        ));
    }
    // A dry run goes on to show the whole plan, then says it needs --force.
    if !ctx.cli.force && !ctx.cli.write.dry_run {
        return Err(needs_force(target, &e.node));
    }
    if e.ha_managed() {
        check_ha(ctx, target, e)?;
    }
    Ok(())
}

/// Only a guest HA is asked to keep `started` is refused: `qm stop` would only file a
/// request and HA start it again, vzdump's stop mode refuses it (pve-manager `VZDump.pm`:
/// `vm_is_ha_managed($vmid, 'started')`). Requested `stopped`/`disabled`: not running, no
/// HA stop needed.
fn check_ha(ctx: &Ctx, target: u64, e: &Present) -> std::result::Result<(), String> {
    let sid = format!("{}:{target}", if e.gtype == "lxc" { "ct" } else { "vm" });
    let requested = guest::ha_requested(ctx.t, &sid)
        .map_err(|err| format!("cannot read HA's state of {sid}: {err}; nothing was changed"))?;
    if requested.as_deref() != Some("started") {
        return Ok(());
    }
    let set = |state: &str| shell::join(&["ha-manager", "set", &sid, "--state", state]);
    Err(format!(
        "guest {target} is managed by HA with requested state started: a stop would only be requested and HA would start it again; nothing was changed. To restore it, change HA's state first (this changes the cluster's HA configuration and stops the guest): {}; after the restore: {}",
        set("stopped"),
        set("started")
    ))
}

/// The warnings of a task that ended `WARNINGS: N` (pve-common `RESTEnvironment.pm` `warn`
/// prints `WARN: MESSAGE`), from its log or, over SSH, what the CLI printed; bounded.
fn task_warnings(out: &CommandOutput) -> Vec<String> {
    let (o, e) = (String::from_utf8_lossy(&out.stdout), out.stderr.clone());
    o.lines()
        .chain(e.lines())
        .filter_map(|l| l.strip_prefix("WARN: "))
        .map(pvedr::msg::visible)
        .take(100)
        .collect()
}

fn protected_msg(lxc: bool, target: u64) -> String {
    format!(
        "guest {target} has protection on: Proxmox refuses to restore over a protected guest, so nothing was stopped or changed (if you mean it, first: {})",
        shell::join(&argv(&[
            tool_of(lxc),
            "set",
            &target.to_string(),
            "--protection",
            "0"
        ]))
    )
}

impl Job<'_> {
    fn tool(&self) -> &'static str {
        tool_of(self.lxc)
    }

    fn id(&self) -> String {
        self.target.to_string()
    }

    fn safety_storage(&self) -> String {
        self.ctx
            .o
            .safety_storage
            .clone()
            .unwrap_or_else(|| self.storage.clone())
    }

    /// The restore of a safety point over the target (the rollback, the way back): a
    /// container onto the same storage, a VM's disks where they were.
    fn back_cmd(&self, archive: &str) -> Vec<String> {
        let storage = self.target_storage.as_deref().filter(|_| self.lxc);
        restore_cmd(self.lxc, archive, self.target, true, storage, false)
    }

    fn build_plan(&mut self) {
        let (tool, id, cli) = (self.tool(), self.id(), self.ctx.cli);
        let back_cmd = self.back_cmd("<safety point>");
        let p = &mut self.plan;
        self.s.check = p.read(
            "check-archive",
            &self.b.volid,
            "test the archive on the node before anything changes",
            Some(pvedr::archive::test_command("<path>", &self.b.format)),
        );
        if self.overwrite {
            let node = self.rec.node.clone().unwrap_or_default();
            self.s.lock = Some(p.read(
                "check-lock",
                &id,
                "a locked guest (backup, snapshot, migration) must not be touched",
                Some(guest::at(&node, self.lxc, self.target).config_cmd().argv),
            ));
            self.s.vzdump = Some(p.read(
                "check-vzdump",
                &node,
                "no vzdump may be running on the node: the safety point would wait for its lock (up to 3 h by default) with the guest stopped",
                Some(pvedr::pve::active_tasks_cmd(&node, "vzdump").argv),
            ));
            self.s.loss = Some(p.read(
                "check-loss",
                &id,
                "what the overwrite deletes that the backup and the safety point cannot bring back: snapshots, volumes not in the backup",
                Some(guest::at(&node, self.lxc, self.target).snapshots_cmd().argv),
            ));
            self.s.stop = Some(p.change(
                "stop",
                &id,
                "stop the guest, only if it runs",
                Some(argv(&[tool, "stop", &id])),
            ));
            let note = format!("pvedr safety point before restoring {}", self.b.volid);
            let storage = self
                .ctx
                .o
                .safety_storage
                .clone()
                .unwrap_or_else(|| self.storage.clone());
            self.s.safety = Some(p.change(
                "safety-point",
                &id,
                "a vzdump of the current guest to come back to; keep-all=1 so no retention deletes old archives (maybe the one being restored)",
                Some(guest::safety_point_cmd(
                    &id,
                    &storage,
                    "stop",
                    &note,
                    SAFETY_LOCKWAIT_MIN,
                )),
            ));
        }
        let why = if self.overwrite {
            "overwrite with the restore command's own --force (destroy --purge would silently drop the guest from backup jobs)"
        } else {
            "restore to a VMID that is free cluster-wide"
        };
        let cmd = restore_cmd(
            self.lxc,
            &self.b.volid,
            self.target,
            self.overwrite,
            self.target_storage.as_deref(),
            cli.unique,
        );
        let mut why = match &self.target_storage {
            Some(s) => format!("{why}; every volume on storage {s}"),
            None => format!(
                "{why}; qmrestore puts each disk back on its original storage (--storage chooses one)"
            ),
        };
        if let Some(pool) = &self.pool {
            // Membership is in user.cfg: qmrestore and pct restore over the guest leave it
            // (they call add_vm_to_pool only with --pool; only destroy removes it).
            why.push_str(&format!(
                "; the guest stays in pool {}",
                pvedr::msg::visible(pool)
            ));
        }
        self.s.restore = p.change("restore", &id, &why, Some(cmd));
        if !self.overwrite && !self.lxc {
            self.s.leftover = Some(p.change(
                "remove-leftover",
                &id,
                "only if qmrestore fails: it leaves the new VM's config behind (pct restore cleans up); removed when it holds no volume",
                Some(argv(&["qm", "destroy", &id])),
            ));
        }
        if cli.test {
            self.s.isolate = Some(p.change(
                "isolate",
                &id,
                "every network link down: the copy must not talk to production",
                Some(argv(&[tool, "set", &id, "--netN", "<net>,link_down=1"])),
            ));
        }
        if self.ctx.o.start {
            self.s.start = Some(p.change(
                "start",
                &id,
                "start the restored guest and wait until it runs",
                Some(argv(&[tool, "start", &id])),
            ));
        }
        for pr in &self.ctx.o.probes {
            self.s
                .probes
                .push(p.read("probe", &pr.name(), "prove the restored guest works", None));
        }
        if cli.test {
            self.s.cleanup = Some(p.change(
                "cleanup",
                &id,
                "destroy the scratch guest",
                Some(argv(&[tool, "destroy", &id])),
            ));
        }
        if self.overwrite {
            self.s.rollback = Some(p.change(
                "rollback",
                &id,
                "only if the restore or the verification fails: restore the safety point",
                Some(back_cmd),
            ));
        }
    }

    /// `--verify-only`: start (when stopped) and the probes.
    fn plan_verify(&mut self) {
        let (tool, id) = (self.tool(), self.id());
        if !self.was_running {
            self.s.start = Some(self.plan.change(
                "start",
                &id,
                "the guest is stopped: start it and wait until it runs",
                Some(argv(&[tool, "start", &id])),
            ));
        }
        for pr in &self.ctx.o.probes {
            let p = self
                .plan
                .read("probe", &pr.name(), "prove the guest works", None);
            self.s.probes.push(p);
        }
    }

    fn run_verify(mut self) -> Result<Restore> {
        let on = self.rec.node.clone().unwrap_or_default();
        self.plan
            .print(&format!("verify {} on {on} (no restore):", self.target));
        if self.ctx.cli.write.dry_run {
            self.rec.steps = self.plan.steps;
            self.rec.duration_s = Some(seconds_since(self.started));
            return Ok(self.rec);
        }
        if self.s.start.is_some() {
            let what = format!("starting guest {} on {on} to verify it", self.target);
            pvedr::cli::confirm(&what, self.ctx.cli.write.yes)?;
        }
        pvedr::interrupt::install();
        self.verify();
        Ok(self.finish())
    }

    /// All phases, in order; always a record.
    fn run(mut self) -> Result<Restore> {
        let node = self.rec.node.clone().unwrap_or_default();
        let backup = pvedr::newest::describe(&self.b, pvedr::time::now());
        self.plan.print(&format!(
            "plan for {} ({backup}) → {} on {node}:",
            self.b.volid, self.target
        ));
        if let Some(msg) = self.check() {
            self.plan.skip_rest("refused");
            return Ok(refused(self.rec, self.plan, msg, self.started));
        }
        if self.ctx.cli.write.dry_run && self.overwrite && !self.ctx.cli.force {
            self.plan.skip_rest("needs --force");
            let msg = format!("dry run: {}", needs_force(self.target, &node));
            return Ok(refused(self.rec, self.plan, msg, self.started));
        }
        if self.ctx.cli.write.dry_run {
            self.rec.steps = self.plan.steps;
            self.rec.duration_s = Some(seconds_since(self.started));
            return Ok(self.rec);
        }
        pvedr::cli::confirm(
            &format!(
                "restoring {} ({backup}) to {} {} on {node}{}",
                self.b.volid,
                if self.lxc { "CT" } else { "VM" },
                self.target,
                if self.overwrite { " (overwrite)" } else { "" }
            ),
            self.ctx.cli.write.yes,
        )?;
        let _lock = guest::lock_target(self.ctx.t.host(), self.ctx.port, self.target)?;
        pvedr::interrupt::install();
        self.change();
        self.verify();
        self.cleanup();
        self.roll_back();
        Ok(self.finish())
    }

    /// The target's config; a lost connection is recorded and ends the run's changes.
    fn read_config(&mut self) -> Option<pvedr::pve::Answer<GuestConfig>> {
        let node = self.rec.node.clone().unwrap_or_default();
        match guest::config(self.t, &node, self.lxc, self.target) {
            Ok(c) => Some(c),
            Err(e) => {
                self.lost = true;
                let m = format!("connection lost: {e}; the node's state is unknown");
                self.fail(FailureKind::StateUnknown, m);
                None
            }
        }
    }

    /// Runs step `i`'s own command (a change); `Err` says why it failed.
    fn exec_step(&mut self, i: StepId) -> std::result::Result<(CommandOutput, Instant), String> {
        let t0 = Instant::now();
        let _running = progress::start(&self.plan, i, &self.interrupt_answer(i));
        let cmd = RemoteCommand::write(self.plan.command(i).to_vec());
        match self.t.exec(&cmd) {
            Ok(out) if out.success() => Ok((out, t0)),
            Ok(out) => {
                let m = guest::status_line(&out);
                self.plan.finish(i, StepStatus::Failed, m.clone(), t0);
                Err(m)
            }
            Err(e) => {
                self.lost = true;
                let m = format!("{}; the node's state is unknown", e.lost());
                self.plan.finish(i, StepStatus::Failed, m.clone(), t0);
                Err(m)
            }
        }
    }

    /// Whether the run may go on: no failure, no interrupt.
    fn go_on(&mut self) -> bool {
        if self.failure.is_none() && pvedr::interrupt::requested() {
            let kind = if self.restored {
                FailureKind::InterruptedAfter
            } else {
                FailureKind::InterruptedBefore
            };
            self.fail(kind, "interrupted".into());
        }
        self.failure.is_none()
    }

    /// Records the run's failure; the first one stands.
    fn fail(&mut self, kind: FailureKind, message: String) {
        self.failure.get_or_insert(Failure { kind, message });
    }

    /// The failure's kind as it decides: a lost connection makes any decision blind.
    fn failure_kind(&self) -> Option<FailureKind> {
        let f = self.failure.as_ref()?;
        Some(if self.lost {
            FailureKind::StateUnknown
        } else {
            f.kind
        })
    }

    /// The read-only checks (they run in a dry run too); `Some(why)` refuses.
    fn check(&mut self) -> Option<String> {
        if let Some(m) = self.check_access() {
            return Some(m);
        }
        if let Some(m) = self.check_root_only() {
            return Some(m);
        }
        if let Some(m) = self.check_archive() {
            return Some(m);
        }
        if let Some(m) = self.check_lock() {
            return Some(m);
        }
        if let Some(m) = self.check_vzdump(self.lock_wait()) {
            return Some(m);
        }
        self.check_loss()
    }

    /// `--wait-lock`, none in a dry run.
    fn lock_wait(&self) -> Duration {
        if self.ctx.cli.write.dry_run {
            Duration::ZERO
        } else {
            self.ctx.o.wait_lock
        }
    }

    /// No vzdump running on the node (waiting up to `wait`): it holds the node-wide vzdump
    /// lock, and the safety point, taken with the guest stopped, would queue behind it.
    fn check_vzdump(&mut self, wait: Duration) -> Option<String> {
        let i = self.s.vzdump?;
        let t0 = Instant::now();
        let node = self.rec.node.clone().unwrap_or_default();
        let t = self.ctx.t;
        let mut busy = None;
        let r = poll_until(t0 + wait, Duration::from_secs(2), || {
            busy = guest::active_vzdump(t, &node)?;
            Ok(busy.is_none().then_some(()))
        });
        let msg = match r {
            Ok(Some(())) => {
                self.plan.finish(i, StepStatus::Ok, "no vzdump running", t0);
                return None;
            }
            Ok(None) => format!(
                "a vzdump is running on {node} ({}): the safety point would wait for its lock with guest {} stopped; nothing was changed. Wait for it or use --wait-lock",
                pvedr::msg::visible(busy.as_deref().unwrap_or("?")),
                self.target
            ),
            Err(e) => format!("cannot list the running tasks of {node}: {e}; nothing was changed"),
        };
        self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
        Some(msg)
    }

    /// What the overwrite deletes for good, in the plan and the record: the snapshots, a
    /// container's volumes that its backup does not hold (refused without
    /// `--erase-unbacked-volumes`), a VM's `backup=0` disks (kept, detached).
    fn check_loss(&mut self) -> Option<String> {
        let i = self.s.loss?;
        let t0 = Instant::now();
        let node = self.rec.node.clone().unwrap_or_default();
        let snaps = match guest::snapshots(self.ctx.t, &node, self.lxc, self.target) {
            Ok(s) => s,
            Err(e) => {
                let msg = format!(
                    "cannot list the snapshots of guest {}: {e}; nothing was changed",
                    self.target
                );
                self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
                return Some(msg);
            }
        };
        let conf = self.conf.clone().unwrap_or_default();
        let (erased, detached) = if self.lxc {
            (guest::ct_unbacked(&conf, self.target), Vec::new())
        } else {
            (Vec::new(), guest::vm_detached(&conf))
        };
        let names: Vec<Value> = snaps.iter().map(|n| Value::from(n.as_str())).collect();
        self.rec
            .extra
            .insert("deleted_snapshots".into(), Value::Array(names));
        let key = if self.lxc {
            "erased_volumes"
        } else {
            "detached_volumes"
        };
        let vols = if self.lxc { &erased } else { &detached };
        self.rec.extra.insert(key.into(), guest::Volume::json(vols));
        let mut loss = Vec::new();
        if !snaps.is_empty() {
            let list: Vec<String> = snaps.iter().map(|n| pvedr::msg::visible(n)).collect();
            loss.push(format!("deletes every snapshot: {}", list.join(", ")));
        }
        if !erased.is_empty() {
            loss.push(format!(
                "erases volumes not in the backup: {}",
                guest::Volume::list(&erased)
            ));
        }
        if !detached.is_empty() {
            loss.push(format!(
                "backup=0 disks come back detached as unusedN (data kept): {}",
                guest::Volume::list(&detached)
            ));
        }
        let what = match loss.is_empty() {
            true => "nothing beyond the guest's current state".to_string(),
            false => loss.join("; "),
        };
        let r = self.s.restore;
        let why = self.plan.steps[r].message.clone().unwrap_or_default();
        self.plan.steps[r].message = Some(format!("{why}; {what}"));
        self.loss = Some(what.clone());
        if !erased.is_empty() && !self.ctx.cli.erase_unbacked_volumes {
            let msg = format!(
                "overwriting CT {} erases volumes its backup does not hold: {} (mount points without backup=1 come back empty, unusedN volumes are deleted, and the safety point lacks them too); nothing was changed. Copy their data first, or accept the loss with --erase-unbacked-volumes",
                self.target,
                guest::Volume::list(&erased)
            );
            self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
            return Some(msg);
        }
        self.plan.finish(i, StepStatus::Ok, what, t0);
        None
    }

    /// The storage's type as the node reports it (`pbs`, `dir`, `nfs`, …).
    fn storage_type(&self) -> pvedr::Result<String> {
        let node = self.rec.node.as_deref().unwrap_or("");
        let m = pvedr::pve::Client::new(self.ctx.t).storage_status(node, &self.storage)?;
        Ok(pvedr::pvesh::str_of(&m, "type").unwrap_or_default())
    }

    /// What Proxmox will check for each step, asked before anything changes: over the API a
    /// token may lack some, and a restore refused half-way (after the safety point, the
    /// stop) is worse than one refused now. As root (SSH, local) nothing is missing.
    fn check_access(&mut self) -> Option<String> {
        let node = self.rec.node.clone().unwrap_or_default();
        let want = crate::access::RestoreAccess {
            target: self.target,
            node: &node,
            archive_storage: &self.storage,
            archive_owner: self.b.vmid,
            target_storage: self.target_storage.as_deref(),
            overwrite: self.overwrite,
            safety_storage: self.s.safety.map(|_| self.safety_storage()),
            power: self.overwrite || self.ctx.o.start,
            isolate: self.s.isolate.is_some(),
            cleanup: self.s.cleanup.is_some(),
            agent: !self.lxc && self.ctx.o.probes.contains(&probe::Probe::Agent),
        };
        match crate::access::missing(self.ctx.t, &want) {
            Ok(m) if m.is_empty() => None,
            Ok(m) => Some(format!(
                "the API token lacks {}; nothing was changed",
                m.join("; ")
            )),
            Err(e) => Some(format!(
                "cannot read the API token's privileges: {e}; nothing was changed"
            )),
        }
    }

    /// Over an API token (never `root@pam`), what the backup's config holds that Proxmox
    /// refuses inside the restore task, after the stop and the safety point: refused now,
    /// keys named. Raw `lxc.*` keys are only dropped: a warning and `dropped_lxc_keys`.
    fn check_root_only(&mut self) -> Option<String> {
        if self.ctx.t.is_root() {
            return None;
        }
        let why = match guest::archive_config(self.ctx.t, &self.b.volid, self.lxc) {
            Ok(Ok(c)) => return self.root_only(&c),
            Ok(Err(e)) => e,
            Err(e) => e.to_string(),
        };
        // extractconfig needs VM.Backup on the backup's guest, which a restore does not:
        // not checked is said, not refused.
        pvedr::msg::warn(format!(
            "cannot read the config inside {} ({why}): not checked for what only root@pam may restore (bind mounts, host devices, raw lxc keys)",
            self.b.volid
        ));
        None
    }

    /// [`Self::check_root_only`] on the backup's config.
    fn root_only(&mut self, config: &GuestConfig) -> Option<String> {
        let r = guest::root_only(config, self.lxc);
        if !r.refused.is_empty() {
            return Some(format!(
                "only root@pam may restore this backup, an API token may not: {}; nothing was changed (restore it over SSH as root)",
                r.refused.join(", ")
            ));
        }
        if !r.dropped.is_empty() {
            pvedr::msg::warn(format!(
                "a restore by an API token drops the backup's raw lxc keys (restore them as root): {}",
                pvedr::msg::visible(&r.dropped.join("; "))
            ));
            self.rec
                .extra
                .insert("dropped_lxc_keys".into(), serde_json::json!(r.dropped));
        }
        None
    }

    fn check_archive(&mut self) -> Option<String> {
        let (i, t0) = (self.s.check, Instant::now());
        if self.ctx.cli.no_archive_test {
            let why = "not tested: --no-archive-test";
            self.plan.finish(i, StepStatus::Skipped, why, t0);
            return None;
        }
        let kind = match self.storage_type() {
            Ok(k) => k,
            Err(e) => {
                self.plan.finish(i, StepStatus::Failed, e.to_string(), t0);
                return Some(format!("cannot tell the storage's type: {e}"));
            }
        };
        if kind == "pbs" {
            self.plan.finish(
                i,
                StepStatus::Skipped,
                "PBS verifies its snapshots (see the backup's verification state)",
                t0,
            );
            return None;
        }
        if !self.t.has_shell() {
            let msg = "the archive cannot be tested over the API (no shell on the node reads it): use --host (SSH) to test it, or --no-archive-test to restore it untested";
            self.plan.finish(i, StepStatus::Failed, msg, t0);
            return Some(format!("{msg}; nothing was changed"));
        }
        let node = self.rec.node.as_deref().unwrap_or("");
        let found = pvedr::pve::Client::new(self.ctx.t).volume(node, &self.storage, &self.b.volid);
        let m = match found {
            Ok(m) => m,
            Err(e) => {
                self.plan.finish(i, StepStatus::Failed, e.to_string(), t0);
                return Some(format!("cannot locate the archive: {e}"));
            }
        };
        let Some(file) = pvedr::pvesh::str_of(&m, "path") else {
            self.plan.finish(
                i,
                StepStatus::Failed,
                "Proxmox reports no path for the archive",
                t0,
            );
            return Some("cannot locate the archive".into());
        };
        let test = pvedr::archive::test_command(&file, &self.b.format);
        self.plan.set_command(i, test.clone());
        match self
            .t
            .exec(&RemoteCommand::read(test).within(pvedr::archive::TEST_TIMEOUT))
        {
            Ok(out) if out.success() => {
                self.plan
                    .finish(i, StepStatus::Ok, format!("{file} is whole"), t0);
                None
            }
            Ok(out) => {
                let msg = format!("the archive is damaged: {}", guest::status_line(&out));
                self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
                Some(format!("{msg}; nothing was changed"))
            }
            Err(e) => {
                self.plan.finish(i, StepStatus::Failed, e.to_string(), t0);
                Some(format!("cannot test the archive: {e}; nothing was changed"))
            }
        }
    }

    fn check_lock(&mut self) -> Option<String> {
        let i = self.s.lock?;
        let t0 = Instant::now();
        let wait = self.lock_wait();
        let (t, lxc, target) = (self.t, self.lxc, self.target);
        let node = self.rec.node.clone().unwrap_or_default();
        let mut last_lock = None;
        let mut seen = None;
        let r = poll_until(t0 + wait, Duration::from_secs(2), || {
            match guest::config(t, &node, lxc, target)? {
                Err(e) => Ok(Some(Err(format!("cannot read guest {target}: {e}")))),
                Ok(conf) if conf.protection => Ok(Some(Err(protected_msg(lxc, target)))),
                Ok(conf) => match conf.lock.clone() {
                    None => {
                        seen = Some(conf);
                        Ok(Some(Ok(())))
                    }
                    Some(l) => {
                        last_lock = Some(l);
                        Ok(None)
                    }
                },
            }
        });
        let msg = match r {
            Ok(Some(Ok(()))) => {
                self.conf = seen;
                self.plan.finish(i, StepStatus::Ok, "not locked", t0);
                return None;
            }
            Ok(Some(Err(e))) => e,
            Ok(None) => format!(
                "guest {target} is locked ({}); wait for it or use --wait-lock",
                last_lock.unwrap_or_default()
            ),
            Err(e) => format!("cannot read guest {target}: {e}"),
        };
        self.plan.finish(i, StepStatus::Failed, msg.clone(), t0);
        Some(msg)
    }

    /// Stop, safety point, restore.
    fn change(&mut self) {
        if self.s.vzdump.is_some() && self.go_on() {
            // Again, now: a vzdump may have started while the question was on the terminal.
            if let Some(m) = self.check_vzdump(Duration::ZERO) {
                self.fail(FailureKind::BeforeOverwrite, m);
            }
        }
        if let (Some(i), true) = (self.s.stop, self.go_on()) {
            if self.was_running {
                match self.exec_step(i) {
                    Ok((_, t0)) => {
                        self.plan.finish(i, StepStatus::Changed, "stopped", t0);
                        self.stopped_by_us = true;
                    }
                    Err(m) => self.fail(FailureKind::BeforeOverwrite, format!("stop failed: {m}")),
                }
            } else {
                self.plan
                    .finish(i, StepStatus::Skipped, "not running", Instant::now());
            }
        }
        if let (Some(i), true) = (self.s.safety, self.go_on()) {
            self.safety_point(i);
        }
        if self.go_on() {
            let i = self.s.restore;
            match self.exec_step(i) {
                Ok((out, t0)) => {
                    let w = task_warnings(&out);
                    if !w.is_empty() {
                        self.rec
                            .extra
                            .insert("warnings".into(), serde_json::json!(w));
                    }
                    let done = match &self.loss {
                        Some(l) => format!("restored {}; {l}", self.b.volid),
                        None => format!("restored {}", self.b.volid),
                    };
                    self.plan.finish(i, StepStatus::Changed, done, t0);
                    self.restored = true;
                    if let Some(l) = self.s.leftover {
                        self.plan
                            .finish(l, StepStatus::Skipped, "not needed", Instant::now());
                    }
                }
                Err(m) => {
                    self.fail(FailureKind::RestoreTask, format!("restore failed: {m}"));
                    self.remove_leftover();
                }
            }
        }
    }

    /// After a failed qmrestore to a new VMID: its leftover config goes when it is the empty
    /// one qmrestore leaves (so nothing of anyone else's); else it stays, and the way back
    /// says how to remove it. Proxmox: qemu-server `API2/Qemu.pm` `create_vm`.
    fn remove_leftover(&mut self) {
        let Some(i) = self.s.leftover.filter(|_| !self.lost) else {
            return;
        };
        let t0 = Instant::now();
        let present = match guest::resources(self.t) {
            Ok(p) => p.contains_key(&self.target),
            Err(e) => {
                self.plan
                    .finish(i, StepStatus::Failed, format!("cannot tell: {e}"), t0);
                self.leftover = Some("kept");
                return;
            }
        };
        if !present {
            self.plan
                .finish(i, StepStatus::Skipped, "qmrestore left nothing", t0);
            return;
        }
        let node = self.rec.node.clone().unwrap_or_default();
        let empty = match guest::config(self.t, &node, false, self.target) {
            Ok(Ok(c)) => c.is_empty(),
            _ => false,
        };
        if !empty {
            let m = format!(
                "VM {} holds more than qmrestore's empty config: kept",
                self.target
            );
            self.plan.finish(i, StepStatus::Skipped, m, t0);
            self.leftover = Some("kept");
            return;
        }
        self.leftover = Some(match self.exec_step(i) {
            Ok((_, t0)) => {
                let m = format!("qmrestore's empty config of VM {} removed", self.target);
                self.plan.finish(i, StepStatus::Changed, m, t0);
                "removed"
            }
            Err(_) => "kept",
        });
    }

    fn safety_point(&mut self, i: StepId) {
        // vzdump names an archive by the second it starts in, and a vzdump of the same
        // guest in the same second replaces the earlier file (vzdump renames its temporary
        // file over it): a safety point taken within a second of the backup being restored
        // (a restore right after another one's safety point, a nightly job's archive) wrote
        // over that backup, which was then "restored" from the guest's own current state
        // and lost. A second of waiting puts the safety point's name after every archive
        // that exists now. Found by the model-based test (tests/model). Proxmox: pve-manager
        // `PVE/VZDump.pm` `exec_backup_task` names the archive from `backup_time` (whole
        // seconds) and `rename`s its `.dat` over the target without looking first.
        std::thread::sleep(SAFETY_NAME_GAP);
        if !self.go_on() {
            return;
        }
        match self.exec_step(i) {
            Ok((out, t0)) => {
                let storage = self.safety_storage();
                match guest::safety_point_volid(&String::from_utf8_lossy(&out.stdout), &storage) {
                    Some(v) => {
                        self.plan
                            .finish(i, StepStatus::Changed, format!("safety point {v}"), t0);
                        self.rec.safety_point = Some(json!({"volid": v, "storage": storage}));
                        self.safety = Some(v);
                    }
                    None => {
                        // Over the API the answer is in the task's log, which may be unreadable.
                        let why = match out.stderr.trim() {
                            "" => "vzdump did not say which archive it wrote".to_string(),
                            e => format!(
                                "vzdump did not say which archive it wrote: {}",
                                pvedr::msg::visible(e)
                            ),
                        };
                        self.plan.finish(i, StepStatus::Failed, why, t0);
                        self.fail(FailureKind::BeforeOverwrite, "no safety point".into());
                    }
                }
            }
            Err(m) => {
                let m = format!("safety point failed: {m}; nothing was overwritten");
                self.fail(FailureKind::BeforeOverwrite, m);
            }
        }
    }

    /// Isolate (drill), start and wait, probes.
    fn verify(&mut self) {
        if !self.restored {
            return;
        }
        if let (Some(i), true) = (self.s.isolate, self.go_on()) {
            self.isolate(i);
        }
        if self.go_on() && self.a_template() {
            return;
        }
        if let (Some(i), true) = (self.s.start, self.go_on()) {
            self.start(i);
        }
        if !self.ctx.o.probes.is_empty() && self.go_on() {
            self.probes();
        }
    }

    /// A template cannot be started: its start and probes are skipped, not failed (a
    /// failure would roll a good restore back). `false` when it is no template or when
    /// nothing is to be started.
    fn a_template(&mut self) -> bool {
        if self.s.start.is_none() && self.s.probes.is_empty() {
            return false;
        }
        let Some(conf) = self.read_config() else {
            return false;
        };
        if !conf.is_ok_and(|c| c.template) {
            return false;
        }
        let why = format!(
            "guest {} is a template: Proxmox does not start templates",
            self.target
        );
        let t0 = Instant::now();
        for i in self
            .s
            .start
            .iter()
            .chain(&self.s.probes)
            .copied()
            .collect::<Vec<_>>()
        {
            self.plan.finish(i, StepStatus::Skipped, why.clone(), t0);
        }
        true
    }

    fn isolate(&mut self, i: StepId) {
        let t0 = Instant::now();
        let Some(conf) = self.read_config() else {
            self.plan.finish(
                i,
                StepStatus::Failed,
                "connection lost reading the config",
                t0,
            );
            return;
        };
        let conf = match conf {
            Ok(c) => c,
            Err(e) => {
                self.plan.finish(i, StepStatus::Failed, e.clone(), t0);
                self.fail(FailureKind::AfterRestore, format!("isolating failed: {e}"));
                return;
            }
        };
        let links = guest::links_up(&conf);
        for (k, v) in &links {
            self.plan.set_command(
                i,
                argv(&[self.tool(), "set", &self.id(), &format!("--{k}"), v]),
            );
            if let Err(m) = self.exec_step(i) {
                self.fail(FailureKind::AfterRestore, format!("isolating failed: {m}"));
                return;
            }
        }
        self.plan.finish(
            i,
            StepStatus::Changed,
            format!("{} link(s) down", links.len()),
            t0,
        );
    }

    fn start(&mut self, i: StepId) {
        let t0 = match self.exec_step(i) {
            Ok((_, t0)) => t0,
            Err(m) => {
                self.fail(FailureKind::AfterRestore, format!("start failed: {m}"));
                return;
            }
        };
        let deadline = Instant::now() + self.ctx.o.probe_timeout.max(Duration::from_secs(5)) * 3;
        let node = self.rec.node.clone().unwrap_or_default();
        let client = pvedr::pve::Client::new(self.t);
        let at = guest::at(&node, self.lxc, self.target);
        let polled = poll_until(deadline, Duration::from_millis(500), || {
            let status = client.guest_status(at)?;
            Ok(status.is_ok_and(|s| s.running()).then_some(()))
        });
        let running = match polled {
            Ok(r) => r.is_some(),
            Err(e) => {
                self.lost = true;
                let m = format!("{}; the node's state is unknown", e.lost());
                self.fail(FailureKind::StateUnknown, m.clone());
                self.plan.finish(i, StepStatus::Failed, m, t0);
                return;
            }
        };
        if running {
            self.plan.finish(i, StepStatus::Changed, "running", t0);
        } else {
            self.plan
                .finish(i, StepStatus::Failed, "did not reach running", t0);
            self.fail(FailureKind::AfterRestore, "the guest did not start".into());
        }
    }

    fn probes(&mut self) {
        let Some(conf) = self.read_config() else {
            return;
        };
        let ip = conf.ok().and_then(|c| probe::config_ip(&c));
        let timeout = self.ctx.o.probe_timeout;
        let bounds = pvedr::http::Bounds {
            connect: timeout,
            io: timeout,
        };
        let http = match pvedr::http::agent(&self.ctx.cli.connect.tls, bounds) {
            Ok(a) => Some(a),
            Err(e) => {
                pvedr::msg::warn(format!("HTTP probes cannot run: {e}"));
                None
            }
        };
        let target = ProbeTarget {
            transport: self.t,
            vmid: self.target,
            lxc: self.lxc,
            ip,
            timeout,
            http: http.as_ref(),
        };
        let mut retry = Retry::new(self.ctx.cli.probe_retries, Duration::from_secs(2));
        retry.factor = 1;
        let mut verify = Vec::new();
        for (p, &i) in self.ctx.o.probes.iter().zip(&self.s.probes.clone()) {
            let t0 = Instant::now();
            if let Some(why) = probe::cannot_check(p, &target) {
                self.plan.finish(i, StepStatus::Skipped, why, t0);
                verify.push(
                    json!({"probe": p.name(), "status": StepStatus::Skipped, "message": why, "attempts": 0}),
                );
                continue;
            }
            let mut attempts = 0;
            let r = retry.run_when(
                &format!("probe {}", p.name()),
                |a| {
                    attempts = a;
                    probe::run_once(p, &target)
                },
                |_| !pvedr::interrupt::requested(),
            );
            let (status, m) = match r {
                Ok(m) => (StepStatus::Ok, m),
                Err(m) => {
                    let f = format!("verification failed: {} ({m})", p.name());
                    self.fail(FailureKind::AfterRestore, f);
                    (StepStatus::Failed, m)
                }
            };
            self.plan.finish(i, status.clone(), m.clone(), t0);
            verify.push(
                json!({"probe": p.name(), "status": status, "message": m, "attempts": attempts}),
            );
        }
        self.rec.verify = Some(Value::Array(verify));
    }

    /// The drill destroys its scratch guest whatever happened.
    fn cleanup(&mut self) {
        let Some(i) = self.s.cleanup else { return };
        if !self.restored || self.lost {
            return;
        }
        let _ = self.t.exec(&RemoteCommand::write(argv(&[
            self.tool(),
            "stop",
            &self.id(),
        ])));
        match self.exec_step(i) {
            Ok((_, t0)) => self.plan.finish(
                i,
                StepStatus::Changed,
                format!("scratch guest {} destroyed", self.target),
                t0,
            ),
            Err(m) if !self.lost => {
                let f = format!(
                    "cleanup failed: {m}; destroy {} {} by hand",
                    self.tool(),
                    self.target
                );
                self.fail(FailureKind::Cleanup, f);
            }
            Err(_) => {}
        }
    }

    /// After a failure: back to the safety point when [`after_failure`] says so.
    fn roll_back(&mut self) {
        let Some(i) = self.s.rollback else { return };
        let Some(kind) = self.failure_kind() else {
            self.plan
                .finish(i, StepStatus::Skipped, "not needed", Instant::now());
            return;
        };
        if self.ctx.cli.no_rollback {
            self.plan
                .finish(i, StepStatus::Skipped, "--no-rollback", Instant::now());
            return;
        }
        let needed = after_failure(kind) == AfterFailure::RollBack;
        let Some(s) = self.safety.clone().filter(|_| needed) else {
            return;
        };
        let _ = self.t.exec(&RemoteCommand::write(argv(&[
            self.tool(),
            "stop",
            &self.id(),
        ])));
        self.plan.set_command(i, self.back_cmd(&s));
        if let Ok((_, t0)) = self.exec_step(i) {
            if self.was_running {
                let _ = self.t.exec(&RemoteCommand::write(argv(&[
                    self.tool(),
                    "start",
                    &self.id(),
                ])));
            }
            self.plan.finish(
                i,
                StepStatus::Changed,
                format!("guest {} is back as it was ({s})", self.target),
                t0,
            );
            self.rolled_back = true;
        }
    }

    /// The record: status, steps, the way back.
    fn finish(mut self) -> Restore {
        let after = self.failure_kind().map(after_failure);
        let restarted = self.stopped_by_us && after == Some(AfterFailure::StartAgain);
        if restarted {
            // Nothing was overwritten: bring the guest back up.
            let _ = self.t.exec(&RemoteCommand::write(argv(&[
                self.tool(),
                "start",
                &self.id(),
            ])));
            self.was_running = false;
        }
        self.plan.skip_rest(if self.lost {
            "connection lost"
        } else {
            "not reached"
        });
        self.rec.way_back = self.way_back();
        if let Some(l) = self.leftover {
            self.rec.extra.insert("leftover".into(), Value::from(l));
        }
        self.rec.steps = self.plan.steps;
        self.rec.duration_s = Some(seconds_since(self.started));
        let verified = self.rec.verify.is_some();
        use FailureKind::{InterruptedAfter, InterruptedBefore};
        self.rec.status = match (self.failure.as_ref().map(|f| f.kind), self.rolled_back) {
            (Some(InterruptedBefore | InterruptedAfter), _) => RestoreStatus::Interrupted,
            (None, _) if verified || self.ctx.cli.verify_only => RestoreStatus::Verified,
            (None, _) => RestoreStatus::Restored,
            (Some(_), true) => RestoreStatus::RolledBack,
            (Some(_), false) => RestoreStatus::Failed,
        };
        self.rec.error = self.failure.map(|f| f.message);
        let guest = format!("{} {}", if self.lxc { "CT" } else { "VM" }, self.target);
        if self.rec.status == RestoreStatus::Interrupted {
            pvedr::msg::say(progress::interrupted(&progress::Ended {
                guest: &guest,
                rolled_back: self.rolled_back,
                back_running: self.was_running,
                restarted,
                scratch_destroyed: step_changed(&self.rec.steps, "cleanup"),
                way_back: self.rec.way_back.is_some(),
            }));
        }
        if let Some(w) = self.rec.way_back.as_ref() {
            pvedr::msg::say(format!("way back: {w}"));
        }
        if self.stopped_by_us
            && self.restored
            && !self.rolled_back
            && !self.lost
            && !step_changed(&self.rec.steps, "start")
        {
            let node = self.rec.node.clone().unwrap_or_default();
            let start = argv(&[tool_of(self.lxc), "start", &self.target.to_string()]);
            pvedr::msg::say(progress::start_hint(&guest, &node, &start));
        }
        progress::done();
        self.rec
    }

    /// The command that undoes the run, quoted to be pasted.
    fn way_back(&self) -> Option<String> {
        let tool = self.tool();
        if self.ctx.cli.verify_only {
            // Nothing was restored: at most the guest was started.
            let started = self.s.start.is_some() && !self.ctx.cli.write.dry_run;
            return started.then(|| shell::join(&argv(&[tool, "stop", &self.id()])));
        }
        if self.ctx.cli.test || self.rolled_back {
            return None;
        }
        match (&self.safety, self.overwrite, self.restored) {
            (Some(s), true, _) => Some(shell::join(&self.back_cmd(s))),
            (None, true, false) if self.was_running => {
                Some(shell::join(&argv(&[tool, "start", &self.id()])))
            }
            (_, false, true) => Some(shell::join(&argv(&[tool, "destroy", &self.id()]))),
            (_, false, false) if self.leftover == Some("kept") => {
                Some(shell::join(&argv(&[tool, "destroy", &self.id()])))
            }
            _ => None,
        }
    }
}

fn needs_force(target: u64, node: &str) -> String {
    format!(
        "guest {target} exists on {}: overwriting it needs --force (a safety point is taken first)",
        pvedr::msg::visible(node)
    )
}

/// Whether the record's step `name` changed something.
fn step_changed(steps: &[pvedr::records::Step], name: &str) -> bool {
    steps
        .iter()
        .any(|s| s.step == name && s.status == StepStatus::Changed)
}

impl Job<'_> {
    /// What a first Ctrl-C leads to while step `i` runs: the step is finished, then what
    /// `roll_back`, `cleanup` and `finish` do after an interrupt.
    fn interrupt_answer(&self, i: StepId) -> progress::Answer {
        let name = self.plan.steps[i].step.replace('-', " ");
        if !self.t.has_shell() {
            return progress::Answer::left(&name);
        }
        let guest = format!("{} {}", if self.lxc { "CT" } else { "VM" }, self.target);
        let last = [self.s.rollback, self.s.cleanup, self.s.leftover].contains(&Some(i));
        let then = if self.ctx.cli.verify_only || last {
            "stopping".to_string()
        } else if self.restored || i == self.s.restore {
            self.then_after_restore(&guest)
        } else if self.stopped_by_us || Some(i) == self.s.stop {
            format!("starting {guest} again; nothing is overwritten")
        } else {
            "stopping; nothing is overwritten".to_string()
        };
        progress::Answer::finishing(&name, then)
    }

    /// After an interrupt once the guest is restored (see `roll_back`, `cleanup`).
    fn then_after_restore(&self, guest: &str) -> String {
        if self.s.cleanup.is_some() {
            return format!("destroying the scratch guest {}", self.target);
        }
        if !self.overwrite {
            return format!("stopping; {guest} stays restored (the way back is printed)");
        }
        if self.ctx.cli.no_rollback {
            return format!(
                "stopping; with --no-rollback {guest} stays restored (the way back is printed)"
            );
        }
        let start = if self.was_running {
            " and started again"
        } else {
            ""
        };
        format!("restoring the safety point: {guest} back as it was{start}")
    }
}
