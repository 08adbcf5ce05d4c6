//! The metrics of restore evidence and guests that are gone, labelled `guest` (the VMID):
//! last successful drill, its duration and throughput, RPO, orphaned backups.

use std::collections::BTreeMap;

use pvedr::records::Backup;

use crate::inputs::Inputs;
use crate::prom::gauge;

/// Clock skew tolerated before a backup counts as dated in the future (as the `time` check).
const MAX_SKEW: i64 = 300;

fn label(vmid: u64) -> String {
    format!("guest=\"{vmid}\"")
}

pub fn metrics(m: &mut String, inputs: &Inputs, orphans: &BTreeMap<u64, Vec<&Backup>>, now: i64) {
    let drills = inputs.drills.samples(&inputs.backups);
    gauge(
        m,
        "pvedr_restore_drill_last_success_timestamp_seconds",
        "Unix time the last successful restore drill of the guest started.",
        drills
            .iter()
            .map(|(v, t, _, _)| (label(*v), t.to_string()))
            .collect(),
    );
    gauge(
        m,
        "pvedr_restore_drill_duration_seconds",
        "Duration in seconds of the last successful restore drill of the guest.",
        drills
            .iter()
            .filter_map(|(v, _, d, _)| Some((label(*v), format!("{:.3}", (*d)?))))
            .collect(),
    );
    gauge(
        m,
        "pvedr_restore_throughput_bytes_per_second",
        "Bytes restored per second in the last successful restore drill of the guest.",
        drills
            .iter()
            .filter_map(|(v, _, _, r)| Some((label(*v), format!("{:.0}", (*r)?))))
            .collect(),
    );
    gauge(
        m,
        "pvedr_rpo_seconds",
        "Age in seconds of the newest usable backup of the guest: what a restore now would lose.",
        rpo(inputs, orphans, now),
    );
    gauge(
        m,
        "pvedr_orphan_backups",
        "Backups of a guest that no longer exists (never alerted on).",
        orphans
            .iter()
            .map(|(v, b)| (label(*v), b.len().to_string()))
            .collect(),
    );
}

fn rpo(inputs: &Inputs, orphans: &BTreeMap<u64, Vec<&Backup>>, now: i64) -> Vec<(String, String)> {
    let mut newest: BTreeMap<u64, i64> = BTreeMap::new();
    for b in &inputs.backups {
        let Some(v) = b.vmid.filter(|v| !orphans.contains_key(v)) else {
            continue;
        };
        if inputs.damaged.contains_key(&b.volid) || b.ctime < 0 || b.ctime > now + MAX_SKEW {
            continue;
        }
        let e = newest.entry(v).or_insert(b.ctime);
        *e = (*e).max(b.ctime);
    }
    newest
        .into_iter()
        .map(|(v, t)| (label(v), now.saturating_sub(t).max(0).to_string()))
        .collect()
}
