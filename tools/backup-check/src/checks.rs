//! The checks: pure functions from records (and a fixed "now") to `check` records.

use std::collections::{BTreeMap, BTreeSet};

use pvedr::jobs::GuestRef;
use pvedr::records::{Check, Guest, Job};
use pvedr::schedule::Schedule;
use pvedr::status::TaskExit;
use pvedr::time::{Zone, format_duration};
use pvedr::{jobs, pvesh};
use serde_json::{Map, Value, json};

use crate::inputs::Inputs;
use crate::policy::Policy;
use crate::status::{Status, check};
use crate::summary::{GuestBackups, Named};

#[derive(Debug, Clone)]
pub struct Thresholds {
    pub max_age: u64,
    pub max_age_critical: u64,
    pub grace: u64,
    pub min_count: usize,
    pub shrink_warn: f64,
    pub storage_warn: f64,
    pub storage_crit: f64,
    /// Newest snapshot of a label older than this is WARNING (`snapshots`).
    pub max_snapshot_age: u64,
    /// A guest's last successful restore drill older than this is WARNING (`drill`);
    /// `None`: drills are not checked.
    pub max_drill_age: Option<u64>,

    /// The newest backup against the median of the previous ones (`size`).
    pub size_anomaly: crate::size_anomaly::Limits,
}

fn age_text(secs: i64) -> String {
    format_duration(secs.max(0) as u64)
}

/// One guest and its backups, as every per-guest check sees it.
pub struct GuestView<'a> {
    pub component: String,
    vmid: u64,
    /// Its backups, folded.
    pub backups: &'a GuestBackups,
    /// The enabled job backing the guest up (Proxmox's coverage, pvedr's one rule).
    pub job: Option<&'a Job>,
    /// Whether a `guest` record names it (coverage needs them).
    listed: bool,
    /// What job selection sees of it (node and pool from its `guest` record).
    guest: GuestRef<'a>,
    /// The job schedule's longest interval, when there is a job with a schedule.
    pub interval: Option<u64>,
}

pub fn run_checks(inp: &Inputs, th: &Thresholds, now: i64, zone: Zone) -> Vec<Check> {
    let mut out = Vec::new();
    let orphans = crate::orphans::find(inp);
    let empty = GuestBackups::default();
    let guests = guests_by_vmid(&inp.guests);
    for g in guest_views(inp, &guests, &empty) {
        if orphans.contains(&g.vmid) {
            out.push(crate::orphans::finding(&g.component, g.backups));
            continue;
        }
        let policy = Policy::of(guests.get(&g.vmid).copied());
        out.extend(crate::policy::findings(&policy, &g.component));
        // `pvedr-nobackup`: what backups there are must still be whole and rightly dated.
        let expected = !policy.no_backup;
        if expected {
            coverage(inp, &g, &mut out);
            freshness(th, &policy, now, &g, &mut out);
        }
        named(&g.component, "time", &g.backups.times, &mut out);
        if expected {
            count(th, &g, &mut out);
            size(th, &g, &mut out);
            last_run(inp, &g, &mut out);
        }
        named(
            &g.component,
            "verification",
            &g.backups.verifications,
            &mut out,
        );
        verification(now, &g, &mut out);
        integrity(inp, &g, &mut out);
        if expected {
            let subject = crate::retention::Subject {
                component: &g.component,
                job: g.job,
                groups: &g.backups.retention,
                good: g.backups.good,
                interval: g.interval,
            };
            crate::retention::retention(zone, &subject, &mut out);
            drill(inp, th, &policy, now, &g, &mut out);
        }
    }
    out.extend(inp.offsite_damaged.iter().map(offsite_damaged));
    job_runs(inp, &mut out);
    space(inp, th, &mut out);
    out.extend(crate::checks_tfstate::tfstate_checks(&inp.tfstate));
    out.extend(crate::checks_snapshots::snapshots(
        &inp.snapshots,
        th.max_snapshot_age,
        now,
    ));
    out
}

/// The guest records by VMID (the first of a VMID, as a search would find it).
fn guests_by_vmid(guests: &[Guest]) -> BTreeMap<u64, &Guest> {
    let mut out = BTreeMap::new();
    for g in guests {
        out.entry(g.vmid).or_insert(g);
    }
    out
}

