//! The metrics of restore evidence and guests that are gone, labelled `guest` (the VMID):
//! last successful drill, its duration and throughput, RPO, orphaned backups.

use std::collections::BTreeSet;

use crate::inputs::Inputs;
use crate::prom::gauge;

fn label(vmid: u64) -> String {
    format!("guest=\"{vmid}\"")
}

pub fn metrics(m: &mut String, inputs: &Inputs, orphans: &BTreeSet<u64>, now: i64) {
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
            .filter_map(|v| Some((label(*v), inputs.backups.by_guest.get(v)?.all.to_string())))
            .collect(),
    );
}

/// The newest usable backup with a possible time: the one freshness judges.
fn rpo(inputs: &Inputs, orphans: &BTreeSet<u64>, now: i64) -> Vec<(String, String)> {
    inputs
        .backups
        .by_guest
        .iter()
        .filter(|(v, _)| !orphans.contains(v))
        .filter_map(|(v, g)| {
            let t = g.newest.as_ref()?.ctime;
            Some((label(*v), now.saturating_sub(t).max(0).to_string()))
        })
        .collect()
}
