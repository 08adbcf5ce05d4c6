//! What `create` and `prune` share at the end: a snapshot's status on its record, the
//! guests that got none, the summary and the exit code.

use std::collections::BTreeMap;
use std::time::Instant;

use pvedr::error::{Error, Result, exit_for};
use pvedr::output::Output;
use pvedr::records::{Guest, Record, Snapshot, Summary, seconds_since};
use pvedr::status::SnapshotStatus;
use pvedr::transport::CommandOutput;
use serde_json::Value;

use crate::guests;

/// A change the node did not make: refused (Proxmox said why: a lock, protection) or
/// failed; said on stderr and in the record.
pub fn mark_not_done(g: &Guest, rec: &mut Snapshot, doing: &str, out: &CommandOutput) {
    let why = guests::reason(out);
    let status = if guests::refusal(&why) {
        SnapshotStatus::Refused
    } else {
        SnapshotStatus::Failed
    };
    guests::warn(g, format!("{doing} {} {status}: {why}", rec.name));
    mark_status(rec, status, Some(why));
}

/// A change whose outcome is unknown (the connection lost mid-command): `ls` tells.
pub fn mark_unknown(g: &Guest, rec: &mut Snapshot, doing: &str, whether: &str, e: &Error) {
    let m = format!(
        "{}; whether {whether} is unknown: pve-snapshot ls --vmid {}",
        guests::lost_or_failed(e),
        g.vmid
    );
    guests::warn(g, format!("{doing} {}: {m}", rec.name));
    mark_status(rec, SnapshotStatus::Failed, Some(m));
}

/// Sets what was done to a snapshot (`status`, `message`) on its record.
pub fn mark_status(rec: &mut Snapshot, status: SnapshotStatus, message: Option<String>) {
    rec.extra
        .insert("status".into(), Value::String(status.to_string()));
    if let Some(m) = message {
        rec.extra.insert("message".into(), Value::String(m));
    }
}

/// What was done to a snapshot (kept in `extra`, where it stands after `mark` and `reason`).
pub fn status_of(rec: &Snapshot) -> Option<SnapshotStatus> {
    rec.extra
        .get("status")
        .and_then(Value::as_str)
        .map(SnapshotStatus::parse)
}

/// Guests that got no record: not in the cluster (or with an invalid node), or whose
/// snapshots could not be listed. Each counts as a failure.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unhandled {
    pub missing: usize,
    pub unreadable: usize,
}

/// The end of a `create` or `prune` run: counts by status, the summary record, the exit code.
pub fn finish(
    out: &mut Output,
    recs: &[Snapshot],
    unhandled: Unhandled,
    interrupted: bool,
    started: Instant,
) -> Result<u8> {
    let statuses: Vec<SnapshotStatus> = recs.iter().filter_map(status_of).collect();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for s in &statuses {
        *counts.entry(s.to_string()).or_default() += 1;
    }
    for (k, n) in [
        ("missing", unhandled.missing),
        ("unreadable", unhandled.unreadable),
    ] {
        if n > 0 {
            counts.insert(k.into(), n as u64);
        }
    }
    let missing = unhandled.missing + unhandled.unreadable;
    use SnapshotStatus as S;
    let good = statuses
        .iter()
        .filter(|s| matches!(s, S::Created | S::Removed | S::Planned))
        .count();
    let bad = statuses
        .iter()
        .filter(|s| matches!(s, S::Refused | S::Failed))
        .count()
        + missing;
    // A run with nothing to do (no snapshot beyond --keep) succeeded.
    let code = if good == 0 && bad == 0 && !interrupted {
        0
    } else {
        exit_for(good, bad, interrupted)
    };
    let summary = Summary {
        tool: Some("pve-snapshot".into()),
        counts: counts
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect(),
        exit_code: code,
        duration_s: Some(seconds_since(started)),
        ..Default::default()
    };
    out.write(&Record::Summary(summary))?;
    out.finish()?;
    Ok(code)
}
