//! Restore drills as evidence: the `restore` records of `pve-restore --test` runs (marked
//! `drill: true`, or `test: true`), read from the input and from `--drill-history FILE`.
//! Each guest keeps only its last drill and its last successful one, so a long history
//! costs no more memory than its guests.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use pvedr::jsonl::RecordReader;
use pvedr::records::{Check, Record, Restore, rfc3339};
use pvedr::time::format_duration;
use serde_json::json;

use crate::status::{Status, check};
use crate::summary::Summaries;

/// The longest history line read: a `restore` record with its steps is a few KiB.
const MAX_LINE: usize = 1 << 20;
/// Bad history lines named one by one; the rest are counted.
const MAX_NAMED: usize = 5;
/// Bad lines after which a history is not read further: it is not a drill history.
const MAX_BAD: usize = 1000;

/// The longest part of a drill's error quoted in a finding (characters).
const MAX_ERROR: usize = 300;

/// A record's error as a finding quotes it: printable, secrets redacted, bounded.
fn short(e: &str) -> String {
    let p = pvedr::msg::printable(e);
    match p.char_indices().nth(MAX_ERROR) {
        Some((i, _)) => format!("{}…", &p[..i]),
        None => p,
    }
}

/// One drill, as far as the checks and metrics need it.
#[derive(Debug, Clone)]
pub struct Drill {
    pub started: i64,
    pub ok: bool,
    pub status: String,
    pub error: Option<String>,
    pub duration_s: Option<f64>,
    /// Bytes restored, when the record says (`size`); else the backup's, by volid.
    pub size: Option<u64>,
    pub volid: Option<String>,
}

#[derive(Debug, Default)]
pub struct GuestDrills {
    pub last: Option<Drill>,
    pub last_ok: Option<Drill>,
}

#[derive(Debug, Default)]
pub struct Drills {
    pub by_guest: BTreeMap<u64, GuestDrills>,
    /// Whether any drill record was read (drill checks then run by default).
    pub seen: bool,
    /// Drill records without a readable `started`: their age is unknown.
    undated: usize,
    /// What could not be read of the history: UNKNOWN findings.
    pub problems: Vec<Check>,
}

impl Drills {
    /// Takes a `restore` record if it is a drill's.
    pub fn see(&mut self, r: &Restore) {
        if !r.is_drill() {
            return;
        }
        let (Some(vmid), Some(ok)) = (r.vmid, r.outcome()) else {
            return;
        };
        self.seen = true;
        let Some(started) = r.started_at() else {
            self.undated += 1;
            return;
        };
        let d = Drill {
            started,
            ok,
            status: r.status.to_string(),
            error: r.error.as_deref().map(short),
            duration_s: r.duration_s.filter(|s| s.is_finite() && *s >= 0.0),
            size: r.size,
            volid: r.volid.clone(),
        };
        let g = self.by_guest.entry(vmid).or_default();
        if ok && g.last_ok.as_ref().is_none_or(|l| l.started <= started) {
            g.last_ok = Some(d.clone());
        }
        if g.last.as_ref().is_none_or(|l| l.started <= started) {
            g.last = Some(d);
        }
    }

    /// Reads `--drill-history FILE`: bad lines, a line over [`MAX_LINE`], a file that
    /// cannot be read are UNKNOWN findings naming the file and line, never an end of run.
    pub fn read_history(&mut self, path: &Path) {
        let name = path.display().to_string();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => return self.unknown(format!("cannot read drill history {name}: {e}")),
        };
        let reader = RecordReader::new(BufReader::new(file), name.clone())
            .only(&["restore"])
            .with_max_line(MAX_LINE);
        let mut bad = 0usize;
        for r in reader {
            match r {
                Ok(Record::Restore(r)) => self.see(&r),
                Ok(_) => {}
                Err(e @ pvedr::Error::Input { .. }) => {
                    bad += 1;
                    if bad <= MAX_NAMED {
                        self.unknown(format!(
                            "drill history: {}",
                            pvedr::msg::printable(&e.to_string())
                        ));
                    }
                    if bad >= MAX_BAD {
                        break;
                    }
                }
                Err(e) => {
                    self.unknown(format!("cannot read drill history {name}: {e}"));
                    break;
                }
            }
        }
        if bad > MAX_NAMED {
            let more = bad - MAX_NAMED;
            self.unknown(format!("drill history {name}: {more} more bad line(s)"));
        }
        // The flag alone asks for drill checks, even before the first drill.
        self.seen = true;
    }

    fn unknown(&mut self, msg: String) {
        let c = check("source", "drill-history", Status::Unknown, msg, None, None);
        self.problems.push(c);
    }

    /// The UNKNOWN findings of the history, and of drill records that carry no time.
    pub fn findings(&self) -> Vec<Check> {
        let mut out = self.problems.clone();
        if self.undated > 0 {
            let msg = format!(
                "{} restore drill record(s) without a `started` time: their age is unknown",
                self.undated
            );
            out.push(check(
                "source",
                "drill-history",
                Status::Unknown,
                msg,
                None,
                None,
            ));
        }
        out
    }

    /// The guest's `drill` finding against `max_age`.
    pub fn check(&self, vmid: u64, component: &str, max_age: u64, now: i64) -> Check {
        let g = self.by_guest.get(&vmid);
        let threshold = Some(json!(max_age));
        let age = |d: &Drill| now.saturating_sub(d.started).max(0);
        if let Some(last) = g.and_then(|g| g.last.as_ref()).filter(|d| !d.ok) {
            let msg = format!(
                "last restore drill {} at {}: {}",
                last.status,
                rfc3339(last.started),
                last.error.as_deref().unwrap_or("see pve-restore's record")
            );
            let value = Some(json!(age(last)));
            return check(component, "drill", Status::Critical, msg, value, threshold);
        }
        let Some(ok) = g.and_then(|g| g.last_ok.as_ref()) else {
            let msg = "never drilled: no successful restore drill on record (pve-restore --test)";
            return check(
                component,
                "drill",
                Status::Warning,
                msg.into(),
                None,
                threshold,
            );
        };
        let a = age(ok).unsigned_abs();
        let status = Status::past(a, max_age, None);
        let msg = format!(
            "last successful restore drill {} ago (limit {}, --max-drill-age)",
            format_duration(a),
            format_duration(max_age)
        );
        check(component, "drill", status, msg, Some(json!(a)), threshold)
    }

    /// The volids of successful drills whose record has no size: the fold of the backups
    /// read after keeps theirs.
    pub fn sizes_wanted(&self) -> impl Iterator<Item = &str> {
        self.by_guest
            .values()
            .filter_map(|g| g.last_ok.as_ref())
            .filter(|d| d.size.is_none())
            .filter_map(|d| d.volid.as_deref())
    }

    /// The last successful drill's metrics per guest: (vmid, timestamp, duration,
    /// throughput). Throughput needs a size: the record's, or its backup's on the input.
    pub fn samples(&self, backups: &Summaries) -> Vec<(u64, i64, Option<f64>, Option<f64>)> {
        self.by_guest
            .iter()
            .filter_map(|(v, g)| {
                let d = g.last_ok.as_ref()?;
                let size = d.size.or_else(|| backups.size_of(*v, d.volid.as_deref()?));
                let rate = match (size, d.duration_s) {
                    (Some(s), Some(t)) if t > 0.0 => Some(s as f64 / t),
                    _ => None,
                };
                Some((*v, d.started, d.duration_s, rate))
            })
            .collect()
    }
}