/// Every guest (from guest records, templates aside, backups and failures) with its backups.
fn guest_views<'a>(
    inp: &'a Inputs,
    guests: &BTreeMap<u64, &'a Guest>,
    empty: &'a GuestBackups,
) -> Vec<GuestView<'a>> {
    let mut vmids: BTreeSet<u64> = BTreeSet::new();
    vmids.extend(inp.guests.iter().filter(|g| !g.template).map(|g| g.vmid));
    vmids.extend(inp.backups.by_guest.keys().copied());
    vmids.extend(inp.failures.iter().map(|f| f.vmid));
    let templates: BTreeSet<u64> = inp
        .guests
        .iter()
        .filter(|g| g.template)
        .map(|g| g.vmid)
        .collect();
    vmids
        .into_iter()
        .filter(|v| !templates.contains(v))
        .map(|vmid| {
            let backups = inp.backups.by_guest.get(&vmid).unwrap_or(empty);
            let guest = guests
                .get(&vmid)
                .map_or(GuestRef::vmid(vmid), |g| GuestRef::of(g));
            let storage = backups.newest.as_ref().and_then(|b| b.storage.as_deref());
            let job = jobs::covering(&inp.jobs, &guest, storage);
            let interval = job
                .and_then(|j| j.schedule.as_deref())
                .and_then(Schedule::parse)
                .map(|s| s.max_interval());
            GuestView {
                component: format!("guest/{vmid}"),
                vmid,
                listed: guests.contains_key(&vmid),
                guest,
                backups,
                job,
                interval,
            }
        })
        .collect()
}

/// Findings named one by one in the fold, and how many more there were.
fn named(component: &str, name: &str, n: &Named, out: &mut Vec<Check>) {
    for (status, msg) in &n.named {
        out.push(check(component, name, *status, msg.clone(), None, None));
    }
    if n.more > 0 {
        let worst = n.named.iter().map(|(s, _)| *s).max();
        let msg = format!("{} more like these, not named", n.more);
        let status = worst.unwrap_or(Status::Unknown);
        out.push(check(
            component,
            name,
            status,
            msg,
            Some(json!(n.more)),
            None,
        ));
    }
}

fn coverage(inp: &Inputs, g: &GuestView, out: &mut Vec<Check>) {
    if !g.listed {
        return;
    }
    let c = &g.component;
    if g.backups.all == 0 {
        out.push(check(
            c,
            "coverage",
            Status::Critical,
            "no backup at all".into(),
            Some(json!(0)),
            Some(json!(1)),
        ));
    } else if !inp.jobs.is_empty() && g.job.is_none() {
        let disabled: Vec<&str> = inp
            .jobs
            .iter()
            .filter(|j| !j.enabled && jobs::includes(j, &g.guest) == Some(true))
            .map(|j| j.id.as_str())
            .collect();
        let msg = if disabled.is_empty() {
            "not in any enabled backup job".to_string()
        } else {
            format!(
                "only in disabled backup job(s) {} (Proxmox counts these as covered; they do not run)",
                disabled.join(", ")
            )
        };
        out.push(check(c, "coverage", Status::Warning, msg, None, None));
    } else {
        let via = g
            .job
            .map(|j| format!(" by job {}", j.id))
            .unwrap_or_default();
        out.push(check(
            c,
            "coverage",
            Status::Ok,
            format!("backed up{via}"),
            None,
            None,
        ));
    }
}

/// The guest's restore drill against --max-drill-age, unless its tags expect none.
fn drill(
    inp: &Inputs,
    th: &Thresholds,
    policy: &Policy,
    now: i64,
    g: &GuestView,
    out: &mut Vec<Check>,
) {
    let Some(max) = th.max_drill_age else { return };
    if policy.drills() {
        out.push(inp.drills.check(g.vmid, &g.component, max, now));
    } else {
        let msg = "no restore drill expected (tag pvedr-nodrill)".to_string();
        out.push(check(&g.component, "drill", Status::Ok, msg, None, None));
    }
}

