//! `ls`: the selected guests' snapshots as records; with `--max-age`, a Nagios check of the
//! newest pve-snapshot snapshot of each guest.

use std::collections::BTreeMap;

use pvedr::error::Result;
use pvedr::listing::Filter;
use pvedr::msg;
use pvedr::records::{Guest, Record, Snapshot};
use pvedr::time::format_duration;

use crate::args::selection;
use crate::cli::LsArgs;
use crate::guests::{self, Ctx};
use crate::names;

pub fn run(a: &LsArgs) -> Result<u8> {
    let (filter, sel) = selection(&a.shared, false)?;
    let label = a.label.as_deref().map(names::label).transpose()?;
    let max_age = a.max_age.map(|d| d.as_secs());
    bound_the_run(a)?;
    let conn = a.shared.connect.connect()?;
    let ctx = Ctx::new(conn.transport.as_ref(), &sel)?;
    let lists = guests::list_all(ctx.t, &ctx.guests)?;
    let now = pvedr::time::now();
    let mut out = a.output.output();
    let mut unreadable = ctx.missing.len();
    let mut stale = 0;
    for (g, list) in ctx.guests.iter().zip(lists) {
        let snaps = match list {
            Ok(l) => keep(l.snapshots, label, &filter),
            Err(e) => {
                guests::warn(g, format!("cannot list its snapshots: {e}"));
                unreadable += 1;
                continue;
            }
        };
        if let Some(max) = max_age {
            stale += usize::from(!fresh(g, &snaps, max, now, label));
        }
        for s in snaps {
            out.write(&Record::Snapshot(s))?;
        }
    }
    out.finish()?;
    Ok(match (max_age, unreadable, stale) {
        (Some(_), 0, 0) => 0,
        (Some(_), 0, _) => 1,
        (Some(_), _, _) => 3,
        (None, 0, _) => 0,
        (None, _, _) => 3,
    })
}

/// The whole run's bound of the Nagios plugin (`--max-age`) when --timeout is not given.
const PLUGIN_TIMEOUT: u64 = 50;

/// With --max-age (or --timeout) the run ends by its bound: each command is cut to fit
/// (`pvedr::deadline`), and past it a watchdog says what it waited for and exits UNKNOWN.
fn bound_the_run(a: &LsArgs) -> Result<()> {
    let secs = match (&a.timeout, &a.max_age) {
        (Some(t), _) => t.as_secs(),
        (None, Some(_)) => PLUGIN_TIMEOUT,
        (None, None) => return Ok(()),
    };
    pvedr::deadline::set(std::time::Duration::from_secs(secs));
    // UNKNOWN for the plugin; a plain listing failed.
    let code = if a.max_age.is_some() { 3 } else { 1 };
    pvedr::deadline::watch(move |what| {
        msg::say(format!(
            "UNKNOWN: no answer within {} (--timeout) while {what}",
            format_duration(secs)
        ));
        std::process::exit(code);
    });
    Ok(())
}

/// The snapshots that pass `--label`, `--since`, `--until` and `--latest` (the newest of
/// each label per guest, manual snapshots as one group).
fn keep(snaps: Vec<Snapshot>, label: Option<&str>, f: &Filter) -> Vec<Snapshot> {
    let passed: Vec<Snapshot> = snaps
        .into_iter()
        .filter(|s| label.is_none_or(|l| s.label.as_deref() == Some(l)))
        .filter(|s| f.since.is_none_or(|t| s.snaptime.is_some_and(|st| st >= t)))
        .filter(|s| f.until.is_none_or(|t| s.snaptime.is_some_and(|st| st <= t)))
        .collect();
    if !f.latest {
        return passed;
    }
    // Oldest first: the last of each group is its newest.
    let mut newest: BTreeMap<Option<String>, Snapshot> = BTreeMap::new();
    for s in passed {
        newest.insert(s.label.clone(), s);
    }
    let mut v: Vec<Snapshot> = newest.into_values().collect();
    v.sort_by(|a, b| (a.snaptime, &a.name).cmp(&(b.snaptime, &b.name)));
    v
}

/// Whether the guest's newest pve-snapshot snapshot (of the label) is young enough; says
/// why not on stderr. Templates take no snapshots: always fresh.
fn fresh(g: &Guest, snaps: &[Snapshot], max: u64, now: i64, label: Option<&str>) -> bool {
    if g.template {
        return true;
    }
    let what = label.map_or("pve-snapshot".to_string(), |l| format!("'{l}'"));
    let newest = snaps
        .iter()
        .filter(|s| s.label.is_some())
        .filter_map(|s| s.snaptime)
        .max();
    match newest {
        None => {
            msg::say(format!(
                "WARNING: {} {} has no {what} snapshot",
                g.guest_type, g.vmid
            ));
            false
        }
        Some(t) if now.saturating_sub(t) > max as i64 => {
            msg::say(format!(
                "WARNING: {} {}: newest {what} snapshot is {} old (more than {})",
                g.guest_type,
                g.vmid,
                format_duration(now.saturating_sub(t).max(0) as u64),
                format_duration(max)
            ));
            false
        }
        Some(_) => true,
    }
}
