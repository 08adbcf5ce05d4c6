//! Restoring one guest, in phases: select (target, refusals), plan, check (read-only),
//! change (stop, safety point, restore), verify (isolate, start, probes), clean up, roll
//! back. Every phase ends in the `restore` record: a connection lost after the first
//! change says which steps ran and how to get back, and the commands run are the plan's.
//!
//! One file per phase: `select` (target and refusals), `plan`, `checks` (read-only),
//! `change`, `verify` (isolate, start, probes, the drill's clean-up) and `rollback` (what a
//! failure leads to, the rollback, the record's end and the way back).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use pvedr::error::Result;
use pvedr::plan::{Plan, StepId};
use pvedr::pve::{GuestConfig, Kind, Resource};
use pvedr::records::{Backup, Restore, RestoreStatus, StepStatus, seconds_since};
use pvedr::retry::{Retry, poll_until};
use pvedr::shell;
use pvedr::transport::{CommandOutput, RemoteCommand, Transport};
use pvedr::validate;
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::guest::{self, argv, node_of, restore_cmd, tool_of};
use crate::options::Options;
use crate::probe::{self, ProbeTarget};
use crate::progress;
use crate::remap::Remap;

mod ahead;
mod change;
mod checks;
mod plan;
mod rollback;
mod select;
mod stream;
mod verify;

use rollback::*;
use select::*;

pub use ahead::prefetch;
pub use rollback::refused;

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
    /// Set when a drill's qmrestore or pct restore found its scratch VMID taken by a guest
    /// created since it was chosen (another machine's drill): the caller may try another.
    pub scratch_taken: std::cell::Cell<bool>,
    /// What the guests' plans share: node facts, the cluster's guests, archive configs
    /// ([`prefetch`] reads them ahead, in parallel).
    pub cache: &'a crate::cache::RunCache,
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
    /// Under maps: disk moves and the NICs' new bridges, after the restore.
    remap: Vec<StepId>,
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
    /// Where the maps put each disk and NIC (`--target-storage`, `--target-bridge`).
    remap: Option<Remap>,
    /// The overwritten guest's pool: the restore keeps the membership (user.cfg).
    pool: Option<String>,
    /// The target's config as the lock check read it (overwrite).
    conf: Option<GuestConfig>,
    /// What the overwrite deletes for good (snapshots, volumes), said in the restore step.
    loss: Option<String>,
    /// qmrestore's leftover after a failed restore to a new VMID: removed or kept.
    leftover: Option<&'static str>,
    /// An offsite record: the archive streams from S3 (`stream`).
    streamed: Option<stream::Streamed>,
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

/// Restores one backup. `Err` only for what stops the whole run (no confirmation);
/// everything else, connection failures included, ends up in the record.
pub fn restore_one(ctx: &Ctx, mut b: Backup, default_node: &str) -> Result<Restore> {
    let started = Instant::now();
    let offsite = from_name_and_place(&mut b);
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
    let chosen = match choose(ctx, &b, offsite, &node, &mut rec) {
        Ok(c) => c,
        Err(early) => return early.end(rec, started),
    };
    let on = rec.node.clone().unwrap_or(node);
    let hop = match ctx.cluster.route(ctx.t, &on) {
        Ok(h) => h,
        Err(e) => return Early::Refused(e.to_string()).end(rec, started),
    };
    let t: &dyn Transport = match &hop {
        Some(h) => h.as_ref(),
        None => ctx.t,
    };
    let (target_storage, remap) = match placement(ctx, t, &b, &on, &chosen) {
        Ok(p) => p,
        Err(early) => return early.end(rec, started),
    };
    let storage = b.storage.clone().unwrap_or_default();
    let Chosen {
        target,
        existing,
        streamed,
        lxc,
    } = chosen;
    let mut job = Job {
        target_storage,
        remap,
        storage,
        overwrite: existing.is_some(),
        was_running: existing.as_ref().is_some_and(Resource::running),
        pool: existing.as_ref().and_then(|e| e.pool.clone()),
        streamed,
        ..Job::new(ctx, t, b, rec, started, lxc, target)
    };
    job.build_plan();
    if let Some(r) = &job.remap {
        for (k, v) in r.record(ctx.o.maps.drop_passthrough) {
            job.rec.extra.insert(k.into(), v);
        }
    }
    job.run()
}

/// The backup's format from its file's name, and its offsite origin (whose node is not
/// where it goes).
fn from_name_and_place(
    b: &mut Backup,
) -> Option<std::result::Result<crate::offsite::Offsite, String>> {
    // A file's format is its name's (what the archive test and qmrestore go by), whatever
    // the record says; whether it is on PBS is the node's storage type (check_archive).
    let file = b.volid.rsplit('/').next().unwrap_or_default();
    if let Some(a) = pvedr::archive::parse(file) {
        b.format = a.format;
    }
    // An offsite copy goes to --node or this node, not to the node it was taken on.
    let offsite = crate::offsite::of(b);
    if offsite.is_some() {
        b.node = None;
    }
    offsite
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
    rec.node = Some(node_of(g).into());
    let hop = match ctx.cluster.route(ctx.t, node_of(g)) {
        Ok(h) => h,
        Err(e) => return Ok(refused(rec, Plan::default(), e.to_string(), started)),
    };
    let t: &dyn Transport = match &hop {
        Some(h) => h.as_ref(),
        None => ctx.t,
    };
    let b = Backup {
        vmid: Some(vmid),
        subtype: g.r#type.as_str().into(),
        ..Default::default()
    };
    let lxc = g.r#type == Kind::Lxc;
    let mut job = Job {
        was_running: g.running(),
        // The guest is there as if just restored: only the verify phase runs.
        restored: true,
        ..Job::new(ctx, t, b, rec, started, lxc, vmid)
    };
    job.plan_verify();
    job.run_verify()
}

impl<'a> Job<'a> {
    /// A job for `b` onto `target` with nothing planned or done yet.
    fn new(
        ctx: &'a Ctx<'a>,
        t: &'a dyn Transport,
        b: Backup,
        rec: Restore,
        started: Instant,
        lxc: bool,
        target: u64,
    ) -> Self {
        Job {
            ctx,
            t,
            b,
            lxc,
            target,
            storage: String::new(),
            target_storage: None,
            overwrite: false,
            was_running: false,
            remap: None,
            pool: None,
            conf: None,
            loss: None,
            leftover: None,
            streamed: None,
            plan: Plan::default(),
            s: Steps::default(),
            rec,
            started,
            safety: None,
            failure: None,
            lost: false,
            stopped_by_us: false,
            restored: false,
            rolled_back: false,
        }
    }

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
        // The node changes from here: the next guest's plan reads it again.
        self.ctx.cache.changed();
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
}