fn freshness(th: &Thresholds, policy: &Policy, now: i64, g: &GuestView, out: &mut Vec<Check>) {
    // The guest's own RPO (its tag) wins over a job's schedule and the flags.
    let (warn, crit, basis) = match (policy.freshness(), g.interval) {
        (Some(p), _) => p,
        (None, Some(i)) => (
            i + th.grace,
            2 * i + th.grace,
            format!(
                "job {} schedule",
                g.job.map(|j| j.id.as_str()).unwrap_or("")
            ),
        ),
        (None, None) => (th.max_age, th.max_age_critical, "--max-age".to_string()),
    };
    let threshold = json!({"warning": warn, "critical": crit});
    let c = &g.component;
    match &g.backups.newest {
        Some(b) => {
            let age = now.saturating_sub(b.ctime);
            // A backup dated in the future is as fresh as one of now here (`time` reports it).
            let status = Status::past(age.max(0) as u64, warn, Some(crit));
            let msg = format!(
                "newest backup is {} old ({}; limits from {basis})",
                age_text(age),
                b.volid
            );
            out.push(check(
                c,
                "freshness",
                status,
                msg,
                Some(json!(age)),
                Some(threshold),
            ));
        }
        None if g.backups.all > 0 => out.push(check(
            c,
            "freshness",
            Status::Critical,
            if g.backups.good == 0 {
                format!("no usable backup: all {} are damaged", g.backups.all)
            } else {
                format!(
                    "no usable backup: all {} are damaged or impossibly dated",
                    g.backups.all
                )
            },
            None,
            Some(threshold),
        )),
        None if !g.listed => out.push(check(
            c,
            "freshness",
            Status::Critical,
            "no backup at all".into(),
            None,
            Some(threshold),
        )),
        None => {}
    }
}

fn count(th: &Thresholds, g: &GuestView, out: &mut Vec<Check>) {
    let good = g.backups.good;
    if g.backups.all == 0 && th.min_count <= 1 {
        return;
    }
    let status = if good < th.min_count {
        Status::Warning
    } else {
        Status::Ok
    };
    out.push(check(
        &g.component,
        "count",
        status,
        format!("{good} usable backup(s)"),
        Some(json!(good)),
        Some(json!(th.min_count)),
    ));
}

/// Zero bytes, or shrunk against the previous backup on the same storage.
fn size(th: &Thresholds, g: &GuestView, out: &mut Vec<Check>) {
    let Some(b) = &g.backups.newest else { return };
    let prev = g
        .backups
        .prev
        .get(b.storage.as_deref(), "")
        .and_then(|t| t.before(b.ctime));
    let (status, msg) = match (b.size, prev.and_then(|p| p.1)) {
        (Some(0), _) => (
            Status::Critical,
            format!("newest backup is empty (0 bytes): {}", b.volid),
        ),
        (Some(s), Some(p))
            if p > 0 && (s as f64) < th.shrink_warn * p as f64 && !b.format.starts_with("pbs-") =>
        {
            (
                Status::Warning,
                format!(
                    "newest backup shrank to {:.0}% of the previous one ({s} < {p} bytes)",
                    100.0 * s as f64 / p as f64
                ),
            )
        }
        (Some(s), _) => (Status::Ok, format!("{s} bytes")),
        (None, _) => (Status::Unknown, "size unknown".into()),
    };
    // Against the median: one size finding per guest, the median's figures when it fires.
    if status != Status::Critical
        && let Some(mut a) =
            crate::size_anomaly::judge(&th.size_anomaly, &g.component, b, g.backups)
    {
        if status == Status::Warning {
            a.message = format!("{}; {msg}", a.message);
        }
        out.push(a);
        return;
    }
    out.push(check(
        &g.component,
        "size",
        status,
        msg,
        b.size.map(|s| json!(s)),
        Some(json!(th.shrink_warn)),
    ));
}

/// The last run: a failed run newer than the newest good backup.
fn last_run(inp: &Inputs, g: &GuestView, out: &mut Vec<Check>) {
    let newest_time = g.backups.newest.as_ref().map_or(i64::MIN, |b| b.ctime);
    let Some(f) = inp
        .failures
        .iter()
        .filter(|f| f.vmid == g.vmid)
        .max_by_key(|f| f.ctime)
    else {
        return;
    };
    let (status, msg) = if f.ctime > newest_time {
        (
            Status::Critical,
            format!(
                "last backup run failed at {}: {}",
                f.time,
                f.error.as_deref().unwrap_or("see log")
            ),
        )
    } else {
        (
            Status::Ok,
            format!("an older run failed at {}, a newer backup exists", f.time),
        )
    };
    out.push(check(&g.component, "last-run", status, msg, None, None));
}

