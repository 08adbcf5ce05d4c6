//! The checks: pure functions from records (and a fixed "now") to `check` records.

use std::collections::{BTreeMap, BTreeSet};

use pvedr::jobs::GuestRef;
use pvedr::records::{Backup, Check, Job, TfstateVersion};
use pvedr::retention::{Entry, KeepOptions, Mark, mark_group};
use pvedr::schedule::Schedule;
use pvedr::status::TaskExit;
use pvedr::time::{Zone, format_duration};
use pvedr::{jobs, pvesh};
use serde_json::{Map, Value, json};

use crate::inputs::Inputs;
use crate::policy::Policy;
use crate::status::{Status, check};

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

fn job_policy(job: &Job) -> Option<KeepOptions> {
    job.prune_backups
        .as_ref()
        .and_then(|p| KeepOptions::from_json(p).ok())
}

fn age_text(secs: i64) -> String {
    format_duration(secs.max(0) as u64)
}

/// Clock skew between the node and this host tolerated before a backup is "in the future".
const MAX_SKEW: i64 = 300;

/// Why a backup's time cannot be right at `now`: before 1970, so far off that `now - ctime`
/// overflows, or in the future beyond [`MAX_SKEW`]. `None` for a plausible time.
fn time_problem(now: i64, ctime: i64) -> Option<String> {
    match now.checked_sub(ctime) {
        None => Some(format!("has an impossible time (ctime {ctime})")),
        Some(_) if ctime < 0 => Some(format!("has an impossible time (ctime {ctime})")),
        Some(age) if age < -MAX_SKEW => {
            let when = pvedr::records::rfc3339(ctime);
            Some(format!(
                "is dated in the future: {} ({} ahead, more than {} of clock skew)",
                if when.is_empty() {
                    ctime.to_string()
                } else {
                    when
                },
                format_duration(age.unsigned_abs()),
                format_duration(MAX_SKEW as u64)
            ))
        }
        Some(_) => None,
    }
}

/// One guest and its backups, as every per-guest check sees it.
struct GuestView<'a> {
    component: String,
    vmid: u64,
    /// Every backup of the guest; `good`: those `--deep` did not find damaged.
    all: Vec<&'a Backup>,
    good: Vec<&'a Backup>,
    newest: Option<&'a Backup>,
    /// The enabled job backing the guest up (Proxmox's coverage, pvedr's one rule).
    job: Option<&'a Job>,
    /// Whether a `guest` record names it (coverage needs them).
    listed: bool,
    /// What job selection sees of it (node and pool from its `guest` record).
    guest: GuestRef<'a>,
    /// The job schedule's longest interval, when there is a job with a schedule.
    interval: Option<u64>,
}

pub fn run_checks(inp: &Inputs, th: &Thresholds, now: i64, zone: Zone) -> Vec<Check> {
    let mut out = Vec::new();
    let orphans = crate::orphans::find(inp);
    for g in guest_views(inp, now) {
        if let Some(b) = orphans.get(&g.vmid) {
            out.push(crate::orphans::finding(&g.component, b));
            continue;
        }
        let policy = Policy::of(inp.guests.iter().find(|x| x.vmid == g.vmid));
        out.extend(crate::policy::findings(&policy, &g.component));
        // `pvedr-nobackup`: what backups there are must still be whole and rightly dated.
        let expected = !policy.no_backup;
        if expected {
            coverage(inp, &g, &mut out);
            freshness(th, &policy, now, &g, &mut out);
        }
        times(now, &g, &mut out);
        if expected {
            count(th, &g, &mut out);
            size(th, &g, &mut out);
            last_run(inp, &g, &mut out);
        }
        verification(now, &g, &mut out);
        integrity(inp, &g, &mut out);
        if expected {
            retention(zone, &g, &mut out);
            drill(inp, th, &policy, now, &g, &mut out);
        }
    }
    out.extend(inp.offsite_damaged.iter().map(offsite_damaged));
    job_runs(inp, &mut out);
    space(inp, th, &mut out);
    out.extend(tfstate_checks(&inp.tfstate));
    out.extend(crate::checks_snapshots::snapshots(
        &inp.snapshots,
        th.max_snapshot_age,
        now,
    ));
    out
}

