//! `prune`: per guest, keeps the newest `--keep` snapshots pve-snapshot made with the label
//! and removes the older ones, oldest first. Another label's snapshots, and any snapshot
//! pve-snapshot did not make, are never touched.

use std::time::{Duration, Instant};

use pvedr::change::Approval;
use pvedr::error::Result;
use pvedr::records::{Guest, Record, Snapshot};
use pvedr::status::SnapshotStatus;
use pvedr::transport::RemoteCommand;
use pvedr::{interrupt, shell};
use serde_json::Value;

use crate::args::changing;
use crate::cli::PruneArgs;
use crate::guests::{self, Ctx, tool};
use crate::names;
use crate::outcome::{Unhandled, finish, mark_not_done, mark_status, mark_unknown};

pub fn run(a: &PruneArgs) -> Result<u8> {
    let started = Instant::now();
    let (label, sel, conn) = changing(&a.on)?;
    let wait = a.wait_lock;
    let ctx = Ctx::new(conn.transport.as_ref(), &sel)?;
    let mut recs: Vec<Snapshot> = Vec::new();
    let mut unreadable = 0;
    for (g, list) in ctx.guests.iter().zip(guests::list_all(ctx.t, &ctx.guests)?) {
        match list {
            Ok(l) => recs.extend(marks(l.snapshots, &label, a.keep as usize)),
            Err(e) => {
                guests::warn(g, format!("cannot list its snapshots: {e}"));
                unreadable += 1;
            }
        }
    }
    let doomed = recs.iter().filter(|r| is_remove(r)).count();
    let mut interrupted = false;
    let what = format!(
        "removing {doomed} '{label}' snapshot(s) (a removed snapshot cannot come back; backups stay)"
    );
    if doomed > 0 && pvedr::change::approve(&a.changes.write, &what)? == Approval::Go {
        interrupt::install();
        interrupted = remove_all(&ctx, &mut recs, wait);
    } else {
        for r in recs.iter_mut().filter(|r| is_remove(r)) {
            mark_status(r, SnapshotStatus::Planned, None);
        }
    }
    let mut out = a.changes.output.output();
    for r in &recs {
        out.write(&Record::Snapshot(r.clone()))?;
    }
    let unhandled = Unhandled {
        missing: ctx.missing.len(),
        unreadable,
    };
    finish(&mut out, &recs, unhandled, interrupted, started)
}

fn is_remove(r: &Snapshot) -> bool {
    r.extra.get("mark").and_then(Value::as_str) == Some("remove")
}

fn mark(mut s: Snapshot, mark: &str, reason: String) -> Snapshot {
    s.extra.insert("mark".into(), Value::String(mark.into()));
    s.extra.insert("reason".into(), Value::String(reason));
    s
}

/// The label's snapshots of one guest, each marked, oldest first; nothing else is returned.
/// They are ordered by the time in their names (`<label>-<YYYYMMDD-HHMMSS>`, which sorts as
/// it reads), never by `snaptime`: a node may list 0, text or a future time there, and the
/// newest must not be taken for the oldest. `snapshots` hold each name once
/// ([`guests::list_all`]).
fn marks(snapshots: Vec<Snapshot>, label: &str, keep: usize) -> Vec<Snapshot> {
    let mut labelled: Vec<Snapshot> = snapshots
        .into_iter()
        .filter(|s| names::label_of(&s.name) == Some(label))
        .collect();
    labelled.sort_by(|a, b| b.name.cmp(&a.name));
    let mut out = Vec::new();
    let mut kept = 0;
    for s in labelled {
        if s.label.is_none() {
            out.push(mark(
                s,
                "keep",
                "not made by pve-snapshot (description)".into(),
            ));
        } else if let Some(state) = s.extra.get("snapstate").and_then(Value::as_str) {
            let why = format!("incomplete (snapstate {state})");
            out.push(mark(s, "keep", why));
        } else if kept < keep {
            kept += 1;
            out.push(mark(s, "keep", format!("keep {keep}")));
        } else {
            out.push(mark(s, "remove", format!("beyond keep {keep}")));
        }
    }
    out.reverse();
    out
}