/// PBS verification, an open set of states: `failed` is CRITICAL, `ok` is fine, any other
/// state UNKNOWN (named in the fold); absent means never verified. The newest PBS backup's
/// verification is reported with its age (the verify task's UPID start time).
fn verification(now: i64, g: &GuestView, out: &mut Vec<Check>) {
    let c = &g.component;
    if let Some((b, verification)) = &g.backups.newest_pbs {
        let msg = match verification {
            None => format!("newest PBS backup {} never verified", b.volid),
            Some(v) if v.state == "ok" => {
                let age = v.upid.as_deref().and_then(pvesh::upid_start).map(|t| {
                    format!(
                        " {} ago",
                        format_duration(now.saturating_sub(t).max(0).unsigned_abs())
                    )
                });
                format!(
                    "newest PBS backup {} verified ok{}",
                    b.volid,
                    age.unwrap_or_default()
                )
            }
            Some(_) => return,
        };
        out.push(check(c, "verification", Status::Ok, msg, None, None));
    }
}

/// Integrity (`--deep`): what the fold named, or every archive whole.
fn integrity(inp: &Inputs, g: &GuestView, out: &mut Vec<Check>) {
    if inp.deep_checked.is_none() {
        return;
    }
    let b = g.backups;
    named(&g.component, "integrity", &b.integrity, out);
    if b.all > 0 && b.integrity.is_empty() {
        let msg = format!("{} archive(s) whole", b.all);
        out.push(check(
            &g.component,
            "integrity",
            Status::Ok,
            msg,
            None,
            None,
        ));
    }
}

/// An offsite copy whose archive object is gone or not of its manifest's size: the copy a
/// disaster would need cannot be restored, so it is CRITICAL like a damaged archive.
fn offsite_damaged(r: &Map<String, Value>) -> Check {
    let text = |k: &str| pvesh::str_of(r, k);
    let component = match pvesh::int_of(r, "vmid") {
        Some(vmid) => format!("guest/{vmid}"),
        None => format!("offsite/{}", text("storage").unwrap_or_default()),
    };
    let copy = text("url").or_else(|| text("volid")).unwrap_or_default();
    let why = text("error").unwrap_or_else(|| "damaged".into());
    let msg = format!("offsite copy {copy} cannot be restored: {why}");
    check(&component, "offsite", Status::Critical, msg, None, None)
}

/// Jobs: the last run's outcome.
fn job_runs(inp: &Inputs, out: &mut Vec<Check>) {
    for j in inp.jobs.iter().filter(|j| j.enabled) {
        let Some(t) = j.last_task.as_ref() else {
            continue;
        };
        let status_text = t.get("status").and_then(Value::as_str).unwrap_or("");
        let node = t.get("node").and_then(Value::as_str).unwrap_or("?");
        let (status, msg) = match TaskExit::parse(status_text) {
            TaskExit::Ok => (Status::Ok, format!("last run on {node} OK")),
            TaskExit::Warnings => (
                Status::Ok,
                format!("last run on {node} finished with {status_text}"),
            ),
            TaskExit::Running => (Status::Ok, format!("running on {node}")),
            TaskExit::Error => (
                Status::Critical,
                format!(
                    "last run on {node} failed: {status_text} ({})",
                    t.get("upid").and_then(Value::as_str).unwrap_or("")
                ),
            ),
        };
        out.push(check(
            &format!("job/{}", j.id),
            "last-run",
            status,
            msg,
            Some(json!(status_text)),
            None,
        ));
    }
}

/// Storage space.
fn space(inp: &Inputs, th: &Thresholds, out: &mut Vec<Check>) {
    for s in &inp.storages {
        let component = format!("storage/{}/{}", s.node.as_deref().unwrap_or("-"), s.storage);
        let threshold = json!({"warning": th.storage_warn, "critical": th.storage_crit});
        let (status, msg, value) = match s.used_fraction {
            _ if !s.active => (Status::Unknown, "storage is not active".to_string(), None),
            None => (Status::Unknown, "usage unknown".to_string(), None),
            Some(f) => {
                let status = if f >= th.storage_crit {
                    Status::Critical
                } else if f >= th.storage_warn {
                    Status::Warning
                } else {
                    Status::Ok
                };
                (status, format!("{:.1}% used", f * 100.0), Some(json!(f)))
            }
        };
        out.push(check(
            &component,
            "space",
            status,
            msg,
            value,
            Some(threshold),
        ));
    }
}