/// Every guest (from guest records, templates aside, backups and failures) with its backups.
fn guest_views(inp: &Inputs, now: i64) -> Vec<GuestView<'_>> {
    let mut vmids: BTreeSet<u64> = BTreeSet::new();
    vmids.extend(inp.guests.iter().filter(|g| !g.template).map(|g| g.vmid));
    vmids.extend(inp.backups.iter().filter_map(|b| b.vmid));
    vmids.extend(inp.failures.iter().map(|f| f.vmid));
    let templates: BTreeSet<u64> = inp
        .guests
        .iter()
        .filter(|g| g.template)
        .map(|g| g.vmid)
        .collect();
    let mut by_guest: BTreeMap<u64, Vec<&Backup>> = BTreeMap::new();
    for b in &inp.backups {
        if let Some(v) = b.vmid {
            by_guest.entry(v).or_default().push(b);
        }
    }
    vmids
        .into_iter()
        .filter(|v| !templates.contains(v))
        .map(|vmid| {
            let all: Vec<&Backup> = by_guest.get(&vmid).cloned().unwrap_or_default();
            let good: Vec<&Backup> = all
                .iter()
                .copied()
                .filter(|b| !inp.damaged.contains_key(&b.volid))
                .collect();
            // A backup dated in the future would count as fresh forever: it gets a `time` check.
            let newest = good
                .iter()
                .copied()
                .filter(|b| time_problem(now, b.ctime).is_none())
                .max_by_key(|b| b.ctime);
            let guest = inp
                .guests
                .iter()
                .find(|g| g.vmid == vmid)
                .map_or(GuestRef::vmid(vmid), GuestRef::of);
            let job = jobs::covering(&inp.jobs, &guest, newest.and_then(|b| b.storage.as_deref()));
            let interval = job
                .and_then(|j| j.schedule.as_deref())
                .and_then(Schedule::parse)
                .map(|s| s.max_interval());
            GuestView {
                component: format!("guest/{vmid}"),
                vmid,
                listed: inp.guests.iter().any(|g| g.vmid == vmid),
                guest,
                all,
                good,
                newest,
                job,
                interval,
            }
        })
        .collect()
}