/// Removes the marked snapshots, oldest first, guest by guest. Whether it was interrupted.
fn remove_all(ctx: &Ctx, recs: &mut [Snapshot], wait: Option<Duration>) -> bool {
    let mut waited: Vec<u64> = Vec::new();
    let kept: Vec<(u64, String)> = recs
        .iter()
        .filter(|r| !is_remove(r))
        .map(|r| (r.vmid, r.name.clone()))
        .collect();
    for r in recs.iter_mut().filter(|r| is_remove(r)) {
        if interrupt::requested() {
            mark_status(
                r,
                SnapshotStatus::Skipped,
                Some("interrupted before its turn".into()),
            );
            continue;
        }
        let Some(g) = ctx.guests.iter().find(|g| g.vmid == r.vmid) else {
            continue;
        };
        if kept.contains(&(r.vmid, r.name.clone())) {
            // Unreachable with names listed once; a kept snapshot is never removed.
            mark_status(r, SnapshotStatus::Skipped, Some("also marked keep".into()));
            continue;
        }
        if let (Some(_), Some(w)) = (&g.lock, wait)
            && !waited.contains(&g.vmid)
        {
            waited.push(g.vmid);
            match ctx.wait_unlocked(g, w) {
                Ok(Some(l)) => guests::warn(g, format!("still locked ({l})")),
                Ok(None) => {}
                Err(e) => guests::warn(g, format!("cannot read the lock: {e}")),
            }
        }
        remove(ctx, g, r);
    }
    interrupt::requested()
}

fn remove(ctx: &Ctx, g: &Guest, r: &mut Snapshot) {
    let cmd = RemoteCommand::write([tool(g), "delsnapshot", &g.vmid.to_string(), &r.name]);
    r.extra
        .insert("command".into(), Value::String(shell::join(&cmd.argv)));
    let node = g.node.clone().unwrap_or_default();
    match ctx.on_node(&node, &cmd) {
        Ok(o) if o.success() => mark_status(r, SnapshotStatus::Removed, None),
        Ok(o) => mark_not_done(g, r, "removing snapshot", &o),
        Err(e) => mark_unknown(g, r, "removing snapshot", "it is gone", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str, t: i64, ours: bool) -> Snapshot {
        Snapshot {
            name: name.into(),
            snaptime: Some(t),
            label: ours.then(|| names::label_of(name).unwrap_or("x").to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_the_newest_of_the_label_only() {
        let list = vec![
            snap("daily-20240111-020000", 1, true),
            snap("weekly-20240112-020000", 2, true),
            snap("daily-20240113-020000", 3, false),
            snap("daily-20240114-020000", 4, true),
            snap("before-upgrade", 5, false),
            snap("daily-20240115-020000", 6, true),
        ];
        let m: Vec<(String, String)> = marks(list, "daily", 2)
            .into_iter()
            .map(|s| (s.name, s.extra["mark"].as_str().unwrap_or("").to_string()))
            .collect();
        let want = [
            ("daily-20240111-020000", "remove"),
            ("daily-20240113-020000", "keep"),
            ("daily-20240114-020000", "keep"),
            ("daily-20240115-020000", "keep"),
        ];
        assert_eq!(m.len(), want.len());
        for ((n, k), (wn, wk)) in m.iter().zip(want) {
            assert_eq!((n.as_str(), k.as_str()), (wn, wk));
        }
    }

    #[test]
    fn the_name_orders_not_a_lying_snaptime() {
        // Listed oldest first by snaptime: the newest says 0, an old one the future.
        let list = vec![
            snap("daily-20240115-020000", 0, true),
            snap("daily-20240113-020000", 1, true),
            snap("daily-20240114-020000", 2, true),
            snap("daily-20240111-020000", 4_000_000_000, true),
        ];
        let m: Vec<(String, String)> = marks(list, "daily", 2)
            .into_iter()
            .map(|s| (s.name, s.extra["mark"].as_str().unwrap_or("").to_string()))
            .collect();
        let names: Vec<(&str, &str)> = m.iter().map(|(n, k)| (n.as_str(), k.as_str())).collect();
        assert_eq!(
            names,
            [
                ("daily-20240111-020000", "remove"),
                ("daily-20240113-020000", "remove"),
                ("daily-20240114-020000", "keep"),
                ("daily-20240115-020000", "keep"),
            ]
        );
    }
}
