//! Each guest's predicted restore duration, from measured throughput: the restore records
//! of a history (the same guest's last restore, else the site's bytes per second), else a
//! probe of the S3 copy and of the node's connection.

use std::collections::HashMap;

use pvedr::records::{PredictedFrom, RestoreStatus};
use serde_json::Value;

/// A past restore that counts: restored (or verified), not a dry run, with a size and a
/// duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Past {
    pub vmid: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// What a history says.
#[derive(Debug, Default)]
pub struct Rates {
    /// The last restore of each guest.
    last: HashMap<u64, Past>,
    bytes: u64,
    seconds: f64,
}

/// The [`Past`] in a history line, when it counts.
pub fn past(v: &Value) -> Option<Past> {
    if v.get("kind")?.as_str()? != "restore" || v.get("dry_run")?.as_bool()? {
        return None;
    }
    let status = serde_json::from_value::<RestoreStatus>(v.get("status")?.clone()).ok()?;
    if !matches!(status, RestoreStatus::Restored | RestoreStatus::Verified) {
        return None;
    }
    let seconds = v.get("duration_s")?.as_f64().filter(|s| *s > 0.0)?;
    let bytes = v.get("size")?.as_u64().filter(|b| *b > 0)?;
    Some(Past {
        vmid: v.get("vmid")?.as_u64()?,
        bytes,
        seconds,
    })
}

impl Rates {
    /// Adds a restore; a later one of the same guest replaces the earlier.
    pub fn add(&mut self, p: Past) {
        self.bytes = self.bytes.saturating_add(p.bytes);
        self.seconds += p.seconds;
        self.last.insert(p.vmid, p);
    }

    /// The prediction for `bytes` of guest `vmid`: its own last restore scaled to this
    /// size (as it was when the size is unknown), else the history's bytes per second.
    pub fn predict(&self, vmid: u64, bytes: Option<u64>) -> Option<(f64, PredictedFrom)> {
        if let Some(p) = self.last.get(&vmid) {
            let scale = bytes.map_or(1.0, |b| b as f64 / p.bytes as f64);
            return Some((p.seconds * scale, PredictedFrom::History));
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
    use serde_json::json;

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
            if let Some(p) = past(&v) {
                r.add(p);
            }
        }
        assert_eq!(
            r.predict(100, Some(2000)),
            Some((40.0, PredictedFrom::History))
        );
        assert_eq!(r.predict(100, None), Some((20.0, PredictedFrom::History)));
        // 5000 bytes in 40 s: 125 B/s.
        assert_eq!(
            r.predict(7, Some(250)),
            Some((2.0, PredictedFrom::HistorySite))
        );
        assert_eq!(r.predict(7, None), None);
        assert!(Rates::default().predict(7, Some(250)).is_none());
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
