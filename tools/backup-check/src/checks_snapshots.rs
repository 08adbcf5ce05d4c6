//! The `snapshots` check: the newest snapshot of each label per guest (`snapshot` records
//! of pve-snapshot ls) is younger than `--max-snapshot-age`. Snapshots are not backups:
//! their component is `snapshot/<vmid>/<label>`, never `guest/<vmid>`, so they count for no
//! backup check (freshness, count, retention) and for no guest's backup status.

use std::collections::BTreeMap;

use pvedr::records::{Check, Snapshot};
use pvedr::time::format_duration;
use serde_json::{Map, Value};

use crate::status::Status;
// Clock skew tolerated before a snapshot is "in the future": as for backups.
use crate::time_check::MAX_SKEW;

pub fn snapshots(snaps: &[Snapshot], max_age: u64, now: i64) -> Vec<Check> {
    // (vmid, label) → the newest snapshot with a time.
    let mut newest: BTreeMap<(u64, &str), Option<&Snapshot>> = BTreeMap::new();
    for s in snaps {
        // Only pve-snapshot's own (labelled) snapshots are scheduled; manual ones are not.
        let Some(label) = s.label.as_deref() else {
            continue;
        };
        let e = newest.entry((s.vmid, label)).or_default();
        if s.snaptime.is_some() && e.is_none_or(|n| n.snaptime < s.snaptime) {
            *e = Some(s);
        }
    }
    newest
        .into_iter()
        .map(|((vmid, label), s)| one(vmid, label, s, max_age, now))
        .collect()
}

fn one(vmid: u64, label: &str, s: Option<&Snapshot>, max_age: u64, now: i64) -> Check {
    let (status, message, value) = match s.and_then(|s| Some((s, s.snaptime?))) {
        None => (
            Status::Unknown,
            format!("no '{label}' snapshot has a time"),
            None,
        ),
        Some((s, t)) => {
            let age = now.saturating_sub(t);
            let (status, how) = if age < -MAX_SKEW {
                (Status::Warning, "is dated in the future".to_string())
            } else if age > max_age as i64 {
                (
                    Status::Warning,
                    format!(
                        "is {} old (more than {})",
                        format_duration(age as u64),
                        format_duration(max_age)
                    ),
                )
            } else {
                (
                    Status::Ok,
                    format!("is {} old", format_duration(age.max(0) as u64)),
                )
            };
            (
                status,
                format!("newest '{label}' snapshot {} {how}", s.name),
                Some(Value::from(age)),
            )
        }
    };
    Check {
        component: format!("snapshot/{vmid}/{label}"),
        check: "snapshots".into(),
        status: status.typed(),
        message,
        value,
        threshold: Some(Value::from(max_age)),
        extra: Map::new(),
    }
}
