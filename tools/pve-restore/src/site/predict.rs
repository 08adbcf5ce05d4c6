//! Each guest's predicted restore duration, from measured throughput: the restore records
//! of a history (the same guest's last restore, else the site's bytes per second), else a
//! probe of the S3 copy and of the node's connection.

use std::collections::HashMap;

use pvedr::records::{PredictedFrom, Restore, Step};

/// A past restore that counts: restored (or verified), not a dry run, with a size and a
/// duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Past {
    pub vmid: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Its archive test on the node (`check-archive`), 0 for a streamed one: a streamed
    /// restore checks its object with a HEAD instead.
    pub test_s: f64,
}

/// What a history says.
#[derive(Debug, Default)]
pub struct Rates {
    /// The last restore of each guest.
    last: HashMap<u64, Past>,
    bytes: u64,
    seconds: f64,
}

/// The [`Past`] in a history's restore record, when it counts (lib's [`Restore::outcome`]:
/// restored or verified, not a dry run), without the time of its steps named in `skip`:
/// the steps this run will not take (a drill's isolate, probes and clean-up before a
/// restore that has none).
pub fn past(r: &Restore, skip: &[&str]) -> Option<Past> {
    if r.outcome() != Some(true) {
        return None;
    }
    // A streamed restore's record carries `offsite`; it tested no archive on the node.
    let test_s = match r.extra.get("offsite") {
        Some(_) => 0.0,
        None => steps_time(&r.steps, &["check-archive"]),
    };
    let seconds = r
        .duration_s
        .map(|s| s - steps_time(&r.steps, skip))
        .filter(|s| *s > 0.0)?;
    Some(Past {
        vmid: r.vmid?,
        bytes: r.size.filter(|b| *b > 0)?,
        seconds,
        test_s,
    })
}

/// Seconds of the steps named in `names`.
fn steps_time(steps: &[Step], names: &[&str]) -> f64 {
    steps
        .iter()
        .filter(|st| names.contains(&st.step.as_str()))
        .filter_map(|st| st.duration_s)
        .sum()
}

impl Rates {
    /// Adds a restore; a later one of the same guest replaces the earlier.
    pub fn add(&mut self, p: Past) {
        self.bytes = self.bytes.saturating_add(p.bytes);
        self.seconds += p.seconds;
        self.last.insert(p.vmid, p);
    }

    /// The prediction for `bytes` of guest `vmid`: its own last restore scaled to this
    /// size (as it was when the size is unknown), without its archive test when this one
    /// is `streamed`; else the history's bytes per second.
    pub fn predict(
        &self,
        vmid: u64,
        bytes: Option<u64>,
        streamed: bool,
    ) -> Option<(f64, PredictedFrom)> {
        if let Some(p) = self.last.get(&vmid) {
            let scale = bytes.map_or(1.0, |b| b as f64 / p.bytes as f64);
            let test = if streamed { p.test_s } else { 0.0 };
            return Some(((p.seconds - test).max(0.0) * scale, PredictedFrom::History));
        }
        let bytes = bytes?;
        (self.seconds > 0.0 && self.bytes > 0).then(|| {
            let rate = self.bytes as f64 / self.seconds;
            (bytes as f64 / rate, PredictedFrom::HistorySite)
        })
    }
}

/// The prediction from probed rates (bytes per second): the slower of the S3 read and the
/// node's connection bounds the stream.
pub fn from_probe(
    bytes: u64,
    s3_bps: Option<f64>,
    node_bps: Option<f64>,
) -> Option<(f64, PredictedFrom)> {
    let rate = match (s3_bps, node_bps) {
        (Some(a), Some(b)) => a.min(b),
        (Some(r), None) | (None, Some(r)) => r,
        (None, None) => return None,
    };
    (rate > 0.0).then(|| (bytes as f64 / rate, PredictedFrom::Probe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The typed record of a history line, as the site reads it.
    fn typed(v: Value) -> Restore {
        crate::history::restore_in(v).expect("a restore record")
    }

    fn rec(vmid: u64, status: &str, size: u64, d: f64) -> Value {
        json!({"kind": "restore", "vmid": vmid, "status": status, "dry_run": false,
               "size": size, "duration_s": d})
    }

    #[test]
    fn a_guests_own_restore_first_then_the_sites_rate() {
        let mut r = Rates::default();
        for v in [
            rec(100, "restored", 1000, 10.0),
            rec(100, "verified", 1000, 20.0),
            rec(101, "restored", 3000, 10.0),
            rec(102, "failed", 10, 1000.0),
            json!({"kind": "restore", "vmid": 103, "status": "planned", "dry_run": true, "size": 1, "duration_s": 1.0}),
        ] {
            if let Some(p) = past(&typed(v), &[]) {
                r.add(p);
            }
        }
        assert_eq!(
            r.predict(100, Some(2000), false),
            Some((40.0, PredictedFrom::History))
        );
        assert_eq!(
            r.predict(100, None, false),
            Some((20.0, PredictedFrom::History))
        );
        // 5000 bytes in 40 s: 125 B/s.
        assert_eq!(
            r.predict(7, Some(250), true),
            Some((2.0, PredictedFrom::HistorySite))
        );
        assert_eq!(r.predict(7, None, false), None);
        assert!(Rates::default().predict(7, Some(250), false).is_none());
    }

    #[test]
    fn the_steps_this_run_will_not_take_are_left_out() {
        let v = json!({"kind": "restore", "vmid": 100, "status": "verified", "dry_run": false,
            "size": 10, "duration_s": 30.0, "steps": [
                {"step": "restore", "status": "ok", "duration_s": 12.0}, {"step": "isolate", "status": "ok", "duration_s": 5.0},
                {"step": "probe", "status": "ok", "duration_s": 3.0}, {"step": "cleanup", "status": "ok", "duration_s": 4.0}]});
        let p = past(&typed(v), &["isolate", "probe", "cleanup"]).expect("counts");
        assert_eq!(p.seconds, 18.0);
        let v = json!({"kind": "restore", "vmid": 100, "status": "restored", "dry_run": false,
            "size": 10, "duration_s": 30.0, "steps": [{"step": "check-archive", "status": "ok", "duration_s": 10.0}]});
        let v = typed(v);
        let mut r = Rates::default();
        r.add(past(&v, &[]).expect("counts"));
        assert_eq!(
            r.predict(100, Some(10), true),
            Some((20.0, PredictedFrom::History))
        );
        assert_eq!(
            r.predict(100, Some(10), false),
            Some((30.0, PredictedFrom::History))
        );
        assert_eq!(past(&v, &[]).expect("counts").seconds, 30.0);
    }

    #[test]
    fn a_probe_is_bound_by_the_slower_side() {
        assert_eq!(
            from_probe(100, Some(10.0), Some(50.0)),
            Some((10.0, PredictedFrom::Probe))
        );
        assert_eq!(
            from_probe(100, None, Some(50.0)),
            Some((2.0, PredictedFrom::Probe))
        );
        assert_eq!(from_probe(100, None, None), None);
        assert_eq!(from_probe(100, Some(0.0), None), None);
    }
}
