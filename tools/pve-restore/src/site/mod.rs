//! A whole site (pve-restore given several records): one plan for all of them before any
//! change. The restore order is Proxmox's boot order (`order`), the disks must fit on the
//! storages they go to (`pack`), each guest's duration is predicted from measured
//! throughput (`predict`), and the plan runs in `--jobs` lanes (`lanes` predicts the RTO,
//! `exec` runs them).

mod exec;
mod lanes;
mod order;
mod pack;
mod predict;
mod read;

use std::ops::Range;

use pvedr::records::{Backup, PredictedFrom, Restore};

pub use exec::run;
pub use read::build;

/// One guest of the plan.
#[derive(Debug, Clone)]
pub struct Planned {
    pub b: Backup,
    pub vmid: u64,
    pub order: Option<u64>,
    pub rank: u64,
    /// The age of its copy, in seconds.
    pub rpo_s: Option<f64>,
    pub predicted: Option<(f64, PredictedFrom)>,
    /// The lane the plan gives it (1-based).
    pub lane: u32,
}

/// The site's plan: its guests in restore order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub guests: Vec<Planned>,
    /// Its startup orders, in lanes cut before each guest that must wait (`pack`).
    pub waves: Vec<Range<usize>>,
    pub jobs: usize,
    pub predicted_rto_s: f64,
    pub rpo_s: Option<f64>,
    /// Why a guest waits for those before it of its wave (in lanes: `pack`).
    pub waits: Vec<String>,
}

impl Planned {
    /// What a lane's stderr lines say they are about: `lane 2 VM 300`.
    pub fn scope(&self, lane: u32) -> String {
        let kind = if self.b.subtype == "lxc" { "CT" } else { "VM" };
        format!("lane {lane} {kind} {}", self.vmid)
    }

    /// The record with the plan's fields; `lane` is the lane that ran it.
    pub fn stamp(&self, rec: &mut Restore, lane: u32) {
        rec.order = self.order;
        rec.lane = Some(lane);
        rec.rpo_s = self.rpo_s.map(crate::report::round);
        if let Some((s, from)) = self.predicted {
            rec.predicted_s = Some(crate::report::round(s));
            rec.predicted_from = Some(from);
        }
    }
}

/// `1h2m3s` for people.
pub fn human(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

impl Plan {
    /// The plan on stderr, before anything runs.
    pub fn say(&self) {
        let missing = self.guests.iter().filter(|g| g.predicted.is_none()).count();
        pvedr::msg::say(format!(
            "site plan: {} guests, {} waves, {} lane(s); predicted RTO {}{}; RPO {}",
            self.guests.len(),
            self.waves.len(),
            self.jobs,
            human(self.predicted_rto_s),
            match missing {
                0 => String::new(),
                n => format!(" (at least: {n} guests without a prediction)"),
            },
            self.rpo_s.map_or("unknown".into(), human)
        ));
        for g in &self.guests {
            let order = g.order.map_or("no order".into(), |o| format!("order {o}"));
            let pred = match g.predicted {
                Some((s, from)) => format!("~{} ({})", human(s), from_word(from)),
                None => "no prediction (give --history, or an offsite record to probe)".into(),
            };
            let age = g
                .rpo_s
                .map_or("age unknown".into(), |a| format!("copy {} old", human(a)));
            pvedr::msg::say(format!(
                "  {order}: {} → lane {}: {pred}, {age}",
                g.b.volid, g.lane
            ));
        }
        for w in &self.waits {
            pvedr::msg::say(format!("  {w}"));
        }
    }
}

fn from_word(f: PredictedFrom) -> &'static str {
    match f {
        PredictedFrom::History => "its last restore",
        PredictedFrom::HistorySite => "the history's rate",
        PredictedFrom::Probe => "probed rate",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_for_people() {
        assert_eq!(super::human(59.6), "1m00s");
        assert_eq!(super::human(3725.0), "1h02m05s");
        assert_eq!(super::human(-3.0), "0s");
    }
}