fn coverage(inp: &Inputs, g: &GuestView, out: &mut Vec<Check>) {
    if !g.listed {
        return;
    }
    let c = &g.component;
    if g.all.is_empty() {
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
    match g.newest {
        Some(b) => {
            let age = now.saturating_sub(b.ctime);
            let status = if age > crit as i64 {
                Status::Critical
            } else if age > warn as i64 {
                Status::Warning
            } else {
                Status::Ok
            };
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
        None if !g.all.is_empty() => out.push(check(
            c,
            "freshness",
            Status::Critical,
            if g.good.is_empty() {
                format!("no usable backup: all {} are damaged", g.all.len())
            } else {
                format!(
                    "no usable backup: all {} are damaged or impossibly dated",
                    g.all.len()
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

/// Backups dated in the future or impossibly: CRITICAL, and not fresh.
fn times(now: i64, g: &GuestView, out: &mut Vec<Check>) {
    for b in &g.all {
        if let Some(why) = time_problem(now, b.ctime) {
            let msg = format!("{} {why}", b.volid);
            out.push(check(
                &g.component,
                "time",
                Status::Critical,
                msg,
                None,
                None,
            ));
        }
    }
}

fn count(th: &Thresholds, g: &GuestView, out: &mut Vec<Check>) {
    if g.all.is_empty() && th.min_count <= 1 {
        return;
    }
    let status = if g.good.len() < th.min_count {
        Status::Warning
    } else {
        Status::Ok
    };
    out.push(check(
        &g.component,
        "count",
        status,
        format!("{} usable backup(s)", g.good.len()),
        Some(json!(g.good.len())),
        Some(json!(th.min_count)),
    ));
}

/// Zero bytes, or shrunk against the previous backup on the same storage.
fn size(th: &Thresholds, g: &GuestView, out: &mut Vec<Check>) {
    let Some(b) = g.newest else { return };
    let prev = g
        .good
        .iter()
        .filter(|p| p.storage == b.storage && p.ctime < b.ctime && !p.format.starts_with("pbs-"))
        .max_by_key(|p| p.ctime);
    let (status, msg) = match (b.size, prev.and_then(|p| p.size)) {
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
        && let Some(mut a) = crate::size_anomaly::judge(&th.size_anomaly, &g.component, b, &g.good)
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
    let newest_time = g.newest.map(|b| b.ctime).unwrap_or(i64::MIN);
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

/// PBS verification: a failed one is critical on the newest snapshot of its storage.
/// PBS verification, an open set of states: `failed` is CRITICAL, `ok` is fine, any other
/// state UNKNOWN; absent means never verified. The newest PBS backup's verification is
/// reported with its age (the verify task's UPID start time).
fn verification(now: i64, g: &GuestView, out: &mut Vec<Check>) {
    let c = &g.component;
    for b in &g.all {
        let Some(v) = &b.verification else { continue };
        let (status, msg) = match v.state.as_str() {
            "ok" => continue,
            "failed" => (
                Status::Critical,
                format!("PBS verification failed: {}", b.volid),
            ),
            other => (
                Status::Unknown,
                format!(
                    "PBS verification of {} is '{}', a state pvedr does not know",
                    b.volid,
                    pvedr::msg::visible(other)
                ),
            ),
        };
        out.push(check(c, "verification", status, msg, None, None));
    }
    let newest_pbs = g
        .all
        .iter()
        .filter(|b| b.format.starts_with("pbs-"))
        .max_by_key(|b| b.ctime);
    if let Some(b) = newest_pbs {
        let msg = match &b.verification {
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

/// Integrity (`--deep`).
fn integrity(inp: &Inputs, g: &GuestView, out: &mut Vec<Check>) {
    if inp.deep_checked.is_none() {
        return;
    }
    for b in &g.all {
        if let Some(why) = inp.damaged.get(&b.volid) {
            let msg = format!("{} is damaged: {why}", b.volid);
            out.push(check(
                &g.component,
                "integrity",
                Status::Critical,
                msg,
                None,
                None,
            ));
        }
        if let Some(why) = inp.untested.get(&b.volid) {
            let msg = format!("{} could not be tested: {why}", b.volid);
            out.push(check(
                &g.component,
                "integrity",
                Status::Unknown,
                msg,
                None,
                None,
            ));
        }
    }
    let fine =
        |b: &&Backup| !inp.damaged.contains_key(&b.volid) && !inp.untested.contains_key(&b.volid);
    if !g.all.is_empty() && g.all.iter().all(fine) {
        let msg = format!("{} archive(s) whole", g.all.len());
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

/// Retention conformance against the job's prune-backups, with Proxmox's own marking.
fn retention(zone: Zone, g: &GuestView, out: &mut Vec<Check>) {
    let Some((j, opts)) = g
        .job
        .and_then(|j| job_policy(j).map(|o| (j, o)))
        .filter(|(j, _)| j.storage.is_none() || g.good.iter().any(|b| b.storage == j.storage))
    else {
        return;
    };
    let mut groups: BTreeMap<(Option<&str>, &str), Vec<&Backup>> = BTreeMap::new();
    for b in g
        .good
        .iter()
        .filter(|b| j.storage.is_none() || b.storage == j.storage)
    {
        groups
            .entry((b.storage.as_deref(), b.subtype.as_str()))
            .or_default()
            .push(b);
    }
    let local = |t: i64| zone.to_local(t).unwrap_or_default();
    let (mut extra, mut kept) = (0, 0);
    for grp in groups.values() {
        let entries: Vec<Entry> = grp
            .iter()
            .map(|b| Entry {
                ctime: b.ctime,
                std_name: pvedr::records::is_std_backup(b),
                protected: b.protected,
            })
            .collect();
        let marks = mark_group(&entries, &opts, &local);
        extra += marks.iter().filter(|(m, _)| *m == Mark::Remove).count();
        kept += marks.iter().filter(|(m, _)| *m == Mark::Keep).count();
    }
    let runs = expected_runs(
        g.interval,
        groups.values().flatten(),
        opts.counts().iter().sum(),
    );
    let (status, msg) = if extra > 0 {
        (
            Status::Warning,
            format!("{extra} backup(s) more than {opts} keeps: pruning is not running"),
        )
    } else if !opts.keeps_everything() && (kept as u64) < runs {
        (
            Status::Warning,
            format!(
                "{kept} backup(s) where {opts} should keep {runs}: runs failed or backups were deleted"
            ),
        )
    } else {
        (Status::Ok, format!("{kept} backup(s) kept by {opts}"))
    };
    out.push(check(
        &g.component,
        "retention",
        status,
        msg,
        Some(json!(g.good.len())),
        Some(json!(opts.to_string())),
    ));
}

/// How many backups the schedule should have made over the span the archives cover, at
/// most the policy's slots.
fn expected_runs<'a>(
    interval: Option<u64>,
    backups: impl Iterator<Item = &'a &'a Backup>,
    slots: u64,
) -> u64 {
    let times: Vec<i64> = backups.map(|b| b.ctime).collect();
    match (interval, times.iter().min(), times.iter().max()) {
        (Some(i), Some(oldest), Some(newest)) if i > 0 => {
            (newest.abs_diff(*oldest) / i).saturating_add(1).min(slots)
        }
        _ => 0,
    }
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

fn tfstate_checks(versions: &[TfstateVersion]) -> Vec<Check> {
    let mut out = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&TfstateVersion>> = BTreeMap::new();
    for v in versions {
        groups
            .entry((v.bucket.clone(), v.key.clone()))
            .or_default()
            .push(v);
    }
    for ((bucket, key), vs) in groups {
        let env = vs
            .iter()
            .find_map(|v| v.env.clone())
            .unwrap_or_else(|| bucket.clone());
        let component = format!("tfstate/{env}");
        if vs.iter().any(|v| v.version_id == "null") {
            out.push(check(
                &component,
                "versioning",
                Status::Warning,
                format!(
                    "bucket {bucket} has no versioning: an overwritten state cannot be recovered"
                ),
                None,
                None,
            ));
        } else {
            out.push(check(
                &component,
                "versioning",
                Status::Ok,
                format!("{} version(s) of {key}", vs.len()),
                Some(json!(vs.len())),
                None,
            ));
        }
        let latest = vs.iter().find(|v| v.is_latest);
        match latest {
            Some(l) if l.delete_marker => out.push(check(
                &component,
                "state",
                Status::Critical,
                format!(
                    "{key} is deleted (newest entry is a delete marker {})",
                    l.version_id
                ),
                None,
                None,
            )),
            Some(l) => {
                let parsed = l.serial.is_some() && l.lineage.is_some();
                let valid = l.extra.get("valid").and_then(Value::as_bool);
                let (status, msg) = match (parsed, valid) {
                    (_, Some(false)) => (
                        Status::Critical,
                        format!("current version {} is not a valid state file", l.version_id),
                    ),
                    (true, _) => (
                        Status::Ok,
                        format!(
                            "serial {} lineage {}",
                            l.serial.unwrap_or(0),
                            l.lineage.as_deref().unwrap_or("")
                        ),
                    ),
                    (false, _) => (
                        Status::Unknown,
                        "not inspected: use tfstate-versions list --inspect".into(),
                    ),
                };
                out.push(check(
                    &component,
                    "state",
                    status,
                    msg,
                    l.serial.map(|s| json!(s)),
                    None,
                ));
            }
            None => out.push(check(
                &component,
                "state",
                Status::Unknown,
                "no current version in the input".into(),
                None,
                None,
            )),
        }
        let lineages: BTreeSet<&str> = vs.iter().filter_map(|v| v.lineage.as_deref()).collect();
        if lineages.len() > 1 {
            out.push(check(
                &component,
                "lineage",
                Status::Warning,
                format!(
                    "{} lineages across versions: {}",
                    lineages.len(),
                    lineages.iter().copied().collect::<Vec<_>>().join(", ")
                ),
                None,
                None,
            ));
        } else if lineages.len() == 1 {
            out.push(check(
                &component,
                "lineage",
                Status::Ok,
                "one lineage across versions".into(),
                None,
                None,
            ));
        }
    }
    out
}
