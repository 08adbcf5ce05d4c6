//! `create`: one snapshot per selected guest, on the guest's own node, named by the label
//! and the node's local time. Whatever Proxmox refuses is reported with its reason.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pvedr::error::Result;
use pvedr::records::{Guest, Record, Snapshot};
use pvedr::status::SnapshotStatus;
use pvedr::transport::RemoteCommand;
use pvedr::{interrupt, msg, shell};
use serde_json::Value;

use crate::args::changing;
use crate::cli::CreateArgs;
use crate::guests::{self, Ctx, tool};
use crate::names;
use crate::outcome::{Unhandled, finish, mark_not_done, mark_status, mark_unknown, status_of};

pub fn run(a: &CreateArgs) -> Result<u8> {
    let started = Instant::now();
    let (label, sel, conn) = changing(&a.on)?;
    let wait = a.wait_lock;
    let ctx = Ctx::new(conn.transport.as_ref(), &sel)?;
    if !ctx.guests.is_empty() {
        // A dry run goes on: each guest's record says what would be done.
        pvedr::change::approve(
            &a.changes.write,
            &format!(
                "taking a '{label}' snapshot of {} guest(s) (each record's way_back removes it)",
                ctx.guests.len()
            ),
        )?;
    }
    interrupt::install();
    let mut stamps: BTreeMap<String, Result<String, String>> = BTreeMap::new();
    let mut recs = Vec::new();
    let mut interrupted = false;
    for g in &ctx.guests {
        if interrupt::requested() {
            interrupted = true;
            break;
        }
        let job = Job {
            ctx: &ctx,
            label: &label,
            vmstate: a.vmstate,
            dry_run: a.changes.write.dry_run,
            wait,
        };
        recs.push(job.one(g, &mut stamps));
    }
    // A wait on a task ended by Ctrl-C fails that guest's record; the run was interrupted.
    interrupted |= interrupt::requested();
    refresh(&ctx, &mut recs);
    let mut out = a.changes.output.output();
    for r in &recs {
        out.write(&Record::Snapshot(r.clone()))?;
    }
    let unhandled = Unhandled {
        missing: ctx.missing.len(),
        unreadable: 0,
    };
    finish(&mut out, &recs, unhandled, interrupted, started)
}

struct Job<'a> {
    ctx: &'a Ctx<'a>,
    label: &'a str,
    vmstate: bool,
    dry_run: bool,
    wait: Option<Duration>,
}

impl Job<'_> {
    /// One guest's snapshot: always a record, whatever happened.
    fn one(&self, g: &Guest, stamps: &mut BTreeMap<String, Result<String, String>>) -> Snapshot {
        let node = g.node.clone().unwrap_or_default();
        let mut rec = Snapshot {
            node: g.node.clone(),
            vmid: g.vmid,
            guest_type: g.guest_type.clone(),
            label: Some(self.label.into()),
            description: Some(names::description(self.label)),
            ..Default::default()
        };
        if g.status.as_deref() == Some("unknown") {
            let m = format!("node {node} is offline: its guests cannot be snapshotted");
            guests::warn(g, &m);
            mark_status(&mut rec, SnapshotStatus::Refused, Some(m));
            return rec;
        }
        let stamp = stamps
            .entry(node.clone())
            .or_insert_with(|| self.ctx.node_stamp(&node).map_err(|e| e.to_string()));
        match stamp {
            Ok(s) => rec.name = names::name(self.label, s),
            Err(e) => {
                let m = format!("cannot read the node's clock (it names the snapshot): {e}");
                guests::warn(g, &m);
                mark_status(&mut rec, SnapshotStatus::Failed, Some(m));
                return rec;
            }
        }
        let cmd = self.command(g, &rec.name);
        rec.extra
            .insert("command".into(), Value::String(cmd.line()));
        if self.dry_run {
            mark_status(&mut rec, SnapshotStatus::Planned, foreseen(g));
            return rec;
        }
        if let (Some(_), Some(w)) = (&g.lock, self.wait) {
            match self.ctx.wait_unlocked(g, w) {
                Ok(Some(l)) => guests::warn(g, format!("still locked ({l})")),
                Ok(None) => {}
                Err(e) => guests::warn(g, format!("cannot read the lock: {e}")),
            }
        }
        self.take(g, &node, &cmd, rec)
    }

    fn command(&self, g: &Guest, name: &str) -> RemoteCommand {
        let id = g.vmid.to_string();
        let desc = names::description(self.label);
        let mut argv = vec![tool(g), "snapshot", &id, name, "--description", &desc];
        if self.vmstate && g.guest_type == "qemu" {
            argv.extend(["--vmstate", "1"]);
        }
        RemoteCommand::write(argv)
    }

    fn take(&self, g: &Guest, node: &str, cmd: &RemoteCommand, mut rec: Snapshot) -> Snapshot {
        match self.ctx.on_node(node, cmd) {
            Ok(o) if o.success() => {
                let back = shell::join(&[tool(g), "delsnapshot", &g.vmid.to_string(), &rec.name]);
                rec.extra.insert("way_back".into(), Value::String(back));
                mark_status(&mut rec, SnapshotStatus::Created, self.note(g));
            }
            Ok(o) => mark_not_done(g, &mut rec, "snapshot", &o),
            Err(e) => mark_unknown(g, &mut rec, "snapshot", "the snapshot exists", &e),
        }
        rec
    }

    /// What `--vmstate` cannot give.
    fn note(&self, g: &Guest) -> Option<String> {
        if !self.vmstate {
            return None;
        }
        if g.guest_type == "lxc" {
            return Some("containers have no RAM state: snapshot without it".into());
        }
        (g.status.as_deref() != Some("running"))
            .then(|| "VM not running: Proxmox saves no RAM state".into())
    }
}

/// In a dry run, what Proxmox is known to refuse (AbstractConfig.pm `__snapshot_prepare`).
fn foreseen(g: &Guest) -> Option<String> {
    if g.template {
        return Some("would be refused: you can't take a snapshot if it's a template".into());
    }
    let kind = if g.guest_type == "lxc" { "CT" } else { "VM" };
    g.lock
        .as_ref()
        .map(|l| format!("would be refused unless the lock goes: {kind} is locked ({l})"))
}

/// Fills what Proxmox recorded (snaptime, parent, vmstate) into the created snapshots'
/// records, in one round trip. A failure here loses nothing: the records stay as they are.
fn refresh(ctx: &Ctx, recs: &mut [Snapshot]) {
    let idx: Vec<usize> = (0..recs.len())
        .filter(|&i| status_of(&recs[i]) == Some(SnapshotStatus::Created))
        .collect();
    let guests: Vec<Guest> = idx
        .iter()
        .filter_map(|&i| ctx.guests.iter().find(|g| g.vmid == recs[i].vmid).cloned())
        .collect();
    if guests.is_empty() {
        return;
    }
    let lists = match guests::list_all(ctx.t, &guests) {
        Ok(l) => l,
        Err(e) => {
            msg::warn(format!("cannot read the new snapshots back: {e}"));
            return;
        }
    };
    for (&i, list) in idx.iter().zip(lists) {
        let Ok(list) = list else { continue };
        if let Some(s) = list.snapshots.into_iter().find(|s| s.name == recs[i].name) {
            let extra = std::mem::take(&mut recs[i].extra);
            recs[i] = Snapshot {
                extra: s.extra.into_iter().chain(extra).collect(),
                ..s
            };
        }
    }
}
