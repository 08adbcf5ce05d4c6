//! `--vmid N --snapshot NAME`: roll a guest back to a snapshot, after a safety point.

use std::time::Instant;

use pvedr::error::Result;
use pvedr::plan::{Plan, StepId};
use pvedr::pve::{GuestConfig, Kind, Resource};
use pvedr::records::{Restore, RestoreStatus, StepStatus, seconds_since};
use pvedr::shell;
use pvedr::transport::{RemoteCommand, Transport};
use serde_json::{Value, json};

use crate::guest::{self, argv, node_of, restore_cmd, tool_of};
use crate::progress;
use crate::restore::{Ctx, refused};

pub fn rollback(ctx: &Ctx, vmid: u64, snap: &str, node: &str) -> Result<Restore> {
    let started = Instant::now();
    let mut rec = Restore {
        vmid: Some(vmid),
        target_vmid: Some(vmid),
        node: Some(node.into()),
        dry_run: ctx.cli.write.dry_run,
        status: RestoreStatus::Planned,
        ..Default::default()
    };
    rec.extra.insert("snapshot".into(), Value::from(snap));
    let mut plan = Plan::default();
    let (e, storage) = match guest_to_roll_back(ctx, vmid, snap, &mut rec) {
        Ok(g) => g,
        Err(msg) => return Ok(refused(rec, plan, msg, started)),
    };
    let (lxc, node) = (e.r#type == Kind::Lxc, node_of(&e));
    let (i_lock, i_safety, i_rb) = plan_rollback(&mut plan, &e, snap, &storage);
    let t0 = Instant::now();
    let hop = match ctx.cluster.route(ctx.t, node) {
        Ok(h) => h,
        Err(err) => return Ok(refused(rec, plan, err.to_string(), started)),
    };
    let t: &dyn Transport = match &hop {
        Some(h) => h.as_ref(),
        None => ctx.t,
    };
    let (ct_storage, target) = match check_guest(ctx, t, &mut plan, &e, snap, (i_lock, t0)) {
        Ok(c) => c,
        Err(msg) => return Ok(refused(rec, plan, msg, started)),
    };
    plan.print(&format!(
        "plan for rolling {vmid} back to '{snap}' on {node}:"
    ));
    if ctx.cli.write.dry_run {
        if !ctx.cli.force {
            plan.skip_rest("needs --force");
            let msg = format!("dry run: {}", needs_force(vmid, snap));
            return Ok(refused(rec, plan, msg, started));
        }
        rec.steps = plan.steps;
        return Ok(rec);
    }
    pvedr::cli::confirm(
        &format!("rolling {vmid} back to snapshot '{snap}'"),
        ctx.cli.write.yes,
    )?;
    let _lock = guest::lock_target(ctx.t.host(), ctx.port, vmid)?;
    let ids = Ids {
        safety: i_safety,
        rollback: i_rb,
        lxc,
        vmid,
        storage,
        ct_storage,
        snap,
        // Running after: asked to start, or a VM resumed from the snapshot's RAM.
        running: e.running() || (!lxc && target.vmstate),
    };
    Ok(execute(t, rec, plan, &ids, started))
}

/// The guest (it exists, has the snapshot, --force is given) and the safety point's
/// storage; `Err` is the refusal. `rec` gets the guest's node.
fn guest_to_roll_back(
    ctx: &Ctx,
    vmid: u64,
    snap: &str,
    rec: &mut Restore,
) -> std::result::Result<(Resource, String), String> {
    let present = guest::resources(ctx.t).map_err(|e| format!("{e}; nothing was changed"))?;
    let Some(e) = present.get(&vmid).cloned() else {
        return Err(format!("guest {vmid} does not exist"));
    };
    let (lxc, node) = (e.r#type == Kind::Lxc, node_of(&e));
    rec.node = Some(node.into());
    if let Some(msg) = missing_snapshot(ctx.t, node, lxc, vmid, snap) {
        return Err(msg);
    }
    // A dry run shows the whole plan first, then says it needs --force.
    if !ctx.cli.force && !ctx.cli.write.dry_run {
        return Err(needs_force(vmid, snap));
    }
    let storage = match ctx.o.safety_storage.clone() {
        Some(s) => s,
        None => crate::safety::storage_for(ctx.t, vmid, &e)?,
    };
    Ok((e, storage))
}

/// The steps: the lock check, the safety point, the rollback (their ids, in that order).
fn plan_rollback(
    plan: &mut Plan,
    e: &Resource,
    snap: &str,
    storage: &str,
) -> (StepId, StepId, StepId) {
    let (lxc, node, vmid) = (e.r#type == Kind::Lxc, node_of(e), e.vmid);
    let (tool, id) = (tool_of(lxc), vmid.to_string());
    let i_lock = plan.read(
        "check-lock",
        &id,
        "a locked guest must not be touched",
        Some(guest::at(node, lxc, vmid).config_cmd().argv),
    );
    let note = format!("pvedr safety point before rollback to {snap}");
    let i_safety = plan.change(
        "safety-point",
        &id,
        "a vzdump of the current state to come back to",
        Some(guest::safety_point_cmd(&id, storage, "snapshot", &note, 1)),
    );
    // A rollback stops the guest (pve-guest-common `AbstractConfig.pm` `snapshot_rollback`);
    // `--start 1` brings a running one back up (qemu-server `API2/Qemu.pm`, pve-container
    // `API2/LXC/Snapshot.pm` `rollback`).
    let mut rb = argv(&[tool, "rollback", &id, snap]);
    if e.running() {
        rb.extend(argv(&["--start", "1"]));
    }
    let i_rb = plan.change("rollback", &id, "back to the snapshot", Some(rb));
    (i_lock, i_safety, i_rb)
}

/// The lock check (step `i_lock`, begun at `t0`) and whether Proxmox would roll back:
/// a container's storage for the way back and the snapshot; `Err` is the refusal.
fn check_guest(
    ctx: &Ctx,
    t: &dyn Transport,
    plan: &mut Plan,
    e: &Resource,
    snap: &str,
    (i_lock, t0): (StepId, Instant),
) -> std::result::Result<(Option<String>, guest::Snap), String> {
    let (lxc, node, vmid) = (e.r#type == Kind::Lxc, node_of(e), e.vmid);
    // A container's way back needs its storage: `pct restore` alone puts it on `local`.
    let config = match guest::config(t, node, lxc, vmid) {
        Ok(Ok(c)) => c,
        Ok(Err(m)) => return Err(m),
        Err(e) => return Err(e.to_string()),
    };
    let ct_storage = config.rootfs_storage().filter(|_| lxc).map(str::to_string);
    if let Some(l) = config.lock.clone() {
        plan.finish(i_lock, StepStatus::Failed, format!("locked ({l})"), t0);
        plan.skip_rest("refused");
        return Err(format!("guest {vmid} is locked ({l})"));
    }
    plan.finish(i_lock, StepStatus::Ok, "not locked", t0);
    match rollback_possible(ctx.t, node, lxc, vmid, snap, &config) {
        Ok(target) => Ok((ct_storage, target)),
        Err(msg) => {
            plan.skip_rest("refused");
            Err(msg)
        }
    }
}

/// The snapshot, or why the rollback cannot be done, before the safety point: the snapshot
/// is not the guest's (`current` is the "You are here!" entry of the list, no snapshot), or
/// Proxmox would refuse it after our safety point and stop (see [`not_most_recent`]).
fn rollback_possible(
    t: &dyn Transport,
    node: &str,
    lxc: bool,
    vmid: u64,
    snap: &str,
    config: &GuestConfig,
) -> std::result::Result<guest::Snap, String> {
    let list = guest::snapshot_list(t, node, lxc, vmid).map_err(|e| {
        format!("cannot list the snapshots of guest {vmid}: {e}; nothing was changed")
    })?;
    let Some(target) = list.iter().find(|s| s.name == snap).cloned() else {
        let mut names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        return Err(if names.is_empty() {
            format!("guest {vmid} has no snapshot; nothing was changed")
        } else {
            format!(
                "guest {vmid} has no snapshot '{snap}' (it has: {}); nothing was changed",
                pvedr::msg::visible(&names.join(", "))
            )
        });
    };
    match not_most_recent(t, node, &list, &target, config) {
        Ok(None) => Ok(target),
        Ok(Some(msg)) => Err(format!("guest {vmid}: {msg}; nothing was changed")),
        Err(e) => Err(format!(
            "cannot read the storages of node {node}: {e}; nothing was changed"
        )),
    }
}

fn needs_force(vmid: u64, snap: &str) -> String {
    format!(
        "rolling {vmid} back to '{snap}' discards its current state: needs --force (a safety point is taken first)"
    )
}

/// Why the rollback is refused when the guest has no snapshot `snap` (the ones it has
/// named), checked first: a mistyped name is told before --force or a storage is asked for.
fn missing_snapshot(
    t: &dyn Transport,
    node: &str,
    lxc: bool,
    vmid: u64,
    snap: &str,
) -> Option<String> {
    let list = match guest::snapshot_list(t, node, lxc, vmid) {
        Ok(l) => l,
        Err(e) => {
            return Some(format!(
                "cannot list the snapshots of guest {vmid}: {e}; nothing was changed"
            ));
        }
    };
    if list.iter().any(|s| s.name == snap) {
        return None;
    }
    let mut names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    Some(match names.is_empty() {
        true => format!("guest {vmid} has no snapshot; nothing was changed"),
        false => format!(
            "guest {vmid} has no snapshot '{snap}' (it has: {}); nothing was changed",
            pvedr::msg::visible(&names.join(", "))
        ),
    })
}

/// Storage types whose volumes roll back to their most recent snapshot only (pve-storage
/// `ZFSPoolPlugin.pm` `volume_rollback_is_possible`, inherited by `ZFSPlugin.pm`).
const MOST_RECENT_ONLY: &[&str] = &["zfspool", "zfs"];

/// Why ZFS refuses the rollback ("can't rollback, 'X' is not most recent snapshot"):
/// snapshots taken after the target, named with the disks that hold them.
fn not_most_recent(
    t: &dyn Transport,
    node: &str,
    list: &[guest::Snap],
    target: &guest::Snap,
    config: &GuestConfig,
) -> Result<Option<String>> {
    let mut newer: Vec<&str> = list
        .iter()
        .filter(|s| s.name != target.name && s.snaptime > target.snaptime)
        .map(|s| s.name.as_str())
        .collect();
    if newer.is_empty() {
        return Ok(None);
    }
    newer.sort_unstable();
    let types = guest::storage_types(t, node)?;
    let on_zfs: Vec<guest::Volume> = guest::disks(config)
        .into_iter()
        .filter(|d| {
            let sid = d.volume.split_once(':').map_or("", |(s, _)| s);
            types
                .get(sid)
                .is_some_and(|ty| MOST_RECENT_ONLY.contains(&ty.as_str()))
        })
        .collect();
    Ok((!on_zfs.is_empty()).then(|| {
        format!(
            "ZFS rolls back only to the most recent snapshot, and '{}' has newer ones: {} (on {}); delete them first or restore a backup",
            pvedr::msg::visible(&target.name),
            pvedr::msg::visible(&newer.join(", ")),
            guest::Volume::list(&on_zfs)
        )
    }))
}

/// The steps of a rollback, and what they need.
struct Ids<'a> {
    safety: StepId,
    rollback: StepId,
    lxc: bool,
    vmid: u64,
    storage: String,
    /// Where a container's volumes go back (its root file system's storage).
    ct_storage: Option<String>,
    snap: &'a str,
    /// Whether the guest runs after the rollback.
    running: bool,
}

/// The safety point, then the rollback: always a record.
fn execute(
    t: &dyn Transport,
    mut rec: Restore,
    mut plan: Plan,
    ids: &Ids,
    started: Instant,
) -> Restore {
    let (i_safety, i_rb, lxc, vmid) = (ids.safety, ids.rollback, ids.lxc, ids.vmid);
    let storage = ids.storage.clone();
    // From the first change on, a signal lets the running step finish and stops before the
    // next (interrupt module): a rollback half-started by a dying client is worse.
    pvedr::interrupt::install();
    let t0 = Instant::now();
    let running = progress::start(
        &plan,
        i_safety,
        &progress::Answer::over(
            t,
            "safety point",
            "stopping: the rollback is not started, the guest stays as it is",
        ),
    );
    let done = t.exec(&RemoteCommand::write(plan.command(i_safety).to_vec()));
    drop(running);
    let out = match done {
        Ok(out) if out.success() => out,
        Ok(out) => {
            plan.finish(i_safety, StepStatus::Failed, guest::status_line(&out), t0);
            return ended(
                rec,
                plan,
                "safety point failed; nothing was changed",
                started,
            );
        }
        Err(e) => {
            plan.finish(i_safety, StepStatus::Failed, e.lost(), t0);
            return ended(
                rec,
                plan,
                "connection lost during the safety point; nothing was rolled back",
                started,
            );
        }
    };
    let v = guest::safety_point_volid(&String::from_utf8_lossy(&out.stdout), &storage);
    plan.finish(
        i_safety,
        StepStatus::Changed,
        format!("safety point {}", v.as_deref().unwrap_or("?")),
        t0,
    );
    rec.safety_point = v.as_ref().map(|v| json!({"volid": v, "storage": storage}));
    let back_storage = ids.ct_storage.as_deref();
    rec.way_back = v.map(|v| shell::join(&restore_cmd(lxc, &v, vmid, true, back_storage, false)));
    if pvedr::interrupt::requested() {
        plan.skip_rest("interrupted");
        pvedr::msg::say(
            "interrupted: the safety point was finished, the rollback was not started; the guest is as it was, nothing is left to undo",
        );
        rec.way_back = None;
        rec.status = RestoreStatus::Interrupted;
        rec.steps = plan.steps;
        rec.duration_s = Some(seconds_since(started));
        return rec;
    }
    let t0 = Instant::now();
    let running = progress::start(
        &plan,
        i_rb,
        &progress::Answer::over(t, "rollback", "stopping"),
    );
    let done = t.exec(&RemoteCommand::write(plan.command(i_rb).to_vec()));
    drop(running);
    progress::done();
    match done {
        Ok(out) if out.success() => {
            plan.finish(i_rb, StepStatus::Changed, rolled_back(ids), t0);
            rec.extra.insert("running".into(), Value::from(ids.running));
            rec.status = RestoreStatus::Restored;
            // A restore over a running guest is refused (`create_vm`: "VM is running").
            if ids.running {
                let stop = shell::join(&argv(&[tool_of(lxc), "stop", &vmid.to_string()]));
                rec.way_back = rec.way_back.take().map(|w| format!("{stop} && {w}"));
            }
        }
        Ok(out) => {
            let m = guest::status_line(&out);
            plan.finish(i_rb, StepStatus::Failed, m.clone(), t0);
            rec.status = RestoreStatus::Failed;
            rec.error = Some(m);
        }
        Err(e) => {
            plan.finish(
                i_rb,
                StepStatus::Failed,
                format!("{}; the guest's state is unknown", e.lost()),
                t0,
            );
            rec.status = RestoreStatus::Failed;
            rec.error = Some(e.lost());
        }
    }
    if let Some(w) = &rec.way_back {
        pvedr::msg::say(format!("way back: {w}"));
    }
    rec.steps = plan.steps;
    rec.duration_s = Some(seconds_since(started));
    rec
}

/// What the rollback did, and how to start a guest it left stopped.
fn rolled_back(ids: &Ids) -> String {
    let snap = ids.snap;
    if ids.running {
        return format!("rolled back to '{snap}'; the guest is running");
    }
    let start = shell::join(&argv(&[tool_of(ids.lxc), "start", &ids.vmid.to_string()]));
    format!("rolled back to '{snap}'; the guest is stopped (start it: {start})")
}

fn ended(mut rec: Restore, mut plan: Plan, why: &str, started: Instant) -> Restore {
    plan.skip_rest("no safety point");
    rec.status = RestoreStatus::Failed;
    rec.error = Some(why.into());
    rec.steps = plan.steps;
    rec.duration_s = Some(seconds_since(started));
    rec
}
